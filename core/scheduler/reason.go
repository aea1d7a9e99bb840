package scheduler

import (
	"strconv"
	"strings"
)

// ReasonKind is the kind of a Reason.
type ReasonKind uint8

const (
	// ReasonNone: no reason (the zero value).
	ReasonNone ReasonKind = iota
	// ReasonBehind: strict order, waiting behind Reason.Execution.
	ReasonBehind
	// ReasonLabels: no ready node carries all of the labels.
	ReasonLabels
	// ReasonImage: no ready node (with the labels) has the image and the
	// back-end cannot pull.
	ReasonImage
	// ReasonTooBig: more than any eligible ready node has in total (less
	// Foreign); Free gives those largest totals.
	ReasonTooBig
	// ReasonMemory: more memory than any eligible node has free now.
	ReasonMemory
	// ReasonCores: more cores than any eligible node has free now.
	ReasonCores
	// ReasonBoth: enough cores on some node and enough memory on some node,
	// but not both on one.
	ReasonBoth
	// ReasonHeld: it would fit only on room held for Reason.Execution, which
	// backfill must not delay.
	ReasonHeld
	// ReasonTogether: the service fits alone, but not with the execution's
	// other essential services, which are placed all or nothing.
	ReasonTogether
	// ReasonSetTooBig: the execution's essential services cannot all fit on
	// the ready nodes even when these are empty.
	ReasonSetTooBig
)

// Reason is why a service or an execution waits. It is kept as small data,
// pointing to the input's service, so that a pass does not format strings
// for executions nobody looks at; String renders it.
type Reason struct {
	Kind ReasonKind
	// imageNarrows: the service's image rules out nodes its labels allow.
	imageNarrows bool
	// Execution of ReasonBehind and ReasonHeld.
	Execution int64
	// freeC (millicores) and freeM (bytes): the most free on one eligible
	// node now; the largest capacity for ReasonTooBig.
	freeC, freeM int64
	svc          *Service // nil for the execution-level kinds
}

// Need is what the service needs; zero for execution-level reasons.
func (r Reason) Need() Resources {
	if r.svc == nil {
		return Resources{}
	}
	return Resources{Cores: r.svc.Cores, Memory: r.svc.Memory}
}

// Free is the most free cores and the most free memory on one eligible
// node (not necessarily the same node); for ReasonTooBig the largest
// capacities.
func (r Reason) Free() Resources { return Resources{Cores: cores(r.freeC), Memory: r.freeM} }

// Labels the service requires (the input's slice).
func (r Reason) Labels() []string {
	if r.svc == nil {
		return nil
	}
	return r.svc.Labels
}

// Image is the service's image when it narrows the eligible nodes (the
// back-end cannot pull and some nodes lack it), else "".
func (r Reason) Image() string {
	if r.svc == nil || !r.imageNarrows {
		return ""
	}
	return r.svc.Image
}

// Permanent tells whether the reason holds until the platform changes (new
// nodes, labels or images), however long the execution waits.
func (r Reason) Permanent() bool {
	switch r.Kind {
	case ReasonLabels, ReasonImage, ReasonTooBig, ReasonSetTooBig:
		return true
	}
	return false
}

func (r Reason) String() string {
	need, free, labels, image := r.Need(), r.Free(), r.Labels(), r.Image()
	switch r.Kind {
	case ReasonNone:
		return ""
	case ReasonBehind:
		return "waiting behind execution " + strconv.FormatInt(r.Execution, 10) + " (strict order)"
	case ReasonLabels:
		if len(labels) == 0 {
			return "no ready node"
		}
		return "requires labels " + fmtLabels(labels) + " that no ready node has"
	case ReasonImage:
		s := "image " + image + " is on no ready node"
		if len(labels) > 0 {
			s += " with labels " + fmtLabels(labels)
		}
		return s + " and the back-end cannot pull"
	case ReasonTooBig:
		if need.Memory > free.Memory {
			return "needs " + fmtBytes(need.Memory) + " of memory, more than any " + r.where() +
				" has (at most " + fmtBytes(free.Memory) + ")"
		}
		return "needs " + fmtCores(need.Cores) + ", more than any " + r.where() +
			" has (at most " + fmtNum(free.Cores) + ")"
	case ReasonMemory:
		return "needs " + fmtBytes(need.Memory) + " of memory, at most " + fmtBytes(max(free.Memory, 0)) +
			" free on a " + r.where()
	case ReasonCores:
		return "needs " + fmtCores(need.Cores) + ", at most " + fmtNum(max(free.Cores, 0)) + " free on a " + r.where()
	case ReasonBoth:
		return "needs " + fmtCores(need.Cores) + " and " + fmtBytes(need.Memory) + " of memory on one " + r.where() +
			"; no such node has both free"
	case ReasonHeld:
		return "fits only on room held for execution " + strconv.FormatInt(r.Execution, 10) +
			", which backfill must not delay"
	case ReasonTogether:
		return "fits alone, but not together with the execution's other essential services (all or nothing)"
	case ReasonSetTooBig:
		return "its essential services cannot all fit on the ready nodes, even empty"
	}
	return "unknown reason " + strconv.Itoa(int(r.Kind))
}

// where names the eligible nodes: "node", "node with labels [gpu]", ...
func (r Reason) where() string {
	labels, image := r.Labels(), r.Image()
	var b strings.Builder
	b.WriteString("node")
	if len(labels) > 0 {
		b.WriteString(" with labels ")
		b.WriteString(fmtLabels(labels))
	}
	if image != "" {
		if len(labels) > 0 {
			b.WriteString(" and")
		} else {
			b.WriteString(" with")
		}
		b.WriteString(" image ")
		b.WriteString(image)
	}
	return b.String()
}

func fmtLabels(l []string) string { return "[" + strings.Join(l, " ") + "]" }

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func fmtCores(c float64) string {
	if c == 1 {
		return "1 core"
	}
	return fmtNum(c) + " cores"
}

// fmtBytes renders n in the largest binary unit it reaches, with at most
// two decimals: 4 GiB, 1.5 GiB, 512 MiB, 100 B.
func fmtBytes(n int64) string {
	units := [...]string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	neg := n < 0
	if neg {
		n = -n
	}
	u, v := 0, float64(n)
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if neg {
		s = "-" + s
	}
	return s + " " + units[u]
}
