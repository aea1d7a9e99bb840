// Command bruteforce measures how long a user waits to log in while others
// guess passwords: -clients concurrent clients, each from its own loopback
// address (127.0.0.10, .11, ...), send -guesses wrong passwords in all to
// POST /api/v1/sessions, with random user names (or, with -target, the
// real users' names), while real users log in one after another from
// 127.0.0.2, each once (a password not yet in the daemon's cache):
//
//	make build && go run ./bench/bruteforce [-guesses 100] [-clients 32] [-users 8] [-target]
//
// The daemon runs in this process (daemon.Run) with the real auth-file
// plugin and bcrypt hashes of cost 12, as `zoe hash-password` writes them;
// the real users are in the state store already, as users who logged in
// before are. Attackers and daemon share the machine's cores.
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
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/zoe-project/zoe/bench/internal/benchd"
	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk/auth"
)

type options struct {
	guesses, clients, users int
	target, keep            bool
	bin                     string
}

func main() {
	var o options
	flag.IntVar(&o.guesses, "guesses", 100, "wrong passwords sent in all")
	flag.IntVar(&o.clients, "clients", 32, "concurrent guessing clients, each from its own loopback address (at most 200)")
	flag.IntVar(&o.users, "users", 8, "real users, who log in one after another during the guessing")
	flag.BoolVar(&o.target, "target", false, "guess the real users' names instead of random ones")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configuration, database, daemon log)")
	flag.StringVar(&o.bin, "zoe", "bin/zoe", "the zoe binary; its plugins are next to it (make build)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bruteforce:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.guesses < 1 || o.clients < 1 || o.clients > 200 || o.users < 1 {
		return errors.New("need -guesses >= 1, -clients from 1 to 200 and -users >= 1")
	}
	zoeBin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	for _, f := range []string{zoeBin, filepath.Join(filepath.Dir(zoeBin), "zoe-plugin-auth-file")} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%s is missing: run `make build` first (from the repository's root): %w", f, err)
		}
	}
	dir, err := os.MkdirTemp("", "zoe-bruteforce-")
	if err != nil {
		return err
	}
	if o.keep {
		defer fmt.Printf("\nkept %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	names := make([]string, o.users)
	for i := range names {
		names[i] = fmt.Sprintf("user%d", i+1)
	}
	cfgFile, db, err := writeConfig(dir, names)
	if err != nil {
		return err
	}
	// The real users logged in before: the store knows them.
	st, err := state.OpenSQLite(ctx, db, nil)
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, err := st.RecordLogin(ctx, auth.Identity{Username: n, Role: auth.RoleUser}); err != nil {
			st.Close()
			return err
		}
	}
	st.Close()
	logFile, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	base, stopDaemon, err := benchd.Start(ctx, cfgFile, zoeBin, "bruteforce", logFile)
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, logFile.Name())
	}
	defer func() {
		if err := stopDaemon(); err != nil {
			fmt.Fprintln(os.Stderr, "bruteforce: daemon:", err)
		}
	}()

	// Guessing.
	var (
		left     atomic.Int64
		mu       sync.Mutex
		statuses = map[int]int{}
		wg       sync.WaitGroup
	)
	left.Store(int64(o.guesses))
	t0 := time.Now()
	for i := range o.clients {
		c := from(fmt.Sprintf("127.0.0.%d", 10+i))
		wg.Go(func() {
			for left.Add(-1) >= 0 && ctx.Err() == nil {
				name := "nobody-" + rand.Text()[:8]
				if o.target {
					name = names[int(left.Load()+int64(o.guesses))%len(names)]
				}
				code, _, err := login(ctx, c, base, name, rand.Text())
				mu.Lock()
				if err != nil {
					code = -1
				}
				statuses[code]++
				mu.Unlock()
			}
		})
	}
	attackDone := make(chan struct{})
	go func() { wg.Wait(); close(attackDone) }()

	// Real logins, one after another, each user once.
	user := from("127.0.0.2")
	type real struct {
		name    string
		at, dur time.Duration
		code    int
	}
	var reals []real
	for _, n := range names {
		start := time.Now()
		code, _, err := login(ctx, user, base, n, "pw-"+n)
		if err != nil {
			return err
		}
		reals = append(reals, real{n, start.Sub(t0), time.Since(start), code})
		select {
		case <-attackDone:
		case <-time.After(500 * time.Millisecond):
		}
	}
	<-attackDone
	attack := time.Since(t0)

	fmt.Printf("%d wrong passwords (%s user names) from %d clients, each from its own address, took %s; "+
		"answers: %v\n", o.guesses, map[bool]string{false: "random", true: "the real users'"}[o.target], o.clients,
		attack.Round(time.Millisecond), statuses)
	fmt.Printf("%d CPUs (GOMAXPROCS %d), %s, bcrypt cost 12\n\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Println("real login  started at  took     status")
	var durs []time.Duration
	for _, r := range reals {
		fmt.Printf("%-10s  %9s  %-7s  %d\n", r.name, r.at.Round(time.Millisecond), r.dur.Round(time.Millisecond), r.code)
		if r.at < attack {
			durs = append(durs, r.dur)
		}
	}
	if len(durs) > 0 {
		slices.Sort(durs)
		fmt.Printf("\nduring the guessing: %d real logins, median %s, max %s\n", len(durs),
			durs[len(durs)/2].Round(time.Millisecond), durs[len(durs)-1].Round(time.Millisecond))
	}
	for _, r := range reals {
		if r.code != http.StatusCreated {
			return fmt.Errorf("real login of %s: status %d", r.name, r.code)
		}
	}
	return nil
}

// from is an HTTP client whose connections come from the loopback address
// ip.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{DialContext: d.DialContext}}
}

func login(ctx context.Context, c *http.Client, base, name, password string) (int, []byte, error) {
	body, _ := json.Marshal(client.Login{Username: name, Password: password})
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/sessions", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// writeConfig writes the users file (user N's password is pw-userN) and
// the configuration into dir; it returns the configuration's path and the
// database's.
func writeConfig(dir string, names []string) (string, string, error) {
	var users bytes.Buffer
	for _, n := range names {
		// The cost of `zoe hash-password`: what a real users file holds.
		hash, err := bcrypt.GenerateFromPassword([]byte("pw-"+n), 12)
		if err != nil {
			return "", "", err
		}
		fmt.Fprintf(&users, "%s,%s,user\n", n, hash)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), users.Bytes(), 0o600); err != nil {
		return "", "", err
	}
	addr, err := benchd.FreeAddr()
	if err != nil {
		return "", "", err
	}
	db := filepath.Join(dir, "data", "zoe.db")
	if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
		return "", "", err
	}
	cfg := fmt.Sprintf(`listen          = %q
deployment_name = "bruteforce"
data_dir        = "data"
log_level       = "warn"
auth "file" {
  users_file = "users.csv"
}
workspace "dir" {
  base_path = "workspaces"
}
`, addr)
	cfgFile := filepath.Join(dir, "zoe.hcl")
	return cfgFile, db, os.WriteFile(cfgFile, []byte(cfg), 0o600)
}
