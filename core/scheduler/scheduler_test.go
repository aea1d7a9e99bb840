package scheduler

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk/backend"
)

func TestPolicyOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	withSize := func(e Execution, size int64) Execution { e.Size = size; return e }
	tried := func(e Execution, ago time.Duration) Execution { e.LastTried = t0.Add(-ago); return e }
	small := func(id int64) Execution { return exe(id, ess("a", 1, 1)) }
	tests := []struct {
		name   string
		policy Policy
		nodes  []Node
		queue  []Execution
		starts []string
		wait   []string // "id: reason"
	}{
		{name: "FIFO keeps the input order", policy: FIFO,
			queue: []Execution{withSize(small(3), 1), withSize(small(1), 2), withSize(small(2), 0)},
			wait:  []string{"3: no ready node", "1: no ready node", "2: no ready node"}},
		{name: "empty policy is FIFO",
			queue: []Execution{withSize(small(2), 9), withSize(small(1), 1)},
			wait:  []string{"2: no ready node", "1: no ready node"}},
		{name: "SIZE ascending and stable", policy: Size,
			queue: []Execution{withSize(small(1), 5), withSize(small(2), 1), withSize(small(3), 5), withSize(small(4), 0)},
			wait:  []string{"4: no ready node", "2: no ready node", "1: no ready node", "3: no ready node"}},
		{name: "FIFO starts the first", policy: FIFO, nodes: []Node{node("n", 4, 8)},
			queue:  []Execution{withSize(exe(1, ess("a", 4, 1)), 10), withSize(exe(2, ess("a", 4, 1)), 1)},
			starts: []string{"1/a@n"}, wait: []string{"2: needs 4 cores, at most 0 free on a node"}},
		{name: "SIZE starts the smallest", policy: Size, nodes: []Node{node("n", 4, 8)},
			queue:  []Execution{withSize(exe(1, ess("a", 4, 1)), 10), withSize(exe(2, ess("a", 4, 1)), 1)},
			starts: []string{"2/a@n"}, wait: []string{"1: needs 4 cores, at most 0 free on a node"}},
		{name: "DYNSIZE ages and resets", policy: DynSize,
			queue: []Execution{
				// initial 2 cores × 1 GiB = 2 GiB; never tried: no aging.
				exe(2, ess("a", 1, 1), ess("b", 1, 0)),
				// 1 GiB − 3 s × 256 MiB = 256 MiB.
				tried(withSize(exe(1, ess("a", 8, 32)), 1*gib), 3*time.Second),
				// 300 MiB − 2 s × 256 MiB < 0: back to 1 core × 1 GiB.
				tried(withSize(exe(3, ess("a", 1, 1)), 300<<20), 2*time.Second),
			},
			wait: []string{"1: no ready node", "3: no ready node", "2: no ready node"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := schedule(t, Input{Now: t0, Policy: tc.policy, Nodes: tc.nodes, Executions: tc.queue})
			check(t, "starts", placed(d), append([]string{}, tc.starts...))
			check(t, "waiting", waiting(d), tc.wait)
		})
	}
}

func TestDynSize(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	svcs := []Service{ess("a", 2, 4)} // initial: 2 × 4 GiB
	initial := int64(8 * gib)
	tests := []struct {
		name  string
		size  int64
		ago   time.Duration // 0: never tried
		want  int64
		never bool
	}{
		{name: "not computed yet", size: 0, want: initial},
		{name: "never tried: no aging", size: 100, want: 100},
		{name: "10 s of aging", size: initial, ago: 10 * time.Second, want: initial - 10*AgingPerSecond},
		{name: "fractional seconds", size: initial, ago: 1500 * time.Millisecond, want: initial - 384<<20},
		{name: "exactly zero resets", size: AgingPerSecond, ago: time.Second, want: initial},
		{name: "below zero resets", size: initial, ago: 40 * time.Second, want: initial},
		{name: "clock behind last try: no aging", size: 100, ago: -time.Minute, want: 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := Execution{ID: 1, Size: tc.size, Services: svcs}
			if tc.ago != 0 {
				e.LastTried = t0.Add(-tc.ago)
			}
			d := schedule(t, Input{Now: t0, Policy: DynSize, Executions: []Execution{e}})
			if got := d.Waiting[0].Size; got != tc.want {
				t.Errorf("size %d, want %d", got, tc.want)
			}
		})
	}
	if got := InitialSize(svcs); got != initial {
		t.Errorf("InitialSize %d, want %d", got, initial)
	}
	if got := InitialSize([]Service{{Cores: 1e9, Memory: math.MaxInt64}}); got != math.MaxInt64 {
		t.Errorf("InitialSize does not saturate: %d", got)
	}
}

func TestPlacement(t *testing.T) {
	three := []Service{ess("a", 1, 1), ess("b", 1, 1), ess("c", 1, 1)}
	busy := func(n Node, c int) Node { n.Containers = c; return n }
	tests := []struct {
		name      string
		placement Placement
		nodes     []Node
		queue     []Execution
		starts    []string
	}{
		{name: "average spreads", placement: Average,
			nodes:  []Node{node("n3", 8, 16), node("n1", 8, 16), node("n2", 8, 16)},
			queue:  []Execution{exe(1, three...)},
			starts: []string{"1/a@n1", "1/b@n2", "1/c@n3"}},
		{name: "average: fewest containers first", placement: Average,
			nodes:  []Node{busy(node("n1", 8, 16), 2), node("n2", 8, 16), node("n3", 8, 16)},
			queue:  []Execution{exe(1, three...)},
			starts: []string{"1/a@n2", "1/b@n3", "1/c@n2"}},
		{name: "empty placement is average",
			nodes:  []Node{node("n1", 8, 16), node("n2", 8, 16)},
			queue:  []Execution{exe(1, ess("a", 1, 1), ess("b", 1, 1))},
			starts: []string{"1/a@n1", "1/b@n2"}},
		{name: "waterfill packs", placement: Waterfill,
			nodes:  []Node{node("n1", 8, 16), node("n2", 8, 16), node("n3", 8, 16)},
			queue:  []Execution{exe(1, three...)},
			starts: []string{"1/a@n1", "1/b@n1", "1/c@n1"}},
		{name: "waterfill: most containers first, then the next", placement: Waterfill,
			nodes:  []Node{node("n1", 8, 16), busy(node("n2", 2, 16), 1), node("n3", 8, 16)},
			queue:  []Execution{exe(1, three...)},
			starts: []string{"1/a@n2", "1/b@n2", "1/c@n1"}},
		{name: "average keeps labelled nodes free", placement: Average,
			nodes:  []Node{node("gpu1", 64, 256, "gpu"), busy(node("plain", 8, 16), 5)},
			queue:  []Execution{exe(1, three...)},
			starts: []string{"1/a@plain", "1/b@plain", "1/c@plain"}},
		{name: "waterfill keeps labelled nodes free", placement: Waterfill,
			nodes:  []Node{busy(node("gpu1", 64, 256, "gpu"), 9), node("plain", 8, 16)},
			queue:  []Execution{exe(1, three...)},
			starts: []string{"1/a@plain", "1/b@plain", "1/c@plain"}},
		{name: "fewer labels win over more free room", placement: Average,
			nodes:  []Node{node("b", 64, 256, "gpu", "ssd"), node("a", 64, 256, "gpu"), node("c", 64, 256, "gpu")},
			queue:  []Execution{exe(1, ess("x", 1, 1, "gpu"))},
			starts: []string{"1/x@a"}},
		{name: "random only picks fitting nodes", placement: Random,
			nodes: []Node{used(node("n1", 8, 16), 8, 0), node("n2", 8, 16), used(node("n3", 8, 16), 0, 16),
				used(node("n4", 8, 16), 7.5, 0)},
			queue:  []Execution{exe(1, three...)},
			starts: []string{"1/a@n2", "1/b@n2", "1/c@n2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := schedule(t, Input{Placement: tc.placement, Nodes: tc.nodes, Executions: tc.queue})
			check(t, "starts", placed(d), tc.starts)
		})
	}
}

func TestRandomPlacementDeterministic(t *testing.T) {
	var nodes []Node
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		nodes = append(nodes, node(n, 64, 256))
	}
	var svcs []Service
	for _, n := range []string{"s1", "s2", "s3", "s4", "s5", "s6"} {
		svcs = append(svcs, ess(n, 1, 1))
	}
	in := func(seed uint64) Input {
		return Input{Placement: Random, Seed: seed, Nodes: nodes, Executions: []Execution{exe(1, svcs...)}}
	}
	seen := map[string]bool{}
	for seed := uint64(0); seed < 20; seed++ {
		a := strings.Join(placed(schedule(t, in(seed))), " ")
		b := strings.Join(placed(schedule(t, in(seed))), " ")
		if a != b {
			t.Fatalf("seed %d: %s then %s", seed, a, b)
		}
		seen[a] = true
	}
	if len(seen) < 10 {
		t.Errorf("20 seeds gave only %d different placements", len(seen))
	}
	// The node order of the input does not matter.
	rev := in(7)
	rev.Nodes = append([]Node(nil), nodes...)
	for i, j := 0, len(rev.Nodes)-1; i < j; i, j = i+1, j-1 {
		rev.Nodes[i], rev.Nodes[j] = rev.Nodes[j], rev.Nodes[i]
	}
	check(t, "reversed nodes", placed(schedule(t, rev)), placed(schedule(t, in(7))))
}

func TestLabels(t *testing.T) {
	tests := []struct {
		name   string
		nodes  []Node
		svc    Service
		starts []string
		wait   []string
	}{
		{name: "all labels needed", svc: ess("x", 1, 1, "gpu", "ssd"),
			nodes:  []Node{node("a", 8, 16, "gpu"), node("b", 8, 16, "ssd"), node("c", 8, 16, "ssd", "x", "gpu")},
			starts: []string{"1/x@c"}},
		{name: "repeated labels", svc: ess("x", 1, 1, "gpu", "gpu"),
			nodes: []Node{node("a", 8, 16), node("b", 8, 16, "gpu", "gpu")}, starts: []string{"1/x@b"}},
		{name: "no label needed: any node", svc: ess("x", 1, 1),
			nodes: []Node{node("a", 8, 16, "gpu")}, starts: []string{"1/x@a"}},
		{name: "a subset is not enough", svc: ess("x", 1, 1, "gpu", "ssd"),
			nodes: []Node{node("a", 8, 16, "gpu"), node("b", 8, 16, "ssd")},
			wait:  []string{"1: requires labels [gpu ssd] that no ready node has"}},
		{name: "labels only on a disabled node", svc: ess("x", 1, 1, "gpu"),
			nodes: []Node{{Name: "a", Cores: 8, Memory: 16 * gib, Labels: []string{"gpu"}, State: backend.NodeDisabled}},
			wait:  []string{"1: requires labels [gpu] that no ready node has"}},
		{name: "full labelled node", svc: ess("x", 2, 1, "gpu"),
			nodes: []Node{used(node("a", 8, 16, "gpu"), 7, 0), node("b", 8, 16)},
			wait:  []string{"1: needs 2 cores, at most 1 free on a node with labels [gpu]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := schedule(t, Input{Nodes: tc.nodes, Executions: []Execution{exe(1, tc.svc)}})
			check(t, "starts", placed(d), append([]string{}, tc.starts...))
			check(t, "waiting", waiting(d), append([]string{}, tc.wait...))
		})
	}
}

func TestNodeStates(t *testing.T) {
	with := func(st backend.NodeState, labels ...string) Node {
		n := node("a", 8, 16, labels...)
		n.State = st
		return n
	}
	tests := []struct {
		name  string
		nodes []Node
		want  string
	}{
		{"ready", []Node{with(backend.NodeReady)}, "1/x@a"},
		{"unreachable", []Node{with(backend.NodeUnreachable)}, ""},
		{"disabled (draining)", []Node{with(backend.NodeDisabled)}, ""},
		{"unknown state", []Node{with("")}, ""},
		{"label disabled", []Node{with(backend.NodeReady, "disabled")}, ""},
		{"label disabled among others", []Node{with(backend.NodeReady, "gpu", DisabledLabel)}, ""},
		{"skips a disabled node for a ready one", []Node{with(backend.NodeDisabled), node("b", 1, 1)}, "1/x@b"},
		{"skips an unreachable node", []Node{with(backend.NodeUnreachable), node("b", 1, 1)}, "1/x@b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := schedule(t, Input{Nodes: tc.nodes, Executions: []Execution{exe(1, ess("x", 1, 1))}})
			got := strings.Join(placed(d), " ")
			if got != tc.want {
				t.Errorf("starts %q, want %q", got, tc.want)
			}
			if tc.want == "" && (len(d.Waiting) != 1 || d.Waiting[0].Reason.String() != "no ready node" ||
				!d.Waiting[0].Unplaceable) {
				t.Errorf("waiting %v", waiting(d))
			}
		})
	}
}

func TestFitRule(t *testing.T) {
	tenth := make([]Service, 10)
	for i := range tenth {
		tenth[i] = ess(string(rune('a'+i)), 0.1, 0)
	}
	tests := []struct {
		name   string
		nodes  []Node
		queue  []Execution
		starts int
		wait   []string
	}{
		// The original's strict < on memory refused an exact fit.
		{name: "exact fit is a fit", nodes: []Node{node("n", 4, 8)},
			queue: []Execution{exe(1, ess("a", 4, 8))}, starts: 1},
		{name: "reserved counts", nodes: []Node{used(node("n", 4, 8), 0.5, 0)},
			queue: []Execution{exe(1, ess("a", 4, 8))},
			wait:  []string{"1: needs 4 cores, at most 3.5 free on a node"}},
		{name: "memory reserved counts", nodes: []Node{used(node("n", 4, 8), 0, 7)},
			queue: []Execution{exe(1, ess("a", 1, 2))},
			wait:  []string{"1: needs 2 GiB of memory, at most 1 GiB free on a node"}},
		{name: "tenths of cores add up exactly", nodes: []Node{node("n", 1, 1)},
			queue: []Execution{exe(1, tenth...)}, starts: 10},
		{name: "over-committed node takes nothing", nodes: []Node{used(node("n", 4, 8), 5, 0)},
			queue: []Execution{exe(1, ess("a", 0, 0))},
			wait:  []string{"1: needs 0 cores, at most 0 free on a node"}},
		{name: "cores and memory on one node", nodes: []Node{used(node("a", 8, 8), 0, 6), used(node("b", 8, 8), 6, 0)},
			queue: []Execution{exe(1, ess("x", 4, 4))},
			wait:  []string{"1: needs 4 cores and 4 GiB of memory on one node; no such node has both free"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := schedule(t, Input{Nodes: tc.nodes, Executions: tc.queue})
			if len(d.Starts) != tc.starts {
				t.Errorf("starts %v, want %d", placed(d), tc.starts)
			}
			check(t, "waiting", waiting(d), append([]string{}, tc.wait...))
		})
	}
}

func TestEssentialAllOrNothing(t *testing.T) {
	t.Run("partial fit places nothing", func(t *testing.T) {
		// a fits on n1, b then fits nowhere: a is undone. With backfill, 2
		// takes what n1 has beyond the room held for a.
		d := schedule(t, Input{Backfill: true, Nodes: []Node{node("n1", 4, 16), used(node("n2", 4, 16), 2, 0)},
			Executions: []Execution{
				exe(1, ess("a", 2, 1), ess("b", 4, 1), ela("e", 1, 1)),
				exe(2, ess("c", 2, 1)),
			}})
		check(t, "starts", placed(d), []string{"2/c@n1"})
		together := "fits alone, but not together with the execution's other essential services (all or nothing)"
		check(t, "waiting", waiting(d), []string{"1: " + together})
		w := d.Waiting[0]
		if w.Started || w.Unplaceable || len(w.Services) != 2 || w.Services[1].Reason.String() != together {
			t.Fatalf("waiting %+v", w)
		}
		want := &Hold{Execution: 1, Nodes: []HeldNode{{"n1", 2, gib}, {"n2", 4, gib}}}
		if !reflect.DeepEqual(d.Held, want) {
			t.Errorf("held %+v, want %+v", d.Held, want)
		}
	})
	t.Run("strict: the tentative placement is undone", func(t *testing.T) {
		d := schedule(t, Input{Nodes: []Node{node("n1", 4, 16), used(node("n2", 4, 16), 2, 0)}, Executions: []Execution{
			exe(1, ess("a", 2, 1), ess("b", 4, 1)),
		}})
		check(t, "starts", placed(d), []string{})
		check(t, "waiting", waiting(d), []string{"1: fits alone, but not together with the execution's other essential services (all or nothing)"})
		if got := d.Waiting[0].Services[1].Reason.String(); got != "fits alone, but not together with the execution's other essential services (all or nothing)" {
			t.Errorf("b: %s", got)
		}
	})
	t.Run("a set that can never fit does not hold the queue", func(t *testing.T) {
		d := schedule(t, Input{Nodes: []Node{node("n", 4, 16)}, Executions: []Execution{
			exe(1, ess("a", 3, 1), ess("b", 3, 1)),
			exe(2, ess("c", 3, 1)),
		}})
		check(t, "starts", placed(d), []string{"2/c@n"})
		check(t, "waiting", waiting(d), []string{"1: its essential services cannot all fit on the ready nodes, even empty"})
		if !d.Waiting[0].Unplaceable {
			t.Error("not unplaceable")
		}
	})
	t.Run("a running execution's placed essentials are not placed again", func(t *testing.T) {
		d := schedule(t, Input{Nodes: []Node{used(node("n", 4, 16), 4, 0), node("m", 1, 16)}, Executions: []Execution{
			exe(1, on(ess("a", 4, 1), "n"), ess("b", 1, 1)),
		}})
		check(t, "starts", placed(d), []string{"1/b@m"})
	})
}

func TestElasticFill(t *testing.T) {
	tests := []struct {
		name     string
		backfill bool
		nodes    []Node
		queue    []Execution
		starts   []string
		wait     []string
	}{
		{name: "greedy and partial", nodes: []Node{node("n", 4, 16)},
			queue:  []Execution{exe(1, ess("a", 1, 1), ela("e1", 2, 1), ela("e2", 2, 1), ela("e3", 1, 1))},
			starts: []string{"1/a@n", "1/e1@n", "1/e3@n"},
			wait:   []string{"1: needs 2 cores, at most 0 free on a node"}},
		{name: "running execution gets its elastic services",
			nodes:  []Node{used(node("n", 4, 16), 1, 1)},
			queue:  []Execution{exe(1, on(ess("a", 1, 1), "n"), on(ela("e1", 1, 1), "n"), ela("e2", 1, 1))},
			starts: []string{"1/e2@n"}},
		{name: "elastic services after every essential", nodes: []Node{node("n", 3, 16)},
			queue:  []Execution{exe(1, ess("a", 1, 1), ela("e", 2, 1)), exe(2, ess("b", 2, 1))},
			starts: []string{"1/a@n", "2/b@n"},
			wait:   []string{"1: needs 2 cores, at most 0 free on a node"}},
		{name: "waiting elastic services never block the queue", nodes: []Node{used(node("n", 4, 16), 2, 1)},
			queue:  []Execution{exe(1, on(ess("a", 2, 1), "n"), ela("e", 8, 1)), exe(2, ess("b", 2, 1))},
			starts: []string{"2/b@n"},
			wait:   []string{"1: needs 8 cores, more than any node has (at most 4)"}},
		{name: "strict: elastic services behind the head wait",
			nodes: []Node{used(node("n", 4, 16), 2, 1)},
			queue: []Execution{exe(1, ess("big", 4, 1)), exe(2, on(ess("a", 2, 1), "n"), ela("e", 1, 1))},
			wait:  []string{"1: needs 4 cores, at most 2 free on a node", "2: waiting behind execution 1 (strict order)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := schedule(t, Input{Backfill: tc.backfill, Nodes: tc.nodes, Executions: tc.queue})
			check(t, "starts", placed(d), append([]string{}, tc.starts...))
			check(t, "waiting", waiting(d), append([]string{}, tc.wait...))
		})
	}
}

func TestStrictAndBackfill(t *testing.T) {
	// n1 and n2 run other things; the head needs a whole node.
	nodes := []Node{used(node("n1", 4, 16), 3, 0), used(node("n2", 4, 16), 2, 0)}
	queue := []Execution{
		exe(1, ess("big", 4, 1)),
		exe(2, ess("one", 1, 1)),
		exe(3, ess("two", 2, 1)),
	}
	t.Run("strict", func(t *testing.T) {
		d := schedule(t, Input{Nodes: nodes, Executions: queue})
		check(t, "starts", placed(d), []string{})
		check(t, "waiting", waiting(d), []string{"1: needs 4 cores, at most 2 free on a node",
			"2: waiting behind execution 1 (strict order)", "3: waiting behind execution 1 (strict order)"})
		if d.Held != nil {
			t.Errorf("held %+v", d.Held)
		}
	})
	t.Run("backfill", func(t *testing.T) {
		d := schedule(t, Input{Backfill: true, Nodes: nodes, Executions: queue})
		// The head holds n2 (least to free); 2 fits on n1 next to it; 3
		// would fit only on what n2 holds for 1.
		check(t, "starts", placed(d), []string{"2/one@n1"})
		check(t, "waiting", waiting(d), []string{"1: needs 4 cores, at most 2 free on a node",
			"3: fits only on room held for execution 1, which backfill must not delay"})
		want := &Hold{Execution: 1, Nodes: []HeldNode{{Node: "n2", Cores: 4, Memory: gib}}}
		if !reflect.DeepEqual(d.Held, want) {
			t.Errorf("held %+v, want %+v", d.Held, want)
		}
	})
	t.Run("the hold stays where the previous pass put it", func(t *testing.T) {
		prev := &Hold{Execution: 1, Nodes: []HeldNode{{Node: "n1", Cores: 4, Memory: gib}}}
		d := schedule(t, Input{Backfill: true, Held: prev, Nodes: nodes, Executions: queue})
		check(t, "starts", placed(d), []string{"2/one@n2"})
		check(t, "waiting", waiting(d), []string{"1: needs 4 cores, at most 2 free on a node",
			"3: needs 2 cores, at most 1 free on a node"})
		if !reflect.DeepEqual(d.Held, prev) {
			t.Errorf("held %+v, want %+v", d.Held, prev)
		}
		// A hold for another execution is ignored.
		d = schedule(t, Input{Backfill: true, Held: &Hold{Execution: 9, Nodes: prev.Nodes}, Nodes: nodes, Executions: queue})
		check(t, "starts", placed(d), []string{"2/one@n1"})
	})
	t.Run("backfill uses the room beyond what is held", func(t *testing.T) {
		d := schedule(t, Input{Backfill: true,
			Nodes: []Node{node("plain", 8, 16), used(node("gpu", 8, 16, "gpu"), 8, 0)},
			Executions: []Execution{
				exe(1, ess("a", 2, 1), ess("g", 2, 1, "gpu")),   // blocked by the gpu node
				exe(2, ess("b", 4, 1)),                          // fits beside a's 2 cores
				exe(3, ess("c", 4, 1)),                          // would need a's room
				exe(4, on(ess("r", 1, 1), "x"), ela("e", 3, 1)), // running, behind: not on the held room either
			}})
		check(t, "starts", placed(d), []string{"2/b@plain"})
		check(t, "waiting", waiting(d), []string{
			"1: fits alone, but not together with the execution's other essential services (all or nothing)",
			"3: fits only on room held for execution 1, which backfill must not delay",
			"4: fits only on room held for execution 1, which backfill must not delay"})
		if d.Held == nil || len(d.Held.Nodes) != 2 || d.Held.Nodes[0].Node != "plain" || d.Held.Nodes[1].Node != "gpu" {
			t.Errorf("held %+v", d.Held)
		}
		if d.Waiting[0].Services[1].Reason.String() != "needs 2 cores, at most 0 free on a node with labels [gpu]" {
			t.Errorf("g: %s", d.Waiting[0].Services[1].Reason)
		}
	})
	t.Run("executions ahead of the head keep their elastic priority", func(t *testing.T) {
		d := schedule(t, Input{Backfill: true, Nodes: []Node{node("n", 4, 16)}, Executions: []Execution{
			exe(1, ess("a", 1, 1), ela("e", 2, 1)),
			exe(2, ess("big", 4, 1)),
			exe(3, ess("c", 1, 1)),
		}})
		check(t, "starts", placed(d), []string{"1/a@n", "1/e@n"})
		check(t, "waiting", waiting(d), []string{"2: needs 4 cores, at most 1 free on a node",
			"3: fits only on room held for execution 2, which backfill must not delay"})
	})
	t.Run("Foreign reservations are never freed", func(t *testing.T) {
		n := used(node("n", 4, 16), 3, 0)
		n.Foreign = Resources{Cores: 1}
		d := schedule(t, Input{Backfill: true, Nodes: []Node{n}, Executions: []Execution{
			exe(1, ess("big", 4, 1)), exe(2, ess("c", 1, 1)),
		}})
		check(t, "starts", placed(d), []string{"2/c@n"})
		check(t, "waiting", waiting(d), []string{"1: needs 4 cores, more than any node has (at most 3)"})
	})
}

func TestUnplaceableDoesNotHoldTheQueue(t *testing.T) {
	nodes := []Node{node("n", 4, 16)}
	tests := []struct {
		name  string
		first Execution
		why   string
	}{
		{"missing label", exe(1, ess("a", 1, 1, "gpu")), "requires labels [gpu] that no ready node has"},
		{"too much memory", exe(1, ess("a", 1, 64)), "needs 64 GiB of memory, more than any node has (at most 16 GiB)"},
		{"too many cores", exe(1, ess("a", 5, 1)), "needs 5 cores, more than any node has (at most 4)"},
		{"missing image", exe(1, Service{Name: "a", Essential: true, Image: "nope"}),
			"image nope is on no ready node and the back-end cannot pull"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := schedule(t, Input{Nodes: nodes, Executions: []Execution{tc.first, exe(2, ess("b", 1, 1))}})
			check(t, "starts", placed(d), []string{"2/b@n"})
			check(t, "waiting", waiting(d), []string{"1: " + tc.why})
			if !d.Waiting[0].Unplaceable || !d.Waiting[0].Reason.Permanent() {
				t.Errorf("%+v", d.Waiting[0])
			}
		})
	}
}

func TestImages(t *testing.T) {
	img := func(s Service, image string) Service { s.Image = image; return s }
	withImages := func(n Node, images ...string) Node { n.Images = images; return n }
	nodes := []Node{withImages(node("a", 4, 16), "img"), withImages(node("b", 4, 16), "other"),
		withImages(node("g", 4, 16, "gpu"), "img")}
	tests := []struct {
		name    string
		canPull bool
		nodes   []Node
		svc     Service
		starts  []string
		wait    []string
	}{
		{name: "placed where the image is", svc: img(ess("x", 1, 1), "other"), nodes: nodes,
			starts: []string{"1/x@b"}},
		{name: "nowhere, no pull", svc: img(ess("x", 1, 1), "new"), nodes: nodes,
			wait: []string{"1: image new is on no ready node and the back-end cannot pull"}},
		{name: "not with the labels, no pull", svc: img(ess("x", 1, 1, "gpu"), "other"), nodes: nodes,
			wait: []string{"1: image other is on no ready node with labels [gpu] and the back-end cannot pull"}},
		{name: "only on a full node, no pull", svc: img(ess("x", 2, 1), "other"),
			nodes: []Node{nodes[0], used(nodes[1], 4, 0)},
			wait:  []string{"1: needs 2 cores, at most 0 free on a node with image other"}},
		{name: "only on a disabled node, no pull", svc: img(ess("x", 2, 1), "other"),
			nodes: []Node{nodes[0], {Name: "b", Cores: 4, Memory: gib, Images: []string{"other"}, State: backend.NodeDisabled}},
			wait:  []string{"1: image other is on no ready node and the back-end cannot pull"}},
		{name: "nowhere, pull", canPull: true, svc: img(ess("x", 1, 1), "new"), nodes: nodes,
			starts: []string{"1/x@a"}},
		{name: "pull: any node, by the placement's order", canPull: true, svc: img(ess("x", 1, 1), "other"),
			nodes: nodes, starts: []string{"1/x@a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := schedule(t, Input{CanPull: tc.canPull, Nodes: tc.nodes, Executions: []Execution{exe(1, tc.svc)}})
			check(t, "starts", placed(d), append([]string{}, tc.starts...))
			check(t, "waiting", waiting(d), append([]string{}, tc.wait...))
		})
	}
}

func TestReasonStrings(t *testing.T) {
	svc := func(cores float64, mem int64, image string, labels ...string) *Service {
		return &Service{Name: "s", Cores: cores, Memory: mem, Image: image, Labels: labels}
	}
	tests := []struct {
		r    Reason
		want string
	}{
		{Reason{}, ""},
		{Reason{Kind: ReasonBehind, Execution: 12}, "waiting behind execution 12 (strict order)"},
		{Reason{Kind: ReasonLabels, svc: svc(1, 1, "", "gpu")}, "requires labels [gpu] that no ready node has"},
		{Reason{Kind: ReasonLabels, svc: svc(1, 1, "")}, "no ready node"},
		{Reason{Kind: ReasonImage, imageNarrows: true, svc: svc(1, 1, "X")},
			"image X is on no ready node and the back-end cannot pull"},
		{Reason{Kind: ReasonMemory, freeM: 2 * gib, svc: svc(1, 4*gib, "X", "gpu")},
			"needs 4 GiB of memory, at most 2 GiB free on a node with labels [gpu]"},
		{Reason{Kind: ReasonMemory, freeM: 512 << 20, svc: svc(1, 3*gib/2, "")},
			"needs 1.5 GiB of memory, at most 512 MiB free on a node"},
		{Reason{Kind: ReasonMemory, freeM: -5, svc: svc(1, 100, "")},
			"needs 100 B of memory, at most 0 B free on a node"},
		{Reason{Kind: ReasonCores, freeC: 500, imageNarrows: true, svc: svc(1, 0, "i", "gpu", "ssd")},
			"needs 1 core, at most 0.5 free on a node with labels [gpu ssd] and image i"},
		{Reason{Kind: ReasonTooBig, freeC: 32000, freeM: 128 * gib, svc: svc(1, 200*gib, "")},
			"needs 200 GiB of memory, more than any node has (at most 128 GiB)"},
		{Reason{Kind: ReasonHeld, Execution: 3}, "fits only on room held for execution 3, which backfill must not delay"},
		{Reason{Kind: ReasonSetTooBig}, "its essential services cannot all fit on the ready nodes, even empty"},
		{Reason{Kind: 200}, "unknown reason 200"},
	}
	for _, tc := range tests {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%+v:\n got  %q\n want %q", tc.r, got, tc.want)
		}
	}
	r := Reason{Kind: ReasonCores, freeC: 1500, freeM: gib, imageNarrows: true, svc: svc(2, 3*gib, "i", "gpu")}
	if r.Need() != (Resources{2, 3 * gib}) || r.Free() != (Resources{1.5, gib}) || r.Image() != "i" ||
		len(r.Labels()) != 1 {
		t.Errorf("accessors of %+v", r)
	}
	if r := (Reason{Kind: ReasonBehind}); r.Need() != (Resources{}) || r.Labels() != nil || r.Image() != "" {
		t.Errorf("accessors of %+v", r)
	}
}

// TestOriginalDefects covers the defects of the original's scheduler (§5.2,
// §10) that apply to a pure scheduler.
func TestOriginalDefects(t *testing.T) {
	t.Run("progress counts cores, not only memory", func(t *testing.T) {
		// The original stopped at 1: its services reserve no memory, so free
		// memory did not drop and it counted as no progress.
		d := schedule(t, Input{Nodes: []Node{node("n", 4, 16)}, Executions: []Execution{
			exe(1, ess("a", 1, 0)), exe(2, ess("b", 1, 1)),
		}})
		check(t, "starts", placed(d), []string{"1/a@n", "2/b@n"})
	})
	t.Run("cores are accounted", func(t *testing.T) {
		d := schedule(t, Input{Nodes: []Node{node("n", 2, 100)}, Executions: []Execution{
			exe(1, ess("a", 1, 1)), exe(2, ess("a", 1, 1)), exe(3, ess("a", 1, 1)),
		}})
		check(t, "starts", placed(d), []string{"1/a@n", "2/a@n"})
		check(t, "waiting", waiting(d), []string{"3: needs 1 core, at most 0 free on a node"})
	})
	t.Run("an execution with everything placed is left alone", func(t *testing.T) {
		// The original's _pop_all filter was always true; terminated and
		// cleaning-up executions are not in the input at all, and a fully
		// placed one yields nothing.
		d := schedule(t, Input{Nodes: []Node{node("n", 2, 2)}, Executions: []Execution{
			exe(1, on(ess("a", 1, 1), "n"), on(ela("e", 1, 1), "n")),
		}})
		if len(d.Starts) != 0 || len(d.Waiting) != 0 || len(d.Removes) != 0 {
			t.Errorf("%+v", d)
		}
	})
	t.Run("the pass writes nothing", func(t *testing.T) {
		in := Input{Policy: DynSize, Backfill: true, Placement: Random, Now: time.Unix(100, 0),
			Nodes: []Node{node("b", 4, 16, "z", "a"), used(node("a", 4, 16), 3, 0)},
			Executions: []Execution{
				exe(1, ess("x", 4, 1), ess("y", 1, 1, "a", "z")),
				{ID: 2, Size: 5, LastTried: time.Unix(50, 0), Services: []Service{ess("a", 1, 1, "z", "a"), ela("b", 1, 1)}},
			}}
		before := deepCopy(in)
		d1 := schedule(t, in)
		if !reflect.DeepEqual(in, before) {
			t.Fatal("Schedule modified its input")
		}
		if d2 := schedule(t, in); !reflect.DeepEqual(d1, d2) {
			t.Fatalf("two passes differ:\n%+v\n%+v", d1, d2)
		}
	})
}

func deepCopy(in Input) Input {
	out := in
	out.Nodes = nil
	for _, n := range in.Nodes {
		n.Labels = append([]string(nil), n.Labels...)
		n.Images = append([]string(nil), n.Images...)
		out.Nodes = append(out.Nodes, n)
	}
	out.Executions = nil
	for _, e := range in.Executions {
		var svcs []Service
		for _, s := range e.Services {
			s.Labels = append([]string(nil), s.Labels...)
			svcs = append(svcs, s)
		}
		e.Services = svcs
		out.Executions = append(out.Executions, e)
	}
	return out
}

func TestValidation(t *testing.T) {
	ok := node("n", 1, 1)
	tests := []struct {
		name string
		in   Input
		want string
	}{
		{"policy", Input{Policy: "LIFO"}, "unknown policy"},
		{"placement", Input{Placement: "best"}, "unknown placement"},
		{"node name", Input{Nodes: []Node{{Cores: 1}}}, "has no name"},
		{"duplicate node", Input{Nodes: []Node{ok, ok}}, "listed twice"},
		{"negative node", Input{Nodes: []Node{{Name: "x", Cores: -1}}}, "invalid"},
		{"NaN reserved", Input{Nodes: []Node{{Name: "x", Reserved: Resources{Cores: math.NaN()}}}}, "invalid"},
		{"duplicate execution", Input{Executions: []Execution{exe(1), exe(1)}}, "listed twice"},
		{"negative service", Input{Executions: []Execution{exe(1, ess("a", 1, -1))}}, "invalid"},
		{"infinite cores", Input{Executions: []Execution{exe(1, ess("a", math.Inf(1), 1))}}, "invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Schedule(&tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Schedule(nil); err == nil {
		t.Error("nil input accepted")
	}
	for _, s := range []string{"", "FIFO", "SIZE", "DYNSIZE"} {
		if _, err := ParsePolicy(s); err != nil {
			t.Error(err)
		}
	}
	for _, s := range []string{"", "average", "waterfill", "random"} {
		if _, err := ParsePlacement(s); err != nil {
			t.Error(err)
		}
	}
}

func TestConversions(t *testing.T) {
	n := NodeFromBackend(backend.Node{Name: "a", Cores: 8, MemoryBytes: 16 * gib, Labels: []string{"gpu"},
		Images: []string{"img"}, State: backend.NodeReady, CoresReserved: 2, MemoryReserved: gib})
	want := Node{Name: "a", Cores: 8, Memory: 16 * gib, Labels: []string{"gpu"}, Images: []string{"img"},
		State: backend.NodeReady, Reserved: Resources{Cores: 2, Memory: gib}}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("node %+v", n)
	}
	s := ServiceFromInstance(zapp.Instance{Name: "w0", Essential: true, Cores: 1.5, MemoryReservation: gib,
		MemoryLimit: 2 * gib, Labels: []string{"ssd"}, Image: "img"}, "a")
	if s.Name != "w0" || !s.Essential || s.Cores != 1.5 || s.Memory != gib || s.Node != "a" || s.Image != "img" ||
		len(s.Labels) != 1 {
		t.Errorf("service %+v", s)
	}
}
