package scheduler

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// AgingPerSecond is what DYNSIZE takes off a waiting execution's size for
// every second since it was last tried, as in the original (256 MiB).
const AgingPerSecond = 256 << 20

// InitialSize is the DYNSIZE size of an execution at submission, as in the
// original: the sum of its services' cores times the sum of their memory
// (bytes), saturated at math.MaxInt64.
func InitialSize(svcs []Service) int64 {
	var c, m float64
	for i := range svcs {
		c += svcs[i].Cores
		m += float64(svcs[i].Memory)
	}
	return saturate(c * m)
}

func saturate(f float64) int64 {
	if f >= math.MaxInt64 {
		return math.MaxInt64
	}
	if f <= math.MinInt64 {
		return math.MinInt64
	}
	return int64(f)
}

// Schedule runs one scheduling pass. It is pure: it reads in, which it
// does not modify, and returns the decisions; the same input gives the same
// decision. The reasons in the decision point into in's services. See the
// package documentation for the rules.
func Schedule(in *Input) (*Decision, error) {
	if err := validate(in); err != nil {
		return nil, err
	}
	s, err := newSched(in)
	if err != nil {
		return nil, err
	}
	return s.run(), nil
}

// validate checks the options and nodes; newSched checks the executions
// while it reads them.
func validate(in *Input) error {
	if in == nil {
		return errors.New("scheduler: no input")
	}
	if _, err := ParsePolicy(string(in.Policy)); err != nil {
		return err
	}
	if _, err := ParsePlacement(string(in.Placement)); err != nil {
		return err
	}
	names := make(map[string]struct{}, len(in.Nodes))
	for i := range in.Nodes {
		n := &in.Nodes[i]
		if n.Name == "" {
			return fmt.Errorf("scheduler: node %d has no name", i)
		}
		if _, dup := names[n.Name]; dup {
			return fmt.Errorf("scheduler: node %s listed twice", n.Name)
		}
		names[n.Name] = struct{}{}
		if bad(n.Cores) || n.Memory < 0 || !finite(n.Reserved.Cores) || bad(n.Foreign.Cores) || n.Foreign.Memory < 0 {
			return fmt.Errorf("scheduler: node %s: invalid cores or memory", n.Name)
		}
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func bad(f float64) bool { return !finite(f) || f < 0 }

// sched is the state of one pass. Executions are numbered by their
// position x in the policy's order; ord maps it to the input's index.
type sched struct {
	in  *Input
	p   *platform
	pol Policy
	ord []int
	// Per execution.
	size []int64
	off  []int // offset of its services in sv
	st   []xstate
	// sv: every service, flat, in a compact form the pass reads many times.
	sv []svcInfo
	// tent: the tentative placements of one execution's essentials.
	tent []tentative
	held []heldEntry
	head int // execution held for by backfill, or -1
	// wbuf backs every Waiting.Services.
	wbuf []ServiceWait
}

type svcInfo struct {
	cls       *class
	svc       *Service // the input's
	c, m      int64    // millicores, bytes
	at        int32    // node placed on by this pass, -1 for none
	essential bool
	running   bool // placed before this pass
}

type xstate struct {
	behind      bool // strict order: not considered
	setTooBig   bool
	unplaceable bool
	waitsDone   bool
	waits       []ServiceWait
}

type tentative struct {
	n    int32
	j    int // flat service index
	c, m int64
}

type heldEntry struct {
	n    int32
	c, m int64
}

func newSched(in *Input) (*sched, error) {
	s := &sched{in: in, p: newPlatform(in), pol: in.Policy, head: -1}
	if s.pol == "" {
		s.pol = FIFO
	}
	ex := in.Executions
	n := len(ex)
	// One sequential pass over the input, which is large (100 bytes a
	// service): check, size, and keep what the pass needs in compact form,
	// its class included.
	increasing, total := true, 0
	for i := range ex {
		total += len(ex[i].Services)
	}
	size := make([]int64, n)
	sv := make([]svcInfo, total)
	off := make([]int, n+1)
	for i := range ex {
		e := &ex[i]
		// Executions come in submission order, usually with increasing
		// ids: then no map is needed to find duplicates.
		if i > 0 && e.ID <= ex[i-1].ID {
			increasing = false
		}
		off[i+1] = off[i] + len(e.Services)
		for j := range e.Services {
			v := &e.Services[j]
			if bad(v.Cores) || v.Memory < 0 {
				return nil, fmt.Errorf("scheduler: execution %d, service %s: invalid cores or memory", e.ID, v.Name)
			}
			img := v.Image
			if in.CanPull {
				img = ""
			}
			sv[off[i]+j] = svcInfo{cls: s.p.classOf(v.Labels, img), svc: v, c: milli(v.Cores), m: v.Memory,
				at: -1, essential: v.Essential, running: v.Node != ""}
		}
		size[i] = e.Size
		if s.pol == DynSize {
			size[i] = dynSize(e, in.Now)
		}
	}
	if !increasing {
		ids := make(map[int64]struct{}, n)
		for i := range ex {
			if _, dup := ids[ex[i].ID]; dup {
				return nil, fmt.Errorf("scheduler: execution %d listed twice", ex[i].ID)
			}
			ids[ex[i].ID] = struct{}{}
		}
	}
	s.ord = make([]int, n)
	for i := range s.ord {
		s.ord[i] = i
	}
	s.size, s.off, s.sv, s.st = size, off, sv, make([]xstate, n)
	if s.pol == FIFO {
		return s, nil
	}
	// Stable by the index as a tie-break: pdqsort is faster than a stable
	// sort.
	slices.SortFunc(s.ord, func(a, b int) int {
		if c := cmp.Compare(size[a], size[b]); c != 0 {
			return c
		}
		return a - b
	})
	// Everything is laid out in queue order, so that the pass reads memory
	// sequentially whatever the policy.
	s.size = make([]int64, n)
	s.off = make([]int, n+1)
	s.sv = make([]svcInfo, 0, total)
	for x, i := range s.ord {
		s.size[x] = size[i]
		s.sv = append(s.sv, sv[off[i]:off[i+1]]...)
		s.off[x+1] = len(s.sv)
	}
	return s, nil
}

// dynSize ages an execution's size by the time since it was last tried;
// at or below zero it starts again from the initial size (§5.4).
func dynSize(e *Execution, now time.Time) int64 {
	initial := InitialSize(e.Services)
	size := e.Size
	if size <= 0 {
		size = initial
	}
	if !e.LastTried.IsZero() {
		if el := now.Sub(e.LastTried).Seconds(); el > 0 {
			size = saturate(float64(size) - el*AgingPerSecond)
		}
	}
	if size <= 0 {
		size = initial
	}
	return size
}

// service returns the input's service j (flat).
func (s *sched) service(j int) *Service { return s.sv[j].svc }

// exec returns the execution at position x.
func (s *sched) exec(x int) *Execution { return &s.in.Executions[s.ord[x]] }

// pendingEssential: an essential service neither running nor placed by
// this pass.
func (s *sched) pendingEssential(j int) bool {
	v := &s.sv[j]
	return v.essential && !v.running && v.at < 0
}

func (s *sched) pendingElastic(j int) bool {
	v := &s.sv[j]
	return !v.essential && !v.running && v.at < 0
}

// need returns the class, millicores and bytes of service j (flat).
func (s *sched) need(j int) (*class, int64, int64) {
	v := &s.sv[j]
	return v.cls, v.c, v.m
}

// find returns the node the placement picks for service j of x, or -1.
func (s *sched) find(x, j int, cl *class, c, m int64) int32 {
	if s.p.placement != Random {
		return cl.find(c, m)
	}
	return cl.findRandom(c, m, randFor(s.in.Seed, s.exec(x).ID, j-s.off[x]))
}

// randFor is the random placement's draw for service i of execution id: a
// hash rather than a stream, so that tries undone (all or nothing) or
// skipped by a shortcut do not change later draws.
func randFor(seed uint64, id int64, i int) uint64 {
	return mix(mix(seed^uint64(id)) + uint64(i))
}

// tryEssentials places all the pending essential services of x, or none.
func (s *sched) tryEssentials(x int) bool {
	lo, hi := s.off[x], s.off[x+1]
	pending := false
	// Cheap rejections first: the class's maxima and the failures seen so
	// far, without touching the trees.
	for j := lo; j < hi; j++ {
		if !s.pendingEssential(j) {
			continue
		}
		pending = true
		cl, c, m := s.need(j)
		if fc, fm := cl.maxFree(); fc < c || fm < m || cl.failed(c, m) {
			return false
		}
	}
	if !pending {
		return true
	}
	s.tent = s.tent[:0]
	for j := lo; j < hi; j++ {
		if !s.pendingEssential(j) {
			continue
		}
		cl, c, m := s.need(j)
		n := s.find(x, j, cl, c, m)
		if n < 0 {
			// A failure caused by this execution's own tentative placements
			// would no longer hold once they are undone: not remembered.
			if s.independent(cl, c, m) {
				cl.fail(c, m)
			}
			for k := len(s.tent) - 1; k >= 0; k-- {
				t := s.tent[k]
				s.p.unplace(t.n, t.c, t.m)
			}
			return false
		}
		s.tent = append(s.tent, tentative{n, j, c, m})
		s.p.place(n, c, m, true)
	}
	for _, t := range s.tent {
		s.sv[t.j].at = t.n
	}
	return true
}

// independent tells whether (c, m) would still fail in class cl once the
// tentative placements are undone.
func (s *sched) independent(cl *class, c, m int64) bool {
	for i, t := range s.tent {
		if slices.ContainsFunc(s.tent[:i], func(u tentative) bool { return u.n == t.n }) {
			continue
		}
		n := &s.p.nodes[t.n]
		if !s.p.eligible(n, cl) {
			continue
		}
		fc, fm := n.freeC, n.freeM
		for _, u := range s.tent[i:] {
			if u.n == t.n {
				fc += u.c
				fm += u.m
			}
		}
		if fc >= c && fm >= m {
			return false
		}
	}
	return true
}

// fillElastic places what it can of x's pending elastic services, greedily
// in order.
func (s *sched) fillElastic(x int) {
	for j := s.off[x]; j < s.off[x+1]; j++ {
		if !s.pendingElastic(j) {
			continue
		}
		cl, c, m := s.need(j)
		if fc, fm := cl.maxFree(); fc < c || fm < m || cl.failed(c, m) {
			continue
		}
		n := s.find(x, j, cl, c, m)
		if n < 0 {
			cl.fail(c, m)
			continue
		}
		s.p.place(n, c, m, true)
		s.sv[j].at = n
	}
}

// permanent tells whether a pending essential service of x is larger than
// any eligible node, or has no eligible node.
func (s *sched) permanent(x int) bool {
	for j := s.off[x]; j < s.off[x+1]; j++ {
		if !s.pendingEssential(j) {
			continue
		}
		cl, c, m := s.need(j)
		if len(cl.nodes) == 0 || c > cl.capC || m > cl.capM {
			return true
		}
	}
	return false
}

// plan chooses where the pending essentials of x would go once the Zoe
// services on those nodes are gone: for each service in order, among the
// eligible nodes whose capacity (less Foreign and less what the plan
// already holds there) fits it, the one with the fewest labels, then one
// held for x by the previous pass, then the least still to be freed (the sum of the missing fractions of cores and
// memory), then the first in static order. false: the set cannot fit even
// on empty nodes (by this greedy rule).
func (s *sched) plan(x int) ([]heldEntry, bool) {
	var plan []heldEntry
	// Nodes held for x by the previous pass come first, so that the hold
	// does not wander from pass to pass.
	var prev []HeldNode
	if h := s.in.Held; h != nil && h.Execution == s.exec(x).ID {
		prev = h.Nodes
	}
	planned := func(ni int32) (int64, int64) {
		for _, h := range plan {
			if h.n == ni {
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
	for j := s.off[x]; j < s.off[x+1]; j++ {
		if !s.pendingEssential(j) {
			continue
		}
		cl, c, m := s.need(j)
		best, bestLC, bestPrev, bestScore := int32(-1), 0, false, 0.0
		for _, ni := range cl.nodes {
			n := &s.p.nodes[ni]
			if best >= 0 && len(n.labels) > bestLC {
				break
			}
			hc, hm := planned(ni)
			if n.capC-hc < c || n.capM-hm < m {
				continue
			}
			score := short(c, n.freeC-hc, n.capC) + short(m, n.freeM-hm, n.capM)
			p := slices.ContainsFunc(prev, func(h HeldNode) bool { return h.Node == n.name })
			if best < 0 || (p && !bestPrev) || (p == bestPrev && score < bestScore) {
				best, bestLC, bestPrev, bestScore = ni, len(n.labels), p, score
			}
		}
		if best < 0 {
			return nil, false
		}
		if k := slices.IndexFunc(plan, func(h heldEntry) bool { return h.n == best }); k >= 0 {
			plan[k].c += c
			plan[k].m += m
		} else {
			plan = append(plan, heldEntry{best, c, m})
		}
	}
	return plan, true
}

func (s *sched) run() *Decision {
	n := len(s.ord)
	var accepted []int
	x := 0
	var plan []heldEntry
	// Phase 1: essentials in order up to the first execution that cannot
	// start now but could once resources are freed: the head.
	for ; x < n; x++ {
		if s.tryEssentials(x) {
			accepted = append(accepted, x)
			continue
		}
		if s.permanent(x) {
			s.st[x].unplaceable = true
			continue
		}
		p, ok := s.plan(x)
		if !ok {
			s.st[x].unplaceable, s.st[x].setTooBig = true, true
			continue
		}
		s.head, plan = x, p
		x++
		break
	}
	// Phase 2: the elastic services of the executions ahead of the head
	// (all of them if none blocks), after all their essentials, as the
	// original does.
	for _, a := range accepted {
		s.fillElastic(a)
	}
	if s.head >= 0 {
		// The head's reasons are those before its own room is held.
		s.waits(s.head)
		if !s.in.Backfill {
			for ; x < n; x++ {
				s.st[x].behind = true
			}
		} else {
			// Phase 3: hold the head's room, then backfill what fits in
			// the rest: essentials in order, then elastic.
			for _, h := range plan {
				s.p.place(h.n, h.c, h.m, false)
			}
			s.held = plan
			accepted = accepted[:0]
			for ; x < n; x++ {
				if s.tryEssentials(x) {
					accepted = append(accepted, x)
				}
			}
			for _, a := range accepted {
				s.fillElastic(a)
			}
		}
	}
	return s.decision()
}

func (s *sched) decision() *Decision {
	n := len(s.ord)
	// Count first, so that the output is allocated once: at 100,000
	// executions growing slices would cost more than scheduling.
	nStart, nWait, nSW := 0, 0, 0
	for x := range n {
		ess, ela := 0, 0
		for j := s.off[x]; j < s.off[x+1]; j++ {
			switch v := &s.sv[j]; {
			case v.at >= 0:
				nStart++
			case v.running:
			case v.essential:
				ess++
			default:
				ela++
			}
		}
		if ess+ela > 0 {
			nWait++
			if ess > 0 {
				nSW += ess
			} else {
				nSW += ela
			}
		}
	}
	d := &Decision{Starts: make([]Start, 0, nStart), Waiting: make([]Waiting, 0, nWait)}
	s.wbuf = make([]ServiceWait, 0, nSW)
	for x := range n {
		e := s.exec(x)
		started, waiting := true, false
		for j := s.off[x]; j < s.off[x+1]; j++ {
			v := &s.sv[j]
			if v.at >= 0 {
				sv := s.service(j)
				d.Starts = append(d.Starts, Start{Execution: e.ID, Service: sv.Name, Index: j - s.off[x],
					Node: s.p.nodes[v.at].name, Essential: v.essential})
				continue
			}
			if !v.running {
				waiting = true
				if v.essential {
					started = false
				}
			}
		}
		if !waiting {
			continue
		}
		st := &s.st[x]
		w := Waiting{Execution: e.ID, Size: s.size[x], Started: started}
		switch {
		case st.behind:
			w.Reason = Reason{Kind: ReasonBehind, Execution: s.exec(s.head).ID}
		default:
			w.Services = s.waits(x)
			w.Unplaceable = st.unplaceable
			for _, sw := range w.Services {
				if !started && sw.Reason.Permanent() {
					w.Unplaceable = true
				}
			}
			if st.setTooBig {
				w.Reason = Reason{Kind: ReasonSetTooBig}
			} else if len(w.Services) > 0 {
				w.Reason = w.Services[0].Reason
			}
		}
		d.Waiting = append(d.Waiting, w)
	}
	if s.held != nil {
		h := &Hold{Execution: s.exec(s.head).ID}
		for _, e := range s.held {
			h.Nodes = append(h.Nodes, HeldNode{Node: s.p.nodes[e.n].name, Cores: cores(e.c), Memory: e.m})
		}
		d.Held = h
	}
	return d
}

// waits computes, once, why each pending service of x is not placed: its
// essentials when it has not started, else its elastic services.
func (s *sched) waits(x int) []ServiceWait {
	st := &s.st[x]
	if st.waitsDone {
		return st.waits
	}
	st.waitsDone = true
	started := true
	for j := s.off[x]; j < s.off[x+1]; j++ {
		if s.pendingEssential(j) {
			started = false
			break
		}
	}
	from := len(s.wbuf)
	for j := s.off[x]; j < s.off[x+1]; j++ {
		if (!started && s.pendingEssential(j)) || (started && s.pendingElastic(j)) {
			s.wbuf = append(s.wbuf, ServiceWait{Index: j - s.off[x], Reason: s.reason(x, j)})
		}
	}
	// A slice of the shared buffer that later appends cannot overwrite.
	st.waits = s.wbuf[from:len(s.wbuf):len(s.wbuf)]
	return st.waits
}

// reason is the first unfit reason of service j (flat) of x now.
func (s *sched) reason(x, j int) Reason {
	cl, c, m := s.need(j)
	r := Reason{svc: s.service(j)}
	// Only a class whose image narrows the labels' nodes names it.
	r.imageNarrows = cl.image != ""
	switch {
	case len(cl.nodes) == 0:
		r.Kind = ReasonLabels
		if r.imageNarrows {
			r.Kind = ReasonImage
		}
		return r
	case c > cl.capC || m > cl.capM:
		r.Kind, r.freeC, r.freeM = ReasonTooBig, cl.capC, cl.capM
		return r
	case !cl.failed(c, m) && cl.fits(c, m):
		r.Kind = ReasonTogether
		return r
	}
	if s.held != nil {
		// Reasons are computed once the pass has placed everything, so
		// each class's room on the held nodes is computed once.
		if !cl.heldDone {
			cl.heldDone = true
			for _, h := range s.held {
				if n := &s.p.nodes[h.n]; s.p.eligible(n, cl) {
					cl.heldRoom = append(cl.heldRoom, need{n.freeC + h.c, n.freeM + h.m})
				}
			}
		}
		for _, room := range cl.heldRoom {
			if room.c >= c && room.m >= m {
				r.Kind, r.Execution = ReasonHeld, s.exec(s.head).ID
				return r
			}
		}
	}
	r.freeC, r.freeM = cl.maxFree()
	switch {
	case m > r.freeM:
		r.Kind = ReasonMemory
	case c > r.freeC:
		r.Kind = ReasonCores
	default:
		r.Kind = ReasonBoth
	}
	return r
}
