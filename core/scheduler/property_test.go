package scheduler

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/sdk/backend"
)

// randomInput draws a small platform and queue where labels, images, node
// states, running executions and a full-ish platform all occur.
func randomInput(r *rand.Rand, maxNodes, maxExecs int) Input {
	labels := []string{"gpu", "ssd", "big"}
	images := []string{"i1", "i2", "i3"}
	pick := func(from []string, p float64) []string {
		var out []string
		for _, l := range from {
			if r.Float64() < p {
				out = append(out, l)
			}
		}
		return out
	}
	in := Input{
		Now:       time.Unix(1000, 0),
		Policy:    []Policy{FIFO, Size, DynSize}[r.IntN(3)],
		Placement: []Placement{Average, Waterfill, Random}[r.IntN(3)],
		Backfill:  r.IntN(2) == 0,
		CanPull:   r.IntN(2) == 0,
		Seed:      r.Uint64(),
	}
	nn := 1 + r.IntN(maxNodes)
	perm := r.Perm(nn) // names not in input order
	for i := range nn {
		n := Node{
			Name:   fmt.Sprintf("n%02d", perm[i]),
			Cores:  float64(1 + r.IntN(16)),
			Memory: int64(1+r.IntN(32)) * gib,
			Labels: pick(labels, 0.3),
			Images: pick(images, 0.6),
			State:  []backend.NodeState{backend.NodeReady, backend.NodeReady, backend.NodeReady, backend.NodeDisabled, backend.NodeUnreachable}[r.IntN(5)],
		}
		if r.IntN(10) == 0 {
			n.Labels = append(n.Labels, DisabledLabel)
		}
		n.Reserved = Resources{Cores: float64(r.IntN(int(n.Cores)+2)) / 2, Memory: r.Int64N(n.Memory + gib)}
		if r.IntN(3) == 0 {
			n.Foreign = Resources{Cores: n.Reserved.Cores / 2, Memory: n.Reserved.Memory / 2}
		}
		n.Containers = r.IntN(5)
		in.Nodes = append(in.Nodes, n)
	}
	ne := r.IntN(maxExecs)
	if ne > 0 && r.IntN(3) == 0 {
		// A hold from a previous pass, for some execution, on some nodes.
		in.Held = &Hold{Execution: int64(100 + r.IntN(ne))}
		for range 1 + r.IntN(3) {
			in.Held.Nodes = append(in.Held.Nodes, HeldNode{Node: in.Nodes[r.IntN(nn)].Name})
		}
	}
	for i := range ne {
		e := Execution{ID: int64(100 + i), Size: r.Int64N(5), SubmittedAt: time.Unix(int64(i), 0)}
		if r.IntN(2) == 0 {
			e.LastTried = time.Unix(int64(900+r.IntN(100)), 0)
		}
		running := r.IntN(5) == 0
		ns := 1 + r.IntN(5)
		for j := range ns {
			s := Service{
				Name:      fmt.Sprintf("s%d", j),
				Essential: j == 0 || r.IntN(2) == 0,
				Cores:     float64(r.IntN(9)) / 2,
				Memory:    r.Int64N(8 * gib),
				Labels:    pick(labels, 0.15),
				Image:     images[r.IntN(len(images))],
			}
			if running && (s.Essential || r.IntN(2) == 0) {
				s.Node = in.Nodes[r.IntN(nn)].Name
			}
			e.Services = append(e.Services, s)
		}
		in.Executions = append(in.Executions, e)
	}
	return in
}

// TestProperties checks on random inputs that no node is over-committed,
// labels, images and node states are respected, essential sets are complete
// or absent, backfill never uses held room, the pass is deterministic, and
// its starts are those of a plain quadratic implementation of the same
// rules.
func TestProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 3000
	if testing.Short() {
		n = 300
	}
	for iter := range n {
		// Mostly small cases, some large enough to fill the platform and
		// exercise the trees' depth and the memory of failures.
		in := randomInput(r, 12, 25)
		if iter%50 == 0 {
			in = randomInput(r, 150, 600)
		}
		d, err := Schedule(&in)
		if err != nil {
			t.Fatal(err)
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("iteration %d: %s\ninput %+v\nstarts %v\nwaiting %v", iter, fmt.Sprintf(format, args...), in, placed(d), waiting(d))
		}
		nodes := map[string]*Node{}
		for i := range in.Nodes {
			nodes[in.Nodes[i].Name] = &in.Nodes[i]
		}
		exs := map[int64]*Execution{}
		pos := map[int64]int{}
		for i := range in.Executions {
			exs[in.Executions[i].ID] = &in.Executions[i]
			pos[in.Executions[i].ID] = i
		}
		usedC, usedM := map[string]int64{}, map[string]int64{}
		startedSvc := map[string]bool{}
		for _, s := range d.Starts {
			nd, e := nodes[s.Node], exs[s.Execution]
			sv := e.Services[s.Index]
			if sv.Node != "" || startedSvc[fmt.Sprint(s.Execution, s.Index)] {
				fail("%d/%s started twice", s.Execution, sv.Name)
			}
			startedSvc[fmt.Sprint(s.Execution, s.Index)] = true
			if nd.State != backend.NodeReady || slices.Contains(nd.Labels, DisabledLabel) {
				fail("%s placed on %s node %s", sv.Name, nd.State, nd.Name)
			}
			for _, l := range sv.Labels {
				if !slices.Contains(nd.Labels, l) {
					fail("%s needs %s, not on %s", sv.Name, l, nd.Name)
				}
			}
			if !in.CanPull && !slices.Contains(nd.Images, sv.Image) {
				fail("%s: image %s not on %s", sv.Name, sv.Image, nd.Name)
			}
			usedC[s.Node] += milli(sv.Cores)
			usedM[s.Node] += sv.Memory
		}
		for name, c := range usedC {
			nd := nodes[name]
			if milli(nd.Cores)-milli(nd.Reserved.Cores)-c < 0 || nd.Memory-nd.Reserved.Memory-usedM[name] < 0 {
				fail("node %s over-committed: %d millicores, %d bytes", name, c, usedM[name])
			}
		}
		// Essential sets complete or absent.
		for _, e := range in.Executions {
			some, all := false, true
			for j, sv := range e.Services {
				if !sv.Essential || sv.Node != "" {
					continue
				}
				if startedSvc[fmt.Sprint(e.ID, j)] {
					some = true
				} else {
					all = false
				}
			}
			if some && !all {
				fail("execution %d: essential set partly placed", e.ID)
			}
		}
		// Backfill holds: after the head, in FIFO order, nothing takes
		// the held room.
		if d.Held != nil && in.Policy == FIFO {
			hp := pos[d.Held.Execution]
			for _, h := range d.Held.Nodes {
				nd := nodes[h.Node]
				backfilled := false
				for _, s := range d.Starts {
					if s.Node == h.Node && pos[s.Execution] > hp {
						backfilled = true
					}
				}
				if backfilled && (milli(nd.Cores)-milli(nd.Reserved.Cores)-usedC[h.Node]-milli(h.Cores) < 0 ||
					nd.Memory-nd.Reserved.Memory-usedM[h.Node]-h.Memory < 0) {
					fail("backfill took room held on %s", h.Node)
				}
			}
		}
		if !in.Backfill && d.Held != nil {
			fail("strict order holds room")
		}
		for _, w := range d.Waiting {
			if w.Reason.Kind == ReasonNone || w.Reason.String() == "" {
				fail("execution %d waits without a reason", w.Execution)
			}
		}
		d2, _ := Schedule(&in)
		if !reflect.DeepEqual(d, d2) {
			fail("not deterministic")
		}
		if want := reference(&in); !slices.Equal(placed(d), want) {
			fail("differs from the reference:\n got  %v\n want %v", placed(d), want)
		}
	}
}

// reference is the scheduler's rules written plainly: a linear scan of the
// nodes for every service, no trees, no memory of failures.
func reference(in *Input) []string {
	type rnode struct {
		Node
		capC, capM, freeC, freeM, cont int64
	}
	var nodes []*rnode
	for _, n := range in.Nodes {
		if n.State != backend.NodeReady || slices.Contains(n.Labels, DisabledLabel) {
			continue
		}
		l := slices.Clone(n.Labels)
		slices.Sort(l)
		n.Labels = slices.Compact(l)
		nodes = append(nodes, &rnode{Node: n, capC: milli(n.Cores) - milli(n.Foreign.Cores), capM: n.Memory - n.Foreign.Memory,
			freeC: milli(n.Cores) - milli(n.Reserved.Cores), freeM: n.Memory - n.Reserved.Memory, cont: int64(n.Containers)})
	}
	slices.SortFunc(nodes, func(a, b *rnode) int {
		if len(a.Labels) != len(b.Labels) {
			return len(a.Labels) - len(b.Labels)
		}
		return strings.Compare(a.Name, b.Name)
	})
	key := func(n *rnode) int64 {
		k := int64(len(n.Labels)) << keyBits
		if in.Placement == Waterfill {
			return k | (keyMask - n.cont)
		}
		return k | n.cont
	}
	eligible := func(n *rnode, s *Service) bool {
		for _, l := range s.Labels {
			if !slices.Contains(n.Labels, l) {
				return false
			}
		}
		return in.CanPull || s.Image == "" || slices.Contains(n.Images, s.Image)
	}
	find := func(id int64, j int, s *Service) *rnode {
		if in.Placement == Random {
			var el []*rnode
			for _, n := range nodes {
				if eligible(n, s) {
					el = append(el, n)
				}
			}
			fits := func(n *rnode) bool { return n.freeC >= milli(s.Cores) && n.freeM >= s.Memory }
			for a := 0; a < len(el); {
				b := a
				for b < len(el) && len(el[b].Labels) == len(el[a].Labels) {
					b++
				}
				p := a + int(randFor(in.Seed, id, j)%uint64(b-a))
				for k := range b - a {
					if n := el[a+(p-a+k)%(b-a)]; fits(n) {
						return n
					}
				}
				a = b
			}
			return nil
		}
		var best *rnode
		for _, n := range nodes {
			if eligible(n, s) && n.freeC >= milli(s.Cores) && n.freeM >= s.Memory && (best == nil || key(n) < key(best)) {
				best = n
			}
		}
		return best
	}
	ex := in.Executions
	size := make([]int64, len(ex))
	order := make([]int, len(ex))
	for i := range ex {
		order[i], size[i] = i, ex[i].Size
		if in.Policy == DynSize {
			size[i] = dynSize(&ex[i], in.Now)
		}
	}
	if in.Policy == Size || in.Policy == DynSize {
		slices.SortStableFunc(order, func(a, b int) int { return int(min(max(size[a]-size[b], -1), 1)) })
	}
	at := make([][]*rnode, len(ex))
	for i := range ex {
		at[i] = make([]*rnode, len(ex[i].Services))
	}
	pending := func(x, j int, essential bool) bool {
		s := &ex[x].Services[j]
		return s.Essential == essential && s.Node == "" && at[x][j] == nil
	}
	place := func(n *rnode, s *Service) {
		n.freeC -= milli(s.Cores)
		n.freeM -= s.Memory
		n.cont++
	}
	tryEss := func(x int) bool {
		type undo struct {
			n *rnode
			j int
		}
		var done []undo
		for j := range ex[x].Services {
			if !pending(x, j, true) {
				continue
			}
			s := &ex[x].Services[j]
			n := find(ex[x].ID, j, s)
			if n == nil {
				for k := len(done) - 1; k >= 0; k-- {
					u := done[k]
					su := &ex[x].Services[u.j]
					u.n.freeC += milli(su.Cores)
					u.n.freeM += su.Memory
					u.n.cont--
					at[x][u.j] = nil
				}
				return false
			}
			done = append(done, undo{n, j})
			place(n, s)
			at[x][j] = n
		}
		return true
	}
	elastic := func(x int) {
		for j := range ex[x].Services {
			if pending(x, j, false) {
				if n := find(ex[x].ID, j, &ex[x].Services[j]); n != nil {
					place(n, &ex[x].Services[j])
					at[x][j] = n
				}
			}
		}
	}
	permanent := func(x int) bool {
		for j := range ex[x].Services {
			if !pending(x, j, true) {
				continue
			}
			s := &ex[x].Services[j]
			fits := false
			for _, n := range nodes {
				if eligible(n, s) && n.capC >= milli(s.Cores) && n.capM >= s.Memory {
					fits = true
				}
			}
			if !fits {
				return true
			}
		}
		return false
	}
	type hold struct {
		n    *rnode
		c, m int64
	}
	plan := func(x int) ([]hold, bool) {
		var p []hold
		held := func(n *rnode) (int64, int64) {
			for _, h := range p {
				if h.n == n {
					return h.c, h.m
				}
			}
			return 0, 0
		}
		short := func(need, free, capacity int64) float64 {
			if need <= free || capacity <= 0 {
				return 0
			}
			return float64(need-free) / float64(capacity)
		}
		for j := range ex[x].Services {
			if !pending(x, j, true) {
				continue
			}
			s := &ex[x].Services[j]
			c, m := milli(s.Cores), s.Memory
			var best *rnode
			var bestScore float64
			bestPrev := false
			for _, n := range nodes {
				hc, hm := held(n)
				if !eligible(n, s) || n.capC-hc < c || n.capM-hm < m {
					continue
				}
				score := short(c, n.freeC-hc, n.capC) + short(m, n.freeM-hm, n.capM)
				prev := false
				if in.Held != nil && in.Held.Execution == ex[x].ID {
					for _, h := range in.Held.Nodes {
						prev = prev || h.Node == n.Name
					}
				}
				better := best == nil || len(n.Labels) < len(best.Labels)
				if !better && len(n.Labels) == len(best.Labels) {
					better = (prev && !bestPrev) || (prev == bestPrev && score < bestScore)
				}
				if better {
					best, bestScore, bestPrev = n, score, prev
				}
			}
			if best == nil {
				return nil, false
			}
			if k := slices.IndexFunc(p, func(h hold) bool { return h.n == best }); k >= 0 {
				p[k].c += c
				p[k].m += m
			} else {
				p = append(p, hold{best, c, m})
			}
		}
		return p, true
	}
	var accepted []int
	var heldPlan []hold
	head := -1
	i := 0
	for ; i < len(order); i++ {
		x := order[i]
		if tryEss(x) {
			accepted = append(accepted, x)
			continue
		}
		if permanent(x) {
			continue
		}
		if p, ok := plan(x); ok {
			head, heldPlan = x, p
			i++
			break
		}
	}
	for _, x := range accepted {
		elastic(x)
	}
	if head >= 0 && in.Backfill {
		for _, h := range heldPlan {
			h.n.freeC -= h.c
			h.n.freeM -= h.m
		}
		accepted = accepted[:0]
		for ; i < len(order); i++ {
			if tryEss(order[i]) {
				accepted = append(accepted, order[i])
			}
		}
		for _, x := range accepted {
			elastic(x)
		}
	}
	out := []string{}
	for _, x := range order {
		for j, n := range at[x] {
			if n != nil {
				out = append(out, fmt.Sprintf("%d/%s@%s", ex[x].ID, ex[x].Services[j].Name, n.Name))
			}
		}
	}
	return out
}
