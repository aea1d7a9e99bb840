package engine

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

func TestDecideReconcile(t *testing.T) {
	const ours, theirs = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	name := func(id int64, svc string) string { return fmt.Sprintf("%s-%d-test", svc, id) }
	ex := func(id int64, st state.Status) state.Execution { return state.Execution{ID: id, Status: st} }
	// sv is a stored service; its id is unique in every case.
	sv := func(id, exec int64, n string, st state.ServiceStatus, handle string) state.Service {
		return state.Service{ID: id, ExecutionID: exec, Name: n, Status: st, Handle: state.Handle{ID: handle, Version: 1}}
	}
	// ls is a service of this store that the back-end lists; exec labels
	// it unless 0.
	ls := func(n, handle string, st backend.ServiceState, exec int64) backend.ServiceStatus {
		s := backend.ServiceStatus{Name: n, Handle: backend.Handle{ID: handle}, State: st,
			Labels: map[string]string{LabelDeployment: "test", LabelStore: ours}}
		if exec != 0 {
			s.Labels[LabelExecution] = fmt.Sprint(exec)
		}
		return s
	}
	// of makes s another store's (store "" : without a store label, made
	// by a Zoe before store labels).
	of := func(store string, s backend.ServiceStatus) backend.ServiceStatus {
		s.Labels = maps.Clone(s.Labels)
		if store == "" {
			delete(s.Labels, LabelStore)
		} else {
			s.Labels[LabelStore] = store
		}
		return s
	}
	exited := func(s backend.ServiceStatus, code int, oom bool) backend.ServiceStatus {
		s.ExitCode, s.OOMKilled = code, oom
		return s
	}
	const (
		running  = backend.ServiceRunning
		created  = backend.ServiceCreated
		exit     = backend.ServiceExited
		vanished = backend.ServiceVanished
	)
	unavailable := fmt.Errorf("plugin restarting: %w", sdk.ErrUnavailable)
	notFound := fmt.Errorf("no such handle: %w", sdk.ErrNotFound)

	tests := []struct {
		name       string
		execs      []state.Execution
		svcs       []state.Service
		busy       []int64
		listed     []backend.ServiceStatus
		recoverAll bool
		// noStore: the engine does not know its store's identity.
		noStore   bool
		recovered map[int64]recovery
		want      []string
		wantNeeds []string // service@execution
		// following are the containers whose output is followed, as
		// service@execution:handle.
		following []string
	}{
		{
			name:   "running and listed by handle: its logs are followed",
			execs:  []state.Execution{ex(1, state.StatusRunning)},
			svcs:   []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a")},
			listed: []backend.ServiceStatus{ls("a-1-test", "h-a", running, 1)},
			want:   []string{"collect a@1: h-a"},
		},
		{
			name:      "running and followed already: nothing to do",
			execs:     []state.Execution{ex(1, state.StatusRunning)},
			svcs:      []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a")},
			listed:    []backend.ServiceStatus{ls("a-1-test", "h-a", running, 1)},
			following: []string{"a@1:h-a"},
		},
		{
			name:      "running, another container of it followed: the listed one's logs",
			execs:     []state.Execution{ex(1, state.StatusRunning)},
			svcs:      []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a")},
			listed:    []backend.ServiceStatus{ls("a-1-test", "h-a", running, 1)},
			following: []string{"a@1:h-old", "a@2:h-a"},
			want:      []string{"collect a@1: h-a"},
		},
		{
			// Containers are known by name: a back-end lists the name it
			// was given (Start's spec), or the container is not Zoe's.
			name:   "listed by handle under another name: followed, and removed as unknown",
			execs:  []state.Execution{ex(1, state.StatusRunning)},
			svcs:   []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a")},
			listed: []backend.ServiceStatus{ls("other-name", "h-a", running, 1)},
			want:   []string{"collect a@1: h-a", "remove other-name (h-a)"},
		},
		{
			name:   "running and listed by name only: the listed container's logs",
			execs:  []state.Execution{ex(1, state.StatusRunning)},
			svcs:   []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-old")},
			listed: []backend.ServiceStatus{ls("a-1-test", "h-new", running, 1)},
			want:   []string{"collect a@1: h-new"},
		},
		{
			name:   "a listed created container counts as running",
			execs:  []state.Execution{ex(1, state.StatusStarting)},
			svcs:   []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a")},
			listed: []backend.ServiceStatus{ls("a-1-test", "h-a", created, 1)},
			want:   []string{"collect a@1: h-a"},
		},
		{
			name:   "running and listed exited: died with its code",
			execs:  []state.Execution{ex(1, state.StatusRunning)},
			svcs:   []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a")},
			listed: []backend.ServiceStatus{exited(ls("a-1-test", "h-a", exit, 1), 3, false)},
			want:   []string{"died a@1: exited code 3 oom false"},
		},
		{
			name:   "running and listed OOM-killed",
			execs:  []state.Execution{ex(1, state.StatusRunning)},
			svcs:   []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a")},
			listed: []backend.ServiceStatus{exited(ls("a-1-test", "h-a", exit, 1), 137, true)},
			want:   []string{"died a@1: exited code 137 oom true"},
		},
		{
			name:   "running and listed in a state the engine does not act on",
			execs:  []state.Execution{ex(1, state.StatusRunning)},
			svcs:   []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a")},
			listed: []backend.ServiceStatus{ls("a-1-test", "h-a", "paused", 1)},
		},
		{
			name:      "running, not listed: Recover is asked, and no action before its answer",
			execs:     []state.Execution{ex(1, state.StatusRunning)},
			svcs:      []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a")},
			wantNeeds: []string{"a@1"},
		},
		{
			name:      "running, not listed, recovered running: logs of the recovered handle",
			execs:     []state.Execution{ex(1, state.StatusRunning)},
			svcs:      []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a")},
			recovered: map[int64]recovery{10: {st: ls("a-1-test", "h-a2", running, 1)}},
			want:      []string{"collect a@1: h-a2"},
			wantNeeds: []string{"a@1"},
		},
		{
			name:      "recovered without a handle id: the stored handle's logs",
			execs:     []state.Execution{ex(1, state.StatusRunning)},
			svcs:      []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a")},
			recovered: map[int64]recovery{10: {st: backend.ServiceStatus{State: running}}},
			want:      []string{"collect a@1: h-a"},
			wantNeeds: []string{"a@1"},
		},
		{
			name:      "running, not listed, unknown to Recover: vanished",
			execs:     []state.Execution{ex(1, state.StatusRunning)},
			svcs:      []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a")},
			recovered: map[int64]recovery{10: {err: notFound}},
			want:      []string{"died a@1: vanished code 0 oom false"},
			wantNeeds: []string{"a@1"},
		},
		{
			name:      "running, not listed, Recover fails: left for the next pass",
			execs:     []state.Execution{ex(1, state.StatusRunning)},
			svcs:      []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a"), sv(11, 1, "b", state.ServiceRunning, "h-b")},
			listed:    []backend.ServiceStatus{ls("b-1-test", "h-b", running, 1)},
			recovered: map[int64]recovery{10: {err: unavailable}},
			want:      []string{"collect b@1: h-b"},
			wantNeeds: []string{"a@1"},
		},
		{
			name:       "after a restart every handle is recovered, listed or not, and Recover's answer wins",
			execs:      []state.Execution{ex(1, state.StatusRunning)},
			svcs:       []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a"), sv(11, 1, "b", state.ServiceRunning, "h-b")},
			listed:     []backend.ServiceStatus{ls("a-1-test", "h-a", running, 1), ls("b-1-test", "h-b", running, 1)},
			recoverAll: true,
			recovered: map[int64]recovery{10: {st: exited(ls("a-1-test", "h-a", exit, 1), 1, false)},
				11: {st: ls("b-1-test", "h-b", running, 1)}},
			want:      []string{"died a@1: exited code 1 oom false", "collect b@1: h-b"},
			wantNeeds: []string{"a@1", "b@1"},
		},
		{
			name:   "starting with a handle, no worker, listed running: adopted",
			execs:  []state.Execution{ex(1, state.StatusStarting)},
			svcs:   []state.Service{sv(10, 1, "a", state.ServiceStarting, "h-a")},
			listed: []backend.ServiceStatus{func() backend.ServiceStatus { s := ls("a-1-test", "h-a", running, 1); s.Node = "n1"; return s }()},
			want:   []string{"adopt a@1: running h-a on n1", "collect a@1: h-a"},
		},
		{
			name:   "starting with a handle, no worker, listed created: adopted",
			execs:  []state.Execution{ex(1, state.StatusRunning)},
			svcs:   []state.Service{sv(10, 1, "a", state.ServiceStarting, "h-a")},
			listed: []backend.ServiceStatus{ls("a-1-test", "h-a", created, 1)},
			want:   []string{"adopt a@1: created h-a on ", "collect a@1: h-a"},
		},
		{
			name:   "starting with a handle, no worker, listed exited: died",
			execs:  []state.Execution{ex(1, state.StatusStarting)},
			svcs:   []state.Service{sv(10, 1, "a", state.ServiceStarting, "h-a")},
			listed: []backend.ServiceStatus{exited(ls("a-1-test", "h-a", exit, 1), 2, false)},
			want:   []string{"died a@1: exited code 2 oom false"},
		},
		{
			name:      "starting with a handle, no worker, not listed: recovered",
			execs:     []state.Execution{ex(1, state.StatusStarting)},
			svcs:      []state.Service{sv(10, 1, "a", state.ServiceStarting, "h-a")},
			recovered: map[int64]recovery{10: {st: ls("a-1-test", "h-a", running, 1)}},
			want:      []string{"adopt a@1: running h-a on ", "collect a@1: h-a"},
			wantNeeds: []string{"a@1"},
		},
		{
			name:   "starting while its worker runs: the worker's business",
			execs:  []state.Execution{ex(1, state.StatusStarting)},
			svcs:   []state.Service{sv(10, 1, "a", state.ServiceStarting, "h-a"), sv(11, 1, "b", state.ServiceStarting, "")},
			busy:   []int64{1},
			listed: []backend.ServiceStatus{exited(ls("a-1-test", "h-a", exit, 1), 1, false)},
		},
		{
			name:   "running while a worker starts the others: still watched",
			execs:  []state.Execution{ex(1, state.StatusStarting)},
			svcs:   []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a")},
			busy:   []int64{1},
			listed: []backend.ServiceStatus{exited(ls("a-1-test", "h-a", exit, 1), 1, false)},
			want:   []string{"died a@1: exited code 1 oom false"},
		},
		{
			name:   "starting without a handle, no worker, listed by name: adopted (the start's answer was lost)",
			execs:  []state.Execution{ex(1, state.StatusStarting)},
			svcs:   []state.Service{sv(10, 1, "a", state.ServiceStarting, "")},
			listed: []backend.ServiceStatus{ls("a-1-test", "h-a", running, 1)},
			want:   []string{"adopt a@1: running h-a on ", "collect a@1: h-a"},
		},
		{
			name:   "starting without a handle, no worker, listed exited: adopted all the same",
			execs:  []state.Execution{ex(1, state.StatusStarting)},
			svcs:   []state.Service{sv(10, 1, "a", state.ServiceStarting, "")},
			listed: []backend.ServiceStatus{ls("a-1-test", "h-a", exit, 1)},
			want:   []string{"adopt a@1: exited h-a on ", "collect a@1: h-a"},
		},
		{
			name:  "starting without a handle, no worker, not listed: reset",
			execs: []state.Execution{ex(1, state.StatusRunning)},
			svcs:  []state.Service{sv(10, 1, "a", state.ServiceStarting, "")},
			want:  []string{"reset a@1: its start was interrupted; it will be started again"},
		},
		{
			name:       "no Recover for a service without a handle, even after a restart",
			execs:      []state.Execution{ex(1, state.StatusStarting)},
			svcs:       []state.Service{sv(10, 1, "a", state.ServiceStarting, "")},
			recoverAll: true,
			want:       []string{"reset a@1: its start was interrupted; it will be started again"},
		},
		{
			name:  "created, stopped and failed services are left alone",
			execs: []state.Execution{ex(1, state.StatusRunning)},
			svcs: []state.Service{sv(10, 1, "a", state.ServiceCreated, ""), sv(11, 1, "b", state.ServiceStopped, "h-b"),
				sv(12, 1, "c", state.ServiceError, ""), sv(13, 1, "d", state.ServiceStopping, "h-d")},
			listed: []backend.ServiceStatus{ls("b-1-test", "h-b", exit, 1)},
		},
		{
			name: "executions neither starting nor running are left alone; their containers are not orphans",
			execs: []state.Execution{ex(1, state.StatusQueued), ex(2, state.StatusCleaningUp),
				ex(3, state.StatusSubmitted)},
			svcs: []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a"), sv(11, 2, "a", state.ServiceStarting, ""),
				sv(12, 3, "a", state.ServiceCreated, "")},
			listed:     []backend.ServiceStatus{exited(ls("a-1-test", "h-a", exit, 1), 1, false), ls("a-2-test", "h-2", running, 2)},
			recoverAll: true,
		},
		{
			name:  "orphans: removed, after a second look when their execution may be newer than the snapshot",
			execs: []state.Execution{ex(1, state.StatusRunning)},
			svcs:  []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a")},
			listed: []backend.ServiceStatus{
				ls("a-1-test", "h-a", running, 1),
				ls("zz-1-test", "h-zz", running, 1), // of an execution the snapshot has
				ls("a-7-test", "h-7", running, 7),   // of an execution it has not
				ls("stray", "h-stray", exit, 0),     // no execution label
				func() backend.ServiceStatus {
					s := ls("bad", "h-bad", running, 0)
					s.Labels[LabelExecution] = "x1"
					return s
				}(),
			},
			want: []string{"collect a@1: h-a", "remove zz-1-test (h-zz)", "remove a-7-test (h-7) unless execution 7 is active",
				"remove stray (h-stray)", "remove bad (h-bad)"},
		},
		{
			// Two daemons of one deployment name, each with its store:
			// the other's execution 1 has the names of ours.
			name:  "another store's services: never removed, adopted, recovered or followed, whatever their names",
			execs: []state.Execution{ex(1, state.StatusRunning), ex(2, state.StatusStarting)},
			svcs: []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a"), sv(11, 1, "b", state.ServiceStarting, ""),
				sv(20, 2, "a", state.ServiceStarting, "")},
			listed: []backend.ServiceStatus{
				ls("a-1-test", "h-a", running, 1),
				of(theirs, ls("b-1-test", "h-their-b", running, 1)),  // our b has no handle: not adopted
				of(theirs, ls("a-2-test", "h-their-a2", running, 2)), // nor this one
				of(theirs, ls("a-9-test", "h-their-9", exit, 9)),     // unknown to us: not an orphan
				of(theirs, ls("stray", "h-their-stray", exit, 0)),
			},
			want: []string{"collect a@1: h-a",
				"reset b@1: its start was interrupted; it will be started again",
				"reset a@2: its start was interrupted; it will be started again",
				"foreign b-1-test (h-their-b) of store " + theirs + ": left alone",
				"foreign a-2-test (h-their-a2) of store " + theirs + ": left alone",
				"foreign a-9-test (h-their-9) of store " + theirs + ": left alone",
				"foreign stray (h-their-stray) of store " + theirs + ": left alone"},
		},
		{
			name:      "another store's service under our handle's name is not ours: ours is recovered",
			execs:     []state.Execution{ex(1, state.StatusRunning)},
			svcs:      []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a")},
			listed:    []backend.ServiceStatus{of(theirs, ls("a-1-test", "h-their-a", exit, 1))},
			recovered: map[int64]recovery{10: {err: notFound}},
			wantNeeds: []string{"a@1"},
			want: []string{"died a@1: vanished code 0 oom false",
				"foreign a-1-test (h-their-a) of store " + theirs + ": left alone"},
		},
		{
			// Made by a Zoe before store labels: by us or by another
			// daemon, nothing tells.
			name:  "unlabelled services: adopted when the store has them, else left alone, never removed",
			execs: []state.Execution{ex(1, state.StatusRunning), ex(2, state.StatusStarting)},
			svcs: []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-a"),
				sv(20, 2, "a", state.ServiceStarting, "")},
			listed: []backend.ServiceStatus{
				of("", ls("a-1-test", "h-a", running, 1)),
				of("", ls("a-2-test", "h-a2", running, 2)),
				of("", ls("a-7-test", "h-7", running, 7)),
				of("", ls("zz-1-test", "h-zz", exit, 1)),
			},
			want: []string{"collect a@1: h-a", "adopt a@2: running h-a2 on ", "collect a@2: h-a2",
				"unlabelled a-7-test (h-7): left alone", "unlabelled zz-1-test (h-zz): left alone"},
		},
		{
			name:    "with no store identity, nothing is removed",
			listed:  []backend.ServiceStatus{ls("a-5-test", "h-5", exit, 5), of("", ls("b-5-test", "h-b5", exit, 5))},
			noStore: true,
			want: []string{"unlabelled b-5-test (h-b5): left alone",
				"foreign a-5-test (h-5) of store " + ours + ": left alone"},
		},
		{
			name:   "an inactive execution's containers are orphans",
			listed: []backend.ServiceStatus{ls("a-5-test", "h-5", exit, 5)},
			want:   []string{"remove a-5-test (h-5) unless execution 5 is active"},
		},
		{
			name:  "actions follow the order of executions and services, removals last",
			execs: []state.Execution{ex(1, state.StatusRunning), ex(2, state.StatusStarting)},
			svcs: []state.Service{sv(10, 1, "a", state.ServiceRunning, "h-1a"), sv(11, 1, "b", state.ServiceStarting, ""),
				sv(20, 2, "a", state.ServiceRunning, "h-2a")},
			listed: []backend.ServiceStatus{ls("orphan", "h-o", running, 0), ls("a-2-test", "h-2a", vanished, 2),
				exited(ls("a-1-test", "h-1a", exit, 1), 0, false)},
			want: []string{"died a@1: exited code 0 oom false",
				"reset b@1: its start was interrupted; it will be started again", "died a@2: vanished code 0 oom false",
				"remove orphan (h-o)"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &reconcileInput{svcs: map[int64][]state.Service{}, busy: map[int64]bool{}, listed: tc.listed,
				recoverAll: tc.recoverAll, name: name, execs: tc.execs, store: ours}
			if tc.noStore {
				in.store = ""
			}
			if tc.following != nil {
				in.following = func(id int64, svc, handle string) bool {
					return slices.Contains(tc.following, fmt.Sprintf("%s@%d:%s", svc, id, handle))
				}
			}
			for _, s := range tc.svcs {
				in.svcs[s.ExecutionID] = append(in.svcs[s.ExecutionID], s)
			}
			for _, id := range tc.busy {
				in.busy[id] = true
			}
			acts, needs := decideReconcile(in, tc.recovered)
			var got []string
			for _, a := range acts {
				got = append(got, a.String())
				if a.kind != actRemove && a.kind != actForeign && a.kind != actUnlabelled && (a.sv.ExecutionID != a.ex.ID || a.sv.ID == 0) {
					t.Errorf("%s: service %+v of execution %d", a, a.sv, a.ex.ID)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("actions\n%q\nwant\n%q", got, tc.want)
			}
			var gotNeeds []string
			for _, r := range needs {
				gotNeeds = append(gotNeeds, fmt.Sprintf("%s@%d", r.sv.Name, r.ex.ID))
			}
			if !slices.Equal(gotNeeds, tc.wantNeeds) {
				t.Errorf("recoveries %q, want %q", gotNeeds, tc.wantNeeds)
			}
			// Asking first, then deciding with the answers: the needs do
			// not depend on the answers.
			if _, first := decideReconcile(in, nil); len(first) != len(needs) {
				t.Errorf("%d recoveries asked without answers, %d with", len(first), len(needs))
			}
		})
	}
}

// TestActionChanges: only the actions that write to the store make the
// pass read it again.
func TestActionChanges(t *testing.T) {
	for k, want := range map[actionKind]bool{actDied: true, actAdopt: true, actReset: true, actCollect: false,
		actRemove: false, actForeign: false, actUnlabelled: false} {
		if got := (action{kind: k}).changes(); got != want {
			t.Errorf("%s: changes %v, want %v", action{kind: k}, got, want)
		}
	}
}
