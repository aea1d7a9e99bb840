// Command enginethroughput measures the lifecycle engine end to end on the
// simulated back-end: N executions of 4 services each are submitted through
// the REST API from 16 clients, and it times how long until every one of
// them is running:
//
//	make build && go run ./bench/enginethroughput [-executions 1000] [-store sqlite|postgres] [-profile DIR] [-timeout 5m]
//
// The daemon runs in this process (daemon.Run) on a configuration of its
// own in a temporary directory: auth "file", workspace "dir", SQLite or a
// throwaway PostgreSQL server (Debian's postgresql, as the store's tests
// use, but durable: fsync and synchronous commit on), and the real backend-sim plugin binary (bin/zoe-plugin-backend-sim)
// as a plugin process, with 4 nodes big enough for every service, services
// that run forever and no artificial delay. It prints the time until every
// submission was accepted, the time until every execution was running, the
// services started per second, and what the sim plugin process cost (CPU
// time, peak memory, state file). With -profile it writes CPU profiles of
// this process (daemon and clients; daemon.pprof, from the first submission
// to the end) and of the plugin process (sim.<pid>.pprof, through the sim's
// cpu_profile setting, from its start to its end), and prints their top
// functions.
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/errgroup"

	"github.com/zoe-project/zoe/bench/internal/benchd"
	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/testutil"
)

const (
	deployment = "throughput"
	user       = "bench"
	image      = "zoe/bench:1"
	// Each service reserves this much; the nodes are sized to hold them all.
	serviceCores  = 0.1
	serviceMemory = 64 << 20
	nodes         = 4
)

type options struct {
	executions int
	services   int
	clients    int
	store      string
	profile    string
	timeout    time.Duration
	bin        string
	keep       bool
}

func main() {
	var o options
	flag.IntVar(&o.executions, "executions", 1000, "executions to submit")
	flag.IntVar(&o.services, "services", 4, "services per execution, all essential")
	flag.IntVar(&o.clients, "clients", 16, "clients submitting concurrently")
	flag.StringVar(&o.store, "store", "sqlite", "the state store: sqlite, or postgres (a server started for the run)")
	flag.StringVar(&o.profile, "profile", "", "write CPU profiles of the daemon and of the sim plugin into `DIR` and print their top functions")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up waiting for the executions to run after this long from the first submission")
	flag.StringVar(&o.bin, "zoe", "bin/zoe", "the zoe binary; its plugins are next to it (make build)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configuration, database, sim state, daemon log)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "enginethroughput:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.executions < 1 || o.services < 1 || o.clients < 1 || o.timeout <= 0 {
		return errors.New("need -executions, -services, -clients and -timeout above 0")
	}
	if o.store != "sqlite" && o.store != "postgres" {
		return fmt.Errorf("-store %q: want sqlite or postgres", o.store)
	}
	zoeBin, err := checkBuild(o.bin)
	if err != nil {
		return err
	}
	if o.profile != "" {
		if o.profile, err = filepath.Abs(o.profile); err != nil {
			return err
		}
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return err
		}
		// The sim's profiles are named by process: those of an earlier run
		// would be taken for this one's.
		old, _ := filepath.Glob(filepath.Join(o.profile, "sim.*.pprof"))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	dir, err := os.MkdirTemp("", "zoe-enginethroughput-")
	if err != nil {
		return err
	}
	if o.keep {
		defer fmt.Printf("\nkept %s (zoe.hcl, users.csv, data/, daemon.log)\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	store := fmt.Sprintf("sqlite = %q", filepath.Join(dir, "data", "zoe.db"))
	if o.store == "postgres" {
		// Durable (fsync, synchronous commit), as a production server:
		// the figure includes the disk, as SQLite's does.
		pg := testutil.NewDurablePostgres()
		defer pg.Stop()
		dsn, err := pg.NewDatabase()
		if err != nil {
			return fmt.Errorf("PostgreSQL: %w", err)
		}
		store = fmt.Sprintf("postgres = %q", dsn)
	}
	password := rand.Text()
	simProfile := ""
	if o.profile != "" {
		simProfile = filepath.Join(o.profile, "sim.pprof")
	}
	cfgFile, err := writeConfig(dir, password, store, simProfile, o)
	if err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	base, stopDaemon, err := benchd.Start(ctx, cfgFile, zoeBin, "enginethroughput", logFile)
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, logFile.Name())
	}
	daemonUp := true
	defer func() {
		if daemonUp {
			_ = stopDaemon()
		}
	}()
	addr := strings.TrimSuffix(base, "/api/v1")
	c, err := login(ctx, addr, password, o.clients)
	if err != nil {
		return err
	}
	simPID, err := simPlugin(ctx, c)
	if err != nil {
		return err
	}
	cpuBefore := cpuTime(simPID) + childrenCPU()

	var daemonProfile *os.File
	if o.profile != "" {
		if daemonProfile, err = os.Create(filepath.Join(o.profile, "daemon.pprof")); err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(daemonProfile); err != nil {
			return err
		}
	}
	fmt.Printf("%d executions of %d services (%d services) from %d clients; %s store; %d sim nodes; %d CPUs (GOMAXPROCS %d), %s; open files limit %s\n",
		o.executions, o.services, o.executions*o.services, o.clients, o.store, nodes, runtime.NumCPU(), runtime.GOMAXPROCS(0),
		runtime.Version(), openFilesLimit())
	t0 := time.Now()
	if err := submit(ctx, c, o); err != nil {
		pprof.StopCPUProfile()
		return err
	}
	accepted := time.Since(t0)
	fmt.Printf("accepted:    %d executions in %s (%.0f submissions/s)\n", o.executions, accepted.Round(time.Millisecond),
		float64(o.executions)/accepted.Seconds())
	counts, waitErr := awaitRunning(ctx, c, o, t0)
	elapsed := time.Since(t0)
	if daemonProfile != nil {
		pprof.StopCPUProfile()
		if err := daemonProfile.Close(); err != nil {
			return err
		}
	}
	running := counts["running"]
	if waitErr == nil {
		fmt.Printf("all running: %s after the first submission\n", elapsed.Round(time.Millisecond))
	} else {
		fmt.Printf("gave up:     %s after the first submission: %v\n", elapsed.Round(time.Millisecond), waitErr)
	}
	fmt.Printf("executions:  %s\n", formatCounts(counts))
	fmt.Printf("throughput:  %.0f services started per second (%d running services / %s)\n",
		float64(running*o.services)/elapsed.Seconds(), running*o.services, elapsed.Round(time.Millisecond))
	pl, _ := c.Plugins(ctx)
	if pl != nil {
		for _, p := range pl.Plugins {
			if p.Restarts > 0 || p.State != "ready" {
				fmt.Printf("plugin %s-%s: %s, %d restarts, last error %q\n", p.Kind, p.Name, p.State, p.Restarts, p.LastError)
			}
		}
	}
	// A plugin process killed and restarted by the host counts among this
	// process's children that have ended.
	if pid, err := simPlugin(ctx, c); err == nil {
		simPID = pid
	}
	fmt.Printf("sim plugin:  %s CPU, peak RSS %s\n", (cpuTime(simPID) + childrenCPU() - cpuBefore).Round(10*time.Millisecond), peakRSS(simPID))
	printStateFiles(filepath.Join(dir, "data", "backend-sim"))
	printProblems(logFile.Name())

	// Stopping the daemon stops the plugin, which writes its profile.
	daemonUp = false
	if err := stopDaemon(); err != nil {
		fmt.Fprintln(os.Stderr, "enginethroughput: daemon:", err)
	}
	if o.profile != "" {
		top(filepath.Join(o.profile, "daemon.pprof"))
		// One per plugin process: sim.<pid>.pprof.
		sims, _ := filepath.Glob(filepath.Join(o.profile, "sim.*.pprof"))
		for _, f := range sims {
			if strings.HasSuffix(f, ".heap.pprof") {
				heapTop(f)
			} else {
				top(f)
			}
		}
	}
	return waitErr
}

// submit posts the executions from o.clients goroutines and fails on the
// first refusal.
func submit(ctx context.Context, c *client.Client, o options) error {
	desc, err := zapp(o.services)
	if err != nil {
		return err
	}
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range o.clients {
		g.Go(func() error {
			for {
				i := next.Add(1)
				if i > int64(o.executions) {
					return nil
				}
				_, err := c.StartExecution(gctx, client.StartExecution{Name: "bench-" + strconv.FormatInt(i, 10), Description: desc})
				if err != nil {
					return fmt.Errorf("submit execution %d: %w", i, err)
				}
			}
		})
	}
	return g.Wait()
}

// pending are the statuses of executions not yet running.
var pending = []string{"submitted", "queued", "starting"}

// awaitRunning polls until no execution is pending, and fails if one ended;
// it returns the executions by status.
func awaitRunning(ctx context.Context, c *client.Client, o options, t0 time.Time) (map[string]int, error) {
	deadline := t0.Add(o.timeout)
	lastReport := time.Now()
	for {
		l, err := c.ListExecutions(ctx, client.ExecutionFilter{Status: pending, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(l.Executions) == 0 {
			break
		}
		if time.Now().After(deadline) {
			counts, err := count(ctx, c)
			if err != nil {
				return nil, err
			}
			return counts, fmt.Errorf("not all running after %s", o.timeout)
		}
		if time.Since(lastReport) >= 15*time.Second {
			lastReport = time.Now()
			if counts, err := count(ctx, c); err == nil {
				fmt.Printf("  %5.0fs:     %s\n", time.Since(t0).Seconds(), formatCounts(counts))
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	counts, err := count(ctx, c)
	if err != nil {
		return nil, err
	}
	if n := counts["running"]; n != o.executions {
		return counts, fmt.Errorf("%d of %d executions run", n, o.executions)
	}
	return counts, nil
}

// count pages through every execution and counts them by status.
func count(ctx context.Context, c *client.Client) (map[string]int, error) {
	counts := map[string]int{}
	cursor := ""
	for {
		l, err := c.ListExecutions(ctx, client.ExecutionFilter{Limit: 500, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		for _, ex := range l.Executions {
			counts[ex.Status]++
		}
		if cursor = l.NextCursor; cursor == "" {
			return counts, nil
		}
	}
}

func formatCounts(counts map[string]int) string {
	var parts []string
	for _, s := range []string{"submitted", "queued", "starting", "running", "cleaning_up", "terminated", "error"} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	return strings.Join(parts, ", ")
}

// zapp is a ZApp of one service with n essential instances that run
// forever on the simulator.
func zapp(n int) (json.RawMessage, error) {
	return json.Marshal(map[string]any{"name": "throughput", "version": 3, "will_end": false, "size": n,
		"services": []map[string]any{{
			"name": "worker", "image": image, "monitor": true, "startup_order": 0,
			"essential_count": n, "total_count": n,
			"resources": map[string]any{"memory": map[string]any{"min": serviceMemory, "max": nil},
				"cores": map[string]any{"min": serviceCores, "max": nil}},
			"ports": []any{}, "environment": [][2]string{{"ZOE_SIM_RUN", "forever"}}, "volumes": []any{}, "command": nil,
		}}})
}

// login opens a session for the benchmark's user and returns a client
// with enough connections for every submitting goroutine.
func login(ctx context.Context, addr, password string, conns int) (*client.Client, error) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns + 2}}
	anon, err := client.New(addr, client.WithHTTPClient(hc))
	if err != nil {
		return nil, err
	}
	s, err := anon.Login(ctx, client.Login{Username: user, Password: password, TokenName: "enginethroughput"})
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	return client.New(addr, client.WithHTTPClient(hc), client.WithToken(s.Token))
}

// simPlugin returns the pid of the sim plugin process.
func simPlugin(ctx context.Context, c *client.Client) (int, error) {
	l, err := c.Plugins(ctx)
	if err != nil {
		return 0, err
	}
	for _, p := range l.Plugins {
		if p.Kind == "backend" && p.Name == "sim" && p.PID != 0 {
			return p.PID, nil
		}
	}
	return 0, errors.New("the daemon runs no sim plugin process")
}

// cpuTime is the user and system CPU time of a process so far (Linux).
func cpuTime(pid int) time.Duration { return statTicks(fmt.Sprintf("/proc/%d/stat", pid), 11) }

// childrenCPU is the CPU time of this process's children that have ended
// and been waited for.
func childrenCPU() time.Duration { return statTicks("/proc/self/stat", 13) }

// statTicks adds the two clock-tick fields of a /proc stat file from the
// field at index i of those after the command (utime and stime at 11,
// cutime and cstime at 13).
func statTicks(file string, i int) time.Duration {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	// The command may hold spaces: count the fields after it.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < i+2 {
		return 0
	}
	u, _ := strconv.ParseInt(f[i], 10, 64)
	s, _ := strconv.ParseInt(f[i+1], 10, 64)
	// USER_HZ is 100 on every Linux Go supports.
	return time.Duration(u+s) * 10 * time.Millisecond
}

// peakRSS is a process's peak resident memory (VmHWM), as /proc says it.
func peakRSS(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func printStateFiles(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var parts []string
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && !e.IsDir() && !strings.HasSuffix(e.Name(), ".lock") {
			parts = append(parts, fmt.Sprintf("%s %d KiB", e.Name(), fi.Size()>>10))
		}
	}
	fmt.Printf("sim state:   %s\n", strings.Join(parts, ", "))
}

// openFilesLimit is this process's limit of open files: the daemon keeps
// files open per service.
func openFilesLimit() string {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return "unknown"
	}
	return strconv.FormatUint(l.Cur, 10)
}

// printProblems sums up the daemon's warnings and errors by message, the
// most frequent first.
func printProblems(logFile string) {
	b, err := os.ReadFile(logFile)
	if err != nil {
		return
	}
	counts := problems(string(b))
	keys := slices.SortedFunc(maps.Keys(counts), func(a, b string) int { return cmp.Or(counts[b]-counts[a], strings.Compare(a, b)) })
	for i, k := range keys {
		if i == 8 {
			fmt.Printf("daemon log:  ... and %d more kinds of warnings\n", len(keys)-i)
			break
		}
		fmt.Printf("daemon log:  %6d× %s\n", counts[k], k)
	}
}

// problems counts the warnings and errors of an hclog log by level,
// logger and message: "<time> [WARN]  zoe.engine: message: key=value ..."
// counts as "[WARN] zoe.engine: message", the message ending where the
// first attribute begins.
func problems(log string) map[string]int {
	attr := regexp.MustCompile(`:? [a-z_]+=`)
	counts := map[string]int{}
	for line := range strings.SplitSeq(log, "\n") {
		_, rest, ok := strings.Cut(line, " [")
		if !ok || !(strings.HasPrefix(rest, "WARN]") || strings.HasPrefix(rest, "ERROR]")) {
			continue
		}
		if loc := attr.FindStringIndex(rest); loc != nil {
			rest = rest[:loc[0]]
		}
		counts["["+strings.Join(strings.Fields(rest), " ")]++
	}
	return counts
}

// top prints a profile's heaviest functions, by their own time and with
// what they call, with the go tool's pprof.
func top(file string) {
	if _, err := os.Stat(file); err != nil {
		fmt.Printf("\nno profile %s: %v\n", file, err)
		return
	}
	for _, args := range [][]string{{"-top", "-nodecount=25"}, {"-top", "-cum", "-nodecount=40"}} {
		fmt.Printf("\n%s (go tool pprof %s):\n", file, strings.Join(args, " "))
		cmd := exec.Command("go", append(append([]string{"tool", "pprof"}, args...), file)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, io.Discard
		if err := cmd.Run(); err != nil {
			fmt.Printf("go tool pprof: %v\n", err)
			continue
		}
		fmt.Print(out.String())
	}
}

// heapTop prints what holds a heap profile's memory when it was written.
func heapTop(file string) {
	fmt.Printf("\n%s (go tool pprof -top -sample_index=inuse_space -nodecount=15):\n", file)
	out, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=inuse_space", "-nodecount=15", file).Output()
	if err != nil {
		fmt.Printf("go tool pprof: %v\n", err)
		return
	}
	fmt.Print(string(out))
}

// checkBuild finds the zoe binary and the plugins this configuration
// loads; they are built by make, never here.
func checkBuild(bin string) (string, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return "", err
	}
	for _, f := range []string{bin, filepath.Join(filepath.Dir(bin), "zoe-plugin-auth-file"),
		filepath.Join(filepath.Dir(bin), "zoe-plugin-workspace-dir"), filepath.Join(filepath.Dir(bin), "zoe-plugin-backend-sim")} {
		if _, err := os.Stat(f); err != nil {
			return "", fmt.Errorf("%s is missing: run `make build` first (from the repository's root): %w", f, err)
		}
	}
	return bin, nil
}

// writeConfig writes the users file and the configuration into dir and
// returns the configuration's path.
func writeConfig(dir, password, store, simProfile string, o options) (string, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return "", fmt.Errorf("hash the password: %w", err)
	}
	// An admin: no quota holds the executions back.
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), fmt.Appendf(nil, "%s,%s,admin,12345,12345\n", user, hash), 0o600); err != nil {
		return "", err
	}
	addr, err := benchd.FreeAddr()
	if err != nil {
		return "", err
	}
	// Every service fits, with a quarter to spare.
	perNode := float64(o.executions*o.services)*serviceCores/nodes*1.25 + 1
	var nodeBlocks strings.Builder
	for i := range nodes {
		fmt.Fprintf(&nodeBlocks, "  node \"node%d\" {\n    cores  = %d\n    memory = \"%dGiB\"\n    images = [%q]\n  }\n",
			i+1, int(perNode), int(perNode*serviceMemory/serviceCores)>>30+1, image)
	}
	profile := ""
	if simProfile != "" {
		profile = fmt.Sprintf("  cpu_profile = %q\n", simProfile)
	}
	cfg := fmt.Sprintf(`listen          = %q
deployment_name = %q
data_dir        = "data"
log_level       = "warn"
state {
  %s
}
limits {
  max_service_cores  = 1
  max_service_memory = "1GiB"
}
auth "file" {
  users_file = "users.csv"
}
workspace "dir" {
  base_path = "workspaces"
}
backend "sim" {
  default_run = "forever"
  pull_images = false
%s%s}
`, addr, deployment, store, profile, nodeBlocks.String())
	cfgFile := filepath.Join(dir, "zoe.hcl")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return "", err
	}
	return cfgFile, nil
}
