package swarm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// TestManagerRestart: the manager's engine goes away (SIGTERM, which stops
// its containers) and comes back with its data root. While it is away the
// plugin's calls fail at once with sdk.ErrUnavailable, which the core
// retries; once it is back the same plugin, not configured again, answers,
// lists the deployment's services, and the event stream opened before
// reports the end of the task the engine's shutdown stopped. Not parallel:
// it takes the engine from the other tests.
func TestManagerRestart(t *testing.T) {
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	events := subscribe(t, ctx, p)
	net := testutil.CreateNetwork(t, ctx, p)
	st := start(t, ctx, p, net, backend.ServiceSpec{Image: testimages.HTTPService})
	testutil.WaitEvent(t, ctx, events, st.Name, backend.EventStarted)

	down := true
	// The other tests need the engine, whatever happens here.
	t.Cleanup(func() {
		if down {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if err := engine.StartDaemon(ctx); err != nil {
				t.Errorf("start the engine again: %v", err)
			}
		}
	})
	if err := engine.StopDaemon(); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"Nodes", func(ctx context.Context) error { _, err := p.Nodes(ctx); return err }},
		{"List", func(ctx context.Context) error { _, err := p.List(ctx, backend.ListOptions{}); return err }},
		{"Inspect", func(ctx context.Context) error { _, err := p.Inspect(ctx, st.Handle); return err }},
		{"Logs", func(ctx context.Context) error { _, err := p.Logs(ctx, st.Handle, backend.LogOptions{}); return err }},
		{"Stop", func(ctx context.Context) error { return p.Stop(ctx, st.Handle, time.Second) }},
		{"Start", func(ctx context.Context) error {
			_, err := p.Start(ctx, backend.ServiceSpec{Name: "away-" + testutil.RandomSuffix(), Image: testimages.HTTPService, User: testutil.ServiceUser, Network: net})
			return err
		}},
		{"CreateNetwork", func(ctx context.Context) error {
			_, err := p.CreateNetwork(ctx, backend.NetworkSpec{Name: "zoe-test-net-" + testutil.RandomSuffix()})
			return err
		}},
		{"Events", func(ctx context.Context) error { _, err := p.Events(ctx); return err }},
	}
	for _, c := range calls {
		// Bounded, so that a call that hangs fails the test (with
		// sdk.ErrDeadlineExceeded) instead of holding it.
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := c.call(cctx)
		cancel()
		if !errors.Is(err, sdk.ErrUnavailable) {
			t.Errorf("%s while the manager is away: %v; want sdk.ErrUnavailable at once", c.name, err)
		}
	}

	if err := engine.StartDaemon(ctx); err != nil {
		t.Fatal(err)
	}
	down = false
	testutil.WaitUntil(t, ctx, "List to answer with the service", func() (bool, string) {
		list, err := p.List(ctx, backend.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, s := range list {
			if s.Name == st.Name {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", list)
	})
	// The engine stopped the container: it exited 0 on SIGTERM; or the
	// engine removed it on its way down (it may: the swarm's task then
	// failed for "No such container"), and how it ended is unknown.
	e := testutil.WaitEvent(t, ctx, events, st.Name, backend.EventExited)
	tasks, err := engineClient(t).TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", st.Handle.ID)})
	if err != nil || len(tasks.Items) != 1 {
		t.Fatalf("tasks %+v, %v; want the one", tasks.Items, err)
	}
	task := tasks.Items[0]
	want := 0
	if strings.Contains(task.Status.Err, "No such container") {
		want = -1
	}
	t.Logf("the swarm's task: %s, %q; the exit reported: %d, %q", task.Status.State, task.Status.Err, e.ExitCode, e.Message)
	if e.ExitCode != want {
		t.Errorf("exit code %d, want %d", e.ExitCode, want)
	}
	if got, err := p.Inspect(ctx, st.Handle); err != nil || got.State != backend.ServiceExited || got.ExitCode != e.ExitCode {
		t.Errorf("Inspect = %+v, %v; want exited with %d", got, err, e.ExitCode)
	}
	// The same plugin starts and stops services again.
	again := start(t, ctx, p, net, backend.ServiceSpec{Image: testimages.HTTPService})
	testutil.WaitEvent(t, ctx, events, again.Name, backend.EventStarted)
	if err := p.Stop(ctx, again.Handle, 5*time.Second); err != nil {
		t.Errorf("Stop after the restart: %v", err)
	}
	testutil.WaitEvent(t, ctx, events, again.Name, backend.EventExited)
}
