package scheduler

import (
	"math"
	"slices"
	"strings"

	"github.com/zoe-project/zoe/sdk/backend"
)

// Resources are kept in integers: millicores and bytes, so that sums and
// comparisons are exact and the result does not depend on addition order.
func milli(c float64) int64 { return int64(math.Round(c * 1000)) }

func cores(m int64) float64 { return float64(m) / 1000 }

// keyBits is the width of the part of a node's key below its label count.
const keyBits = 40

const keyMask = 1<<keyBits - 1

// pnode is a schedulable node during a pass.
type pnode struct {
	name         string
	labels       []string // sorted, without duplicates
	images       []string // sorted, without duplicates; nil with CanPull
	capC, capM   int64    // total less Foreign: what Zoe could ever get
	freeC, freeM int64
	containers   int64
	members      []member
}

// member places a node in a class's tree.
type member struct {
	cls *class
	pos int32
}

// agg is a tree entry: the most free cores and memory on one node below it
// (not necessarily the same node) and the smallest placement key.
type agg struct{ c, m, k int64 }

// class is the set of ready nodes eligible for one requirement (a label set,
// and an image when the back-end cannot pull and some of those nodes lack
// it), kept as a tournament tree
// over its nodes in static order (label count, name). Inner entries hold
// maxima and the smallest key, so a search skips every subtree where
// nothing can fit or nothing can beat the best node found.
type class struct {
	labels []string // sorted, deduplicated
	image  string   // required image, when it narrows the labels' nodes
	nodes  []int32
	size   int // leaves: a power of two
	t      []agg
	// capC, capM: the largest capacity of a node of the class.
	capC, capM int64
	// tiers: where the label count changes in nodes, with 0 and len(nodes).
	tiers []int32
	// front is the Pareto front of failed requests: within a pass free room
	// only shrinks (tentative placements aside, see sched.tryEssentials), so
	// anything at least as large as a failed request fails too.
	front []need
	// heldRoom: what each held node of the class would have free without
	// the hold, at the end of the pass (for reasons).
	heldRoom []need
	heldDone bool
}

type need struct{ c, m int64 }

type platform struct {
	nodes     []pnode
	placement Placement
	byLabel   map[string][]int32
	classes   map[string]*class
	plain     map[string]*class // classes without labels, by image
	keyBuf    []byte
	lblBuf    []string
}

func newPlatform(in *Input) *platform {
	p := &platform{placement: in.Placement, byLabel: map[string][]int32{},
		classes: map[string]*class{}, plain: map[string]*class{}}
	if p.placement == "" {
		p.placement = Average
	}
	for i := range in.Nodes {
		n := &in.Nodes[i]
		if n.State != backend.NodeReady {
			continue
		}
		labels := slices.Clone(n.Labels)
		slices.Sort(labels)
		labels = slices.Compact(labels)
		if _, ok := slices.BinarySearch(labels, DisabledLabel); ok {
			continue
		}
		pn := pnode{
			name: n.Name, labels: labels,
			capC:  milli(n.Cores) - milli(n.Foreign.Cores),
			capM:  n.Memory - n.Foreign.Memory,
			freeC: milli(n.Cores) - milli(n.Reserved.Cores),
			freeM: n.Memory - n.Reserved.Memory,
			// A negative count from a confused caller must not turn
			// waterfill's key around.
			containers: int64(max(n.Containers, 0)),
		}
		if !in.CanPull {
			pn.images = slices.Clone(n.Images)
			slices.Sort(pn.images)
			pn.images = slices.Compact(pn.images)
		}
		p.nodes = append(p.nodes, pn)
	}
	// Static order: fewer labels first, then by name, so that the result
	// does not depend on the order the back-end lists nodes in.
	slices.SortFunc(p.nodes, func(a, b pnode) int {
		if d := len(a.labels) - len(b.labels); d != 0 {
			return d
		}
		return strings.Compare(a.name, b.name)
	})
	for i := range p.nodes {
		for _, l := range p.nodes[i].labels {
			p.byLabel[l] = append(p.byLabel[l], int32(i))
		}
	}
	return p
}

// mix is splitmix64's finalizer.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// key orders candidates: fewer labels first, then the placement's rule;
// ties go to the earlier node in static order. Random placement does not
// use it (see class.findFrom).
func (p *platform) key(n *pnode) int64 {
	k := int64(len(n.labels)) << keyBits
	if p.placement == Waterfill {
		return k | (keyMask - min(n.containers, keyMask))
	}
	return k | min(n.containers, keyMask)
}

// classOf returns the class of a service's requirement, building it on
// first use. A class whose image every node of its labels' class has is
// that class: fewer trees to update on each placement.
func (p *platform) classOf(labels []string, image string) *class {
	if c := p.lookup(labels, image); c != nil {
		return c
	}
	var c *class
	if image == "" {
		sorted := slices.Clone(p.lblBuf)
		c = p.newClass(sorted, "", p.withLabels(sorted))
	} else {
		base := p.classOf(labels, "")
		var nodes []int32
		for _, ni := range base.nodes {
			if _, ok := slices.BinarySearch(p.nodes[ni].images, image); ok {
				nodes = append(nodes, ni)
			}
		}
		if c = base; len(nodes) != len(base.nodes) {
			c = p.newClass(base.labels, image, nodes)
		}
	}
	p.lookup(labels, image)
	p.store(image, c)
	return c
}

// lookup finds a built class; it leaves the requirement's key in keyBuf
// and its sorted labels in lblBuf. Most services need no label: then one
// lookup by image, no key to build.
func (p *platform) lookup(labels []string, image string) *class {
	p.lblBuf = append(p.lblBuf[:0], labels...)
	if len(labels) == 0 {
		return p.plain[image]
	}
	if len(p.lblBuf) > 1 {
		slices.Sort(p.lblBuf)
		p.lblBuf = slices.Compact(p.lblBuf)
	}
	b := p.keyBuf[:0]
	for _, l := range p.lblBuf {
		b = append(b, l...)
		b = append(b, 0)
	}
	b = append(b, 1)
	b = append(b, image...)
	p.keyBuf = b
	return p.classes[string(b)]
}

// store records c under the requirement lookup last saw.
func (p *platform) store(image string, c *class) {
	if len(p.lblBuf) == 0 {
		p.plain[image] = c
		return
	}
	p.classes[string(p.keyBuf)] = c
}

// withLabels lists the nodes carrying all of the sorted labels, from the
// shortest posting list.
func (p *platform) withLabels(labels []string) []int32 {
	if len(labels) == 0 {
		all := make([]int32, len(p.nodes))
		for i := range all {
			all[i] = int32(i)
		}
		return all
	}
	cand := p.byLabel[labels[0]]
	for _, l := range labels[1:] {
		if lst := p.byLabel[l]; len(lst) < len(cand) {
			cand = lst
		}
	}
	probe := &class{labels: labels}
	var nodes []int32
	for _, i := range cand {
		if p.eligible(&p.nodes[i], probe) {
			nodes = append(nodes, i)
		}
	}
	return nodes
}

func (p *platform) newClass(labels []string, image string, nodes []int32) *class {
	c := &class{labels: labels, image: image, nodes: nodes}
	c.size = 1
	for c.size < len(c.nodes) {
		c.size *= 2
	}
	c.t = make([]agg, 2*c.size)
	for i := range c.t {
		c.t[i] = agg{math.MinInt64, math.MinInt64, math.MaxInt64}
	}
	for pos, ni := range c.nodes {
		n := &p.nodes[ni]
		c.capC, c.capM = max(c.capC, n.capC), max(c.capM, n.capM)
		c.t[c.size+pos] = agg{n.freeC, n.freeM, p.key(n)}
		n.members = append(n.members, member{c, int32(pos)})
	}
	for i := c.size - 1; i >= 1; i-- {
		c.t[i] = merge(c.t[2*i], c.t[2*i+1])
	}
	c.tiers = append(c.tiers, 0)
	for pos := 1; pos < len(c.nodes); pos++ {
		if len(p.nodes[c.nodes[pos]].labels) != len(p.nodes[c.nodes[pos-1]].labels) {
			c.tiers = append(c.tiers, int32(pos))
		}
	}
	c.tiers = append(c.tiers, int32(len(c.nodes)))
	return c
}

func merge(a, b agg) agg { return agg{max(a.c, b.c), max(a.m, b.m), min(a.k, b.k)} }

// eligible: the node carries all the class's labels (both lists sorted) and
// its image.
func (p *platform) eligible(n *pnode, c *class) bool {
	i := 0
	for _, l := range c.labels {
		for i < len(n.labels) && n.labels[i] < l {
			i++
		}
		if i == len(n.labels) || n.labels[i] != l {
			return false
		}
	}
	if c.image != "" {
		_, ok := slices.BinarySearch(n.images, c.image)
		return ok
	}
	return true
}

// place takes c millicores and m bytes on node ni; counted is false for
// room held by backfill, which is no container.
func (p *platform) place(ni int32, c, m int64, counted bool) {
	n := &p.nodes[ni]
	n.freeC -= c
	n.freeM -= m
	if counted {
		n.containers++
	}
	p.refresh(n)
}

// unplace undoes a tentative place.
func (p *platform) unplace(ni int32, c, m int64) {
	n := &p.nodes[ni]
	n.freeC += c
	n.freeM += m
	n.containers--
	p.refresh(n)
}

func (p *platform) refresh(n *pnode) {
	a := agg{n.freeC, n.freeM, p.key(n)}
	for _, mb := range n.members {
		c := mb.cls
		i := c.size + int(mb.pos)
		c.t[i] = a
		for i >>= 1; i >= 1; i >>= 1 {
			c.t[i] = merge(c.t[2*i], c.t[2*i+1])
		}
	}
}

// maxFree is the most free cores and memory on one node of the class (not
// necessarily the same node).
func (c *class) maxFree() (int64, int64) { return c.t[1].c, c.t[1].m }

// find returns the node of the class that the placement prefers among
// those where c millicores and m bytes fit, or -1.
func (c *class) find(rc, rm int64) int32 {
	if len(c.nodes) == 0 || c.t[1].c < rc || c.t[1].m < rm {
		return -1
	}
	s := search{c: c, rc: rc, rm: rm, best: -1, bestK: math.MaxInt64}
	s.visit(1, 0, c.size)
	if s.best < 0 {
		return -1
	}
	return c.nodes[s.best]
}

type search struct {
	c      *class
	rc, rm int64
	best   int
	bestK  int64
}

// visit is a branch and bound over the tree: subtree i covers leaves
// [lo, lo+w). A subtree is skipped when no node in it can fit on one
// resource, or when its smallest key cannot beat the best found (equal keys
// go to the leftmost node).
func (s *search) visit(i, lo, w int) {
	a := s.c.t[i]
	if a.c < s.rc || a.m < s.rm || a.k > s.bestK || (a.k == s.bestK && lo > s.best) {
		return
	}
	if w == 1 {
		s.best, s.bestK = lo, a.k
		return
	}
	h := w / 2
	l, r := 2*i, 2*i+1
	if s.c.t[r].k < s.c.t[l].k {
		s.visit(r, lo+h, h)
		s.visit(l, lo, h)
	} else {
		s.visit(l, lo, h)
		s.visit(r, lo+h, h)
	}
}

// findRandom returns a node of the class where c millicores and m bytes
// fit: in the tier with the fewest labels that has one, the first fitting
// node at or after a position drawn from r, wrapping around. One descent,
// where a random key per node would make the search wander among full
// nodes with small keys.
func (c *class) findRandom(rc, rm int64, r uint64) int32 {
	if len(c.nodes) == 0 || c.t[1].c < rc || c.t[1].m < rm {
		return -1
	}
	for t := 0; t+1 < len(c.tiers); t++ {
		a, b := int(c.tiers[t]), int(c.tiers[t+1])
		p := a + int(r%uint64(b-a))
		pos := c.first(1, 0, c.size, p, b, rc, rm)
		if pos < 0 {
			pos = c.first(1, 0, c.size, a, p, rc, rm)
		}
		if pos >= 0 {
			return c.nodes[pos]
		}
	}
	return -1
}

// first returns the first leaf in [from, to) of subtree i (leaves [lo,
// lo+w)) where (rc, rm) fits, or -1.
func (c *class) first(i, lo, w, from, to int, rc, rm int64) int {
	if lo >= to || lo+w <= from {
		return -1
	}
	if a := c.t[i]; a.c < rc || a.m < rm {
		return -1
	}
	if w == 1 {
		return lo
	}
	h := w / 2
	if pos := c.first(2*i, lo, h, from, to, rc, rm); pos >= 0 {
		return pos
	}
	return c.first(2*i+1, lo+h, h, from, to, rc, rm)
}

// fits tells whether some node of the class has c millicores and m bytes
// free.
func (c *class) fits(rc, rm int64) bool {
	if len(c.nodes) == 0 {
		return false
	}
	return c.anyFit(1, rc, rm)
}

func (c *class) anyFit(i int, rc, rm int64) bool {
	a := c.t[i]
	if a.c < rc || a.m < rm {
		return false
	}
	if i >= c.size {
		return true
	}
	return c.anyFit(2*i, rc, rm) || c.anyFit(2*i+1, rc, rm)
}

// failed tells whether a request at most as large as (rc, rm) failed
// before. The front is sorted by cores ascending and memory descending, so
// the last entry with at most rc cores has the least memory among them.
func (c *class) failed(rc, rm int64) bool {
	i, _ := slices.BinarySearchFunc(c.front, rc, func(e need, t int64) int {
		if e.c <= t {
			return -1
		}
		return 1
	})
	return i > 0 && c.front[i-1].m <= rm
}

// fail records a failed request, keeping only the minimal ones.
func (c *class) fail(rc, rm int64) {
	if c.failed(rc, rm) {
		return
	}
	c.front = slices.DeleteFunc(c.front, func(e need) bool { return e.c >= rc && e.m >= rm })
	i, _ := slices.BinarySearchFunc(c.front, rc, func(e need, t int64) int {
		if e.c < t {
			return -1
		}
		return 1
	})
	c.front = slices.Insert(c.front, i, need{rc, rm})
}
