package statetest

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// testActiveServices: one query gives what Services gives for every active
// execution, and nothing of the others.
func testActiveServices(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleAdmin)
	login(t, st, "bob", auth.RoleAdmin)
	var active []int64
	for i, to := range state.Statuses() {
		// Services in reverse start-up order, so that the order is the
		// query's, not the insertion's.
		ne := newExecution([]string{"alice", "bob"}[i%2], string(to), 3)
		for j := range ne.Services {
			ne.Services[j].StartupOrder = 10 - j
		}
		e := must(st.CreateExecution(ctx, ne))(t)
		if to != state.StatusSubmitted {
			must(st.Transition(ctx, e.ID, []state.Status{state.StatusSubmitted}, to, state.ExecutionChange{}))(t)
		}
		if to.Active() {
			active = append(active, e.ID)
		}
	}
	empty := submit(t, st, "alice", "no services", 0)
	// Changes show: a service moved on, another with a handle.
	first := must(st.Services(ctx, active[1]))(t)
	must(st.PlaceServices(ctx, active[1], []state.Placement{{ServiceID: first[0].ID, Node: "n1"}}))(t)
	must(st.UpdateService(ctx, first[1].ID, state.ServiceUpdate{Handle: &state.Handle{Version: 2, ID: "h",
		Data: []byte{0, 1}}}))(t)

	got := must(st.ActiveServices(ctx))(t)
	if _, ok := got[empty.ID]; ok {
		t.Errorf("an execution without services has an entry")
	}
	if len(got) != len(active) {
		t.Errorf("services of %d executions, want %d", len(got), len(active))
	}
	for _, id := range active {
		want := must(st.Services(ctx, id))(t)
		if len(want) != 3 || want[0].StartupOrder > want[1].StartupOrder {
			t.Fatalf("Services(%d) = %+v", id, want)
		}
		if !reflect.DeepEqual(got[id], want) {
			t.Errorf("execution %d: ActiveServices gives\n%+v\nServices gives\n%+v", id, got[id], want)
		}
	}
}

// testPlaceServices: placing sets the nodes and moves the services to
// starting with their events, all or nothing.
func testPlaceServices(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleAdmin)
	e := submit(t, st, "alice", "x", 3)
	other := submit(t, st, "alice", "y", 1)
	svs := must(st.Services(ctx, e.ID))(t)
	a, b, c := svs[0], svs[1], svs[2]
	otherSv := must(st.Services(ctx, other.ID))(t)[0]

	if got, err := st.PlaceServices(ctx, e.ID, nil); err != nil || got != nil {
		t.Fatalf("placing nothing: %v, %v", got, err)
	}
	v := mustVersion(t, st)
	placed := must(st.PlaceServices(ctx, e.ID, []state.Placement{
		{ServiceID: c.ID, Node: "node2", Reason: "placed c"},
		{ServiceID: a.ID, Node: "node1", Reason: "placed a"},
	}))(t)
	if len(placed) != 2 || placed[0].ID != c.ID || placed[1].ID != a.ID {
		t.Fatalf("placed %+v, want c then a", placed)
	}
	for i, node := range []string{"node2", "node1"} {
		got := must(st.GetService(ctx, placed[i].ID))(t)
		if !reflect.DeepEqual(got, placed[i]) || got.Status != state.ServiceStarting || got.Node != node {
			t.Errorf("stored %+v, returned %+v, want starting on %s", got, placed[i], node)
		}
	}
	if w := mustVersion(t, st); w <= v {
		t.Errorf("the version stayed at %d", v)
	}

	refusals := []struct {
		name  string
		exec  int64
		ps    []state.Placement
		cat   error
		parts []string
	}{
		{"already starting", e.ID, []state.Placement{{ServiceID: b.ID, Node: "n"}, {ServiceID: a.ID, Node: "n"}},
			sdk.ErrConflict, []string{fmt.Sprintf("service %d (%s) is starting", a.ID, a.Name)}},
		{"another execution's", e.ID, []state.Placement{{ServiceID: b.ID, Node: "n"}, {ServiceID: otherSv.ID, Node: "n"}},
			sdk.ErrNotFound, []string{fmt.Sprintf("service %d of execution %d", otherSv.ID, e.ID)}},
		{"unknown service", e.ID, []state.Placement{{ServiceID: 1 << 40, Node: "n"}, {ServiceID: b.ID, Node: "n"}},
			sdk.ErrNotFound, nil},
		{"unknown execution", 1 << 40, []state.Placement{{ServiceID: b.ID, Node: "n"}}, sdk.ErrNotFound, nil},
		{"no node", e.ID, []state.Placement{{ServiceID: b.ID}}, sdk.ErrInvalidArgument, []string{"without a node"}},
		{"twice", e.ID, []state.Placement{{ServiceID: b.ID, Node: "n"}, {ServiceID: b.ID, Node: "m"}},
			sdk.ErrInvalidArgument, []string{"placed twice"}},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			_, err := st.PlaceServices(ctx, tc.exec, tc.ps)
			wantErr(t, err, tc.cat, tc.parts...)
			// Nothing changed: b is still created and nowhere.
			if got := must(st.GetService(ctx, b.ID))(t); got.Status != state.ServiceCreated || got.Node != "" {
				t.Fatalf("after a refusal b is %s on %q", got.Status, got.Node)
			}
		})
	}
	if got := must(st.GetService(ctx, otherSv.ID))(t); got.Status != state.ServiceCreated || got.Node != "" {
		t.Fatalf("the other execution's service is %s on %q", got.Status, got.Node)
	}

	var steps []string
	for _, ev := range must(st.Events(ctx, e.ID))(t) {
		steps = append(steps, ev.ServiceName+":"+ev.From+">"+ev.To+":"+ev.Reason)
	}
	want := []string{":>submitted:submitted by alice", c.Name + ":created>starting:placed c",
		a.Name + ":created>starting:placed a"}
	if !slices.Equal(steps, want) {
		t.Fatalf("events\n%q\nwant\n%q", steps, want)
	}
}

// testRecordStarted: recording a start sets every field, the endpoints
// and running with its event in one step, only from starting.
func testRecordStarted(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleAdmin)
	e := submit(t, st, "alice", "x", 3)
	svs := must(st.Services(ctx, e.ID))(t)
	a, b, c := svs[0], svs[1], svs[2]
	must(st.PlaceServices(ctx, e.ID, []state.Placement{{ServiceID: a.ID, Node: "node1", Reason: "placed"},
		{ServiceID: c.ID, Node: "node1", Reason: "placed"}}))(t)
	// A service started again: its old exit code and endpoints go.
	must(st.UpdateService(ctx, a.ID, state.ServiceUpdate{ExitCode: ptr(3)}))(t)
	noErr(t, st.SetEndpoints(ctx, a.ID, []state.Endpoint{{Name: "old", Port: 1, Protocol: "tcp"}}))

	handle := state.Handle{Version: 4294967295, ID: "c0ffee", Data: []byte{0, 1, 0xff, 0xfe, '\n', '"', '{'}}
	eps := []state.Endpoint{
		{Name: "ui", Port: 4040, Protocol: "tcp", ExternalAddress: "192.0.2.1", ExternalPort: 31000, URL: "http://192.0.2.1:31000/"},
		{Name: "dns", Port: 53, Protocol: "udp"},
	}
	v := mustVersion(t, st)
	got := must(st.RecordStarted(ctx, a.ID, state.Started{Handle: handle, Node: "node2", IP: "10.0.0.7",
		BackendStatus: "running", Endpoints: eps, Reason: "started on node2"}))(t)
	if got.Status != state.ServiceRunning || got.BackendStatus != "running" || got.Node != "node2" ||
		got.IP != "10.0.0.7" || got.Handle.Version != handle.Version || got.Handle.ID != handle.ID ||
		!bytes.Equal(got.Handle.Data, handle.Data) || got.ExitCode != nil {
		t.Fatalf("recorded %+v", got)
	}
	if stored := must(st.GetService(ctx, a.ID))(t); !reflect.DeepEqual(stored, got) {
		t.Fatalf("stored %+v, returned %+v", stored, got)
	}
	if w := mustVersion(t, st); w <= v {
		t.Errorf("the version stayed at %d", v)
	}
	wantEps := []state.Endpoint{
		{ServiceID: a.ID, ServiceName: a.Name, Name: "dns", Port: 53, Protocol: "udp"},
		{ServiceID: a.ID, ServiceName: a.Name, Name: "ui", Port: 4040, Protocol: "tcp", ExternalAddress: "192.0.2.1",
			ExternalPort: 31000, URL: "http://192.0.2.1:31000/"},
	}
	if got := must(st.Endpoints(ctx, e.ID))(t); !slices.Equal(got, wantEps) {
		t.Fatalf("endpoints\n%+v\nwant\n%+v", got, wantEps)
	}

	refusals := []struct {
		name  string
		id    int64
		s     state.Started
		cat   error
		parts []string
	}{
		{"running", a.ID, state.Started{Node: "n"}, sdk.ErrConflict, []string{fmt.Sprintf("service %d (%s) is running", a.ID, a.Name)}},
		{"created", b.ID, state.Started{Node: "n"}, sdk.ErrConflict, []string{"is created"}},
		{"unknown", 1 << 40, state.Started{Node: "n"}, sdk.ErrNotFound, nil},
		{"bad endpoint", c.ID, state.Started{Node: "n", Endpoints: []state.Endpoint{{Name: "x", Port: 0, Protocol: "tcp"}}},
			sdk.ErrInvalidArgument, []string{"port out of range"}},
		{"two endpoints of a name", c.ID, state.Started{Node: "n", Endpoints: []state.Endpoint{
			{Name: "x", Port: 1, Protocol: "tcp"}, {Name: "x", Port: 2, Protocol: "tcp"}}},
			sdk.ErrInvalidArgument, []string{`two endpoints named "x"`}},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			_, err := st.RecordStarted(ctx, tc.id, tc.s)
			wantErr(t, err, tc.cat, tc.parts...)
		})
	}
	// Nothing changed.
	if got := must(st.GetService(ctx, a.ID))(t); got.Node != "node2" {
		t.Fatalf("a refusal changed the running service: %+v", got)
	}
	if got := must(st.GetService(ctx, c.ID))(t); got.Status != state.ServiceStarting || got.Node != "node1" {
		t.Fatalf("a refusal changed the starting service: %+v", got)
	}
	if got := must(st.Endpoints(ctx, e.ID))(t); len(got) != 2 {
		t.Fatalf("refusals changed the endpoints: %+v", got)
	}
	// No endpoints is fine.
	must(st.RecordStarted(ctx, c.ID, state.Started{Node: "node1", Reason: "adopted"}))(t)

	var steps []string
	for _, ev := range must(st.Events(ctx, e.ID))(t) {
		steps = append(steps, ev.ServiceName+":"+ev.From+">"+ev.To+":"+ev.Reason)
	}
	want := []string{":>submitted:submitted by alice", a.Name + ":created>starting:placed",
		c.Name + ":created>starting:placed", a.Name + ":starting>running:started on node2",
		c.Name + ":starting>running:adopted"}
	if !slices.Equal(steps, want) {
		t.Fatalf("events\n%q\nwant\n%q", steps, want)
	}
}

// testRecordStartedMany: services recorded together are each recorded as
// RecordStarted records one; one that is refused changes nothing and does
// not keep the others from being recorded.
func testRecordStartedMany(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleAdmin)
	e := submit(t, st, "alice", "x", 4)
	svs := must(st.Services(ctx, e.ID))(t)
	a, b, c, d := svs[0], svs[1], svs[2], svs[3]
	must(st.PlaceServices(ctx, e.ID, []state.Placement{{ServiceID: a.ID, Node: "node1", Reason: "placed"},
		{ServiceID: b.ID, Node: "node1", Reason: "placed"}, {ServiceID: c.ID, Node: "node1", Reason: "placed"}}))(t)
	must(st.RecordStarted(ctx, a.ID, state.Started{Node: "node1", Reason: "first"}))(t)

	out, errs, err := st.RecordStartedMany(ctx, nil)
	if err != nil || len(out) != 0 || len(errs) != 0 {
		t.Fatalf("no services: %v, %v, %v", out, errs, err)
	}
	handle := state.Handle{Version: 2, ID: "h-b", Data: []byte{0, 1}}
	eps := []state.Endpoint{{Name: "ui", Port: 80, Protocol: "tcp", ExternalAddress: "192.0.2.1", ExternalPort: 8080}}
	ss := []state.StartedService{
		{ServiceID: a.ID, Started: state.Started{Node: "n", Reason: "again"}},
		{ServiceID: b.ID, Started: state.Started{Handle: handle, Node: "node2", IP: "10.0.0.2", BackendStatus: "running",
			Endpoints: eps, Reason: "started b"}},
		{ServiceID: d.ID, Started: state.Started{Node: "n"}},
		{ServiceID: 1 << 40, Started: state.Started{Node: "n"}},
		{ServiceID: c.ID, Started: state.Started{Node: "n", Endpoints: []state.Endpoint{{Name: "x", Port: 0, Protocol: "tcp"}}}},
	}
	out, errs, err = st.RecordStartedMany(ctx, ss)
	noErr(t, err)
	if len(out) != len(ss) || len(errs) != len(ss) {
		t.Fatalf("%d services and %d errors for %d", len(out), len(errs), len(ss))
	}
	wantErr(t, errs[0], sdk.ErrConflict, fmt.Sprintf("service %d (%s) is running", a.ID, a.Name))
	noErr(t, errs[1])
	wantErr(t, errs[2], sdk.ErrConflict, "is created")
	wantErr(t, errs[3], sdk.ErrNotFound)
	wantErr(t, errs[4], sdk.ErrInvalidArgument, "port out of range")
	got := out[1]
	if got.ID != b.ID || got.Status != state.ServiceRunning || got.Node != "node2" || got.IP != "10.0.0.2" ||
		got.BackendStatus != "running" || got.Handle.ID != "h-b" || !bytes.Equal(got.Handle.Data, handle.Data) {
		t.Fatalf("recorded %+v", got)
	}
	if stored := must(st.GetService(ctx, b.ID))(t); !reflect.DeepEqual(stored, got) {
		t.Fatalf("stored %+v, returned %+v", stored, got)
	}
	for i, want := range []struct {
		sv     state.Service
		status state.ServiceStatus
		node   string
	}{{a, state.ServiceRunning, "node1"}, {c, state.ServiceStarting, "node1"}, {d, state.ServiceCreated, ""}} {
		if got := must(st.GetService(ctx, want.sv.ID))(t); got.Status != want.status || got.Node != want.node {
			t.Errorf("refused service %d changed: %+v", i, got)
		}
	}
	wantEps := []state.Endpoint{{ServiceID: b.ID, ServiceName: b.Name, Name: "ui", Port: 80, Protocol: "tcp",
		ExternalAddress: "192.0.2.1", ExternalPort: 8080}}
	if got := must(st.Endpoints(ctx, e.ID))(t); !slices.Equal(got, wantEps) {
		t.Fatalf("endpoints\n%+v\nwant\n%+v", got, wantEps)
	}
	// The refused one, recorded alone afterwards.
	out, errs, err = st.RecordStartedMany(ctx, []state.StartedService{{ServiceID: c.ID, Started: state.Started{Node: "node3",
		Reason: "started c"}}})
	noErr(t, err)
	noErr(t, errs[0])
	if out[0].Status != state.ServiceRunning || out[0].Node != "node3" {
		t.Fatalf("recorded %+v", out[0])
	}

	var steps []string
	for _, ev := range must(st.Events(ctx, e.ID))(t) {
		if ev.To == string(state.ServiceRunning) {
			steps = append(steps, ev.ServiceName+":"+ev.From+">"+ev.To+":"+ev.Reason)
		}
	}
	want := []string{a.Name + ":starting>running:first", b.Name + ":starting>running:started b",
		c.Name + ":starting>running:started c"}
	if !slices.Equal(steps, want) {
		t.Fatalf("events\n%q\nwant\n%q", steps, want)
	}
}

// testStartRace: stores racing to place overlapping sets of services and
// to record their starts: each service is placed once and recorded once.
func testStartRace(t *testing.T, h Harness) {
	st, loc := open(t, h)
	other := reopen(t, h, loc)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleAdmin)
	e := submit(t, st, "alice", "race", 4)
	svs := must(st.Services(ctx, e.ID))(t)
	var (
		wg              sync.WaitGroup
		mu              sync.Mutex
		placed          = map[int64]int{}
		recorded        = map[int64]int{}
		placeConflicts  int
		recordConflicts int
	)
	count := func(err error, wins map[int64]int, ids []int64, conflicts *int) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			for _, id := range ids {
				wins[id]++
			}
		case sdk.Category(err) == sdk.ErrConflict:
			*conflicts++
		default:
			t.Error(err)
		}
	}
	for i := range 20 {
		s := []state.Store{st, other}[i%2]
		// Writer i places two neighbours, then records the first.
		x, y := svs[i%4], svs[(i+1)%4]
		wg.Go(func() {
			_, err := s.PlaceServices(ctx, e.ID, []state.Placement{{ServiceID: x.ID, Node: "n"}, {ServiceID: y.ID, Node: "n"}})
			count(err, placed, []int64{x.ID, y.ID}, &placeConflicts)
			_, err = s.RecordStarted(ctx, x.ID, state.Started{Node: "n", Reason: fmt.Sprint("writer ", i)})
			count(err, recorded, []int64{x.ID}, &recordConflicts)
		})
	}
	wg.Wait()
	for _, sv := range svs {
		if placed[sv.ID] > 1 || recorded[sv.ID] > 1 {
			t.Errorf("service %s placed %d times, recorded %d times", sv.Name, placed[sv.ID], recorded[sv.ID])
		}
	}
	wantEvents := 1
	for _, n := range placed {
		wantEvents += n
	}
	for _, n := range recorded {
		wantEvents += n
	}
	if n := len(must(st.Events(ctx, e.ID))(t)); n != wantEvents || wantEvents == 1 {
		t.Fatalf("%d events, want %d (%d placements, %d records)", n, wantEvents, len(placed), len(recorded))
	}
	if len(placed)%2 != 0 || placeConflicts != 20-len(placed)/2 || recordConflicts != 20-len(recorded) {
		t.Fatalf("%d placed, %d records; %d and %d conflicts", len(placed), len(recorded), placeConflicts, recordConflicts)
	}
}
