package engine_test

// The engine on backend-sim through the real plugin host and the real
// plugin binaries (built in TestMain), with a SQLite store in a temporary
// directory or, for the tests that run on every store (eachStore), a
// PostgreSQL database on the server TestMain stops. A second sim.Plugin in the test process, on the same state
// file, plays the operator: it kills services and counts starts.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/config"
	"github.com/zoe-project/zoe/core/engine"
	"github.com/zoe-project/zoe/core/logs"
	"github.com/zoe-project/zoe/core/pluginhost"
	"github.com/zoe-project/zoe/core/scheduler"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/plugins/backend-sim/sim"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/backend"
)

var binDir string

// pg is the PostgreSQL server of this test binary, started by the first
// test that needs it.
var pg = testutil.NewPostgres()

func TestMain(m *testing.M) {
	// The parallel tests wait on the engine's passes and the plugins more
	// than they compute.
	testutil.RaiseParallel(8)
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	defer pg.Stop()
	dir, err := os.MkdirTemp("", "zoe-engine-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := testutil.Build(dir, map[string]string{
		"zoe-plugin-backend-sim":   "plugins/backend-sim",
		"zoe-plugin-workspace-dir": "plugins/workspace-dir",
	}); err != nil {
		fmt.Fprintln(os.Stderr, "building the plugins:", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// wait bounds every wait of these tests.
const wait = 20 * time.Second

const deployment = "etest"

type env struct {
	t       *testing.T
	dir     string
	store   state.Store
	backend *pluginhost.Plugin
	eng     *engine.Engine
	cfg     engine.Config
	logs    *logs.Store // nil unless options.logs
	ctl     *sim.Plugin // the operator's view of the platform
	cancel  context.CancelFunc
	done    chan struct{}

	mu     sync.Mutex
	starts map[string]int // sim "started" events by service name
}

type options struct {
	nodes    map[string]any
	policy   scheduler.Policy
	noEngine bool // do not run the engine yet
	store    storeKind
	logs     bool // keep the services' output
	// wrap, when set, stands between the engine and the back-end.
	wrap func(engine.Backend) engine.Backend
}

// storeKind names a state store implementation.
type storeKind string

const (
	sqliteStore   storeKind = "sqlite" // the default
	postgresStore storeKind = "postgres"
)

// eachStore runs f as a subtest per store implementation.
func eachStore(t *testing.T, f func(t *testing.T, store storeKind)) {
	for _, kind := range []storeKind{sqliteStore, postgresStore} {
		t.Run(string(kind), func(t *testing.T) { f(t, kind) })
	}
}

// stateConfig returns the configuration of a new, empty store of kind.
func stateConfig(t *testing.T, kind storeKind, dir string) config.State {
	t.Helper()
	switch kind {
	case sqliteStore, "":
		return config.State{SQLite: filepath.Join(dir, "zoe.db")}
	case postgresStore:
		return config.State{Postgres: pg.DSN(t)}
	}
	t.Fatalf("unknown store %q", kind)
	return config.State{}
}

func defaultNodes() map[string]any {
	return map[string]any{
		"node1": map[string]any{"cores": 8, "memory": "16GiB", "address": "10.1.0.1"},
		"node2": map[string]any{"cores": 8, "memory": "16GiB", "address": "10.1.0.2"},
	}
}

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	if o.nodes == nil {
		o.nodes = defaultNodes()
	}
	log := testutil.Logger(t)
	ctx := t.Context()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, starts: map[string]int{}}
	simCfg, err := json.Marshal(map[string]any{"state_file": filepath.Join(dir, "sim.json"), "default_run": "1h",
		"pull_images": true, "node": o.nodes})
	if err != nil {
		t.Fatal(err)
	}
	cfgOf := func(js []byte) sdk.Config {
		return sdk.Config{JSON: js, Deployment: deployment, DataDir: dir, ConfigDir: dir}
	}
	start := func(kind sdk.Kind, name string, js []byte) *pluginhost.Plugin {
		p, err := pluginhost.Start(ctx, log, pluginhost.Spec{
			Kind: kind, Name: name, Path: filepath.Join(binDir, "zoe-plugin-"+string(kind)+"-"+name), Dir: dir,
			Setup: func(ctx context.Context, p sdk.Plugin) error {
				c := cfgOf(js)
				c.APIVersion = pluginhost.APIVersion(kind)
				return p.Configure(ctx, c)
			},
		}, pluginhost.Timing{PingInterval: 200 * time.Millisecond, PingTimeout: time.Second,
			BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond, FailedAfter: 5})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		return p
	}
	e.backend = start(sdk.KindBackend, "sim", simCfg)
	ws := start(sdk.KindWorkspace, "dir", fmt.Appendf(nil, `{"base_path": %q}`, filepath.Join(dir, "ws")))

	e.ctl = sim.New(testutil.PluginLogger(t).With("plugin", "ctl"))
	if err := e.ctl.Configure(ctx, cfgOf(simCfg)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.ctl.Close(context.Background()) })
	evs, err := e.ctl.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev := range evs {
			if ev.Kind == backend.EventStarted {
				e.mu.Lock()
				e.starts[ev.ServiceName]++
				e.mu.Unlock()
			}
		}
	}()

	e.store, err = state.Open(ctx, stateConfig(t, o.store, dir), deployment, log.Named("state"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	if _, err := e.store.RecordLogin(ctx, auth.Identity{Username: "alice", Role: auth.RoleUser}); err != nil {
		t.Fatal(err)
	}
	var be engine.Backend = pluginhost.Backend{Plugin: e.backend}
	if o.wrap != nil {
		be = o.wrap(be)
	}
	e.cfg = engine.Config{
		Store: e.store, Backend: be, Workspace: pluginhost.Workspace{Plugin: ws},
		Deployment: deployment, Policy: o.policy, CanPull: true, Limits: zapp.DefaultLimits(),
		StopGrace: 2 * time.Second, Interval: 100 * time.Millisecond,
		BackoffBase: 50 * time.Millisecond, BackoffMax: time.Second,
	}
	if o.logs {
		if e.logs, err = logs.New(filepath.Join(dir, "logs"), logs.Options{}); err != nil {
			t.Fatal(err)
		}
		e.cfg.Logs = e.logs
	}
	e.eng, err = engine.New(log.Named("engine"), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !o.noEngine {
		e.run()
	}
	return e
}

// stop stops the engine, as a daemon that dies would.
func (e *env) stop() {
	e.cancel()
	<-e.done
}

// restart runs a new engine, with a new log store, on the same store,
// back-end and log directory, as a daemon that starts again would.
func (e *env) restart() {
	e.t.Helper()
	var err error
	if e.logs != nil {
		if e.logs, err = logs.New(e.logs.Dir(), logs.Options{}); err != nil {
			e.t.Fatal(err)
		}
		e.cfg.Logs = e.logs
	}
	if e.eng, err = engine.New(testutil.Logger(e.t).Named("engine"), e.cfg); err != nil {
		e.t.Fatal(err)
	}
	e.run()
}

// run starts the engine; it is stopped at the end of the test.
func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan struct{})
	go func() {
		defer close(e.done)
		if err := e.eng.Run(ctx); err != nil {
			e.t.Errorf("engine: %v", err)
		}
	}()
	e.t.Cleanup(func() {
		cancel()
		<-e.done
	})
}

// svc is one service of a test ZApp.
type svc struct {
	name              string
	order, ess, total int
	monitor           bool
	cores             float64
	env               map[string]string
	ports             []int
	proxied           bool // its ports are "proxy": true
}

func zappJSON(t *testing.T, willEnd bool, svcs ...svc) []byte {
	t.Helper()
	var list []map[string]any
	for _, s := range svcs {
		if s.cores == 0 {
			s.cores = 1
		}
		var env [][2]string
		for k, v := range s.env {
			env = append(env, [2]string{k, v})
		}
		slices.SortFunc(env, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
		ports := []map[string]any{}
		for _, p := range s.ports {
			ports = append(ports, map[string]any{"name": fmt.Sprintf("port %d", p), "port_number": p, "protocol": "tcp",
				"url_template": "http://{ip_port}/", "proxy": s.proxied})
		}
		if env == nil {
			env = [][2]string{}
		}
		list = append(list, map[string]any{
			"name": s.name, "image": "zoe/test:1", "monitor": s.monitor, "startup_order": s.order,
			"essential_count": s.ess, "total_count": s.total,
			"resources": map[string]any{"memory": map[string]any{"min": 1 << 30, "max": nil},
				"cores": map[string]any{"min": s.cores, "max": nil}},
			"ports": ports, "environment": env, "volumes": []any{}, "command": nil,
		})
	}
	b, err := json.Marshal(map[string]any{"name": "test-app", "version": 3, "will_end": willEnd, "size": 1, "services": list})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func forever(extra ...string) map[string]string {
	m := map[string]string{"ZOE_SIM_RUN": "forever"}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func (e *env) submit(desc []byte) state.Execution {
	e.t.Helper()
	ex, err := e.eng.Submit(e.t.Context(), "alice", "test", desc)
	if err != nil {
		e.t.Fatal(err)
	}
	return ex
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	testutil.WaitFor(t, wait, what, cond)
}

func (e *env) waitStatus(id int64, want ...state.Status) state.Execution {
	e.t.Helper()
	var ex state.Execution
	waitFor(e.t, fmt.Sprintf("execution %d to be %v", id, want), func() (bool, string) {
		var err error
		ex, err = e.store.GetExecution(e.t.Context(), id)
		if err != nil {
			return false, err.Error()
		}
		return slices.Contains(want, ex.Status), fmt.Sprintf("%s (%s)", ex.Status, ex.ErrorMessage)
	})
	return ex
}

func (e *env) services(id int64) map[string]state.Service {
	e.t.Helper()
	svcs, err := e.store.Services(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]state.Service{}
	for _, s := range svcs {
		out[s.Name] = s
	}
	return out
}

// transitions are the execution's own status changes, waiting events left
// out.
func (e *env) transitions(id int64) ([]string, []state.Event) {
	e.t.Helper()
	evs, err := e.store.Events(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	var own []state.Event
	for _, ev := range evs {
		if ev.ServiceName == "" && ev.From != ev.To {
			out = append(out, ev.To)
			own = append(own, ev)
		}
	}
	return out, own
}

func (e *env) startsOf(name string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.starts[name]
}

func containerName(id int64, svc string) string { return fmt.Sprintf("%s-%d-%s", svc, id, deployment) }

// platformEmpty checks that the deployment has no service left and the
// given handles are gone.
func (e *env) platformEmpty(handles ...state.Handle) {
	e.t.Helper()
	ctx := e.t.Context()
	list, err := e.ctl.List(ctx, backend.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(list) > 0 {
		e.t.Errorf("services left on the platform: %+v", list)
	}
	for _, h := range handles {
		if _, err := e.ctl.Inspect(ctx, backend.Handle{ID: h.ID, Version: h.Version, State: h.Data}); !errors.Is(err, sdk.ErrNotFound) {
			e.t.Errorf("Inspect(%s) = %v, want not found", h.ID, err)
		}
	}
}

func TestLifecycle(t *testing.T) { eachStore(t, testLifecycle) }

func testLifecycle(t *testing.T, store storeKind) {
	e := newEnv(t, options{store: store})
	ex := e.submit(zappJSON(t, false,
		svc{name: "notebook", ess: 1, total: 1, monitor: true, env: forever(), ports: []int{8888}},
		svc{name: "worker", order: 1, ess: 1, total: 2, env: forever()}))
	if ex.Status != state.StatusSubmitted {
		t.Fatalf("submitted execution is %s", ex.Status)
	}
	running := e.waitStatus(ex.ID, state.StatusRunning)
	// The network's id is recorded: the back-end knows it, in use.
	if running.NetworkID == "" {
		t.Fatal("no network recorded")
	}
	if err := e.ctl.RemoveNetwork(t.Context(), running.NetworkID); !errors.Is(err, sdk.ErrConflict) {
		t.Errorf("removing the recorded network %q of a running execution: %v, want in use", running.NetworkID, err)
	}
	svcs := e.services(ex.ID)
	if len(svcs) != 3 {
		t.Fatalf("services: %+v", svcs)
	}
	var handles []state.Handle
	for _, s := range svcs {
		if s.Status != state.ServiceRunning || s.Handle.ID == "" || s.Node == "" || s.IP == "" {
			t.Errorf("service %s: status %s, handle %q, node %q, ip %q", s.Name, s.Status, s.Handle.ID, s.Node, s.IP)
		}
		handles = append(handles, s.Handle)
	}
	eps, err := e.store.Endpoints(t.Context(), ex.ID)
	if err != nil || len(eps) != 1 {
		t.Fatalf("endpoints: %+v, %v", eps, err)
	}
	if ep := eps[0]; ep.ExternalPort == 0 || !strings.HasPrefix(ep.URL, "http://10.1.0.") ||
		!strings.HasSuffix(ep.URL, fmt.Sprintf(":%d/", ep.ExternalPort)) {
		t.Errorf("endpoint %+v", ep)
	}
	if _, err := e.eng.Terminate(t.Context(), ex.ID, "stopped by the test"); err != nil {
		t.Fatal(err)
	}
	end := e.waitStatus(ex.ID, state.StatusTerminated)
	if end.EndedAt == nil || end.StartedAt == nil || end.ErrorMessage != "" {
		t.Errorf("ended execution: %+v", end)
	}
	got, evs := e.transitions(ex.ID)
	want := []string{"submitted", "queued", "starting", "running", "cleaning_up", "terminated"}
	if !slices.Equal(got, want) {
		t.Errorf("transitions %v, want %v", got, want)
	}
	for _, ev := range evs {
		if ev.Reason == "" {
			t.Errorf("event without a reason: %+v", ev)
		}
	}
	if evs[4].Reason != "stopped by the test" {
		t.Errorf("cleaning_up reason %q", evs[4].Reason)
	}
	for _, s := range e.services(ex.ID) {
		if s.Status != state.ServiceStopped {
			t.Errorf("service %s is %s", s.Name, s.Status)
		}
	}
	e.platformEmpty(handles...)
	if end.NetworkID != running.NetworkID {
		t.Errorf("network %q after the end, %q before", end.NetworkID, running.NetworkID)
	}
	if err := e.ctl.RemoveNetwork(t.Context(), running.NetworkID); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("the network is left behind: %v", err)
	}
	// Terminating again: an inactive execution is a conflict.
	if _, err := e.eng.Terminate(t.Context(), ex.ID, "again"); !errors.Is(err, sdk.ErrConflict) {
		t.Errorf("terminating a terminated execution: %v", err)
	}
}

// TestNetworkNameTaken: a network of the execution's name that the store
// does not know (a daemon died between creating it and recording its id)
// cannot be removed without its id: the execution runs on another network,
// which is recorded and removed at the end; the unknown one stays.
func TestNetworkNameTaken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{noEngine: true})
	ctx := t.Context()
	ex := e.submit(zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}))
	leaked, err := e.ctl.CreateNetwork(ctx, backend.NetworkSpec{Name: fmt.Sprintf("zoe-%s-%d", deployment, ex.ID)})
	if err != nil {
		t.Fatal(err)
	}
	e.run()
	running := e.waitStatus(ex.ID, state.StatusRunning)
	if running.NetworkID == "" || running.NetworkID == leaked {
		t.Fatalf("recorded network %q, the unknown one is %q", running.NetworkID, leaked)
	}
	if _, err := e.eng.Terminate(ctx, ex.ID, "done"); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(ex.ID, state.StatusTerminated)
	e.platformEmpty()
	if err := e.ctl.RemoveNetwork(ctx, running.NetworkID); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("the recorded network is left behind: %v", err)
	}
	if err := e.ctl.RemoveNetwork(ctx, leaked); err != nil {
		t.Errorf("the unknown network: %v, want it left for the operator", err)
	}
}

func TestSubmitInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{noEngine: true})
	_, err := e.eng.Submit(t.Context(), "alice", "bad", []byte(`{"name": "x", "version": 3, "services": []}`))
	var probs zapp.Problems
	if !errors.Is(err, sdk.ErrInvalidArgument) || !errors.As(err, &probs) || len(probs) == 0 {
		t.Fatalf("invalid description: %v", err)
	}
	// The user quota allows five executions at a time.
	for range 5 {
		e.submit(zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true}))
	}
	if _, err := e.eng.Submit(t.Context(), "alice", "sixth", zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true})); !errors.Is(err, sdk.ErrResourceExhausted) {
		t.Fatalf("over quota: %v", err)
	}
}

func TestBatchExitCodes(t *testing.T) { eachStore(t, testBatchExitCodes) }

func testBatchExitCodes(t *testing.T, store storeKind) {
	e := newEnv(t, options{store: store})
	tests := []struct {
		code   string
		status state.Status
	}{
		{"0", state.StatusTerminated},
		{"3", state.StatusError},
	}
	for _, tt := range tests {
		t.Run("exit "+tt.code, func(t *testing.T) {
			ex := e.submit(zappJSON(t, true,
				svc{name: "job", ess: 1, total: 1, monitor: true, env: map[string]string{"ZOE_SIM_RUN": "300ms", "ZOE_SIM_EXIT": tt.code}},
				svc{name: "helper", ess: 1, total: 1, env: forever()}))
			end := e.waitStatus(ex.ID, state.StatusTerminated, state.StatusError)
			if end.Status != tt.status || end.ExitCode == nil || fmt.Sprint(*end.ExitCode) != tt.code {
				t.Fatalf("ended %s with exit code %v (%s), want %s with %s", end.Status, end.ExitCode, end.ErrorMessage, tt.status, tt.code)
			}
			if tt.code != "0" && !strings.Contains(end.ErrorMessage, "exited with code 3") {
				t.Errorf("error message %q", end.ErrorMessage)
			}
			if job := e.services(ex.ID)["job0"]; job.ExitCode == nil || fmt.Sprint(*job.ExitCode) != tt.code {
				t.Errorf("service exit code %v", job.ExitCode)
			}
			got, _ := e.transitions(ex.ID)
			if want := []string{"submitted", "queued", "starting", "running", "cleaning_up", string(tt.status)}; !slices.Equal(got, want) {
				t.Errorf("transitions %v, want %v", got, want)
			}
			e.platformEmpty()
		})
	}
}

func TestDeaths(t *testing.T) { eachStore(t, testDeaths) }

func testDeaths(t *testing.T, store storeKind) {
	e := newEnv(t, options{store: store})
	ctx := t.Context()
	ex := e.submit(zappJSON(t, false,
		svc{name: "master", ess: 1, total: 1, monitor: true, env: forever()},
		svc{name: "worker", ess: 1, total: 3, env: forever()}))
	e.waitStatus(ex.ID, state.StatusRunning)
	waitFor(t, "every service running", func() (bool, string) {
		for _, s := range e.services(ex.ID) {
			if s.Status != state.ServiceRunning {
				return false, s.Name + " is " + string(s.Status)
			}
		}
		return true, ""
	})
	before := e.services(ex.ID)

	// An elastic service dies: replaced, the rest untouched.
	if err := e.ctl.Kill(ctx, containerName(ex.ID, "worker2")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "worker2 replaced", func() (bool, string) {
		s := e.services(ex.ID)["worker2"]
		return s.RestartCount == 1 && s.Status == state.ServiceRunning && s.Handle.ID != before["worker2"].Handle.ID,
			fmt.Sprintf("%s restarts %d handle %s", s.Status, s.RestartCount, s.Handle.ID)
	})
	after := e.services(ex.ID)
	for _, n := range []string{"master0", "worker0", "worker1"} {
		if after[n].Handle.ID != before[n].Handle.ID || after[n].RestartCount != 0 || after[n].Status != state.ServiceRunning {
			t.Errorf("%s was touched: %+v", n, after[n])
		}
	}
	if cur, _ := e.store.GetExecution(ctx, ex.ID); cur.Status != state.StatusRunning {
		t.Errorf("execution is %s after an elastic death", cur.Status)
	}
	waitFor(t, "worker2's second start event", func() (bool, string) {
		n := e.startsOf(containerName(ex.ID, "worker2"))
		return n == 2, fmt.Sprint(n)
	})

	// An essential service dies: the execution ends, with the reason.
	if err := e.ctl.Kill(ctx, containerName(ex.ID, "worker0")); err != nil {
		t.Fatal(err)
	}
	end := e.waitStatus(ex.ID, state.StatusTerminated, state.StatusError)
	if end.Status != state.StatusTerminated {
		t.Errorf("interactive execution ended %s (%s)", end.Status, end.ErrorMessage)
	}
	_, evs := e.transitions(ex.ID)
	var reason string
	for _, ev := range evs {
		if ev.To == string(state.StatusCleaningUp) {
			reason = ev.Reason
		}
	}
	if reason != "essential service worker0 exited with code 137" {
		t.Errorf("reason %q", reason)
	}
	e.platformEmpty()
}

// Not parallel: "starting" bounds how long a terminate takes, which the
// package's other tests running beside it on a loaded machine would
// stretch.
func TestTerminateInEveryState(t *testing.T) { eachStore(t, testTerminateInEveryState) }

func testTerminateInEveryState(t *testing.T, store storeKind) {
	t.Run("submitted", func(t *testing.T) {
		e := newEnv(t, options{noEngine: true, store: store})
		ex := e.submit(zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}))
		if _, err := e.eng.Terminate(t.Context(), ex.ID, "never mind"); err != nil {
			t.Fatal(err)
		}
		e.run()
		e.waitStatus(ex.ID, state.StatusTerminated)
		if got, _ := e.transitions(ex.ID); !slices.Equal(got, []string{"submitted", "cleaning_up", "terminated"}) {
			t.Errorf("transitions %v", got)
		}
		if n := e.startsOf(containerName(ex.ID, "alpha0")); n != 0 {
			t.Errorf("started %d times", n)
		}
	})
	t.Run("queued", func(t *testing.T) {
		e := newEnv(t, options{store: store})
		// 8 cores fit a node of 8, once the blocker that takes both ends:
		// the ZApp is accepted, and waits.
		blocker := e.submit(zappJSON(t, false, svc{name: "blocker", ess: 2, total: 2, monitor: true, cores: 8, env: forever()}))
		e.waitStatus(blocker.ID, state.StatusRunning)
		v0 := e.eng.WaitingVersion()
		ex := e.submit(zappJSON(t, false, svc{name: "big", ess: 1, total: 1, monitor: true, cores: 8, env: forever()}))
		e.waitStatus(ex.ID, state.StatusQueued)
		waitFor(t, "a waiting reason", func() (bool, string) {
			r := e.eng.WaitingReason(ex.ID)
			return strings.Contains(r, "core"), r
		})
		// The API keeps pages showing the reasons while this stays.
		v1 := e.eng.WaitingVersion()
		if v1 == v0 {
			t.Errorf("the waiting version stayed %d when a reason appeared", v0)
		}
		if _, err := e.eng.Terminate(t.Context(), ex.ID, "never mind"); err != nil {
			t.Fatal(err)
		}
		e.waitStatus(ex.ID, state.StatusTerminated)
		if r, v := e.eng.WaitingReason(ex.ID), e.eng.WaitingVersion(); r != "" || v == v1 {
			t.Errorf("after the end: reason %q, waiting version %d (was %d)", r, v, v1)
		}
		if got, _ := e.transitions(ex.ID); !slices.Equal(got, []string{"submitted", "queued", "cleaning_up", "terminated"}) {
			t.Errorf("transitions %v", got)
		}
	})
	t.Run("starting", func(t *testing.T) {
		e := newEnv(t, options{store: store})
		ex := e.submit(zappJSON(t, false,
			svc{name: "fast", ess: 1, total: 1, monitor: true, env: forever()},
			// A start that would take an hour: the execution can end only
			// if terminating interrupts it.
			svc{name: "slow", order: 1, ess: 1, total: 1, env: forever("ZOE_SIM_START_DELAY", "1h")}))
		e.waitStatus(ex.ID, state.StatusStarting)
		waitFor(t, "slow starting", func() (bool, string) {
			s := e.services(ex.ID)["slow0"]
			return s.Status == state.ServiceStarting, string(s.Status)
		})
		if _, err := e.eng.Terminate(t.Context(), ex.ID, "too slow"); err != nil {
			t.Fatal(err)
		}
		e.waitStatus(ex.ID, state.StatusTerminated)
		if got, _ := e.transitions(ex.ID); !slices.Equal(got, []string{"submitted", "queued", "starting", "cleaning_up", "terminated"}) {
			t.Errorf("transitions %v", got)
		}
		e.platformEmpty()
	})
	t.Run("running", func(t *testing.T) {
		e := newEnv(t, options{store: store})
		ex := e.submit(zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}))
		e.waitStatus(ex.ID, state.StatusRunning)
		if _, err := e.eng.Terminate(t.Context(), ex.ID, "done"); err != nil {
			t.Fatal(err)
		}
		// Terminating while cleaning up does nothing.
		if cur, err := e.eng.Terminate(t.Context(), ex.ID, "again"); err != nil && cur.Status != state.StatusTerminated {
			t.Errorf("terminate while cleaning up: %v", err)
		}
		e.waitStatus(ex.ID, state.StatusTerminated)
		e.platformEmpty()
	})
}

func TestStartupOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	delay := forever("ZOE_SIM_START_DELAY", "1s")
	ex := e.submit(zappJSON(t, false,
		svc{name: "alpha", ess: 1, total: 1, monitor: true, env: delay},
		svc{name: "beta", ess: 2, total: 2, env: delay},
		svc{name: "gamma", order: 1, ess: 1, total: 1, env: delay}))
	e.waitStatus(ex.ID, state.StatusRunning)
	list, err := e.ctl.List(t.Context(), backend.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at := map[string]time.Time{}
	for _, st := range list {
		at[st.Name] = st.StartedAt
	}
	first := []time.Time{at[containerName(ex.ID, "alpha0")], at[containerName(ex.ID, "beta0")], at[containerName(ex.ID, "beta1")]}
	lo, hi := slices.MinFunc(first, time.Time.Compare), slices.MaxFunc(first, time.Time.Compare)
	if hi.Sub(lo) > 700*time.Millisecond {
		t.Errorf("order 0 did not start in parallel: %v", first)
	}
	if c := at[containerName(ex.ID, "gamma0")]; c.Sub(hi) < 900*time.Millisecond {
		t.Errorf("order 1 started at %v, order 0 by %v", c, hi)
	}
}

func TestRuntimeLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	ctx := t.Context()
	q, err := e.store.GetQuota(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	q.RuntimeLimit = 2 * time.Second
	if _, err := e.store.UpdateQuota(ctx, q); err != nil {
		t.Fatal(err)
	}
	ex := e.submit(zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}))
	e.waitStatus(ex.ID, state.StatusRunning)
	end := e.waitStatus(ex.ID, state.StatusTerminated)
	// Not before the limit; how long after it depends on the machine's
	// load (the reason below shows the limit ended it).
	if d := end.EndedAt.Sub(*end.StartedAt); d < 2*time.Second {
		t.Errorf("ran %s with a limit of 2s", d)
	}
	_, evs := e.transitions(ex.ID)
	if r := evs[len(evs)-2].Reason; r != "run-time limit of 2s exceeded" {
		t.Errorf("reason %q", r)
	}
}

func TestBackendPluginKilled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	ctx := t.Context()
	ex := e.submit(zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}))
	e.waitStatus(ex.ID, state.StatusRunning)
	handle := e.services(ex.ID)["alpha0"].Handle
	old := e.backend.Status()
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the back-end plugin restarted", func() (bool, string) {
		s := e.backend.Status()
		return s.State == pluginhost.StateReady && s.Restarts > old.Restarts && s.PID != old.PID, fmt.Sprintf("%+v", s)
	})
	// Still tracked: its death is seen.
	if s := e.services(ex.ID)["alpha0"]; s.Status != state.ServiceRunning || s.Handle.ID != handle.ID {
		t.Fatalf("after the plugin restart: %+v", s)
	}
	if err := e.ctl.Kill(ctx, containerName(ex.ID, "alpha0")); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(ex.ID, state.StatusTerminated)
	if n := e.startsOf(containerName(ex.ID, "alpha0")); n != 1 {
		t.Errorf("started %d times", n)
	}
	e.platformEmpty(handle)
}

// TestOrphanRemoved: a container of this store that the store does not
// know is removed; another store's, and one without a store label (from a
// Zoe before store labels), are left alone.
func TestOrphanRemoved(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	ctx := t.Context()
	own, err := e.store.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := func(name, store string) {
		t.Helper()
		labels := map[string]string{engine.LabelExecution: "999"}
		if store != "" {
			labels[engine.LabelStore] = store
		}
		if _, err := e.ctl.Start(ctx, backend.ServiceSpec{Name: name, Image: "x", User: "1000:1000", Environment: forever(),
			Labels: labels}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	removed := func(name string) {
		t.Helper()
		waitFor(t, name+" removed", func() (bool, string) {
			list, err := e.ctl.List(ctx, backend.ListOptions{})
			names = nil
			for _, st := range list {
				names = append(names, st.Name)
			}
			slices.Sort(names)
			return err == nil && !slices.Contains(names, name), fmt.Sprint(names, err)
		})
	}
	start("stray", own)
	start("theirs", "fedcba9876543210fedcba9876543210")
	start("old", "")
	removed("stray")
	// Passes follow one another: the pass that removes a second orphan
	// of this store comes after one that saw the other two.
	start("stray2", own)
	removed("stray2")
	if !slices.Equal(names, []string{"old", "theirs"}) {
		t.Errorf("left on the platform: %v, want old and theirs", names)
	}
}

func TestFailures(t *testing.T) { eachStore(t, testFailures) }

func testFailures(t *testing.T, store storeKind) {
	e := newEnv(t, options{store: store})
	tests := []struct {
		name    string
		willEnd bool
		env     map[string]string
		status  state.Status
		message string // in the error message or the ending reason
		code    *int
	}{
		{"start fails", false, forever("ZOE_SIM_FAIL", "start"), state.StatusError, "essential service main0 could not start", nil},
		{"oom in a batch", true, map[string]string{"ZOE_SIM_OOM": "200ms", "ZOE_SIM_RUN": "1h"}, state.StatusError,
			"essential service main0 was OOM-killed (exit code 137)", new(137)},
		{"vanished interactive", false, map[string]string{"ZOE_SIM_VANISH": "200ms", "ZOE_SIM_RUN": "1h"},
			state.StatusTerminated, "essential service main0 vanished", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := e.submit(zappJSON(t, tt.willEnd, svc{name: "main", ess: 1, total: 1, monitor: true, env: tt.env}))
			end := e.waitStatus(ex.ID, state.StatusTerminated, state.StatusError)
			_, evs := e.transitions(ex.ID)
			var reason string
			for _, ev := range evs {
				if ev.To == string(state.StatusCleaningUp) {
					reason = ev.Reason
				}
			}
			if end.Status != tt.status || !strings.Contains(reason, tt.message) ||
				(tt.status == state.StatusError) != (end.ErrorMessage != "") ||
				(tt.code != nil) != (end.ExitCode != nil) || (tt.code != nil && *tt.code != *end.ExitCode) {
				t.Errorf("ended %s, reason %q, message %q, exit code %v", end.Status, reason, end.ErrorMessage, end.ExitCode)
			}
			e.platformEmpty()
		})
	}
}

func TestElasticVanishedIsReplaced(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	ex := e.submit(zappJSON(t, false,
		svc{name: "master", ess: 1, total: 1, monitor: true, env: forever()},
		svc{name: "worker", ess: 1, total: 2, env: forever()}))
	e.waitStatus(ex.ID, state.StatusRunning)
	var before state.Service
	waitFor(t, "worker1 running", func() (bool, string) {
		before = e.services(ex.ID)["worker1"]
		return before.Status == state.ServiceRunning, string(before.Status)
	})
	if err := e.ctl.Vanish(t.Context(), containerName(ex.ID, "worker1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "worker1 replaced", func() (bool, string) {
		s := e.services(ex.ID)["worker1"]
		return s.Status == state.ServiceRunning && s.RestartCount == 1 && s.Handle.ID != before.Handle.ID,
			fmt.Sprintf("%s %d", s.Status, s.RestartCount)
	})
	if cur, _ := e.store.GetExecution(t.Context(), ex.ID); cur.Status != state.StatusRunning {
		t.Errorf("execution is %s", cur.Status)
	}
}
