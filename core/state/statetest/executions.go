package statetest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

func testCreateExecution(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleUser)

	// Stored byte for byte: spacing, key order, escapes and non-ASCII.
	desc := []byte("{\"z\": 1,  \"a\": [true, null, {\"k\": \"caf\u00e9 \\u00e9 \\\"q\\\"\"}],\n \"n\": 1.50e3}")
	sdesc := []byte(`{ "image": "spark:3", "ports": [ {"port": 8080} ] }`)
	before := time.Now()
	e := must(st.CreateExecution(ctx, state.NewExecution{
		Owner: "alice", Name: "spark", Description: desc, Size: 42, Cores: 2.5, Memory: 3 << 30,
		Services: []state.NewService{
			{Name: "worker1", Group: "worker", StartupOrder: 1, Description: sdesc},
			{Name: "master0", Group: "master", Essential: true, StartupOrder: 0},
		},
	}))(t)
	after := time.Now()
	if e.ID <= 0 || e.Owner != "alice" || e.Name != "spark" || !bytes.Equal(e.Description, desc) ||
		e.Status != state.StatusSubmitted || e.Size != 42 || e.Cores != 2.5 || e.Memory != 3<<30 ||
		e.ErrorMessage != "" || e.ExitCode != nil || e.StartedAt != nil || e.EndedAt != nil {
		t.Fatalf("created %+v", e)
	}
	inUTC(t, "submitted", e.SubmittedAt, before, after)
	got := must(st.GetExecution(ctx, e.ID))(t)
	if !equalExecution(got, e) {
		t.Fatalf("GetExecution = %+v, want %+v", got, e)
	}

	svs := must(st.Services(ctx, e.ID))(t)
	if len(svs) != 2 || svs[0].Name != "master0" || svs[1].Name != "worker1" {
		t.Fatalf("services %+v, want start-up order", svs)
	}
	m, w := svs[0], svs[1]
	if m.ExecutionID != e.ID || m.Group != "master" || !m.Essential || m.Status != state.ServiceCreated ||
		string(m.Description) != "{}" || m.BackendStatus != "" || m.Node != "" || m.RestartCount != 0 ||
		m.ExitCode != nil || len(m.Handle.Data) != 0 {
		t.Fatalf("service %+v", m)
	}
	if w.Essential || w.StartupOrder != 1 || !bytes.Equal(w.Description, sdesc) {
		t.Fatalf("service %+v", w)
	}

	evs := must(st.Events(ctx, e.ID))(t)
	if len(evs) != 1 || evs[0].ExecutionID != e.ID || evs[0].ServiceName != "" || evs[0].From != "" ||
		evs[0].To != "submitted" || evs[0].Reason == "" || !evs[0].Time.Equal(e.SubmittedAt) {
		t.Fatalf("events %+v", evs)
	}
	inUTC(t, "event", evs[0].Time, before, after)

	// Ids grow.
	if e2 := submit(t, st, "alice", "two", 0); e2.ID <= e.ID {
		t.Fatalf("id %d after %d", e2.ID, e.ID)
	}

	login(t, st, "off", auth.RoleUser)
	must(st.UpdateUser(ctx, "off", state.UserUpdate{Enabled: ptr(false)}))(t)
	bad := []struct {
		name string
		ne   state.NewExecution
		cat  error
	}{
		{"no owner", state.NewExecution{Name: "x"}, sdk.ErrInvalidArgument},
		{"no name", state.NewExecution{Owner: "alice"}, sdk.ErrInvalidArgument},
		{"bad JSON", state.NewExecution{Owner: "alice", Name: "x", Description: []byte("{")}, sdk.ErrInvalidArgument},
		{"bad service JSON", state.NewExecution{Owner: "alice", Name: "x",
			Services: []state.NewService{{Name: "a", Group: "a", Description: []byte("[")}}}, sdk.ErrInvalidArgument},
		{"negative cores", state.NewExecution{Owner: "alice", Name: "x", Cores: -1}, sdk.ErrInvalidArgument},
		{"duplicate services", state.NewExecution{Owner: "alice", Name: "x",
			Services: []state.NewService{{Name: "a", Group: "a"}, {Name: "a", Group: "a"}}}, sdk.ErrInvalidArgument},
		{"service without group", state.NewExecution{Owner: "alice", Name: "x",
			Services: []state.NewService{{Name: "a"}}}, sdk.ErrInvalidArgument},
		{"unknown owner", state.NewExecution{Owner: "nobody", Name: "x"}, sdk.ErrNotFound},
		{"disabled owner", state.NewExecution{Owner: "off", Name: "x"}, sdk.ErrPermissionDenied},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := st.CreateExecution(ctx, tc.ne)
			wantErr(t, err, tc.cat)
		})
	}
	_, err := st.GetExecution(ctx, 1<<40)
	wantErr(t, err, sdk.ErrNotFound)
	// Nothing of the refused submissions was kept.
	if es, _, err := st.ListExecutions(ctx, state.Filter{}); err != nil || len(es) != 2 {
		t.Fatalf("%d executions after refusals, want 2 (%v)", len(es), err)
	}
}

func equalExecution(a, b state.Execution) bool {
	return a.ID == b.ID && a.Owner == b.Owner && a.Name == b.Name && bytes.Equal(a.Description, b.Description) &&
		a.Status == b.Status && a.Size == b.Size && a.Cores == b.Cores && a.Memory == b.Memory &&
		a.ErrorMessage == b.ErrorMessage && equalPtr(a.ExitCode, b.ExitCode) && a.SubmittedAt.Equal(b.SubmittedAt) &&
		equalTime(a.StartedAt, b.StartedAt) && equalTime(a.EndedAt, b.EndedAt) && a.NetworkID == b.NetworkID
}

func equalTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

func testQuotaRefusals(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	must(st.CreateQuota(ctx, state.Quota{Name: "cores", Cores: 4}))(t)
	must(st.CreateQuota(ctx, state.Quota{Name: "memory", Memory: 8 << 30}))(t)
	for _, u := range []string{"guest", "user", "admin", "cores", "memory"} {
		role := auth.RoleUser
		if r, err := auth.ParseRole(u); err == nil {
			role = r
		}
		login(t, st, u, role)
		if role == auth.RoleUser && u != "user" {
			must(st.UpdateUser(ctx, u, state.UserUpdate{Quota: ptr(u)}))(t)
		}
	}
	ne := func(owner string, cores float64, memory int64) state.NewExecution {
		return state.NewExecution{Owner: owner, Name: "x", Cores: cores, Memory: memory}
	}
	steps := []struct {
		name  string
		ne    state.NewExecution
		parts []string // nil: accepted
	}{
		{"guest first", ne("guest", 100, 1<<40), nil},
		{"guest second", ne("guest", 0, 0), []string{"at most 1 execution at a time", "1 is active"}},
		{"user 1", ne("user", 0, 0), nil},
		{"user 2", ne("user", 0, 0), nil},
		{"user 3", ne("user", 0, 0), nil},
		{"user 4", ne("user", 0, 0), nil},
		{"user 5", ne("user", 0, 0), nil},
		{"user 6", ne("user", 0, 0), []string{"at most 5 executions at a time", "5 are active"}},
		{"admin unlimited", ne("admin", 1000, 1<<50), nil},
		{"cores 2.5", ne("cores", 2.5, 0), nil},
		{"cores 1.5 fits exactly", ne("cores", 1.5, 0), nil},
		{"cores 0.5 too many", ne("cores", 0.5, 0), []string{"reserves 0.5 cores", "active executions 4", "allows 4"}},
		{"memory 6 GiB", ne("memory", 0, 6<<30), nil},
		{"memory 3 GiB too much", ne("memory", 0, 3<<30), []string{"3 GiB of memory", "active executions 6 GiB", "allows 8 GiB"}},
		{"memory 2 GiB fits", ne("memory", 0, 2<<30), nil},
	}
	var ids []int64
	for _, s := range steps {
		e, err := st.CreateExecution(ctx, s.ne)
		if s.parts == nil {
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			ids = append(ids, e.ID)
			continue
		}
		wantErr(t, err, sdk.ErrResourceExhausted, s.parts...)
	}
	// Usage counts what the refusals counted: the accepted ones.
	for _, c := range []struct {
		user string
		want state.Usage
	}{
		{"guest", state.Usage{Executions: 1, Cores: 100, Memory: 1 << 40}},
		{"user", state.Usage{Executions: 5}},
		{"cores", state.Usage{Executions: 2, Cores: 4}},
		{"memory", state.Usage{Executions: 2, Memory: 8 << 30}},
		{"nobody-known", state.Usage{}},
	} {
		if got := must(st.Usage(ctx, c.user))(t); got != c.want {
			t.Errorf("usage of %s: %+v, want %+v", c.user, got, c.want)
		}
	}
	// Only active executions count: once the guest's ends, they may run
	// another.
	must(st.Transition(ctx, ids[0], []state.Status{state.StatusSubmitted}, state.StatusTerminated,
		state.ExecutionChange{Ended: true}))(t)
	if got := must(st.Usage(ctx, "guest"))(t); got != (state.Usage{}) {
		t.Errorf("usage of guest after the end: %+v, want none", got)
	}
	submit(t, st, "guest", "again", 0)
}

func testTransition(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleAdmin)
	e := submit(t, st, "alice", "x", 1)

	before := time.Now()
	e = must(st.Transition(ctx, e.ID, []state.Status{state.StatusSubmitted}, state.StatusQueued,
		state.ExecutionChange{Reason: "digested"}))(t)
	e = must(st.Transition(ctx, e.ID, []state.Status{state.StatusQueued}, state.StatusStarting, state.ExecutionChange{}))(t)
	e = must(st.Transition(ctx, e.ID, []state.Status{state.StatusStarting}, state.StatusRunning,
		state.ExecutionChange{Reason: "all essential services up", Started: true}))(t)
	if e.Status != state.StatusRunning || e.StartedAt == nil || e.EndedAt != nil {
		t.Fatalf("running: %+v", e)
	}
	inUTC(t, "started", *e.StartedAt, before, time.Now())

	// The loser of a compare-and-set learns the actual status.
	_, err := st.Transition(ctx, e.ID, []state.Status{state.StatusQueued, state.StatusStarting}, state.StatusError,
		state.ExecutionChange{})
	wantErr(t, err, sdk.ErrConflict, "is running")

	e = must(st.Transition(ctx, e.ID, state.ActiveStatuses(), state.StatusCleaningUp,
		state.ExecutionChange{Reason: "terminated by alice", ErrorMessage: ptr("Essential service svca died"), ExitCode: ptr(137)}))(t)
	e = must(st.Transition(ctx, e.ID, []state.Status{state.StatusCleaningUp}, state.StatusTerminated,
		state.ExecutionChange{Ended: true}))(t)
	if e.Status != state.StatusTerminated || e.ErrorMessage != "Essential service svca died" || *e.ExitCode != 137 ||
		e.EndedAt == nil || e.EndedAt.Before(*e.StartedAt) {
		t.Fatalf("terminated: %+v", e)
	}
	if got := must(st.GetExecution(ctx, e.ID))(t); !equalExecution(got, e) {
		t.Fatalf("GetExecution = %+v, want %+v", got, e)
	}

	var steps []string
	for _, ev := range must(st.Events(ctx, e.ID))(t) {
		steps = append(steps, ev.From+">"+ev.To+":"+ev.Reason)
		if ev.Time.Location() != time.UTC {
			t.Errorf("event time %v not in UTC", ev.Time)
		}
	}
	want := []string{">submitted:submitted by alice", "submitted>queued:digested", "queued>starting:",
		"starting>running:all essential services up", "running>cleaning_up:terminated by alice", "cleaning_up>terminated:"}
	if !slices.Equal(steps, want) {
		t.Fatalf("events\n%q\nwant\n%q", steps, want)
	}

	bad := []struct {
		name string
		id   int64
		from []state.Status
		to   state.Status
		cat  error
	}{
		{"unknown execution", 1 << 40, []state.Status{state.StatusSubmitted}, state.StatusQueued, sdk.ErrNotFound},
		{"no from", e.ID, nil, state.StatusQueued, sdk.ErrInvalidArgument},
		{"unknown to", e.ID, []state.Status{state.StatusTerminated}, "done", sdk.ErrInvalidArgument},
		{"unknown from", e.ID, []state.Status{"cleaning up"}, state.StatusError, sdk.ErrInvalidArgument},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := st.Transition(ctx, tc.id, tc.from, tc.to, state.ExecutionChange{})
			wantErr(t, err, tc.cat)
		})
	}
}

// testTransitionRace: of many writers moving the same execution out of
// submitted, exactly one wins, on one store and across two (two daemons).
func testTransitionRace(t *testing.T, h Harness) {
	st, loc := open(t, h)
	other := reopen(t, h, loc)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleAdmin)
	for round := range 3 {
		e := submit(t, st, "alice", fmt.Sprint("race", round), 2)
		svc := must(st.Services(ctx, e.ID))(t)[0]
		var (
			wg                  sync.WaitGroup
			mu                  sync.Mutex
			wins, svcWins, lost int
		)
		for i := range 20 {
			s := []state.Store{st, other}[i%2]
			wg.Go(func() {
				_, err := s.Transition(ctx, e.ID, []state.Status{state.StatusSubmitted}, state.StatusQueued,
					state.ExecutionChange{Reason: fmt.Sprint("writer ", i)})
				_, serr := s.TransitionService(ctx, svc.ID, []state.ServiceStatus{state.ServiceCreated},
					state.ServiceStarting, state.ServiceChange{})
				mu.Lock()
				defer mu.Unlock()
				for _, e := range []error{err, serr} {
					switch {
					case e == nil:
					case sdk.Category(e) == sdk.ErrConflict:
						lost++
					default:
						t.Errorf("writer %d: %v", i, e)
					}
				}
				if err == nil {
					wins++
				}
				if serr == nil {
					svcWins++
				}
			})
		}
		wg.Wait()
		if wins != 1 || svcWins != 1 || lost != 38 {
			t.Fatalf("round %d: %d and %d winners, %d losers; want 1, 1 and 38", round, wins, svcWins, lost)
		}
		if n := len(must(st.Events(ctx, e.ID))(t)); n != 3 {
			t.Fatalf("round %d: %d events, want 3", round, n)
		}
	}
}

// testSetNetwork: the network id round-trips, survives transitions and
// reopening, can be forgotten, and is refused for inactive executions.
func testSetNetwork(t *testing.T, h Harness) {
	st, loc := open(t, h)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleAdmin)
	e := submit(t, st, "alice", "net", 1)
	other := submit(t, st, "alice", "other", 0)
	if e.NetworkID != "" {
		t.Fatalf("new execution has network %q", e.NetworkID)
	}
	steps := []struct {
		name   string
		to     state.Status // "" to stay
		net    string
		cat    error // of SetNetwork, nil for success
		wantID string
	}{
		{"set while submitted", "", "net-1", nil, "net-1"},
		{"kept by transitions", state.StatusQueued, "", nil, "net-1"},
		{"replaced while queued", "", "net-2", nil, "net-2"},
		{"forgotten", state.StatusStarting, "-", nil, ""},
		{"set while starting", "", "n\u00e9t 'x\"", nil, "n\u00e9t 'x\""},
		{"set while cleaning up", state.StatusCleaningUp, "net-3", nil, "net-3"},
		{"refused once terminated", state.StatusTerminated, "net-4", sdk.ErrConflict, "net-3"},
	}
	cur := e.Status
	for _, step := range steps {
		if step.to != "" {
			must(st.Transition(ctx, e.ID, []state.Status{cur}, step.to, state.ExecutionChange{}))(t)
			cur = step.to
		}
		if step.net != "" {
			net := step.net
			if net == "-" {
				net = ""
			}
			err := st.SetNetwork(ctx, e.ID, net)
			if step.cat == nil {
				noErr(t, err)
			} else {
				wantErr(t, err, step.cat, "is terminated")
			}
		}
		if got := must(st.GetExecution(ctx, e.ID))(t); got.NetworkID != step.wantID || got.Status != cur {
			t.Fatalf("%s: %s with network %q, want %s with %q", step.name, got.Status, got.NetworkID, cur, step.wantID)
		}
	}
	wantErr(t, st.SetNetwork(ctx, 1<<40, "x"), sdk.ErrNotFound)
	// A transition may record the network with the status: not when it is
	// refused, nor for a status that ends the execution.
	_, err := st.Transition(ctx, e.ID, []state.Status{state.StatusQueued}, state.StatusStarting,
		state.ExecutionChange{NetworkID: "net-5"})
	wantErr(t, err, sdk.ErrConflict, "is terminated")
	_, err = st.Transition(ctx, e.ID, []state.Status{state.StatusTerminated}, state.StatusError,
		state.ExecutionChange{NetworkID: "net-5"})
	wantErr(t, err, sdk.ErrInvalidArgument, "network id")
	if got := must(st.GetExecution(ctx, e.ID))(t); got.NetworkID != "net-3" || got.Status != cur {
		t.Fatalf("refused transitions left %s with network %q", got.Status, got.NetworkID)
	}
	// other: submitted, then queued, then starting with its network.
	must(st.Transition(ctx, other.ID, []state.Status{state.StatusSubmitted}, state.StatusQueued, state.ExecutionChange{}))(t)
	got := must(st.Transition(ctx, other.ID, []state.Status{state.StatusQueued}, state.StatusStarting,
		state.ExecutionChange{Reason: "placed", NetworkID: "net-6"}))(t)
	if got.NetworkID != "net-6" || got.Status != state.StatusStarting {
		t.Fatalf("transition with a network returned %s with %q", got.Status, got.NetworkID)
	}
	if got := must(st.GetExecution(ctx, other.ID))(t); got.NetworkID != "net-6" || got.Status != state.StatusStarting {
		t.Fatalf("transition with a network stored %s with %q", got.Status, got.NetworkID)
	}
	// Not an event, and no other execution touched.
	if n := len(must(st.Events(ctx, e.ID))(t)); n != 5 {
		t.Fatalf("%d events, want the 5 transitions'", n)
	}
	noErr(t, st.SetNetwork(ctx, other.ID, "other-net"))
	// Every read returns it, and it survives reopening.
	st2 := reopen(t, h, loc)
	if got := must(st2.GetExecution(ctx, other.ID))(t); got.NetworkID != "other-net" {
		t.Fatalf("after reopening: network %q", got.NetworkID)
	}
	if act := must(st2.ActiveExecutions(ctx))(t); len(act) != 1 || act[0].NetworkID != "other-net" {
		t.Fatalf("active executions %+v", act)
	}
	list, _ := must2(st2.ListExecutions(ctx, state.Filter{}))(t)
	if len(list) != 2 || list[0].NetworkID != "other-net" || list[1].NetworkID != "net-3" {
		t.Fatalf("listed %+v", list)
	}
}

func must2[A, B any](a A, b B, err error) func(testing.TB) (A, B) {
	return func(t testing.TB) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

func testDeleteExecution(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleAdmin)
	keep := submit(t, st, "alice", "keep", 2)
	noErr(t, st.SetEndpoints(ctx, must(st.Services(ctx, keep.ID))(t)[0].ID,
		[]state.Endpoint{{Name: "http", Port: 80, Protocol: "tcp"}}))
	e := submit(t, st, "alice", "gone", 3)
	svs := must(st.Services(ctx, e.ID))(t)
	must(st.TransitionService(ctx, svs[0].ID, []state.ServiceStatus{state.ServiceCreated}, state.ServiceStarting,
		state.ServiceChange{}))(t)
	noErr(t, st.SetEndpoints(ctx, svs[0].ID, []state.Endpoint{{Name: "ui", Port: 4040, Protocol: "tcp"}}))

	wantErr(t, st.DeleteExecution(ctx, e.ID), sdk.ErrConflict, "is submitted")
	must(st.Transition(ctx, e.ID, []state.Status{state.StatusSubmitted}, state.StatusError,
		state.ExecutionChange{Ended: true, ErrorMessage: ptr("no image")}))(t)
	if err := st.DeleteExecution(ctx, e.ID); err != nil {
		t.Fatal(err)
	}

	_, err := st.GetExecution(ctx, e.ID)
	wantErr(t, err, sdk.ErrNotFound)
	_, err = st.GetService(ctx, svs[0].ID)
	wantErr(t, err, sdk.ErrNotFound)
	if n := len(must(st.Services(ctx, e.ID))(t)) + len(must(st.Events(ctx, e.ID))(t)) +
		len(must(st.Endpoints(ctx, e.ID))(t)); n != 0 {
		t.Fatalf("%d services, events and endpoints left", n)
	}
	wantErr(t, st.DeleteExecution(ctx, e.ID), sdk.ErrNotFound)

	// Nothing else went: the other execution, its services, endpoints and
	// events, and the user.
	if len(must(st.Services(ctx, keep.ID))(t)) != 2 || len(must(st.Endpoints(ctx, keep.ID))(t)) != 1 ||
		len(must(st.Events(ctx, keep.ID))(t)) != 1 {
		t.Fatal("the other execution lost rows")
	}
	must(st.GetUser(ctx, "alice"))(t)
	// An id is never reused, even the newest one's after it is deleted.
	if n := submit(t, st, "alice", "next", 0); n.ID <= e.ID {
		t.Fatalf("new id %d reuses %d", n.ID, e.ID)
	}
}

func testListExecutions(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	owners := []string{"alice", "bob", "carol"}
	for _, o := range owners {
		login(t, st, o, auth.RoleAdmin)
	}
	// The model the store's answers are checked against.
	type row struct {
		id          int64
		owner, name string
		status      state.Status
	}
	var all []row
	names := []string{"spark-pi", "Spark-shell", "jupyter", "a_b%c", "tensorflow"}
	for i := range 64 {
		owner, name := owners[i%3], names[i%5]
		e := submit(t, st, owner, name, 0)
		status := state.StatusSubmitted
		switch i % 4 {
		case 1:
			status = state.StatusTerminated
		case 2:
			status = state.StatusError
		}
		if status != state.StatusSubmitted {
			must(st.Transition(ctx, e.ID, []state.Status{state.StatusSubmitted}, status, state.ExecutionChange{}))(t)
		}
		all = append(all, row{e.ID, owner, name, status})
	}
	slices.Reverse(all) // newest first

	filters := []struct {
		name string
		f    state.Filter
	}{
		{"all", state.Filter{Limit: 7}},
		{"owner", state.Filter{Owner: "bob", Limit: 5}},
		{"statuses", state.Filter{Statuses: []state.Status{state.StatusTerminated, state.StatusError}, Limit: 6}},
		{"owner and status", state.Filter{Owner: "alice", Statuses: []state.Status{state.StatusSubmitted}, Limit: 3}},
		{"name substring, case-sensitive", state.Filter{Name: "park", Limit: 4}},
		{"name with LIKE wildcards", state.Filter{Name: "_b%", Limit: 2}},
		{"everything", state.Filter{Owner: "carol", Statuses: []state.Status{state.StatusError}, Name: "a", Limit: 1}},
		{"no match", state.Filter{Owner: "nobody"}},
		{"one page", state.Filter{Owner: "alice", Limit: 500}},
		{"default limit", state.Filter{}},
		{"limit above maximum", state.Filter{Limit: 10000}},
	}
	for _, tc := range filters {
		t.Run(tc.name, func(t *testing.T) {
			var want []int64
			for _, r := range all {
				if (tc.f.Owner == "" || r.owner == tc.f.Owner) &&
					(len(tc.f.Statuses) == 0 || slices.Contains(tc.f.Statuses, r.status)) &&
					strings.Contains(r.name, tc.f.Name) {
					want = append(want, r.id)
				}
			}
			limit := tc.f.Limit
			if limit == 0 {
				limit = state.DefaultLimit
			}
			var got []int64
			f, pages := tc.f, 0
			for {
				es, next, err := st.ListExecutions(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(es) > limit || (next != "" && len(es) != limit) {
					t.Fatalf("page %d: %d items with limit %d, next %q", pages, len(es), limit, next)
				}
				for _, e := range es {
					got = append(got, e.ID)
				}
				if next == "" {
					break
				}
				if pages > 100 {
					t.Fatal("endless pages")
				}
				f.Cursor = next
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %v\nwant %v", got, want)
			}
			if wantPages := max(1, (len(want)+limit-1)/limit); pages != wantPages {
				t.Fatalf("%d pages for %d items of %d", pages, len(want), limit)
			}
		})
	}
	if len(all) > state.DefaultLimit {
		if es, next, _ := st.ListExecutions(ctx, state.Filter{}); len(es) != state.DefaultLimit || next == "" {
			t.Fatalf("default page: %d items, next %q", len(es), next)
		}
	}

	bad := []state.Filter{
		{Limit: -1},
		{Statuses: []state.Status{"done"}},
		{Cursor: "not a cursor"},
		{Cursor: "ZTA"}, // "e0"
	}
	for _, f := range bad {
		_, _, err := st.ListExecutions(ctx, f)
		wantErr(t, err, sdk.ErrInvalidArgument)
	}
}

func testActiveExecutions(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleAdmin)
	login(t, st, "bob", auth.RoleAdmin)
	var want []int64
	for i, to := range state.Statuses() {
		e := submit(t, st, []string{"alice", "bob"}[i%2], string(to), 0)
		if to != state.StatusSubmitted {
			must(st.Transition(ctx, e.ID, []state.Status{state.StatusSubmitted}, to, state.ExecutionChange{}))(t)
		}
		if to.Active() {
			want = append(want, e.ID)
		}
	}
	var got []int64
	for _, e := range must(st.ActiveExecutions(ctx))(t) {
		got = append(got, e.ID)
		if !e.Status.Active() {
			t.Errorf("inactive %+v", e)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("active %v, want %v (oldest first)", got, want)
	}
}

// testListingsFollowWrites: a listing asked again after any write shows
// it, and what a caller does to a listing does not change the next one.
func testListingsFollowWrites(t *testing.T, h Harness) {
	st, loc := open(t, h)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleAdmin)
	e := submit(t, st, "alice", "first", 0)
	list := func() []state.Execution {
		t.Helper()
		es, _, err := st.ListExecutions(ctx, state.Filter{Owner: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	if es := list(); len(es) != 1 || es[0].Status != state.StatusSubmitted {
		t.Fatalf("listed %+v", es)
	}
	list() // asked twice at the same point
	must(st.Transition(ctx, e.ID, []state.Status{state.StatusSubmitted}, state.StatusError,
		state.ExecutionChange{ExitCode: ptr(3)}))(t)
	es := list()
	if len(es) != 1 || es[0].Status != state.StatusError || es[0].ExitCode == nil || *es[0].ExitCode != 3 {
		t.Fatalf("after a transition: %+v", es)
	}
	*es[0].ExitCode, es[0].Name = 99, "changed by the caller"
	if again := list(); *again[0].ExitCode != 3 || again[0].Name != "first" {
		t.Errorf("a caller's change reached the next listing: %+v", again[0])
	}
	submit(t, st, "alice", "second", 0)
	if es := list(); len(es) != 2 || es[0].Name != "second" {
		t.Errorf("after a submission: %+v", es)
	}

	// Another store on the same database (a second daemon) sees the
	// writes of the first, and the first sees its writes.
	other := reopen(t, h, loc)
	if es, _, err := other.ListExecutions(ctx, state.Filter{Owner: "alice"}); err != nil || len(es) != 2 {
		t.Fatalf("the other store lists %+v, %v", es, err)
	}
	submit(t, other, "alice", "third", 0)
	if es := list(); len(es) != 3 || es[0].Name != "third" {
		t.Errorf("after the other store's submission: %+v", es)
	}

	// Users and tokens, which the API reads on every request.
	u := must(st.GetUser(ctx, "alice"))(t)
	u.Groups = append(u.Groups, "changed by the caller")
	must(st.UpdateUser(ctx, "alice", state.UserUpdate{Enabled: ptr(false)}))(t)
	if u := must(st.GetUser(ctx, "alice"))(t); u.Enabled || slices.Contains(u.Groups, "changed by the caller") {
		t.Errorf("after disabling: %+v", u)
	}
	hash := []byte("0123456789abcdef0123456789abcdef")
	tok := must(st.CreateToken(ctx, state.NewToken{Username: "alice", Name: "t", Hash: hash}))(t)
	got := must(st.TokenByHash(ctx, hash))(t)
	got.Hash[0] = 'X'
	must(st.TokenByHash(ctx, hash))(t)
	if err := st.DeleteToken(ctx, "alice", tok.ID); err != nil {
		t.Fatal(err)
	}
	_, err := st.TokenByHash(ctx, hash)
	wantErr(t, err, sdk.ErrNotFound)
}

// testVersion: a store keeps its version while only reads happen (unless
// writes elsewhere move it too) and raises it with every write, its own or
// another store's on the same database.
func testVersion(t *testing.T, h Harness) {
	st, loc := open(t, h)
	other := reopen(t, h, loc)
	ctx := t.Context()
	v0 := mustVersion(t, st)
	login(t, st, "alice", auth.RoleAdmin)
	v1 := mustVersion(t, st)
	if v1 <= v0 {
		t.Fatalf("the version went from %d to %d with a login", v0, v1)
	}
	if _, _, err := st.ListExecutions(ctx, state.Filter{}); err != nil {
		t.Fatal(err)
	}
	must(other.GetUser(ctx, "alice"))(t)
	if v := mustVersion(t, st); v != v1 && !h.SharedVersion {
		t.Fatalf("reads changed the version from %d to %d", v1, v)
	}
	steps := []struct {
		what  string
		write func() error
	}{
		{"a submission", func() error { _, err := st.CreateExecution(ctx, newExecution("alice", "a", 1)); return err }},
		{"another store's submission", func() error {
			_, err := other.CreateExecution(ctx, newExecution("alice", "b", 0))
			return err
		}},
		{"another store's user update", func() error {
			_, err := other.UpdateUser(ctx, "alice", state.UserUpdate{Enabled: ptr(false)})
			return err
		}},
		{"a token", func() error {
			_, err := st.CreateToken(ctx, state.NewToken{Username: "alice", Name: "t", Hash: []byte("0123456789abcdef0123456789abcdef")})
			return err
		}},
	}
	last := v1
	for _, step := range steps {
		if err := step.write(); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		v := mustVersion(t, st)
		if v <= last {
			t.Fatalf("after %s the version is %d, was %d", step.what, v, last)
		}
		last = v
	}
}

func mustVersion(t *testing.T, st state.Store) uint64 {
	t.Helper()
	v, ok := st.Version(t.Context())
	if !ok {
		t.Fatal("the store no longer knows its version")
	}
	return v
}
