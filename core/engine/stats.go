package engine

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/zoe-project/zoe/core/scheduler"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk/backend"
)

// QueueEntry is an execution waiting to start.
type QueueEntry struct {
	Execution state.Execution
	// Position in the queue, 1 for the next to be considered.
	Position int
	// Reason is why it waits, as the last pass recorded it; "" when no pass
	// has tried it yet.
	Reason string
}

// Queue returns the submitted and queued executions in the order the
// scheduler considers them: submission order with FIFO, the size hint with
// SIZE, the aged size of the last pass with DYNSIZE (submission order
// breaking ties, as in the scheduler). Submitted executions are queued by
// the next pass and take their place by the same rule.
func (e *Engine) Queue(ctx context.Context) ([]QueueEntry, error) {
	execs, err := e.cfg.Store.ActiveExecutions(ctx)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	var q []queued
	for _, ex := range execs {
		if ex.Status != state.StatusSubmitted && ex.Status != state.StatusQueued {
			continue
		}
		it := queued{ex: ex}
		if e.cfg.Policy == scheduler.DynSize {
			svcs, err := e.cfg.Store.Services(ctx, ex.ID)
			if err != nil {
				return nil, fmt.Errorf("queue: %w", err)
			}
			in := make([]scheduler.Service, 0, len(svcs))
			for _, sv := range svcs {
				if inst, err := e.insts.get(sv); err == nil {
					in = append(in, scheduler.ServiceFromInstance(inst, ""))
				}
			}
			it.initial = scheduler.InitialSize(in)
			e.mu.Lock()
			it.dyn = e.dyn[ex.ID]
			e.mu.Unlock()
		}
		q = append(q, it)
	}
	order(e.cfg.Policy, q, time.Now())
	out := make([]QueueEntry, len(q))
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, it := range q {
		out[i] = QueueEntry{Execution: it.ex, Position: i + 1, Reason: e.waiting[it.ex.ID]}
	}
	return out, nil
}

// queued is a waiting execution with what its policy's key needs.
type queued struct {
	ex      state.Execution
	dyn     dynState // DYNSIZE: what the last pass left
	initial int64    // DYNSIZE: scheduler.InitialSize of its services
}

// order sorts q, in the store's order (oldest first, the scheduler's input
// order), by the policy's key, as scheduler.Schedule does.
func order(policy scheduler.Policy, q []queued, now time.Time) {
	var key func(queued) int64
	switch policy {
	case scheduler.Size:
		key = func(it queued) int64 { return it.ex.Size }
	case scheduler.DynSize:
		key = func(it queued) int64 { return dynSize(it.dyn, it.initial, now) }
	default:
		return
	}
	keys := make(map[int64]int64, len(q))
	for _, it := range q {
		keys[it.ex.ID] = key(it)
	}
	// Stable: the input order breaks ties, as in the scheduler.
	slices.SortStableFunc(q, func(a, b queued) int { return cmp.Compare(keys[a.ex.ID], keys[b.ex.ID]) })
}

// dynSize is the scheduler's DYNSIZE key of an execution (see "Order" in
// core/scheduler): the size the last pass left it with, aged by
// scheduler.AgingPerSecond for every second since, starting again from its
// initial size at or below zero.
func dynSize(d dynState, initial int64, now time.Time) int64 {
	size := d.size
	if size <= 0 {
		size = initial
	}
	if !d.lastTried.IsZero() {
		if el := now.Sub(d.lastTried).Seconds(); el > 0 {
			f := float64(size) - el*scheduler.AgingPerSecond
			switch {
			case f >= math.MaxInt64:
				size = math.MaxInt64
			case f <= math.MinInt64:
				size = math.MinInt64
			default:
				size = int64(f)
			}
		}
	}
	if size <= 0 {
		size = initial
	}
	return size
}

// NodeUsage is a node of the back-end with how many of Zoe's services it
// runs.
type NodeUsage struct {
	Node backend.Node
	// Services of Zoe starting or running there.
	Services int
}

// Nodes returns the back-end's nodes, in its order, with the number of
// Zoe's services on each.
func (e *Engine) Nodes(ctx context.Context) ([]NodeUsage, error) {
	nodes, err := e.cfg.Backend.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("back-end nodes: %w", err)
	}
	active, err := e.cfg.Store.ActiveServices(ctx)
	if err != nil {
		return nil, fmt.Errorf("nodes: %w", err)
	}
	count := map[string]int{}
	for _, svcs := range active {
		for _, sv := range svcs {
			switch sv.Status {
			case state.ServiceStarting, state.ServiceRunning, state.ServiceStopping:
				if sv.Node != "" {
					count[sv.Node]++
				}
			}
		}
	}
	out := make([]NodeUsage, len(nodes))
	for i, n := range nodes {
		n.Cores, n.CoresReserved = roundCores(n.Cores), roundCores(n.CoresReserved)
		out[i] = NodeUsage{Node: n, Services: count[n.Name]}
	}
	return out, nil
}

// roundCores rounds cores to millicores, the finest unit the scheduler
// counts in: a sum of fractions would otherwise show its binary rounding
// (0.1 + 0.2 is 0.30000000000000004, a back-end's 1.1 + 0.9
// 2.0000000000000004).
func roundCores(c float64) float64 {
	if math.IsNaN(c) || math.IsInf(c, 0) || math.Abs(c) > 1e12 {
		return c // not a sum of reservations; left for the reader to see
	}
	return math.Round(c*1000) / 1000
}
