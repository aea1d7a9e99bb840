package statetest

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// testEventsAfter: the event feed returns the events after an id in id
// order, filtered and limited, with their owner; a client resuming from the
// last id it saw gets every later event once, even after the newest events
// were deleted.
func testEventsAfter(t *testing.T, h Harness) {
	st, loc := open(t, h)
	ctx := t.Context()
	if id := must(st.LastEventID(ctx))(t); id != 0 {
		t.Fatalf("last event id %d of an empty store, want 0", id)
	}
	if evs := must(st.EventsAfter(ctx, 0, state.EventFilter{}))(t); len(evs) != 0 {
		t.Fatalf("events of an empty store: %+v", evs)
	}
	login(t, st, "alice", auth.RoleAdmin)
	login(t, st, "bob", auth.RoleAdmin)
	a1 := submit(t, st, "alice", "a1", 2)
	b1 := submit(t, st, "bob", "b1", 1)
	a2 := submit(t, st, "alice", "a2", 0)
	// Interleaved: the feed is in id order, not by execution.
	queue := func(e state.Execution) {
		must(st.Transition(ctx, e.ID, []state.Status{state.StatusSubmitted}, state.StatusQueued,
			state.ExecutionChange{Reason: "queued " + e.Name}))(t)
	}
	start := func(e state.Execution, i int) {
		sv := must(st.Services(ctx, e.ID))(t)[i]
		must(st.TransitionService(ctx, sv.ID, []state.ServiceStatus{state.ServiceCreated}, state.ServiceStarting,
			state.ServiceChange{Reason: "starting " + sv.Name}))(t)
	}
	queue(a1)
	start(b1, 0)
	queue(a2)
	start(a1, 1)
	queue(b1)
	start(a1, 0)

	// The model: the executions' timelines merged by id.
	owners := map[int64]string{a1.ID: "alice", b1.ID: "bob", a2.ID: "alice"}
	var all []state.Event
	for _, e := range []state.Execution{a1, b1, a2} {
		evs := must(st.Events(ctx, e.ID))(t)
		for _, ev := range evs {
			if ev.Owner != owners[e.ID] {
				t.Fatalf("Events: owner %q of %+v, want %q", ev.Owner, ev, owners[e.ID])
			}
		}
		all = append(all, evs...)
	}
	slices.SortFunc(all, func(a, b state.Event) int { return cmp.Compare(a.ID, b.ID) })
	if len(all) != 9 {
		t.Fatalf("%d events, want 9", len(all))
	}
	if id := must(st.LastEventID(ctx))(t); id != all[len(all)-1].ID {
		t.Fatalf("last event id %d, want %d", id, all[len(all)-1].ID)
	}
	model := func(after int64, f state.EventFilter) []state.Event {
		var out []state.Event
		for _, ev := range all {
			if ev.ID > after && (f.Owner == "" || ev.Owner == f.Owner) &&
				(f.ExecutionID == 0 || ev.ExecutionID == f.ExecutionID) && (f.Through == 0 || ev.ID <= f.Through) {
				out = append(out, ev)
			}
		}
		if f.Limit > 0 && len(out) > f.Limit {
			out = out[:f.Limit]
		}
		return out
	}

	cases := []struct {
		name  string
		after int64
		f     state.EventFilter
	}{
		{"all", 0, state.EventFilter{}},
		{"after the third", all[2].ID, state.EventFilter{}},
		{"after the last", all[len(all)-1].ID, state.EventFilter{}},
		{"negative after", -5, state.EventFilter{}},
		{"owner", 0, state.EventFilter{Owner: "alice"}},
		{"owner after", all[3].ID, state.EventFilter{Owner: "bob"}},
		{"execution", 0, state.EventFilter{ExecutionID: a1.ID}},
		{"owner and execution", 0, state.EventFilter{Owner: "alice", ExecutionID: a2.ID}},
		{"owner of another execution", 0, state.EventFilter{Owner: "bob", ExecutionID: a1.ID}},
		{"unknown owner", 0, state.EventFilter{Owner: "nobody"}},
		{"unknown execution", 0, state.EventFilter{ExecutionID: 1 << 40}},
		{"limit", 0, state.EventFilter{Limit: 3}},
		{"limit after", all[4].ID, state.EventFilter{Limit: 2}},
		{"limit with a filter", all[0].ID, state.EventFilter{Owner: "alice", Limit: 2}},
		{"limit above the maximum", 0, state.EventFilter{Limit: 1 << 30}},
		{"through", all[1].ID, state.EventFilter{Through: all[6].ID}},
		{"through with an owner", 0, state.EventFilter{Owner: "bob", Through: all[5].ID}},
		{"through before after", all[5].ID, state.EventFilter{Through: all[2].ID}},
		{"through with a limit", 0, state.EventFilter{Through: all[7].ID, Limit: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := must(st.EventsAfter(ctx, tc.after, tc.f))(t)
			if want := model(tc.after, tc.f); !equalEvents(got, want) {
				t.Fatalf("EventsAfter(%d, %+v) =\n%+v\nwant\n%+v", tc.after, tc.f, got, want)
			}
		})
	}

	// Resuming after the last id of each batch, batch after batch, gets
	// every event once.
	for _, f := range []state.EventFilter{{Limit: 2}, {Owner: "alice", Limit: 2}, {ExecutionID: b1.ID, Limit: 1}} {
		t.Run(fmt.Sprintf("resume %+v", f), func(t *testing.T) {
			got := readFeed(t, st, 0, f)
			if want := model(0, state.EventFilter{Owner: f.Owner, ExecutionID: f.ExecutionID}); !equalEvents(got, want) {
				t.Fatalf("resumed reads =\n%+v\nwant\n%+v", got, want)
			}
		})
	}

	_, err := st.EventsAfter(ctx, 0, state.EventFilter{Limit: -1})
	wantErr(t, err, sdk.ErrInvalidArgument, "negative limit")

	// Ids are never reused, not even those of the newest events once their
	// execution is deleted, nor after every event is gone and the store
	// reopened: a client that saw them and resumes gets the new events.
	end := func(s state.Store, e state.Execution) {
		must(s.Transition(ctx, e.ID, state.ActiveStatuses(), state.StatusTerminated, state.ExecutionChange{Ended: true}))(t)
	}
	end(st, a2)
	seen := must(st.LastEventID(ctx))(t)
	noErr(t, st.DeleteExecution(ctx, a2.ID))
	if id := must(st.LastEventID(ctx))(t); id >= seen {
		t.Fatalf("last event id %d after deleting the newest events, want below %d", id, seen)
	}
	a3 := submit(t, st, "alice", "a3", 0)
	evs := must(st.EventsAfter(ctx, seen, state.EventFilter{}))(t)
	if len(evs) != 1 || evs[0].ExecutionID != a3.ID || evs[0].Owner != "alice" || evs[0].To != "submitted" {
		t.Fatalf("events after %d: %+v, want the submission of %d", seen, evs, a3.ID)
	}
	for _, e := range []state.Execution{a1, b1, a3} {
		end(st, e)
	}
	seen = must(st.LastEventID(ctx))(t)
	for _, e := range []state.Execution{a1, b1, a3} {
		noErr(t, st.DeleteExecution(ctx, e.ID))
	}
	if id := must(st.LastEventID(ctx))(t); id != 0 {
		t.Fatalf("last event id %d without events, want 0", id)
	}
	st2 := reopen(t, h, loc)
	b2 := submit(t, st2, "bob", "b2", 0)
	evs = must(st2.EventsAfter(ctx, seen, state.EventFilter{}))(t)
	if len(evs) != 1 || evs[0].ExecutionID != b2.ID || evs[0].Owner != "bob" || evs[0].ID <= seen {
		t.Fatalf("events after %d: %+v, want the submission of %d", seen, evs, b2.ID)
	}
	if id := must(st2.LastEventID(ctx))(t); id != evs[0].ID {
		t.Fatalf("last event id %d, want %d", id, evs[0].ID)
	}
}

// readFeed reads the feed from after on, batch after batch, until it is
// empty.
func readFeed(t testing.TB, st state.Store, after int64, f state.EventFilter) []state.Event {
	t.Helper()
	var out []state.Event
	for {
		evs := must(st.EventsAfter(t.Context(), after, f))(t)
		if len(evs) == 0 {
			return out
		}
		if f.Limit > 0 && len(evs) > f.Limit {
			t.Fatalf("%d events with limit %d", len(evs), f.Limit)
		}
		out = append(out, evs...)
		after = evs[len(evs)-1].ID
	}
}

func equalEvents(a, b []state.Event) bool {
	return slices.EqualFunc(a, b, func(x, y state.Event) bool {
		return x.ID == y.ID && x.ExecutionID == y.ExecutionID && x.Owner == y.Owner && x.ServiceName == y.ServiceName &&
			x.Time.Equal(y.Time) && x.From == y.From && x.To == y.To && x.Reason == y.Reason
	})
}

// testEventLimits: a batch is DefaultEventLimit events by default and never
// more than MaxEventLimit.
func testEventLimits(t *testing.T, h Harness) {
	st, loc := open(t, h)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleAdmin)
	e := submit(t, st, "alice", "chatty", 0)
	// Written in one statement, bypassing the store: thousands of
	// transitions would be slow.
	n := int64(state.MaxEventLimit + 100)
	must(h.SQL(ctx, loc, fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
		INSERT INTO events (execution_id, service_name, at, from_status, to_status, reason)
		SELECT %d, '', '2030-01-02T03:04:05.000000Z', 'queued', 'queued', 'tick' FROM n`, n, e.ID)))(t)
	first := must(st.Events(ctx, e.ID))(t)[0].ID
	cases := []struct {
		limit, want int
	}{
		{0, state.DefaultEventLimit},
		{1, 1},
		{state.MaxEventLimit - 1, state.MaxEventLimit - 1},
		{state.MaxEventLimit, state.MaxEventLimit},
		{state.MaxEventLimit + 1, state.MaxEventLimit},
	}
	for _, tc := range cases {
		evs := must(st.EventsAfter(ctx, 0, state.EventFilter{Limit: tc.limit}))(t)
		if len(evs) != tc.want || evs[0].ID != first {
			t.Fatalf("limit %d: %d events from %d, want %d from %d", tc.limit, len(evs), evs[0].ID, tc.want, first)
		}
		if !slices.IsSortedFunc(evs, func(a, b state.Event) int { return cmp.Compare(a.ID, b.ID) }) {
			t.Fatalf("limit %d: not in id order", tc.limit)
		}
	}
	if got := len(readFeed(t, st, 0, state.EventFilter{ExecutionID: e.ID})); int64(got) != n+1 {
		t.Fatalf("read %d events in batches, want %d", got, n+1)
	}
}

// testEventFeedConcurrent: a reader following the feed while writers on
// two stores (two daemons) change executions and their services at once
// sees every event exactly once. Ids must become visible in order: were id
// n+1 to commit before n, the reader would resume after n+1 and miss n.
func testEventFeedConcurrent(t *testing.T, h Harness) {
	st, loc := open(t, h)
	other := reopen(t, h, loc)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleAdmin)

	done := make(chan struct{})
	var seen []state.Event
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		var after int64
		for {
			// Checked before the read: once the writers are done, a read
			// returning nothing has seen everything.
			var finished bool
			select {
			case <-done:
				finished = true
			default:
			}
			evs, err := st.EventsAfter(ctx, after, state.EventFilter{Limit: 7})
			if err != nil {
				t.Errorf("reader: %v", err)
				return
			}
			if len(evs) == 0 && finished {
				return
			}
			seen = append(seen, evs...)
			if len(evs) > 0 {
				after = evs[len(evs)-1].ID
			}
		}
	}()

	const writers, rounds, services = 8, 4, 3
	var wg sync.WaitGroup
	for w := range writers {
		s := []state.Store{st, other}[w%2]
		wg.Go(func() {
			for r := range rounds {
				e, err := s.CreateExecution(ctx, newExecution("alice", fmt.Sprintf("w%d-%d", w, r), services))
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				svs, err := s.Services(ctx, e.ID)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				// The execution and its services change at the same time,
				// as when the engine reacts to the back-end's events.
				var inner sync.WaitGroup
				inner.Go(func() {
					from := state.StatusSubmitted
					for _, to := range []state.Status{state.StatusQueued, state.StatusStarting, state.StatusRunning} {
						if _, err := s.Transition(ctx, e.ID, []state.Status{from}, to, state.ExecutionChange{}); err != nil {
							t.Errorf("writer %d: %v", w, err)
							return
						}
						from = to
					}
				})
				for _, sv := range svs {
					inner.Go(func() {
						from := state.ServiceCreated
						for _, to := range []state.ServiceStatus{state.ServiceStarting, state.ServiceRunning} {
							if _, err := s.TransitionService(ctx, sv.ID, []state.ServiceStatus{from}, to,
								state.ServiceChange{}); err != nil {
								t.Errorf("writer %d: %v", w, err)
								return
							}
							from = to
						}
					})
				}
				inner.Wait()
			}
		})
	}
	wg.Wait()
	close(done)
	<-readerDone
	if t.Failed() {
		return
	}

	all := must(st.EventsAfter(ctx, 0, state.EventFilter{Limit: state.MaxEventLimit}))(t)
	if want := writers * rounds * (1 + 3 + 2*services); len(all) != want {
		t.Fatalf("%d events, want %d", len(all), want)
	}
	ids := func(evs []state.Event) []int64 {
		out := make([]int64, len(evs))
		for i, ev := range evs {
			out[i] = ev.ID
		}
		return out
	}
	if got, want := ids(seen), ids(all); !slices.Equal(got, want) {
		missed := slices.DeleteFunc(slices.Clone(want), func(id int64) bool { return slices.Contains(got, id) })
		t.Fatalf("the reader saw %d events, want %d; missed %v", len(got), len(want), missed)
	}
}
