// Command apiload measures the REST API under load: with N executions
// stored, the requests per second and latency percentiles of
// GET /api/v1/info (anonymous) and GET /api/v1/executions?limit=50 (with a
// bearer token, then with HTTP Basic, then with a bearer token while
// another store writes to the database -writes times a second) from
// -conns keep-alive connections that each send requests back to back:
//
//	make build && go run ./bench/apiload [-executions 10000] [-conns 64] [-duration 10s] [-writes 10] [-wrk] [-keep]
//
// The daemon runs in this process (daemon.Run), on a configuration of its
// own in a temporary directory: auth "file", workspace "dir", SQLite state
// and no back-end, so the engine is off and the executions stay as they
// were stored; the store is filled through core/state before the daemon
// starts. Load generator and daemon share the machine's cores, as wrk on
// the same host would. -cpuprofile PREFIX writes a CPU profile of each
// measured phase (PREFIX-<endpoint>.pprof), daemon and generator together:
// `go tool pprof -top PREFIX-list-bearer.pprof`.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/zoe-project/zoe/bench/internal/benchd"
	"github.com/zoe-project/zoe/core/config"
	"github.com/zoe-project/zoe/internal/testutil"
)

const (
	deployment = "apiload"
	user       = "bench"
	pageSize   = 50
)

type options struct {
	executions int
	conns      int
	duration   time.Duration
	warmup     time.Duration
	keep       bool
	wrk        bool
	bin        string
	cpuprofile string
	writes     int
	postgres   bool
}

func main() {
	var o options
	flag.IntVar(&o.executions, "executions", 10000, "executions stored before the load (at least 2 pages of 50)")
	flag.IntVar(&o.conns, "conns", 64, "concurrent keep-alive connections, each sending requests back to back")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per endpoint")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured time per endpoint before it")
	flag.BoolVar(&o.wrk, "wrk", false, "also load each endpoint with wrk (apt-get install wrk), after the Go load generator")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configuration, database, daemon log)")
	flag.StringVar(&o.bin, "zoe", "bin/zoe", "the zoe binary; its plugins are next to it (make build)")
	flag.IntVar(&o.writes, "writes", 10, "writes per second to the database, by another store, during the last phase: "+
		"each makes the daemon read and encode its answers again")
	flag.BoolVar(&o.postgres, "postgres", false, "store in a PostgreSQL server started for the run (Debian's postgresql) instead of SQLite")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of each measured phase to `PREFIX`-<endpoint>.pprof")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "apiload:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.executions < 2*pageSize || o.conns < 1 || o.duration <= 0 || o.warmup < 0 {
		return errors.New("need -executions >= 100, -conns >= 1, -duration > 0 and -warmup >= 0")
	}
	zoeBin, err := checkBuild(o.bin)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "zoe-apiload-")
	if err != nil {
		return err
	}
	if o.keep {
		defer fmt.Printf("\nkept %s (zoe.hcl, users.csv, data/zoe.db, daemon.log)\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	password := rand.Text()
	db := config.State{SQLite: filepath.Join(dir, "data", "zoe.db")}
	if o.postgres {
		pg := testutil.NewPostgres()
		defer pg.Stop()
		if db.Postgres, err = pg.NewDatabase(); err != nil {
			return fmt.Errorf("PostgreSQL: %w", err)
		}
		db.SQLite = ""
	}
	cfgFile, err := writeConfig(dir, password, db)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := fill(ctx, db, o.executions); err != nil {
		return fmt.Errorf("fill the store: %w", err)
	}
	fmt.Printf("filled the store with %d executions in %s\n", o.executions, time.Since(t0).Round(time.Millisecond))

	logFile, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	base, stopDaemon, err := benchd.Start(ctx, cfgFile, zoeBin, "apiload", logFile)
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, logFile.Name())
	}
	defer func() {
		if err := stopDaemon(); err != nil {
			fmt.Fprintln(os.Stderr, "apiload: daemon:", err)
		}
	}()
	token, err := login(base, password)
	if err != nil {
		return err
	}
	if err := checkPagination(base, token, o.executions); err != nil {
		return err
	}
	fmt.Println("pagination: page 2 of executions?limit=50 (next_cursor of page 1) has the next 50, ok")

	targets := []target{
		{name: "info", path: "/info", check: checkInfo},
		{name: "list-bearer", path: fmt.Sprintf("/executions?limit=%d", pageSize), check: checkList,
			header: "Bearer " + token},
		{name: "list-basic", path: fmt.Sprintf("/executions?limit=%d", pageSize), check: checkList,
			header: "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))},
		{name: "list-bearer-writes", path: fmt.Sprintf("/executions?limit=%d", pageSize), check: checkList,
			header: "Bearer " + token, writes: o.writes},
	}
	for i := range targets {
		if h := targets[i].header; h != "" {
			targets[i].auth = func(r *http.Request) { r.Header.Set("Authorization", h) }
		}
	}
	var results []result
	for _, t := range targets {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		profile := ""
		if o.cpuprofile != "" {
			profile = o.cpuprofile + "-" + t.name + ".pprof"
		}
		var r result
		err := withWrites(ctx, db, t.writes, func() (err error) {
			r, err = load(ctx, base, t, o.conns, o.warmup, o.duration, profile)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		results = append(results, r)
	}
	fmt.Printf("\n%d executions stored, %d connections, %s measured after %s of warm-up per endpoint; "+
		"%d CPUs (GOMAXPROCS %d) shared by daemon and load generator, %s\n\n",
		o.executions, o.conns, o.duration, o.warmup, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	printTable(os.Stdout, o.conns, results)
	for _, r := range results {
		if r.errors > 0 {
			return fmt.Errorf("%s: %d failed requests, the first: %v", r.name, r.errors, r.firstErr)
		}
	}
	if !o.wrk {
		return nil
	}
	var wrks []wrkResult
	for _, t := range targets {
		var r wrkResult
		err := withWrites(ctx, db, t.writes, func() (err error) {
			r, err = runWrk(ctx, base, t, o.conns, o.warmup, o.duration)
			return err
		})
		if err != nil {
			return err
		}
		wrks = append(wrks, r)
	}
	fmt.Printf("\nThe same with wrk (2 threads) as the load generator:\n\n")
	printWrkTable(os.Stdout, o.conns, wrks)
	for _, r := range wrks {
		if r.errors > 0 {
			return fmt.Errorf("%s: wrk saw %d failed requests", r.name, r.errors)
		}
	}
	return nil
}

// withWrites runs fn while another store writes to the database perSecond
// times a second (none when 0).
func withWrites(ctx context.Context, db config.State, perSecond int, fn func() error) error {
	if perSecond <= 0 {
		return fn()
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	t0 := time.Now()
	go func() {
		n, err := writeEvery(wctx, db, time.Second/time.Duration(perSecond))
		fmt.Printf("another store wrote %d times in %s\n", n, time.Since(t0).Round(time.Second))
		done <- err
	}()
	err := fn()
	stop()
	if werr := <-done; werr != nil {
		return errors.Join(err, fmt.Errorf("the writes: %w", werr))
	}
	return err
}

// checkBuild finds the zoe binary and the plugins this configuration
// loads; they are built by make, never here.
func checkBuild(bin string) (string, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return "", err
	}
	for _, f := range []string{bin, filepath.Join(filepath.Dir(bin), "zoe-plugin-auth-file"),
		filepath.Join(filepath.Dir(bin), "zoe-plugin-workspace-dir")} {
		if _, err := os.Stat(f); err != nil {
			return "", fmt.Errorf("%s is missing: run `make build` first (from the repository's root): %w", f, err)
		}
	}
	return bin, nil
}

// writeConfig writes the users file and the configuration into dir and
// returns the configuration's path.
func writeConfig(dir, password string, db config.State) (cfgFile string, err error) {
	// The cost of `zoe hash-password`: what a real users file holds.
	hash, err := bcrypt.GenerateFromPassword([]byte(password), 12)
	if err != nil {
		return "", fmt.Errorf("hash the password: %w", err)
	}
	users := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(users, fmt.Appendf(nil, "%s,%s,user\n", user, hash), 0o600); err != nil {
		return "", err
	}
	addr, err := benchd.FreeAddr()
	if err != nil {
		return "", err
	}
	store := fmt.Sprintf("sqlite = %q", db.SQLite)
	if db.Postgres != "" {
		store = fmt.Sprintf("postgres = %q", db.Postgres)
	}
	// No backend block: the engine stays off, so the stored executions
	// keep their statuses while the API lists them.
	cfg := fmt.Sprintf(`listen          = %q
deployment_name = %q
data_dir        = "data"
log_level       = "warn"
state {
  %s
}
auth "file" {
  users_file = "users.csv"
}
workspace "dir" {
  base_path = "workspaces"
}
`, addr, deployment, store)
	cfgFile = filepath.Join(dir, "zoe.hcl")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return "", err
	}
	return cfgFile, nil
}
