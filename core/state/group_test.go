package state_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/state/statetest"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

func TestBatchSQLite(t *testing.T) {
	t.Parallel()
	testBatch(t, sqliteHarness())
}

func TestBatchPostgres(t *testing.T) {
	t.Parallel()
	testBatch(t, postgresHarness())
}

// testBatch: writes that share a transaction and its commit (group commit)
// keep their own outcomes, and their events are recorded in their order,
// except those of an execution a later write deleted.
func testBatch(t *testing.T, h statetest.Harness) {
	ctx := t.Context()
	st, err := h.Open(ctx, h.New(t), testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	if _, err := st.RecordLogin(ctx, auth.Identity{Username: "alice", Role: auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	newExec := func(name string, services int) state.Execution {
		ne := state.NewExecution{Owner: "alice", Name: name}
		for i := range services {
			ne.Services = append(ne.Services, state.NewService{Name: fmt.Sprint("s", i), Group: "s"})
		}
		e, err := st.CreateExecution(ctx, ne)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e1, e2 := newExec("one", 2), newExec("two", 0)
	if _, err := st.Transition(ctx, e2.ID, []state.Status{state.StatusSubmitted}, state.StatusTerminated,
		state.ExecutionChange{Ended: true}); err != nil {
		t.Fatal(err)
	}
	svs, err := st.Services(ctx, e1.ID)
	if err != nil {
		t.Fatal(err)
	}

	writes := []struct {
		name string
		do   func() error
		cat  error
	}{
		{"queue one", func() error {
			_, err := st.Transition(ctx, e1.ID, []state.Status{state.StatusSubmitted}, state.StatusQueued,
				state.ExecutionChange{Reason: "queued"})
			return err
		}, nil},
		{"a lost compare-and-set", func() error {
			_, err := st.TransitionService(ctx, svs[1].ID, []state.ServiceStatus{state.ServiceRunning},
				state.ServiceStopped, state.ServiceChange{Reason: "never"})
			return err
		}, sdk.ErrConflict},
		{"an event of two", func() error {
			_, err := st.Transition(ctx, e2.ID, []state.Status{state.StatusTerminated}, state.StatusTerminated,
				state.ExecutionChange{Reason: "again"})
			return err
		}, nil},
		{"delete two", func() error { return st.DeleteExecution(ctx, e2.ID) }, nil},
		{"place s0", func() error {
			_, err := st.PlaceServices(ctx, e1.ID, []state.Placement{{ServiceID: svs[0].ID, Node: "n1", Reason: "placed"}})
			return err
		}, nil},
	}
	queued, release := state.HoldWrites(st)
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Go(func() { errs[i] = w.do() })
		testutil.WaitFor(t, 10*time.Second, "queued writes", func() (bool, string) {
			return queued() == i+1, fmt.Sprintf("%d queued", queued())
		})
	}
	release()
	wg.Wait()
	for i, w := range writes {
		if (w.cat == nil) != (errs[i] == nil) || (w.cat != nil && !errors.Is(errs[i], w.cat)) {
			t.Errorf("%s: %v, want %v", w.name, errs[i], w.cat)
		}
	}

	if _, err := st.GetExecution(ctx, e2.ID); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("execution two: %v, want it deleted", err)
	}
	all, err := st.EventsAfter(ctx, 0, state.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for i, ev := range all {
		steps = append(steps, fmt.Sprintf("%d %s:%s>%s:%s", ev.ExecutionID, ev.ServiceName, ev.From, ev.To, ev.Reason))
		if i > 0 && ev.ID <= all[i-1].ID {
			t.Errorf("event ids %d then %d", all[i-1].ID, ev.ID)
		}
	}
	want := []string{
		fmt.Sprintf("%d :>submitted:submitted by alice", e1.ID),
		fmt.Sprintf("%d :submitted>queued:queued", e1.ID),
		fmt.Sprintf("%d s0:created>starting:placed", e1.ID),
	}
	if !slices.Equal(steps, want) {
		t.Errorf("events\n%q\nwant\n%q", steps, want)
	}
}
