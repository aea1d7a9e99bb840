package sim_test

// Out-of-process tests: the real plugin binary, started, killed and started
// again by the core's real plugin host.

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/pluginhost"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "zoe-backend-sim-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := testutil.Build(dir, map[string]string{"zoe-plugin-backend-sim": "plugins/backend-sim"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// host starts the plugin binary on the state file under the real host.
func host(t *testing.T, path string) *pluginhost.Plugin {
	t.Helper()
	bin, err := pluginhost.Find(binDir, sdk.KindBackend, "sim")
	if err != nil {
		t.Fatal(err)
	}
	cfg := block(t, path, nil)
	p, err := pluginhost.Start(context.Background(), testutil.Logger(t), pluginhost.Spec{
		Kind: sdk.KindBackend, Name: "sim", Path: bin, StartTimeout: 10 * time.Second, Dir: t.TempDir(),
		Setup: func(ctx context.Context, p sdk.Plugin) error {
			return p.Configure(ctx, sdk.Config{JSON: cfg, Deployment: "test", APIVersion: backend.APIVersion})
		},
	}, pluginhost.Timing{PingInterval: 200 * time.Millisecond, PingTimeout: time.Second,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond, FailedAfter: 3})
	if err != nil {
		t.Fatalf("start the plugin: %v", err)
	}
	t.Cleanup(p.Stop)
	return p
}

// current returns the plugin process serving now.
func current(t *testing.T, p *pluginhost.Plugin) backend.Backend {
	t.Helper()
	impl, err := p.Impl()
	if err != nil {
		t.Fatal(err)
	}
	b, ok := impl.(backend.Backend)
	if !ok {
		t.Fatalf("the plugin is a %T", impl)
	}
	return b
}

// A SIGKILLed plugin is restarted by the host, and the new process recovers
// the services of the old one from their handles; an instance in another
// process (this one) shares the platform, events included.
func TestKilledPluginProcessRecoversItsServices(t *testing.T) {
	path := stateFile(t)
	h := host(t, path)
	st := start(t, current(t, h), spec("svc", "RUN=forever"))
	pid := h.Status().PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the plugin to be restarted", func() bool {
		s := h.Status()
		return s.State == pluginhost.StateReady && s.Restarts >= 1 && s.PID != pid
	})
	b := current(t, h)
	got, err := b.Recover(ctxFor(t), st.Handle)
	if err != nil || got.State != backend.ServiceRunning || got.Node != st.Node || got.IP != st.IP || !got.StartedAt.Equal(st.StartedAt) {
		t.Fatalf("Recover by the restarted plugin = %+v, %v; want %+v", got, err, st)
	}
	events := subscribe(t, b)
	local := open(t, path, nil)
	if list, err := local.List(ctxFor(t), backend.ListOptions{}); err != nil || len(list) != 1 || list[0].Name != "svc" {
		t.Errorf("List in this process = %+v, %v", list, err)
	}
	if err := local.Kill(ctxFor(t), "svc"); err != nil {
		t.Fatal(err)
	}
	if e := next(t, events, "svc"); e.Kind != backend.EventExited || e.ExitCode != 137 {
		t.Errorf("the plugin process reported %+v, want exited with 137", e)
	}
	if got := inspect(t, b, st.Handle); got.State != backend.ServiceExited || got.ExitCode != 137 {
		t.Errorf("Inspect by the plugin process = %+v", got)
	}
}

// Time runs on while no plugin process is up: a service whose end passed
// meanwhile is reported exited, with its code and time, by the next one.
func TestServiceEndsWhileNoPluginRuns(t *testing.T) {
	path := stateFile(t)
	h := host(t, path)
	st := start(t, current(t, h), spec("short", "RUN=300ms", "EXIT=5"))
	h.Stop()
	end := st.StartedAt.Add(300 * time.Millisecond)
	waitFor(t, "the service's end to pass", func() bool { return time.Now().After(end) })

	b := current(t, host(t, path))
	e := next(t, subscribe(t, b), "short")
	if e.Kind != backend.EventExited || e.ExitCode != 5 || !e.Time.Equal(end) {
		t.Errorf("first event of the new process %+v, want exited with 5 at %s", e, end)
	}
	if got := inspect(t, b, st.Handle); got.State != backend.ServiceExited || got.ExitCode != 5 {
		t.Errorf("Inspect = %+v, want exited with 5", got)
	}
}
