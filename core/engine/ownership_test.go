package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/engine"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/backend"
)

// secondStore is another daemon of e's deployment on e's back-end, with a
// SQLite store of its own: two copies of one configuration.
func (e *env) secondStore(t *testing.T) (*engine.Engine, state.Store, engine.Config) {
	t.Helper()
	ctx := t.Context()
	st, err := state.Open(ctx, stateConfig(t, sqliteStore, t.TempDir()), deployment, testutil.Logger(t).Named("state-b"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.RecordLogin(ctx, auth.Identity{Username: "alice", Role: auth.RoleUser}); err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	cfg.Store, cfg.Logs = st, nil
	eng, err := engine.New(testutil.Logger(t).Named("engine-b"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return eng, st, cfg
}

// TestTwoStoresOneDeployment: daemon A runs an execution; daemon B, with a
// store of its own and the same deployment name, is refused by
// CheckOwnership, which names A's store and service. Run all the same, B
// neither removes nor adopts A's service: its own execution 1, whose names
// are A's, fails with the conflict. TakeOver removes A's services.
func TestTwoStoresOneDeployment(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	ctx := t.Context()
	storeA, err := e.store.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exA := e.submit(zappJSON(t, false, svc{name: "main", ess: 1, total: 1, monitor: true, env: forever()}))
	e.waitStatus(exA.ID, state.StatusRunning)
	svcsA, err := e.store.Services(ctx, exA.ID)
	if err != nil || len(svcsA) != 1 {
		t.Fatalf("A's services: %+v %v", svcsA, err)
	}
	handleA := svcsA[0].Handle
	st, err := e.ctl.Inspect(ctx, backend.Handle{ID: handleA.ID, Version: handleA.Version, State: handleA.Data})
	if err != nil || st.Labels[engine.LabelStore] != storeA {
		t.Fatalf("A's service: labels %v, %v; want %s=%s", st.Labels, err, engine.LabelStore, storeA)
	}

	engB, storeB, _ := e.secondStore(t)
	idB, err := storeB.Identity(ctx)
	if err != nil || idB == storeA {
		t.Fatalf("B's store identity %q (%v), A's %q", idB, err, storeA)
	}

	t.Run("the check refuses", func(t *testing.T) {
		err := engB.CheckOwnership(ctx)
		var own *engine.OwnershipError
		if !errors.As(err, &own) || !errors.Is(err, sdk.ErrConflict) {
			t.Fatalf("CheckOwnership = %v, want an OwnershipError", err)
		}
		if len(own.Stores) != 1 || own.Stores[0].ID != storeA || len(own.Stores[0].Services) != 1 {
			t.Fatalf("conflict %+v, want A's store with one service", own.Stores)
		}
		for _, want := range []string{fmt.Sprintf("runs deployment %q", deployment), storeA, "1 services",
			st.Name, "another deployment_name", "-take-over"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q lacks %q", err, want)
			}
		}
		if err := e.eng.CheckOwnership(ctx); err != nil {
			t.Errorf("A's own check: %v", err)
		}
	})

	t.Run("run all the same, B leaves A's services alone", func(t *testing.T) {
		bctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := engB.Run(bctx); err != nil {
				t.Errorf("B: %v", err)
			}
		}()
		defer func() { cancel(); <-done }()
		exB, err := engB.Submit(ctx, "alice", "clash", zappJSON(t, false, svc{name: "main", ess: 1, total: 1, monitor: true, env: forever()}))
		if err != nil {
			t.Fatal(err)
		}
		if exB.ID != exA.ID {
			t.Fatalf("B's execution is %d, want %d (the clash of names this test is about)", exB.ID, exA.ID)
		}
		var end state.Execution
		waitFor(t, "B's execution to fail", func() (bool, string) {
			end, err = storeB.GetExecution(ctx, exB.ID)
			return err == nil && end.Status == state.StatusError, fmt.Sprint(end.Status, err)
		})
		if !strings.Contains(end.ErrorMessage, "another Zoe store ("+storeA+")") {
			t.Errorf("B's error %q does not name A's store", end.ErrorMessage)
		}
		// A's service still runs, started once, under A's handle.
		if got := e.startsOf(st.Name); got != 1 {
			t.Errorf("A's service started %d times", got)
		}
		now, err := e.ctl.Inspect(ctx, st.Handle)
		if err != nil || now.State != backend.ServiceRunning {
			t.Errorf("A's service after B: %s %v", now.State, err)
		}
		if ex, err := e.store.GetExecution(ctx, exA.ID); err != nil || ex.Status != state.StatusRunning {
			t.Errorf("A's execution after B: %s %v", ex.Status, err)
		}
	})

	t.Run("take over", func(t *testing.T) {
		e.stop() // A is gone for good; its services run on
		n, err := engB.TakeOver(ctx)
		if err != nil || n != 1 {
			t.Fatalf("TakeOver = %d, %v; want 1 removed", n, err)
		}
		if _, err := e.ctl.Inspect(ctx, st.Handle); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("A's service after the take-over: %v, want not found", err)
		}
		if err := engB.CheckOwnership(ctx); err != nil {
			t.Errorf("the check after the take-over: %v", err)
		}
	})
}

// TestBackendUnreachable: while the back-end cannot be listed, the engine
// says so once, keeps the running execution as it is and gives the queued
// one the reason it waits; once the back-end answers it says so, and the
// queued execution starts.
func TestBackendUnreachable(t *testing.T) {
	t.Parallel()
	e, f, _ := newFaultyEnv(t)
	e.stop()
	out := &testutil.SyncBuffer{}
	var err error
	if e.eng, err = engine.New(hclog.New(&hclog.LoggerOptions{Output: out, Level: hclog.Info}), e.cfg); err != nil {
		t.Fatal(err)
	}
	e.run()
	ctx := t.Context()
	running := e.submit(zappJSON(t, false, svc{name: "main", ess: 1, total: 1, monitor: true, env: forever()}))
	e.waitStatus(running.ID, state.StatusRunning)

	f.set("List", "", fmt.Errorf("docker: connection refused: %w", sdk.ErrUnavailable))
	queued := e.submit(zappJSON(t, false, svc{name: "main", ess: 1, total: 1, monitor: true, env: forever()}))
	const wantReason = "the back-end cannot be reached: docker: connection refused: unavailable"
	waitFor(t, "the queued execution's reason", func() (bool, string) {
		r := e.eng.WaitingReason(queued.ID)
		return r == wantReason, r
	})
	// Several passes fail to list; said once.
	n := len(f.times("List"))
	waitFor(t, "more passes", func() (bool, string) {
		k := len(f.times("List"))
		return k >= n+3, fmt.Sprint(k)
	})
	if c := strings.Count(out.String(), "the back-end cannot be reached; its executions are kept"); c != 1 {
		t.Errorf("said %d times that the back-end cannot be reached, want once:\n%s", c, out)
	}
	// The count is of the pass that first failed to list, which may have
	// read the execution just before it was recorded running.
	if !strings.Contains(out.String(), "running=1") && !strings.Contains(out.String(), "starting=1") {
		t.Errorf("the log does not count the executions kept:\n%s", out)
	}
	for id, want := range map[int64]state.Status{running.ID: state.StatusRunning, queued.ID: state.StatusQueued} {
		if ex, err := e.store.GetExecution(ctx, id); err != nil || ex.Status != want {
			t.Errorf("execution %d is %s (%v) while the back-end is unreachable, want %s", id, ex.Status, err, want)
		}
	}

	f.set("List", "", nil)
	e.waitStatus(queued.ID, state.StatusRunning)
	if !strings.Contains(out.String(), "the back-end answers again; checking its executions") {
		t.Errorf("not said that the back-end answers again:\n%s", out)
	}
	if r := e.eng.WaitingReason(queued.ID); r != "" {
		t.Errorf("waiting reason %q once running", r)
	}
	if ex, err := e.store.GetExecution(ctx, running.ID); err != nil || ex.Status != state.StatusRunning {
		t.Errorf("the running execution became %s (%v)", ex.Status, err)
	}
}
