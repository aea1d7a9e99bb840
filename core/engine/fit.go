package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk/backend"
)

// nodesTimeout bounds the back-end's answer at submission: a back-end that
// does not answer in time leaves the ZApp accepted, to wait, as without a
// back-end.
const nodesTimeout = 5 * time.Second

// nodesFresh is how long a node list read for one submission serves the
// next ones: what the fit check uses (names, labels, totals) changes when
// nodes are added, removed or relabelled, not with what runs, and a burst
// of submissions then costs the back-end one Nodes call, not one each.
const nodesFresh = 10 * time.Second

// configuredNodes is every node the back-end knows, whatever its state, or
// nil when it is not known: no back-end, or no answer. A list read less
// than nodesFresh ago is used again.
func (e *Engine) configuredNodes(ctx context.Context) []backend.Node {
	if e.cfg.Backend == nil {
		return nil
	}
	e.mu.Lock()
	nodes, at := e.nodes, e.nodesAt
	e.mu.Unlock()
	if nodes != nil && time.Since(at) < nodesFresh {
		return nodes
	}
	ctx, cancel := context.WithTimeout(ctx, nodesTimeout)
	defer cancel()
	nodes, err := e.cfg.Backend.Nodes(ctx)
	if err != nil {
		e.log.Debug("the back-end's nodes are not known: ZApps are not checked against them", "error", err)
		return nil
	}
	e.mu.Lock()
	e.nodes, e.nodesAt = nodes, time.Now()
	e.mu.Unlock()
	return nodes
}

// capacityKnown: a node the back-end cannot reach may report no cores and
// no memory; what it has is then unknown, not nothing.
func capacityKnown(n backend.Node) bool {
	return n.State != backend.NodeUnreachable || n.Cores > 0 || n.MemoryBytes > 0
}

// fitProblems says why a ZApp can never run on the platform as configured,
// whatever runs there now: a service requiring labels no node carries
// together, a service instance reserving more cores or memory than every
// node carrying its labels has in all, or the essential instances together
// reserving more than all nodes together. Every node counts, unreachable
// and disabled ones included: they are configured, and may come back. A
// node whose capacity is unknown (unreachable, reporting none) may hold
// anything. nil nodes: nothing is known, nothing is refused.
//
// Problems name the service's JSON path in the description (services[i]).
// What fits here may still wait for room, or fail to pack on the nodes: the
// scheduler decides that.
func fitProblems(app *zapp.App, instances []zapp.Instance, nodes []backend.Node) zapp.Problems {
	if len(nodes) == 0 {
		return nil
	}
	index := map[string]int{}
	for i, s := range app.Services {
		index[s.Name] = i
	}
	var probs zapp.Problems
	done := map[string]bool{} // a service is reported once, not per instance
	var needCores float64
	var needMemory int64
	for _, in := range instances {
		if in.Essential {
			needCores += in.Cores
			needMemory += in.MemoryReservation
		}
		if done[in.Service] {
			continue
		}
		path := fmt.Sprintf("services[%d]", index[in.Service])
		var candidates []backend.Node
		for _, n := range nodes {
			if carries(n, in.Labels) {
				candidates = append(candidates, n)
			}
		}
		if len(candidates) == 0 {
			done[in.Service] = true
			probs = append(probs, zapp.Problem{Path: path + ".labels", Message: labelsMessage(in.Labels, nodes)})
			continue
		}
		if slices.ContainsFunc(candidates, func(n backend.Node) bool { return !capacityKnown(n) }) {
			continue
		}
		most := slices.MaxFunc(candidates, func(a, b backend.Node) int { return cmp.Compare(a.Cores, b.Cores) })
		if in.Cores > most.Cores {
			done[in.Service] = true
			probs = append(probs, zapp.Problem{Path: path + ".resources.cores.min", Message: fmt.Sprintf(
				"each instance reserves %g cores, more than any node%s has in all (at most %g, on %s)",
				in.Cores, withLabels(in.Labels), most.Cores, most.Name)})
			continue
		}
		most = slices.MaxFunc(candidates, func(a, b backend.Node) int { return cmp.Compare(a.MemoryBytes, b.MemoryBytes) })
		if in.MemoryReservation > most.MemoryBytes {
			done[in.Service] = true
			probs = append(probs, zapp.Problem{Path: path + ".resources.memory.min", Message: fmt.Sprintf(
				"each instance reserves %d bytes of memory, more than any node%s has in all (at most %d, on %s)",
				in.MemoryReservation, withLabels(in.Labels), most.MemoryBytes, most.Name)})
		}
	}
	if len(probs) > 0 || slices.ContainsFunc(nodes, func(n backend.Node) bool { return !capacityKnown(n) }) {
		return probs
	}
	var haveCores float64
	var haveMemory int64
	for _, n := range nodes {
		haveCores += n.Cores
		haveMemory += n.MemoryBytes
	}
	if needCores > haveCores {
		probs = append(probs, zapp.Problem{Path: "services", Message: fmt.Sprintf(
			"the essential instances reserve %g cores together, more than the %g of all %d nodes together",
			needCores, haveCores, len(nodes))})
	}
	if needMemory > haveMemory {
		probs = append(probs, zapp.Problem{Path: "services", Message: fmt.Sprintf(
			"the essential instances reserve %d bytes of memory together, more than the %d of all %d nodes together",
			needMemory, haveMemory, len(nodes))})
	}
	return probs
}

// carries: n has every label.
func carries(n backend.Node, labels []string) bool {
	for _, l := range labels {
		if !slices.Contains(n.Labels, l) {
			return false
		}
	}
	return true
}

// labelsMessage says which of the labels no node has, or, when each is on
// some node, that none has them all.
func labelsMessage(labels []string, nodes []backend.Node) string {
	var missing []string
	for _, l := range labels {
		if !slices.ContainsFunc(nodes, func(n backend.Node) bool { return slices.Contains(n.Labels, l) }) {
			missing = append(missing, l)
		}
	}
	var have []string
	for _, n := range nodes {
		for _, l := range n.Labels {
			if !slices.Contains(have, l) {
				have = append(have, l)
			}
		}
	}
	slices.Sort(have)
	known := "no node has any label"
	if len(have) > 0 {
		known = "the nodes' labels are " + strings.Join(have, ", ")
	}
	if len(missing) > 0 {
		return fmt.Sprintf("requires labels [%s] that no node has (%s)", strings.Join(missing, " "), known)
	}
	return fmt.Sprintf("requires labels [%s] that no node has together (%s)", strings.Join(labels, " "), known)
}

func withLabels(labels []string) string {
	if len(labels) == 0 {
		return ""
	}
	return " with labels [" + strings.Join(labels, " ") + "]"
}
