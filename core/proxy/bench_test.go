package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/state"
)

// benchConns is the number of concurrent clients (issue 15).
const benchConns = 64

// BenchmarkProxyOverhead compares, in one run, a service reached directly
// and through the proxy (in a real http.Server with the daemon's limits,
// all on 127.0.0.1), at 64 concurrent connections:
//
//   - small: closed loop, each client sends its next small request when the
//     last is answered: requests/s and latency percentiles at saturation;
//   - small-at-rate: open loop at half the proxy's saturated rate, latency
//     counted from when each request was due (no coordinated omission):
//     the latency a user sees when the machine is not saturated;
//   - large: 64 clients downloading 16 MiB answers: MB/s.
//
// The load generator, the proxy and the service share the machine's cores,
// so at saturation the proxy's own work (a second HTTP hop) is taken from
// the others. The table at the end gives the ratios.
//
//	go test -run '^$' -bench ProxyOverhead -benchtime 5s ./core/proxy
func BenchmarkProxyOverhead(b *testing.B) {
	bk := newBackend(b)
	small := strings.Repeat("x", 64)
	smallSrv := serve(b, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/big") {
			bigHandler(w)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, small)
	}), ReadHeaderTimeout: 10 * time.Second})
	_ = bk
	addr := strings.TrimPrefix(smallSrv, "http://")
	s := newFakeStore()
	s.addExecution(1, "alice", state.StatusRunning)
	s.addService(1, "nb0", state.ServiceRunning, portSpec{8888, true, addr})
	_, proxyURL := newEnv(b, s, nil)
	path := prefix + "/1/nb0/8888/"
	targets := []struct{ name, base string }{{"direct", smallSrv}, {"proxy", proxyURL}}

	type result struct {
		rps, mbps     float64
		cpu           time.Duration // of the whole process, per request
		p50, p90, p99 time.Duration
	}
	results := map[string]result{}
	var mu sync.Mutex
	record := func(name string, r result) {
		mu.Lock()
		defer mu.Unlock()
		results[name] = r
	}

	for _, tg := range targets {
		b.Run("small/"+tg.name, func(b *testing.B) {
			cpu0 := cpuTime()
			lat, elapsed := load(b, tg.base+path, b.N, 0)
			r := result{rps: float64(b.N) / elapsed.Seconds(), p50: pct(lat, 50), p90: pct(lat, 90), p99: pct(lat, 99),
				cpu: (cpuTime() - cpu0) / time.Duration(b.N)}
			report(b, r.rps, r.p50, r.p99)
			record("small/"+tg.name, r)
		})
	}
	rate := results["small/proxy"].rps / 2
	for _, tg := range targets {
		b.Run("small-at-rate/"+tg.name, func(b *testing.B) {
			lat, elapsed := load(b, tg.base+path, b.N, rate)
			r := result{rps: float64(b.N) / elapsed.Seconds(), p50: pct(lat, 50), p90: pct(lat, 90), p99: pct(lat, 99)}
			report(b, r.rps, r.p50, r.p99)
			record("small-at-rate/"+tg.name, r)
		})
	}
	for _, tg := range targets {
		b.Run("large/"+tg.name, func(b *testing.B) {
			b.SetBytes(bigSize)
			cpu0 := cpuTime()
			_, elapsed := load(b, tg.base+path+"big", b.N, 0)
			r := result{mbps: float64(b.N) * bigSize / 1e6 / elapsed.Seconds(),
				cpu: (cpuTime() - cpu0) * (1 << 20) / time.Duration(b.N*bigSize)}
			b.ReportMetric(r.mbps, "MB/s")
			record("large/"+tg.name, r)
		})
	}

	var t strings.Builder
	fmt.Fprintf(&t, "%d connections; small requests at rate: %.0f req/s\n", benchConns, rate)
	fmt.Fprintf(&t, "%-14s %12s %12s %8s | %10s %10s %10s\n", "", "direct", "proxy", "ratio", "", "", "")
	for _, k := range []string{"small", "small-at-rate"} {
		d, p := results[k+"/direct"], results[k+"/proxy"]
		fmt.Fprintf(&t, "%-14s %12.0f %12.0f %8.2f   req/s\n", k, d.rps, p.rps, p.rps/d.rps)
		fmt.Fprintf(&t, "%-14s %12v %12v %8.2f   p50\n", "", d.p50, p.p50, float64(p.p50)/float64(d.p50))
		fmt.Fprintf(&t, "%-14s %12v %12v %8.2f   p90\n", "", d.p90, p.p90, float64(p.p90)/float64(d.p90))
		fmt.Fprintf(&t, "%-14s %12v %12v %8.2f   p99\n", "", d.p99, p.p99, float64(p.p99)/float64(d.p99))
	}
	if d, p := results["small/direct"], results["small/proxy"]; d.cpu > 0 {
		fmt.Fprintf(&t, "%-14s %12v %12v %8.2f   CPU per request (client, service and proxy together)\n", "small", d.cpu, p.cpu,
			float64(p.cpu)/float64(d.cpu))
	}
	d, p := results["large/direct"], results["large/proxy"]
	fmt.Fprintf(&t, "%-14s %12.0f %12.0f %8.2f   MB/s\n", "large", d.mbps, p.mbps, p.mbps/d.mbps)
	fmt.Fprintf(&t, "%-14s %12v %12v %8.2f   CPU per MiB (client, service and proxy together)\n", "", d.cpu, p.cpu,
		float64(p.cpu)/float64(d.cpu))
	// Printed rather than logged: a parent benchmark's log is not shown.
	// The load average says how much of the machine others were using.
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("\nBenchmarkProxyOverhead, load average %s%s\n", load, t.String())
}

const bigSize = 16 << 20

var bigBuf = func() []byte {
	buf := make([]byte, 256<<10)
	for i := range buf {
		buf[i] = byte(i)
	}
	return buf
}()

func bigHandler(w http.ResponseWriter) {
	w.Header().Set("Content-Length", fmt.Sprint(bigSize))
	for n := bigSize; n > 0; n -= len(bigBuf) {
		if _, err := w.Write(bigBuf[:min(n, len(bigBuf))]); err != nil {
			return
		}
	}
}

func report(b *testing.B, rps float64, p50, p99 time.Duration) {
	b.ReportMetric(rps, "req/s")
	b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op") // meaningless for a concurrent load
}

// load sends n GET requests to url from benchConns clients, each on its
// own kept-alive connection, as alice. rate 0 is a closed loop; otherwise
// requests are due at rate per second in all, and a latency counts from
// when its request was due. It returns the latencies and the time taken.
func load(b *testing.B, url string, n int, rate float64) ([]time.Duration, time.Duration) {
	tr := &http.Transport{MaxIdleConnsPerHost: benchConns, MaxConnsPerHost: benchConns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	var next atomic.Int64
	lats := make([][]time.Duration, benchConns)
	var failed atomic.Value
	var wg sync.WaitGroup
	buf := make([][]byte, benchConns)
	b.ResetTimer()
	start := time.Now()
	for c := range benchConns {
		buf[c] = make([]byte, 64<<10)
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				due := time.Now()
				if rate > 0 {
					due = start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
				}
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Cookie", "zoe_session=alice")
				res, err := cl.Do(req)
				if err == nil {
					_, err = io.CopyBuffer(io.Discard, res.Body, buf[c])
					_ = res.Body.Close()
					if err == nil && res.StatusCode != 200 {
						err = fmt.Errorf("status %d", res.StatusCode)
					}
				}
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				lats[c] = append(lats[c], time.Since(due))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return slices.Concat(lats...), elapsed
}

// cpuTime is the CPU time the process used, user and system: what the
// proxy adds per request does not depend on what else runs on the machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pct is the p-th percentile of the latencies.
func pct(lat []time.Duration, p int) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, len(lat)*p/100)]
}
