package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/zoe-project/zoe/sdk/backend"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"32GiB", 32 << 30, false},
		{"1.5 GB", 1.5e9, false},
		{"512mib", 512 << 20, false},
		{"1048576", 1 << 20, false},
		{"2TiB", 2 << 40, false},
		{"7B", 7, false},
		{"", 0, true},
		{"GiB", 0, true},
		{"-1GiB", 0, true},
		{"1.5B", 0, true},
		{"8 parsecs", 0, true},
		{"99999999999TiB", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for in, want := range map[int64]string{0: "0 B", 1 << 30: "1 GiB", 1536 << 20: "1.5 GiB", 100: "100 B"} {
		if got := formatSize(in); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", in, got, want)
		}
	}
}

// records returns n events of the deployment "d", numbered from first.
func records(first, n int) []eventRecord {
	out := make([]eventRecord, n)
	for i := range out {
		out[i] = eventRecord{Seq: uint64(first + i), Deployment: "d",
			Event: backend.Event{Kind: backend.EventStarted, ServiceName: fmt.Sprint(first + i - 1)}}
	}
	return out
}

// A subscriber that falls hopelessly behind has its stream closed; the
// others carry on, and delivery never waits for it.
func TestHopelesslyBehindSubscriberIsClosed(t *testing.T) {
	f := newFeed(slog.New(slog.DiscardHandler))
	defer f.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	slow, err := f.subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := f.subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.begin("p", 0)
	got := 0
	// Batches read by fast but not by slow, until slow is more than
	// maxPending behind besides what its channel buffers.
	const batch = 1000
	for b := 0; b*batch <= maxPending+subscriberBuffer+1; b++ {
		f.deliver("p", records(b*batch+1, batch), "d")
		for range batch {
			select {
			case <-fast:
				got++
			case <-ctx.Done():
				t.Fatalf("the fast subscriber got %d events", got)
			}
		}
	}
	n := 0
	for range slow {
		n++
	}
	if n > maxPending {
		t.Errorf("the slow subscriber got %d events before its stream closed, more than %d", n, maxPending)
	}
}

// Events with no subscriber wait for the first one; later subscribers get
// only what comes after them, and an event seen twice is handed on once.
func TestBacklogGoesToTheNextSubscriber(t *testing.T) {
	f := newFeed(slog.New(slog.DiscardHandler))
	defer f.close()
	f.begin("p", 0)
	f.deliver("p", records(1, 3), "d")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, _ := f.subscribe(ctx)
	second, _ := f.subscribe(ctx)
	for i := range 3 {
		if e := <-first; e.ServiceName != fmt.Sprint(i) {
			t.Fatalf("backlog event %d = %+v", i, e)
		}
	}
	f.deliver("p", records(1, 4), "d")
	f.deliver("p", records(1, 4), "d") // seen twice: handed on once
	for _, ch := range []<-chan backend.Event{first, second} {
		if e := <-ch; e.ServiceName != "3" {
			t.Errorf("event %+v, want service 3", e)
		}
	}
	select {
	case e := <-first:
		t.Errorf("unexpected event %+v", e)
	case e := <-second:
		t.Errorf("unexpected event %+v", e)
	default:
	}
}

// With no subscriber for long, the next one gets the last maxBacklog
// events, in order.
func TestBacklogKeepsTheLastEvents(t *testing.T) {
	f := newFeed(slog.New(slog.DiscardHandler))
	defer f.close()
	f.begin("p", 0)
	const n = 5*maxBacklog/2 + 7
	for i := 1; i <= n; i += 1000 {
		f.deliver("p", records(i, min(1000, n-i+1)), "d")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, _ := f.subscribe(ctx)
	for i := n - maxBacklog; i < n; i++ {
		if e := <-ch; e.ServiceName != fmt.Sprint(i) {
			t.Fatalf("event %+v, want service %d", e, i)
		}
	}
	// The next event is the next one delivered: no more were kept.
	f.deliver("p", records(n+1, 1), "d")
	if e := <-ch; e.ServiceName != fmt.Sprint(n) {
		t.Errorf("event %+v after the backlog, want service %d", e, n)
	}
}

// A change replaces a service with a copy, which readers do not share: the
// copy must share nothing modifiable with the original.
func TestCloneIsDeep(t *testing.T) {
	s := &service{ID: "s", Name: "svc", Labels: map[string]string{"a": "b"},
		Ports: []backend.PublishedPort{{Port: 1}}, Logs: []logLine{{Line: "x"}}, State: backend.ServiceRunning}
	before, _ := json.Marshal(s)
	c := cloneService(s)
	if got, _ := json.Marshal(c); string(got) != string(before) {
		t.Fatalf("clone differs:\n%s\n%s", got, before)
	}
	c.Name, c.Labels["a"], c.Ports[0].Port, c.Logs[0].Line = "changed", "changed", 2, "changed"
	c.Logs = append(c.Logs, logLine{Line: "more"})
	if after, _ := json.Marshal(s); string(after) != string(before) {
		t.Errorf("changing the clone changed the original:\n%s\n%s", after, before)
	}
}

// The indexes follow every change: what a node reserves and publishes, the
// services by name, the running services of a network, the plans. Checked
// against what a scan of the services finds, after each step of a table of
// changes, and after the platform is encoded and read again.
func TestIndexesFollowChanges(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	svc := func(id, node string, state backend.ServiceState, cores float64, mem int64, port uint16, end time.Time) *service {
		s := &service{ID: id, Name: "n-" + id, Deployment: "d", Node: node, Network: "net1", State: state,
			Resources: backend.Resources{Cores: cores, MemoryReservation: mem}, EndAt: end}
		if port != 0 {
			s.Ports = []backend.PublishedPort{{Port: 80, HostPort: port}}
		}
		return s
	}
	steps := []struct {
		name string
		do   func(pl *platform)
	}{
		{"start a", func(pl *platform) { pl.put(svc("a", "n1", backend.ServiceRunning, 0.1, 1<<20, 30000, at)) }},
		{"start b", func(pl *platform) { pl.put(svc("b", "n1", backend.ServiceRunning, 0.2, 2<<20, 30001, time.Time{})) }},
		{"start c elsewhere", func(pl *platform) {
			pl.put(svc("c", "n2", backend.ServiceRunning, 1.5, 3<<20, 30000, at.Add(time.Hour)))
		}},
		{"a exits", func(pl *platform) { pl.put(svc("a", "n1", backend.ServiceExited, 0.1, 1<<20, 30000, at)) }},
		{"b grows", func(pl *platform) {
			pl.put(svc("b", "n1", backend.ServiceRunning, 0.7, 5<<20, 30001, at.Add(time.Minute)))
		}},
		{"a removed", func(pl *platform) { pl.drop("a") }},
		{"c vanishes", func(pl *platform) { pl.drop("c") }},
	}
	pl := emptyPlatform()
	pl.id = "p"
	for _, st := range steps {
		st.do(pl)
		checkIndexes(t, st.name, pl)
		b, err := json.Marshal(pl.snapshot())
		if err != nil {
			t.Fatal(err)
		}
		var snap snapshot
		if err := json.Unmarshal(b, &snap); err != nil {
			t.Fatal(err)
		}
		checkIndexes(t, st.name+", read again", fromSnapshot(&snap))
	}
}

func checkIndexes(t *testing.T, step string, pl *platform) {
	t.Helper()
	type use struct {
		nano, mem int64
		ports     []uint16
	}
	want := map[string]use{}
	wantNet := map[string]int{}
	var wantPlan []string
	for _, s := range pl.services {
		if pl.named(s.Deployment, s.Name) != s {
			t.Errorf("%s: %s is not found by its name", step, s.ID)
		}
		if s.State != backend.ServiceRunning {
			continue
		}
		u := want[s.Node]
		u.nano += nanoCores(s.Resources.Cores)
		u.mem += memoryOf(s.Resources)
		for _, p := range s.Ports {
			u.ports = append(u.ports, p.HostPort)
		}
		want[s.Node] = u
		wantNet[s.Network]++
		if _, _, ok := s.next(); ok {
			wantPlan = append(wantPlan, s.ID)
		}
	}
	for name, n := range pl.nodes {
		w := want[name]
		ports := slices.Sorted(maps.Keys(n.ports))
		slices.Sort(w.ports)
		if n.nanoCores != w.nano || n.memory != w.mem || !slices.Equal(ports, w.ports) {
			t.Errorf("%s: node %s has %d nanocores, %d bytes, ports %v; the services say %+v", step, name, n.nanoCores, n.memory, ports, w)
		}
	}
	for name := range want {
		if pl.nodes[name] == nil {
			t.Errorf("%s: node %s runs services but has no index", step, name)
		}
	}
	if !maps.Equal(pl.netRunning, wantNet) {
		t.Errorf("%s: running by network %v, want %v", step, pl.netRunning, wantNet)
	}
	var plans []string
	for _, p := range pl.plans {
		if pl.services[p.s.ID] == p.s {
			plans = append(plans, p.s.ID)
		}
	}
	slices.Sort(plans)
	slices.Sort(wantPlan)
	if !slices.Equal(plans, wantPlan) || pl.planned != len(wantPlan) {
		t.Errorf("%s: live plans %v (counted %d), want %v", step, plans, pl.planned, wantPlan)
	}
}
