package api

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk/auth"
)

// changingStore makes a state change just before the execution's events
// are read for the at-th time: a change falling between the reads of
// executionDetails.
type changingStore struct {
	state.Store
	at     int
	calls  *int
	change func()
}

func (s changingStore) Events(ctx context.Context, id int64) ([]state.Event, error) {
	if *s.calls++; *s.calls == s.at {
		s.change()
	}
	return s.Store.Events(ctx, id)
}

// TestDetailsNotOlderThanEvents: an execution's details never list an
// event whose state they do not show. The web page shows the states, then
// follows the event stream after the last event listed: a state older
// than that event was never corrected (an execution page stuck at
// "cleaning_up" once the execution had ended).
func TestDetailsNotOlderThanEvents(t *testing.T) {
	for _, at := range []int{1, 2} {
		t.Run(fmt.Sprintf("changed before events read %d", at), func(t *testing.T) { checkDetails(t, at) })
	}
}

func checkDetails(t *testing.T, at int) {
	ctx := t.Context()
	st, err := state.OpenSQLite(ctx, filepath.Join(t.TempDir(), "zoe.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.RecordLogin(ctx, auth.Identity{Username: "alice", Role: auth.RoleUser}); err != nil {
		t.Fatal(err)
	}
	ex, err := st.CreateExecution(ctx, state.NewExecution{Owner: "alice", Name: "x", Cores: 1, Memory: 1 << 20,
		Services: []state.NewService{{Name: "web0", Group: "web", Essential: true}}})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	store := changingStore{Store: st, at: at, calls: &calls, change: func() {
		if _, err := st.Transition(ctx, ex.ID, []state.Status{ex.Status}, state.StatusTerminated, state.ExecutionChange{Reason: "ended meanwhile", Ended: true}); err != nil {
			t.Errorf("Transition: %v", err)
		}
	}}
	s := New(nil, Config{Store: store})
	t.Cleanup(s.Shutdown)
	out, err := s.executionDetails(ctx, ex)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Events) == 0 {
		t.Fatal("no events")
	}
	last := out.Events[len(out.Events)-1]
	if out.Status != last.To {
		t.Errorf("details show %q with the last event to %q: they are not one moment's", out.Status, last.To)
	}
	if out.Status != string(state.StatusTerminated) {
		t.Errorf("details show %q, read after the change to terminated", out.Status)
	}
}
