// Command ldaplogin measures password logins through the daemon (issue
// 17): logins per second and latency percentiles of POST /api/v1/sessions
// with -concurrency clients, for users of a real slapd (auth "ldap") with
// the plugin's connection pool cold, then warm, and for users of a users
// file (auth "file", bcrypt at the cost of `zoe users-file add`) in the
// same run:
//
//	make build && go run ./bench/ldaplogin [-duration 10s] [-concurrency 8] [-users 64] [-cold-rounds 5]
//
// Each login is a POST /sessions with a correct password: the daemon
// always asks the plugins then (never its cache of recent answers), and
// records the login and a new token in its SQLite store. Concurrent
// requests are for distinct users, lest the daemon share one check among
// them. "cold" is the first -concurrency logins, all at once, of a daemon
// just started on an empty store (its LDAP pool holds no connection yet),
// over -cold-rounds daemons; "warm" is the same daemon afterwards, for
// -duration, clients sending logins back to back.
//
// Bounds that apply: the daemon runs http.password_checks checks at once
// (-password-checks; default the number of cores), LDAP or bcrypt alike,
// and answers 503 beyond 128 waiting ones (hence -concurrency <= 128, also
// its default bound on one address's connections); the LDAP plugin opens
// pool_size connections at most (-pool-size). Failed logins, which the
// daemon throttles, would be counted in the "failed" column and make the
// run fail: every password sent is correct.
//
// The daemon runs in this process (daemon.Run) with the real plugin
// binaries next to -zoe; slapd (Debian's, `make deps`) runs on 127.0.0.1
// with plain ldap:// (allow_insecure), a service account that finds the
// users, and a group that gives them their role. Clients, daemon, plugins
// and slapd share the machine's cores.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zoe-project/zoe/bench/internal/benchd"
	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/plugins/auth-file/userfile"
)

// maxConcurrency is the daemon's bound on the password checks that wait
// for a place (core/api: more get 503 at once), and also its default bound
// on the connections of one address (core/httplimit; every client comes
// from 127.0.0.1).
const maxConcurrency = 128

type options struct {
	duration       time.Duration
	concurrency    int
	users          int
	coldRounds     int
	poolSize       int
	passwordChecks int
	bin            string
	keep           bool
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each warm phase runs")
	flag.IntVar(&o.concurrency, "concurrency", 8, "concurrent clients, each sending logins back to back")
	flag.IntVar(&o.users, "users", 64, "users in the directory and in the users file (at least -concurrency)")
	flag.IntVar(&o.coldRounds, "cold-rounds", 5, "daemons started for the cold figures, each measured on its first -concurrency logins")
	flag.IntVar(&o.poolSize, "pool-size", 4, "the LDAP plugin's pool_size (its default: 4)")
	flag.IntVar(&o.passwordChecks, "password-checks", 0, "the daemon's http.password_checks; 0: its default, the number of cores")
	flag.StringVar(&o.bin, "zoe", "bin/zoe", "the zoe binary; its plugins are next to it (make build)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configurations, databases, daemon and slapd files)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ldaplogin:", err)
		os.Exit(1)
	}
}

// result is one row of the table.
type result struct {
	name   string
	lat    []time.Duration // of the successful logins
	wall   time.Duration
	failed map[string]int // by status or error
}

func (r *result) add(o result) {
	r.lat = append(r.lat, o.lat...)
	r.wall += o.wall
	for k, v := range o.failed {
		r.failed[k] += v
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	switch {
	case o.concurrency < 1 || o.concurrency > maxConcurrency:
		return fmt.Errorf("-concurrency %d: want 1 to %d (beyond, the daemon refuses checks and connections)", o.concurrency, maxConcurrency)
	case o.users < o.concurrency:
		return fmt.Errorf("-users %d: want at least -concurrency (%d), so that concurrent logins are for distinct users", o.users, o.concurrency)
	case o.coldRounds < 1 || o.duration <= 0:
		return errors.New("need -cold-rounds >= 1 and -duration > 0")
	case o.poolSize < 1 || o.poolSize > 1000:
		return fmt.Errorf("-pool-size %d: want 1 to 1000", o.poolSize)
	case o.passwordChecks < 0 || o.passwordChecks > 1024:
		return fmt.Errorf("-password-checks %d: want 0 (the default) to 1024", o.passwordChecks)
	}
	zoeBin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	for _, p := range []string{"", "zoe-plugin-auth-ldap", "zoe-plugin-auth-file", "zoe-plugin-workspace-dir"} {
		f := zoeBin
		if p != "" {
			f = filepath.Join(filepath.Dir(zoeBin), p)
		}
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%s is missing: run `make build` first (from the repository's root): %w", f, err)
		}
	}
	dir, err := os.MkdirTemp("", "zoe-ldaplogin-")
	if err != nil {
		return err
	}
	if o.keep {
		defer fmt.Fprintf(out, "\nkept %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	loadBefore := loadavg()

	// The directory: a service account, the users, and their group.
	secret := rand.Text()
	servicePW := "svc-" + secret
	names := make([]string, o.users)
	ldapPW := map[string]string{}
	for i := range names {
		names[i] = fmt.Sprintf("user%d", i+1)
		ldapPW[names[i]] = fmt.Sprintf("ldap-%s-%d", secret, i+1)
	}
	slapdDir := filepath.Join(dir, "slapd")
	if err := os.Mkdir(slapdDir, 0o700); err != nil {
		return err
	}
	slapd, err := testutil.NewSlapd(slapdDir, testutil.SlapdOptions{LDIF: directory(names, ldapPW, servicePW)})
	if err != nil {
		return err
	}
	defer slapd.Close()
	// The configuration reads it from the environment, as a site's does.
	if err := os.Setenv("ZOE_BENCH_LDAP_PASSWORD", servicePW); err != nil {
		return err
	}
	defer os.Unsetenv("ZOE_BENCH_LDAP_PASSWORD")

	// The users file: one hash for everybody, at the cost of
	// `zoe users-file add` (hashing one per user would take seconds each
	// on a loaded machine; the check costs the same).
	filePW := "file-" + secret
	hash, err := userfile.HashPassword(filePW)
	if err != nil {
		return err
	}
	var users bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&users, "%s,%s,user\n", n, hash)
	}
	usersFile := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(usersFile, users.Bytes(), 0o600); err != nil {
		return err
	}

	ldapBlock := fmt.Sprintf(`auth "ldap" {
  urls           = [%q]
  allow_insecure = true
  pool_size      = %d
  bind_dn        = "cn=zoe,ou=services,dc=zoe,dc=test"
  bind_password  = env("ZOE_BENCH_LDAP_PASSWORD")
  user_base      = "ou=people,dc=zoe,dc=test"
  user_filter    = "(&(objectClass=posixAccount)(uid=%%s))"
  group_base     = "ou=groups,dc=zoe,dc=test"
  role {
    group = "zoe-users"
    role  = "user"
  }
}
`, slapd.URL, o.poolSize)
	fileBlock := fmt.Sprintf("auth \"file\" {\n  users_file = %q\n}\n", usersFile)

	d := &daemons{dir: dir, zoeBin: zoeBin, passwordChecks: o.passwordChecks}
	var rows []result
	for _, s := range []struct {
		name, block string
		pw          map[string]string
	}{
		{"ldap", ldapBlock, ldapPW},
		{"file", fileBlock, nil},
	} {
		creds := make([]client.Login, len(names))
		for i, n := range names {
			creds[i] = client.Login{Username: n, Password: filePW}
			if s.pw != nil {
				creds[i].Password = s.pw[n]
			}
		}
		cold, warm, err := d.scenario(ctx, s.name, s.block, creds, o)
		rows = append(rows, cold, warm)
		if err != nil {
			printTable(out, o, rows, loadBefore)
			return err
		}
	}
	printTable(out, o, rows, loadBefore)
	for _, r := range rows {
		if len(r.failed) > 0 {
			return fmt.Errorf("%s: failed logins: %v", r.name, r.failed)
		}
		if len(r.lat) == 0 {
			return fmt.Errorf("%s: no login measured", r.name)
		}
	}
	return nil
}

// daemons starts the daemons of the run, each on a configuration and an
// empty data directory of its own.
type daemons struct {
	dir, zoeBin    string
	passwordChecks int
	n              int
}

// start runs a daemon with the auth block given; stop ends it.
func (d *daemons) start(ctx context.Context, name, authBlock string) (base string, stop func() error, err error) {
	d.n++
	sub := filepath.Join(d.dir, fmt.Sprintf("%s-%d", name, d.n))
	if err := os.Mkdir(sub, 0o700); err != nil {
		return "", nil, err
	}
	addr, err := benchd.FreeAddr()
	if err != nil {
		return "", nil, err
	}
	var httpBlock string
	if d.passwordChecks > 0 {
		httpBlock = fmt.Sprintf("http {\n  password_checks = %d\n}\n", d.passwordChecks)
	}
	cfg := fmt.Sprintf(`listen          = %q
deployment_name = "ldaplogin"
data_dir        = "data"
log_level       = "warn"
%s%s
workspace "dir" {
  base_path = "workspaces"
}
`, addr, httpBlock, authBlock)
	cfgFile := filepath.Join(sub, "zoe.hcl")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return "", nil, err
	}
	logFile, err := os.Create(filepath.Join(sub, "daemon.log"))
	if err != nil {
		return "", nil, err
	}
	base, stopDaemon, err := benchd.Start(ctx, cfgFile, d.zoeBin, "ldaplogin", logFile)
	if err != nil {
		logFile.Close()
		return "", nil, fmt.Errorf("%w (log: %s)", err, logFile.Name())
	}
	return base, func() error { err := stopDaemon(); logFile.Close(); return err }, nil
}

// scenario measures the cold rounds, then the warm phase on the last
// round's daemon.
func (d *daemons) scenario(ctx context.Context, name, block string, creds []client.Login, o options) (cold, warm result, err error) {
	cold = result{name: fmt.Sprintf("%s cold (%d×%d)", name, o.coldRounds, o.concurrency), failed: map[string]int{}}
	warm = result{name: name + " warm", failed: map[string]int{}}
	var base string
	var stop func() error
	for i := range o.coldRounds {
		if stop != nil {
			if err := stop(); err != nil {
				return cold, warm, fmt.Errorf("%s daemon: %w", name, err)
			}
		}
		if base, stop, err = d.start(ctx, name, block); err != nil {
			return cold, warm, err
		}
		// Rotated, so that each round begins with other users.
		r := measure(ctx, base, rotate(creds, i*o.concurrency), o.concurrency, o.concurrency, 0)
		cold.add(r)
	}
	defer func() {
		if e := stop(); e != nil && err == nil {
			err = fmt.Errorf("%s daemon: %w", name, e)
		}
	}()
	// Every client's connection and the pool are open by now; one more
	// round so that no first-use cost is left.
	measure(ctx, base, creds, o.concurrency, o.concurrency, 0)
	warm.add(measure(ctx, base, creds, o.concurrency, 0, o.duration))
	return cold, warm, ctx.Err()
}

func rotate(s []client.Login, n int) []client.Login {
	n %= len(s)
	return append(slices.Clone(s[n:]), s[:n]...)
}

// measure has conc clients log in, client i as users i, i+conc, ... in
// turn, until count logins are done (count > 0) or for dur.
func measure(ctx context.Context, base string, creds []client.Login, conc, count int, dur time.Duration) result {
	c := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	defer c.CloseIdleConnections()
	var (
		left     atomic.Int64
		mu       sync.Mutex
		wg       sync.WaitGroup
		res      = result{failed: map[string]int{}}
		deadline = time.Now().Add(dur)
	)
	left.Store(int64(count))
	t0 := time.Now()
	for w := range conc {
		wg.Go(func() {
			var lat []time.Duration
			failed := map[string]int{}
			for k := w; ctx.Err() == nil; k += conc {
				if count > 0 && left.Add(-1) < 0 || count == 0 && time.Now().After(deadline) {
					break
				}
				start := time.Now()
				code, err := login(ctx, c, base, creds[k%len(creds)])
				switch {
				case err != nil:
					failed[err.Error()]++
				case code != http.StatusCreated:
					failed[fmt.Sprint(code)]++
				default:
					lat = append(lat, time.Since(start))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.lat = append(res.lat, lat...)
			for k, v := range failed {
				res.failed[k] += v
			}
		})
	}
	wg.Wait()
	res.wall = time.Since(t0)
	return res
}

func login(ctx context.Context, c *http.Client, base string, l client.Login) (int, error) {
	body, _ := json.Marshal(l)
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/sessions", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// directory is the LDIF of the service account, the users (password
// pw[name], SSHA as OpenLDAP stores them) and the group of them all.
func directory(names []string, pw map[string]string, servicePW string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `dn: ou=people,dc=zoe,dc=test
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=zoe,dc=test
objectClass: organizationalUnit
ou: groups

dn: ou=services,dc=zoe,dc=test
objectClass: organizationalUnit
ou: services

dn: cn=zoe,ou=services,dc=zoe,dc=test
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: zoe
userPassword: %s
`, testutil.SSHA(servicePW))
	for i, n := range names {
		fmt.Fprintf(&b, `
dn: uid=%[1]s,ou=people,dc=zoe,dc=test
objectClass: inetOrgPerson
objectClass: posixAccount
uid: %[1]s
cn: %[1]s
sn: %[1]s
mail: %[1]s@zoe.test
uidNumber: %[2]d
gidNumber: 7000
homeDirectory: /home/%[1]s
userPassword: %[3]s
`, n, 10000+i, testutil.SSHA(pw[n]))
	}
	b.WriteString("\ndn: cn=zoe-users,ou=groups,dc=zoe,dc=test\nobjectClass: groupOfNames\ncn: zoe-users\n")
	for _, n := range names {
		fmt.Fprintf(&b, "member: uid=%s,ou=people,dc=zoe,dc=test\n", n)
	}
	return b.String()
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func printTable(out io.Writer, o options, rows []result, loadBefore string) {
	checks := fmt.Sprintf("%d", o.passwordChecks)
	if o.passwordChecks == 0 {
		checks = fmt.Sprintf("%d (the default: cores)", runtime.NumCPU())
	}
	fmt.Fprintf(out, "%d CPUs, %s; load average before %s, after %s\n", runtime.NumCPU(), runtime.Version(), loadBefore, loadavg())
	fmt.Fprintf(out, "POST /api/v1/sessions, %d clients, %d users; bounds: http.password_checks %s, ldap pool_size %d, "+
		"bcrypt cost %d\n\n", o.concurrency, o.users, checks, o.poolSize, userfile.HashCost)
	fmt.Fprintf(out, "%-20s %7s %8s %9s %9s %9s %9s  %s\n", "logins", "count", "seconds", "logins/s", "p50", "p99", "max", "failed")
	for _, r := range rows {
		if r.name == "" {
			continue
		}
		lat := slices.Sorted(slices.Values(r.lat))
		pct := func(q float64) string {
			if len(lat) == 0 {
				return "-"
			}
			return fmtDur(lat[min(len(lat)-1, int(q*float64(len(lat))))])
		}
		rate := 0.0
		if r.wall > 0 {
			rate = float64(len(lat)) / r.wall.Seconds()
		}
		failed := "0"
		if len(r.failed) > 0 {
			failed = fmt.Sprint(r.failed)
		}
		fmt.Fprintf(out, "%-20s %7d %8.2f %9.1f %9s %9s %9s  %s\n", r.name, len(lat), r.wall.Seconds(), rate,
			pct(0.50), pct(0.99), pct(1), failed)
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	default:
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
}
