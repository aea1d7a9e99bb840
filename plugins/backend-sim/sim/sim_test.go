package sim_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/plugins/backend-sim/sim"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

func TestPlacement(t *testing.T) {
	withNode := func(s backend.ServiceSpec, n string) backend.ServiceSpec { s.Node = n; return s }
	withRes := func(s backend.ServiceSpec, cores float64, mem int64) backend.ServiceSpec {
		s.Resources = backend.Resources{Cores: cores, MemoryReservation: mem}
		return s
	}
	withImage := func(s backend.ServiceSpec, img string) backend.ServiceSpec { s.Image = img; return s }
	withUser := func(s backend.ServiceSpec, user string, sec backend.Security) backend.ServiceSpec {
		s.User, s.Security = user, sec
		return s
	}
	tests := []struct {
		name     string
		noPull   bool
		before   []backend.ServiceSpec // started first, all must succeed
		spec     backend.ServiceSpec
		wantNode string
		wantErr  error
		wantText string
	}{
		{name: "named node", spec: withNode(spec("a"), "node2"), wantNode: "node2"},
		{name: "first node that fits", spec: spec("a"), wantNode: "node1"},
		{name: "next node when the first is full", before: []backend.ServiceSpec{withRes(spec("big"), 4, 1<<30)},
			spec: spec("a"), wantNode: "node2"},
		{name: "node labels are the scheduler's business", spec: withNode(spec("a"), "node2"), wantNode: "node2"},
		{name: "unknown node", spec: withNode(spec("a"), "nowhere"), wantErr: sdk.ErrNotFound},
		{name: "disabled node", spec: withNode(spec("a"), "off"), wantErr: sdk.ErrUnavailable},
		{name: "too many cores", spec: withNode(withRes(spec("a"), 3, 1), "node2"), wantErr: sdk.ErrResourceExhausted,
			wantText: `node "node2" has 2 of 2 cores`},
		{name: "too much memory", spec: withNode(withRes(spec("a"), 1, 5<<30), "node2"), wantErr: sdk.ErrResourceExhausted,
			wantText: "asks for 1 cores and 5 GiB"},
		{name: "full after others", before: []backend.ServiceSpec{withNode(withRes(spec("x"), 2, 1), "node2")},
			spec: withNode(spec("a"), "node2"), wantErr: sdk.ErrResourceExhausted},
		{name: "nothing fits anywhere", spec: withRes(spec("a"), 5, 1), wantErr: sdk.ErrResourceExhausted},
		{name: "exited services free their node",
			before: []backend.ServiceSpec{withNode(withRes(spec("x", "RUN=0s"), 2, 1), "node2")},
			spec:   withNode(spec("a"), "node2"), wantNode: "node2"},
		{name: "image missing without pull", noPull: true, spec: withNode(withImage(spec("a"), "new"), "node2"),
			wantErr: sdk.ErrNotFound, wantText: "image new is not on node node2"},
		{name: "image missing on every node without pull", noPull: true, spec: withImage(spec("a"), "new"), wantErr: sdk.ErrNotFound},
		{name: "node with the image without pull", noPull: true, spec: spec("a"), wantNode: "node1"},
		{name: "image missing with pull", spec: withNode(withImage(spec("a"), "new"), "node2"), wantNode: "node2"},
		{name: "unknown network", spec: func() backend.ServiceSpec { s := spec("a"); s.Network = "net-nope"; return s }(),
			wantErr: sdk.ErrNotFound},
		{name: "name taken", before: []backend.ServiceSpec{spec("a")}, spec: spec("a"), wantErr: sdk.ErrAlreadyExists},
		{name: "bad knob", spec: spec("a", "EXIT=300"), wantErr: sdk.ErrInvalidArgument, wantText: "ZOE_SIM_EXIT"},
		{name: "bad label knob", spec: func() backend.ServiceSpec {
			s := spec("a")
			s.Labels = map[string]string{"zoe.sim.run": "a while"}
			return s
		}(), wantErr: sdk.ErrInvalidArgument, wantText: "label zoe.sim.run"},
		{name: "no image", spec: withImage(spec("a"), ""), wantErr: sdk.ErrInvalidArgument},
		{name: "negative resources", spec: withRes(spec("a"), -1, 0), wantErr: sdk.ErrInvalidArgument},
		{name: "failure on demand", spec: spec("a", "FAIL=start"), wantErr: sdk.ErrInternal, wantText: "ZOE_SIM_FAIL=start"},
		{name: "the image's user without AllowRoot", spec: withUser(spec("a"), "", backend.Security{}),
			wantErr: sdk.ErrInvalidArgument, wantText: "may be root"},
		{name: "root without AllowRoot", spec: withUser(spec("a"), "0:0", backend.Security{}),
			wantErr: sdk.ErrInvalidArgument, wantText: "is root"},
		{name: "a user name", spec: withUser(spec("a"), "jovyan", backend.Security{AllowRoot: true}),
			wantErr: sdk.ErrInvalidArgument, wantText: "numeric"},
		{name: "root allowed", spec: withUser(spec("a"), "", backend.Security{AllowRoot: true}), wantNode: "node1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := open(t, stateFile(t), map[string]any{"pull_images": !tt.noPull})
			for _, b := range tt.before {
				start(t, p, b)
			}
			st, err := p.Start(ctxFor(t), tt.spec)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(fmt.Sprint(err), tt.wantText) {
					t.Fatalf("Start = %+v, %v; want %v with %q", st, err, tt.wantErr, tt.wantText)
				}
				if list, _ := p.List(ctxFor(t), backend.ListOptions{}); len(list) != len(tt.before) {
					t.Errorf("a failed Start left services behind: %+v", list)
				}
				return
			}
			if err != nil || st.Node != tt.wantNode || st.State != backend.ServiceRunning {
				t.Fatalf("Start = %+v, %v; want running on %s", st, err, tt.wantNode)
			}
		})
	}
}

func TestImagePull(t *testing.T) {
	p := open(t, stateFile(t), nil)
	events := subscribe(t, p)
	s := spec("a")
	s.Image, s.Node = "zoe/new:2", "node2"
	start(t, p, s)
	got := expect(t, events, "a", backend.EventImagePull, backend.EventImagePull, backend.EventStarted)
	if !strings.Contains(got[1].Message, "pulled image zoe/new:2 on node node2") {
		t.Errorf("pull event %+v", got[1])
	}
	nodes, err := p.Nodes(ctxFor(t))
	if err != nil || !slices.Contains(nodes[1].Images, "zoe/new:2") {
		t.Errorf("Nodes = %+v, %v; want node2 to have the pulled image", nodes, err)
	}
	// Pulled once: the next service on node2 starts without a pull.
	s.Name = "b"
	start(t, p, s)
	expect(t, events, "b", backend.EventStarted)
}

func TestRunThenExit(t *testing.T) {
	tests := []struct {
		name   string
		env    []string
		labels map[string]string
		code   int
	}{
		{name: "exit 0", env: []string{"RUN=150ms"}},
		{name: "exit 3", env: []string{"RUN=150ms", "EXIT=3"}, code: 3},
		{name: "from labels", labels: map[string]string{"zoe.sim.run": "150ms", "zoe.sim.exit": "42"}, code: 42},
		{name: "environment wins", env: []string{"RUN=150ms", "EXIT=7"}, labels: map[string]string{"zoe.sim.exit": "42"}, code: 7},
		{name: "default run", labels: map[string]string{"zoe.sim.exit": "1"}, code: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := open(t, stateFile(t), map[string]any{"default_run": "150ms"})
			events := subscribe(t, p)
			s := spec("svc", tt.env...)
			s.Labels = tt.labels
			st := start(t, p, s)
			expect(t, events, "svc", backend.EventStarted)
			e := expect(t, events, "svc", backend.EventExited)[0]
			if e.ExitCode != tt.code || e.HandleID != st.Handle.ID {
				t.Errorf("exited event %+v, want code %d of %s", e, tt.code, st.Handle.ID)
			}
			got := inspect(t, p, st.Handle)
			if got.State != backend.ServiceExited || got.ExitCode != tt.code || got.OOMKilled {
				t.Errorf("Inspect = %+v, want exited with %d", got, tt.code)
			}
			if ran := got.FinishedAt.Sub(got.StartedAt); ran != 150*time.Millisecond {
				t.Errorf("ran for %s, want exactly the planned 150ms", ran)
			}
		})
	}
}

func TestOOM(t *testing.T) {
	p := open(t, stateFile(t), nil)
	events := subscribe(t, p)
	st := start(t, p, spec("hog", "RUN=forever", "OOM=100ms"))
	got := expect(t, events, "hog", backend.EventStarted, backend.EventOOMKilled, backend.EventExited)
	if got[2].ExitCode != 137 {
		t.Errorf("exit event %+v, want 137", got[2])
	}
	if s := inspect(t, p, st.Handle); s.State != backend.ServiceExited || s.ExitCode != 137 || !s.OOMKilled {
		t.Errorf("Inspect = %+v, want exited 137, OOM-killed", s)
	}
	// A service that ends before its OOM time is not OOM-killed.
	start(t, p, spec("quick", "RUN=50ms", "OOM=1h"))
	expect(t, events, "quick", backend.EventStarted, backend.EventExited)
}

func TestStop(t *testing.T) {
	tests := []struct {
		name     string
		knobs    []string
		grace    time.Duration
		code     int
		minTaken time.Duration
	}{
		{name: "handles SIGTERM", grace: 5 * time.Second, code: 0},
		{name: "takes a while to stop", knobs: []string{"TERM_TIME=200ms"}, grace: 5 * time.Second, code: 0, minTaken: 200 * time.Millisecond},
		{name: "takes longer than the grace", knobs: []string{"TERM_TIME=1h"}, grace: 200 * time.Millisecond, code: 137, minTaken: 200 * time.Millisecond},
		{name: "ignores SIGTERM", knobs: []string{"IGNORE_TERM=1"}, grace: 300 * time.Millisecond, code: 137, minTaken: 300 * time.Millisecond},
		{name: "no grace", knobs: []string{"IGNORE_TERM=true"}, grace: 0, code: 137},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := open(t, stateFile(t), nil)
			events := subscribe(t, p)
			st := start(t, p, spec("svc", append([]string{"RUN=forever"}, tt.knobs...)...))
			expect(t, events, "svc", backend.EventStarted)
			began := time.Now()
			if err := p.Stop(ctxFor(t), st.Handle, tt.grace); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if taken := time.Since(began); taken < tt.minTaken {
				t.Errorf("Stop returned after %s, want at least %s", taken, tt.minTaken)
			}
			// Stop returns once the service has exited.
			if got := inspect(t, p, st.Handle); got.State != backend.ServiceExited || got.ExitCode != tt.code {
				t.Errorf("Inspect after Stop = %+v, want exited with %d", got, tt.code)
			}
			if e := expect(t, events, "svc", backend.EventExited)[0]; e.ExitCode != tt.code {
				t.Errorf("exited event %+v, want code %d", e, tt.code)
			}
			if err := p.Stop(ctxFor(t), st.Handle, tt.grace); err != nil {
				t.Errorf("Stop of an exited service: %v", err)
			}
		})
	}
}

// A Stop whose caller gives up still ends the service when its grace is
// over: the plan is in the platform, not in the call.
func TestStopOutlivesItsCaller(t *testing.T) {
	p := open(t, stateFile(t), nil)
	events := subscribe(t, p)
	st := start(t, p, spec("svc", "RUN=forever", "IGNORE_TERM=1"))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Stop(ctx, st.Handle, 300*time.Millisecond); !errors.Is(err, sdk.ErrDeadlineExceeded) {
		t.Errorf("Stop with a short deadline: %v, want sdk.ErrDeadlineExceeded", err)
	}
	if e := expect(t, events, "svc", backend.EventStarted, backend.EventExited)[1]; e.ExitCode != 137 {
		t.Errorf("exited event %+v, want 137", e)
	}
}

func TestLogs(t *testing.T) {
	p := open(t, stateFile(t), nil)
	st := start(t, p, spec("svc", "RUN=forever", "LOG=one|two"))
	lines := func(opts backend.LogOptions) []string {
		t.Helper()
		ch, err := p.Logs(ctxFor(t), st.Handle, opts)
		if err != nil {
			t.Fatalf("Logs: %v", err)
		}
		var out []string
		timeout := time.After(wait)
		for {
			select {
			case l, ok := <-ch:
				if !ok {
					return out
				}
				if l.Stream != backend.Stdout || l.Time.IsZero() {
					t.Errorf("log entry %+v", l)
				}
				out = append(out, string(l.Line))
			case <-timeout:
				t.Fatalf("log stream still open after %s; got %q", wait, out)
			}
		}
	}
	all := []string{"started svc on node1", "one", "two"}
	for _, tt := range []struct {
		name string
		tail int
		want []string
	}{
		{"all", 0, all},
		{"tail 1", 1, all[2:]},
		{"tail 2", 2, all[1:]},
		{"tail more than there is", 10, all},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := lines(backend.LogOptions{Tail: tt.tail}); !slices.Equal(got, tt.want) {
				t.Errorf("lines %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("follow", func(t *testing.T) {
		// Following gets what is there, then new lines, and ends when the
		// service does.
		ch, err := p.Logs(ctxFor(t), st.Handle, backend.LogOptions{Follow: true, Tail: 1})
		if err != nil {
			t.Fatal(err)
		}
		if l := <-ch; string(l.Line) != "two" {
			t.Fatalf("first followed line %q, want two", l.Line)
		}
		done := make(chan error, 1)
		go func() { done <- p.Stop(ctxFor(t), st.Handle, time.Second) }()
		var rest []string
		for l := range ch {
			rest = append(rest, string(l.Line))
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rest, []string{"received SIGTERM, exiting"}) {
			t.Errorf("followed lines %q", rest)
		}
	})
	t.Run("follow ends with the context", func(t *testing.T) {
		other := start(t, p, spec("other", "RUN=forever"))
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := p.Logs(ctx, other.Handle, backend.LogOptions{Follow: true})
		if err != nil {
			t.Fatal(err)
		}
		<-ch
		cancel()
		waitFor(t, "the followed stream to close", func() bool {
			select {
			case _, ok := <-ch:
				return !ok
			default:
				return false
			}
		})
	})
}

// A follower whose reader is slower than the service sends what its
// stream does not hold later, in order, and ends when the service does, or
// when its reader goes away.
func TestFollowMoreThanTheStreamHolds(t *testing.T) {
	p := open(t, stateFile(t), nil)
	var want []string
	for i := range 50 {
		want = append(want, fmt.Sprint("line ", i))
	}
	st := start(t, p, spec("chatty", "RUN=forever", "LOG="+strings.Join(want, "|")))
	want = append([]string{"started chatty on node1"}, want...)
	t.Run("to the end", func(t *testing.T) {
		ch, err := p.Logs(ctxFor(t), st.Handle, backend.LogOptions{Follow: true})
		if err != nil {
			t.Fatal(err)
		}
		// Nothing read until the service has stopped: the lines wait.
		if err := p.Stop(ctxFor(t), st.Handle, time.Second); err != nil {
			t.Fatal(err)
		}
		var got []string
		for l := range ch {
			got = append(got, string(l.Line))
		}
		if want := append(want, "received SIGTERM, exiting"); !slices.Equal(got, want) {
			t.Errorf("followed lines %q, want %q", got, want)
		}
	})
	t.Run("reader gone", func(t *testing.T) {
		other := start(t, p, spec("chatty2", "RUN=forever", "LOG="+strings.Join(want[1:], "|")))
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := p.Logs(ctx, other.Handle, backend.LogOptions{Follow: true})
		if err != nil {
			t.Fatal(err)
		}
		<-ch
		cancel()
		waitFor(t, "the stream to close", func() bool {
			for {
				select {
				case _, ok := <-ch:
					if !ok {
						return true
					}
				default:
					return false
				}
			}
		})
	})
}

func TestEventsFanOut(t *testing.T) {
	p := open(t, stateFile(t), nil)
	first, second := subscribe(t, p), subscribe(t, p)
	// A subscriber that never reads holds up nobody.
	if _, err := p.Events(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	const n = 100 // more than a subscriber's channel holds
	for i := range n {
		start(t, p, spec(fmt.Sprintf("svc-%03d", i), "RUN=0s"))
	}
	for _, events := range []<-chan backend.Event{first, second} {
		for i := range n {
			expect(t, events, fmt.Sprintf("svc-%03d", i), backend.EventStarted, backend.EventExited)
		}
	}
	// A subscriber that goes away has its stream closed.
	ctx, cancel := context.WithCancel(context.Background())
	gone, err := p.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	waitFor(t, "the cancelled stream to close", func() bool {
		select {
		case _, ok := <-gone:
			return !ok
		default:
			return false
		}
	})
}

func TestUpdate(t *testing.T) {
	tests := []struct {
		name    string
		res     backend.Resources
		exited  bool
		handle  string
		wantErr error
	}{
		{name: "grow within the node", res: backend.Resources{Cores: 1.5, MemoryReservation: 3 << 30}},
		{name: "shrink", res: backend.Resources{Cores: 0.5, MemoryReservation: 1 << 20}},
		{name: "more cores than the node has free", res: backend.Resources{Cores: 2.5}, wantErr: sdk.ErrResourceExhausted},
		{name: "more memory than the node has free", res: backend.Resources{Cores: 1, MemoryLimit: 4 << 30}, wantErr: sdk.ErrResourceExhausted},
		{name: "negative", res: backend.Resources{Cores: -1}, wantErr: sdk.ErrInvalidArgument},
		{name: "not running", res: backend.Resources{Cores: 1}, exited: true, wantErr: sdk.ErrConflict},
		{name: "unknown", res: backend.Resources{Cores: 1}, handle: "nope", wantErr: sdk.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := open(t, stateFile(t), nil)
			// node2 has 2 cores and 4 GiB; a neighbour takes 0.5 core and 1 GiB.
			neighbour := spec("neighbour", "RUN=forever")
			neighbour.Node, neighbour.Resources = "node2", backend.Resources{Cores: 0.5, MemoryReservation: 1 << 30}
			start(t, p, neighbour)
			s := spec("svc", "RUN=forever")
			s.Node = "node2"
			st := start(t, p, s)
			if tt.exited {
				if err := p.Kill(ctxFor(t), "svc"); err != nil {
					t.Fatal(err)
				}
			}
			h := st.Handle
			if tt.handle != "" {
				h = backend.Handle{ID: tt.handle}
			}
			err := p.Update(ctxFor(t), h, tt.res)
			wantCategory(t, "Update", err, tt.wantErr)
			nodes, nerr := p.Nodes(ctxFor(t))
			if nerr != nil {
				t.Fatal(nerr)
			}
			want := backend.Resources{Cores: 1, MemoryReservation: 1 << 30}
			switch {
			case tt.exited:
				want = backend.Resources{}
			case tt.wantErr == nil:
				want = tt.res
			}
			n := nodes[1]
			if n.CoresReserved != 0.5+want.Cores || n.MemoryReserved != 1<<30+want.MemoryReservation+want.MemoryLimit {
				t.Errorf("node2 reserves %v cores and %d bytes, want %v and %d", n.CoresReserved, n.MemoryReserved,
					0.5+want.Cores, 1<<30+want.MemoryReservation+want.MemoryLimit)
			}
		})
	}
}

func TestNodesReservations(t *testing.T) {
	p := open(t, stateFile(t), nil)
	a := spec("a", "RUN=forever")
	a.Resources = backend.Resources{Cores: 1.5, MemoryReservation: 1 << 30, MemoryLimit: 2 << 30}
	b := spec("b", "RUN=forever")
	b.Resources = backend.Resources{Cores: 1, MemoryLimit: 512 << 20} // no reservation: the limit counts
	start(t, p, a)
	start(t, p, b)
	nodes, err := p.Nodes(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := nodes[0]; n.Name != "node1" || n.CoresReserved != 2.5 || n.MemoryReserved != 1<<30+512<<20 {
		t.Errorf("node1 = %+v, want 2.5 cores and 1.5 GiB reserved", n)
	}
	if err := p.Kill(ctxFor(t), "a"); err != nil {
		t.Fatal(err)
	}
	nodes, _ = p.Nodes(ctxFor(t))
	if n := nodes[0]; n.CoresReserved != 1 || n.MemoryReserved != 512<<20 {
		t.Errorf("node1 after a exited = %+v, want 1 core and 512 MiB reserved", n)
	}
	if nodes[2].State != backend.NodeDisabled || nodes[1].State != backend.NodeReady {
		t.Errorf("node states %+v", nodes)
	}
}

func TestPorts(t *testing.T) {
	p := open(t, stateFile(t), nil)
	s := spec("a", "RUN=forever")
	s.Ports = []backend.Port{{Port: 8888, Protocol: "tcp", Name: "http"}, {Port: 53, Protocol: "udp"}}
	a := start(t, p, s)
	s.Name = "b"
	b := start(t, p, s)
	s.Name, s.Node = "c", "node2"
	c := start(t, p, s)
	seen := map[string]bool{}
	for _, st := range []backend.ServiceStatus{a, b} {
		for _, pp := range st.Ports {
			key := fmt.Sprint(pp.HostAddress, ":", pp.HostPort)
			if pp.HostAddress != "10.9.0.1" || pp.HostPort < 30000 || seen[key] {
				t.Errorf("%s publishes %+v: want a fresh port on node1's address", st.Name, pp)
			}
			seen[key] = true
		}
	}
	if c.Ports[0].HostAddress != "127.0.0.1" || c.Ports[0].HostPort != a.Ports[0].HostPort {
		t.Errorf("ports on node2 %+v: the same host ports are free on another node", c.Ports)
	}
	if a.Ports[1].Protocol != "udp" || a.Ports[0].Port != 8888 {
		t.Errorf("ports %+v", a.Ports)
	}
	// The ports of an exited service are free again.
	if err := p.Kill(ctxFor(t), "a"); err != nil {
		t.Fatal(err)
	}
	s.Name, s.Node = "d", "node1"
	if d := start(t, p, s); d.Ports[0].HostPort != a.Ports[0].HostPort {
		t.Errorf("d publishes %+v, want %d reused", d.Ports, a.Ports[0].HostPort)
	}
}

func TestNetworks(t *testing.T) {
	p := open(t, stateFile(t), nil)
	ctx := ctxFor(t)
	id, err := p.CreateNetwork(ctx, backend.NetworkSpec{Name: "exec-1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.CreateNetwork(ctx, backend.NetworkSpec{Name: "exec-1"})
	wantCategory(t, "second CreateNetwork", err, sdk.ErrAlreadyExists)
	_, err = p.CreateNetwork(ctx, backend.NetworkSpec{})
	wantCategory(t, "CreateNetwork without a name", err, sdk.ErrInvalidArgument)
	s := spec("svc", "RUN=forever")
	s.Network = id
	st := start(t, p, s)
	if !strings.HasPrefix(st.IP, "10.") {
		t.Errorf("IP on the network %q", st.IP)
	}
	wantCategory(t, "RemoveNetwork in use", p.RemoveNetwork(ctx, id), sdk.ErrConflict)
	if err := p.Stop(ctx, st.Handle, time.Second); err != nil {
		t.Fatal(err)
	}
	wantCategory(t, "RemoveNetwork", p.RemoveNetwork(ctx, id), nil)
	wantCategory(t, "RemoveNetwork again", p.RemoveNetwork(ctx, id), sdk.ErrNotFound)
}

func TestKillVanishRemove(t *testing.T) {
	p := open(t, stateFile(t), nil)
	events := subscribe(t, p)
	ctx := ctxFor(t)

	killed := start(t, p, spec("killed", "RUN=forever"))
	if err := p.Kill(ctx, "killed"); err != nil {
		t.Fatal(err)
	}
	if e := expect(t, events, "killed", backend.EventStarted, backend.EventExited)[1]; e.ExitCode != 137 {
		t.Errorf("exited event %+v, want 137", e)
	}
	wantCategory(t, "Kill of an exited service", p.Kill(ctx, "killed"), sdk.ErrNotFound)

	gone := start(t, p, spec("gone", "RUN=forever"))
	if err := p.Vanish(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	expect(t, events, "gone", backend.EventStarted, backend.EventVanished)
	_, err := p.Inspect(ctx, gone.Handle)
	wantCategory(t, "Inspect of a vanished service", err, sdk.ErrNotFound)

	start(t, p, spec("fades", "RUN=forever", "VANISH=100ms"))
	expect(t, events, "fades", backend.EventStarted, backend.EventVanished)

	running := start(t, p, spec("running", "RUN=forever"))
	wantCategory(t, "Remove of a running service", p.Remove(ctx, running.Handle, false), sdk.ErrConflict)
	wantCategory(t, "forced Remove", p.Remove(ctx, running.Handle, true), nil)
	if e := expect(t, events, "running", backend.EventStarted, backend.EventExited)[1]; e.ExitCode != 137 {
		t.Errorf("exited event of a forced removal %+v, want 137", e)
	}
	wantCategory(t, "Remove of an exited service", p.Remove(ctx, killed.Handle, false), nil)
	list, err := p.List(ctx, backend.ListOptions{})
	if err != nil || len(list) != 0 {
		t.Errorf("List = %+v, %v; want nothing left", list, err)
	}
}

func TestRecoverChecksTheHandle(t *testing.T) {
	p := open(t, stateFile(t), nil)
	st := start(t, p, spec("svc", "RUN=forever"))
	tests := []struct {
		name    string
		h       backend.Handle
		wantErr error
	}{
		{"handle from Start", st.Handle, nil},
		{"a newer plugin's version", backend.Handle{ID: st.Handle.ID, Version: 2, State: st.Handle.State}, sdk.ErrUnsupported},
		{"no version", backend.Handle{ID: st.Handle.ID, State: st.Handle.State}, sdk.ErrInvalidArgument},
		{"unreadable state", backend.Handle{ID: st.Handle.ID, Version: 1, State: []byte("{")}, sdk.ErrInvalidArgument},
		{"another service's state", backend.Handle{ID: st.Handle.ID, Version: 1, State: []byte(`{"name":"other"}`)}, sdk.ErrInvalidArgument},
		{"only the ID", backend.Handle{ID: st.Handle.ID}, nil},
		{"gone", backend.Handle{ID: "nope", Version: 1, State: st.Handle.State}, sdk.ErrNotFound},
		// The ID decides: what names nothing is not found, whatever the State.
		{"gone, only an ID", backend.Handle{ID: "nope"}, sdk.ErrNotFound},
		{"gone, unreadable state", backend.Handle{ID: "nope", Version: 1, State: []byte("{")}, sdk.ErrNotFound},
		{"gone, a newer plugin's version", backend.Handle{ID: "nope", Version: 2, State: st.Handle.State}, sdk.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.Recover(ctxFor(t), tt.h)
			wantCategory(t, "Recover", err, tt.wantErr)
			if err == nil && (got.Name != "svc" || got.State != backend.ServiceRunning || got.Handle.ID != st.Handle.ID) {
				t.Errorf("Recover = %+v", got)
			}
		})
	}
}

// Two instances on one state file are one platform: what one starts the
// other recovers, lists, counts and stops, and events reach the
// subscribers of both.
func TestInstancesShareThePlatform(t *testing.T) {
	path := stateFile(t)
	a, b := open(t, path, nil), open(t, path, nil)
	eventsA, eventsB := subscribe(t, a), subscribe(t, b)
	st := start(t, a, spec("svc", "RUN=forever"))
	for _, events := range []<-chan backend.Event{eventsA, eventsB} {
		expect(t, events, "svc", backend.EventStarted)
	}
	got, err := b.Recover(ctxFor(t), st.Handle)
	if err != nil || got.State != backend.ServiceRunning || got.Node != "node1" {
		t.Fatalf("Recover by the other instance = %+v, %v", got, err)
	}
	nodes, err := b.Nodes(ctxFor(t))
	if err != nil || nodes[0].CoresReserved != 1 {
		t.Errorf("the other instance's Nodes = %+v, %v; want node1 with 1 core reserved", nodes, err)
	}
	if err := b.Stop(ctxFor(t), st.Handle, time.Second); err != nil {
		t.Fatal(err)
	}
	for _, events := range []<-chan backend.Event{eventsA, eventsB} {
		expect(t, events, "svc", backend.EventExited)
	}
	// Ends planned by one instance are carried out once, whoever sees them.
	start(t, b, spec("short", "RUN=100ms"))
	for _, events := range []<-chan backend.Event{eventsA, eventsB} {
		expect(t, events, "short", backend.EventStarted, backend.EventExited)
	}
	select {
	case e := <-eventsA:
		t.Errorf("unexpected event %+v", e)
	default:
	}
}

// Deployments sharing a platform share its nodes but see only their own
// services and events.
func TestDeploymentsShareNodes(t *testing.T) {
	path := stateFile(t)
	prod, dev := openAs(t, path, "prod", nil), openAs(t, path, "dev", nil)
	devEvents := subscribe(t, dev)
	prodSvc := start(t, prod, spec("svc", "RUN=forever"))
	start(t, dev, spec("svc", "RUN=forever")) // the same name in another deployment
	if e := next(t, devEvents, "svc"); e.Kind != backend.EventStarted {
		t.Fatalf("dev event %+v", e)
	}
	for _, p := range []*sim.Plugin{prod, dev} {
		list, err := p.List(ctxFor(t), backend.ListOptions{})
		if err != nil || len(list) != 1 {
			t.Errorf("List = %+v, %v; want one service", list, err)
		}
		nodes, _ := p.Nodes(ctxFor(t))
		if nodes[0].CoresReserved != 2 {
			t.Errorf("node1 reserves %v cores, want 2 (both deployments)", nodes[0].CoresReserved)
		}
	}
	select {
	case e := <-devEvents:
		t.Errorf("dev sees another deployment's event %+v", e)
	default:
	}
	// prod's handle names nothing to dev.
	if _, err := dev.Inspect(ctxFor(t), prodSvc.Handle); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("dev's Inspect of prod's service: %v, want not found", err)
	}
	if err := dev.Stop(ctxFor(t), prodSvc.Handle, time.Second); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("dev's Stop of prod's service: %v, want not found", err)
	}
	if st, err := prod.Inspect(ctxFor(t), prodSvc.Handle); err != nil || st.State != backend.ServiceRunning {
		t.Errorf("prod's service after dev's calls: %+v, %v; want it running", st, err)
	}
}

// The platform outlives its plugin: a new instance finds what an earlier
// one started, and the ends that passed while no instance ran are carried
// out, with their codes and times, and reported to the first subscriber.
func TestStateSurvivesTheInstance(t *testing.T) {
	path := stateFile(t)
	first := sim.New(testLogger(t))
	if err := first.Configure(t.Context(), sdk.Config{JSON: block(t, path, nil), Deployment: "test"}); err != nil {
		t.Fatal(err)
	}
	long := start(t, first, spec("long", "RUN=forever"))
	short := start(t, first, spec("short", "RUN=200ms", "EXIT=4"))
	_ = first.Close(t.Context())
	end := short.StartedAt.Add(200 * time.Millisecond)
	waitFor(t, "the short service's end to pass", func() bool { return time.Now().After(end) })

	second := open(t, path, nil)
	events := subscribe(t, second)
	e := next(t, events, "short")
	if e.Kind != backend.EventExited || e.ExitCode != 4 || !e.Time.Equal(end) {
		t.Errorf("first event after the restart %+v, want exited with 4 at %s", e, end)
	}
	if got := inspect(t, second, short.Handle); got.State != backend.ServiceExited || got.ExitCode != 4 || !got.FinishedAt.Equal(end) {
		t.Errorf("Inspect of the short service = %+v", got)
	}
	if got, err := second.Recover(ctxFor(t), long.Handle); err != nil || got.State != backend.ServiceRunning {
		t.Errorf("Recover of the long service = %+v, %v", got, err)
	}
	// Configure again: the same platform, and no event twice.
	if err := second.Configure(t.Context(), sdk.Config{JSON: block(t, path, nil), Deployment: "test"}); err != nil {
		t.Fatal(err)
	}
	start(t, second, spec("after", "RUN=0s"))
	expect(t, events, "after", backend.EventStarted, backend.EventExited)
	select {
	case e := <-events:
		t.Errorf("unexpected event %+v", e)
	default:
	}
}

// A node left out of the configuration has left the cluster: its services
// vanish when the plugin is next configured.
func TestRemovedNodeVanishesItsServices(t *testing.T) {
	path := stateFile(t)
	first := open(t, path, nil)
	s := spec("svc", "RUN=forever")
	s.Node = "node2"
	st := start(t, first, s)
	nodes := testNodes()
	delete(nodes, "node2")
	second := open(t, path, map[string]any{"node": nodes})
	expect(t, subscribe(t, second), "svc", backend.EventVanished)
	_, err := second.Inspect(ctxFor(t), st.Handle)
	wantCategory(t, "Inspect", err, sdk.ErrNotFound)
}

func TestStartDelay(t *testing.T) {
	p := open(t, stateFile(t), nil)
	began := time.Now()
	start(t, p, spec("slow", "START_DELAY=200ms"))
	if taken := time.Since(began); taken < 200*time.Millisecond {
		t.Errorf("Start took %s, want at least 200ms", taken)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := p.Start(ctx, spec("slower", "START_DELAY=1h"))
	wantCategory(t, "Start past its deadline", err, sdk.ErrDeadlineExceeded)
}

func TestUnconfigured(t *testing.T) {
	p := sim.New(nil)
	ctx := ctxFor(t)
	_, err := p.Events(ctx)
	wantCategory(t, "Events", err, sdk.ErrUnavailable)
	_, err = p.Start(ctx, spec("a"))
	wantCategory(t, "Start", err, sdk.ErrUnavailable)
	_, err = p.List(ctx, backend.ListOptions{})
	wantCategory(t, "List", err, sdk.ErrUnavailable)
}

// A writer killed between writing its temporary file and renaming it
// leaves the file behind; the next Configure removes it.
func TestStaleTemporaryFilesAreRemoved(t *testing.T) {
	path := stateFile(t)
	stale := path + ".tmp-12345"
	if err := os.WriteFile(stale, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	open(t, path, nil)
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary file: %v, want it removed", err)
	}
}
