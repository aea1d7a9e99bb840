package ldapauth

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/zoe-project/zoe/internal/testutil"
)

// BenchmarkAuthenticate measures password logins against a real slapd,
// in-process (no daemon, no plugin wire; plain ldap:// on 127.0.0.1): "warm" reuses the pool's
// connections, "cold" configures the plugin again before each login, so
// each one dials, binds the service account, searches, binds the user and
// searches the groups. It reports logins/s and the 99th percentile.
func BenchmarkAuthenticate(b *testing.B) {
	s := testutil.StartSlapd(b, testutil.SlapdOptions{LDIF: directory()})
	b.Setenv("ZOE_TEST_LDAP_PASSWORD", serviceP)
	for _, mode := range []string{"warm", "cold"} {
		b.Run(mode, func(b *testing.B) {
			p := benchPlugin(b, searchConfig(s.URL))
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				if mode == "cold" {
					b.StopTimer()
					p = benchPlugin(b, searchConfig(s.URL))
					b.StartTimer()
				}
				t0 := time.Now()
				if _, err := p.Authenticate(ctx, "carol", "carol-Pa55"); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "logins/s")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

func benchPlugin(b *testing.B, body string) *Plugin {
	b.Helper()
	_, sc, diags := decodeTB(b, b.TempDir(), body)
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	p := New(nil)
	if err := p.Configure(context.Background(), sc); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.mu.Lock(); p.pool.close(); p.mu.Unlock() })
	return p
}
