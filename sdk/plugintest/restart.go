package plugintest

import (
	"errors"
	"testing"
	"time"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// launchProcess starts the suite's plugin binary as a process of its own,
// with deployment instead of the configuration's when not empty.
func launchProcess(t *testing.T, s BackendSuite, deployment string) (backend.Backend, *Process) {
	t.Helper()
	if s.Process == nil {
		t.Fatal("BackendSuite: set Process, which gives the plugin's binary and configuration: the suite runs the " +
			"plugin as its own process, as the core does, and kills it")
	}
	binary, cfg := s.Process(t)
	if deployment != "" {
		cfg.Deployment = deployment
	}
	return LaunchBackend(t, binary, cfg)
}

// checkRestart starts a service through one plugin process, kills that
// process with SIGKILL, and checks that a new process takes the service
// back running: Recover, List and Logs see it, and it can be followed,
// stopped and removed. A back-end whose services die with its process, or
// that keeps what it needs to find them in its memory, fails.
func checkRestart(t *testing.T, s BackendSuite) {
	first, proc := launchProcess(t, s, "")
	ctx := ctxFor(t, s.Timeout)
	net, spec := prepare(t, ctx, first, s.LongRunning())
	st, err := first.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	var before []backend.LogEntry
	if s.NoLogs == "" {
		before = waitLines(t, ctx, first, st.Handle, 2)
	}

	proc.Kill(t)
	second, _ := launchProcess(t, s, "")
	removeLater(t, second, st.Handle)
	removeNetworkLater(t, second, net)
	got, err := second.Recover(ctx, st.Handle)
	if err != nil {
		t.Fatalf("Recover in a new plugin process, after the first was killed: %v", err)
	}
	checkStatus(t, "Recover in a new process", got, spec, backend.ServiceRunning)
	if got.Handle.ID != st.Handle.ID {
		t.Errorf("Recover changed the handle's id from %q to %q", st.Handle.ID, got.Handle.ID)
	}
	if _, err := second.Recover(ctx, st.Handle); err != nil {
		t.Errorf("second Recover: %v (must be idempotent)", err)
	}
	if l := listed(t, ctx, second, backend.ListOptions{Labels: map[string]string{"zoe.conformance.name": spec.Name}}, spec.Name); l == nil {
		t.Errorf("List in the new process does not hold %q", spec.Name)
	} else {
		checkStatus(t, "List in a new process", *l, spec, backend.ServiceRunning)
	}
	if s.NoLogs == "" {
		if after := readLogs(t, ctx, second, st.Handle, backend.LogOptions{}); len(after) < len(before) || !sameLines(after[:len(before)], before) {
			t.Errorf("Logs in the new process:%s\nwant them to begin with what the first process gave:%s", formatLines(after), formatLines(before))
		}
	}
	events, err := second.Events(ctx)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if s.NoLogs == "" {
		checkFollow(t, ctx, second, st.Handle, readLogs(t, ctx, second, st.Handle, backend.LogOptions{}), s.Timeout)
	} else if err := second.Stop(ctx, st.Handle, 5*time.Second); err != nil {
		t.Fatalf("Stop by the new process: %v", err)
	}
	waitEvent(t, ctx, events, spec.Name, backend.EventExited)
	if err := second.Remove(ctx, st.Handle, false); err != nil {
		t.Errorf("Remove by the new process: %v", err)
	}
	if err := second.RemoveNetwork(ctx, net); err != nil {
		t.Errorf("RemoveNetwork by the new process: %v", err)
	}
}

// checkDeployments runs two plugin processes of two deployments on one
// platform: each lists only its own services, its events are its own, and
// the other's handles name nothing to it. The core removes every service
// it lists that its store does not know, so a back-end that lists another
// deployment's would destroy it.
func checkDeployments(t *testing.T, s BackendSuite) {
	_, cfg := s.Process(t)
	other := cfg.Deployment + "-other-" + randomSuffix()
	a, _ := launchProcess(t, s, "")
	b, _ := launchProcess(t, s, other)
	ctx := ctxFor(t, s.Timeout)
	bEvents, err := b.Events(ctx)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	_, specA := prepare(t, ctx, a, s.LongRunning())
	stA := start(t, ctx, a, specA)
	_, specB := prepare(t, ctx, b, s.LongRunning())
	start(t, ctx, b, specB)
	waitEvent(t, ctx, bEvents, specB.Name, backend.EventStarted)
	for _, c := range []struct {
		p           backend.Backend
		mine, other string
	}{{a, specA.Name, specB.Name}, {b, specB.Name, specA.Name}} {
		for _, opts := range []backend.ListOptions{{}, {Labels: map[string]string{"zoe.conformance": "true"}}} {
			if listed(t, ctx, c.p, opts, c.mine) == nil {
				t.Errorf("List(%v) does not hold its own deployment's %q", opts.Labels, c.mine)
			}
			if x := listed(t, ctx, c.p, opts, c.other); x != nil {
				t.Errorf("List(%v) holds %+v of another deployment: the core would remove it as an orphan", opts.Labels, x)
			}
		}
	}
	// Calls that change nothing when the back-end gets them wrong: no
	// Stop, and Remove without force (of a running service).
	if _, err := b.Inspect(ctx, stA.Handle); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Inspect of another deployment's service: %v, want sdk.ErrNotFound", err)
	}
	if _, err := b.Recover(ctx, stA.Handle); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Recover of another deployment's service: %v, want sdk.ErrNotFound", err)
	}
	if _, err := b.Logs(ctx, stA.Handle, backend.LogOptions{}); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Logs of another deployment's service: %v, want sdk.ErrNotFound", err)
	}
	if err := b.Remove(ctx, stA.Handle, false); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Remove of another deployment's service: %v, want sdk.ErrNotFound", err)
	}
	if got, err := a.Inspect(ctx, stA.Handle); err != nil || got.State != backend.ServiceRunning {
		t.Errorf("the service after the other deployment's calls: %+v, %v; want it running", got, err)
	}
	// What arrived by now; events are hints, so there is no waiting for
	// one that should not come.
	for {
		select {
		case e, ok := <-bEvents:
			if !ok {
				return
			}
			if e.ServiceName == specA.Name {
				t.Errorf("an event of another deployment's service: %+v", e)
			}
		default:
			return
		}
	}
}
