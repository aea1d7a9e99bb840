package scheduler

import (
	"fmt"
	"time"

	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk/backend"
)

// Policy orders the queue.
type Policy string

const (
	// FIFO keeps the input order, which is submission order.
	FIFO Policy = "FIFO"
	// Size sorts by the user's size hint, ascending and stable.
	Size Policy = "SIZE"
	// DynSize sorts by a size that starts at InitialSize and shrinks while
	// the execution waits (see Input.Now and Execution.LastTried).
	DynSize Policy = "DYNSIZE"
)

// Placement orders the candidate nodes of one service. Every placement
// prefers nodes with fewer labels first, so that special nodes (gpu, ssd)
// stay free for the services that need them.
type Placement string

const (
	// Average spreads: fewest containers first.
	Average Placement = "average"
	// Waterfill packs: most containers first.
	Waterfill Placement = "waterfill"
	// Random picks among the fitting nodes with a generator seeded by
	// Input.Seed.
	Random Placement = "random"
)

// ParsePolicy accepts the configuration's names; "" is FIFO.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case "":
		return FIFO, nil
	case FIFO, Size, DynSize:
		return p, nil
	}
	return "", fmt.Errorf("scheduler: unknown policy %q (want FIFO, SIZE or DYNSIZE)", s)
}

// ParsePlacement accepts the configuration's names; "" is average.
func ParsePlacement(s string) (Placement, error) {
	switch p := Placement(s); p {
	case "":
		return Average, nil
	case Average, Waterfill, Random:
		return p, nil
	}
	return "", fmt.Errorf("scheduler: unknown placement %q (want average, waterfill or random)", s)
}

// Resources is an amount of cores and memory (bytes).
type Resources struct {
	Cores  float64
	Memory int64
}

// DisabledLabel on a node keeps new services off it, as in the original.
const DisabledLabel = "disabled"

// Node is one machine as the back-end reports it.
type Node struct {
	Name   string
	Cores  float64
	Memory int64
	Labels []string
	Images []string
	// State: only backend.NodeReady takes new services; disabled (draining)
	// and unreachable nodes, and any other state, take nothing new.
	State backend.NodeState
	// Reserved is everything already committed on the node: Zoe's services
	// and others', as the back-end reports it, plus anything the engine has
	// started since that report. The scheduler does not add the placed
	// services of the input's executions again.
	Reserved Resources
	// Foreign is the part of Reserved held by what Zoe does not manage,
	// assumed never to be freed; it only matters to decide whether an
	// execution could ever fit (and where backfill holds room for the head).
	Foreign Resources
	// Containers on the node, the key of average and waterfill.
	Containers int
}

// NodeFromBackend converts the back-end's view of a node; the back-end's
// reservation is taken as Reserved, and Foreign and Containers are left for
// the caller, who knows which of the node's services are Zoe's.
func NodeFromBackend(n backend.Node) Node {
	return Node{
		Name: n.Name, Cores: n.Cores, Memory: n.MemoryBytes, Labels: n.Labels, Images: n.Images,
		State:    n.State,
		Reserved: Resources{Cores: n.CoresReserved, Memory: n.MemoryReserved},
	}
}

// Service is one service instance of an execution.
type Service struct {
	Name      string
	Essential bool
	// Cores and Memory are the reservation (cores.min, memory.min).
	Cores  float64
	Memory int64
	// Labels must all be carried by the node.
	Labels []string
	Image  string
	// Node is where the service runs or is being started; "" when it is not
	// placed. A placed service is assumed counted in its node's Reserved.
	Node string
}

// ServiceFromInstance converts an expanded instance; node is where it runs,
// "" when it does not.
func ServiceFromInstance(in zapp.Instance, node string) Service {
	return Service{
		Name: in.Name, Essential: in.Essential, Cores: in.Cores, Memory: in.MemoryReservation,
		Labels: in.Labels, Image: in.Image, Node: node,
	}
}

// Execution is a queued execution, or a running one that still waits for
// some of its elastic services.
type Execution struct {
	ID int64
	// Size is the hint of the SIZE policy; for DYNSIZE it is the current
	// dynamic size as returned in Waiting.Size by the previous pass (0: not
	// computed yet, InitialSize is used).
	Size        int64
	SubmittedAt time.Time
	// LastTried is when a pass last left the execution waiting; zero if
	// never. DYNSIZE ages only executions tried at least once.
	LastTried time.Time
	// Services in start-up order, as zapp.Expand returns them.
	Services []Service
}

// Input is everything one pass needs. Schedule does not modify it.
type Input struct {
	// Now is the time of the pass (DYNSIZE aging); the scheduler has no
	// clock of its own.
	Now       time.Time
	Policy    Policy    // "" is FIFO
	Placement Placement // "" is average
	// Backfill lets executions behind a blocked one start when they fit,
	// without taking what is held for the blocked one; false keeps strict
	// order.
	Backfill bool
	// CanPull: the back-end pulls missing images, so a node need not have a
	// service's image already.
	CanPull bool
	// Seed of the random placement.
	Seed uint64
	// Held is the previous pass's Decision.Held: if the same execution is
	// the head again, it keeps those nodes where they still can hold it.
	Held *Hold
	// Nodes of the platform, in any order.
	Nodes []Node
	// Executions in submission order, each at most once. Executions that
	// are terminated or being cleaned up must not be here.
	Executions []Execution
}

// Start is a service to start on a node.
type Start struct {
	Execution int64
	Service   string
	// Index of the service in Execution.Services.
	Index     int
	Node      string
	Essential bool
}

// Remove is an elastic service to stop. Schedule returns none for now: like
// the original it never preempts; the slot is here for the engine.
type Remove struct {
	Execution int64
	Service   string
	Index     int
	Node      string
	Reason    string
}

// ServiceWait is why one service is not placed. The Reason points into the
// input's service (Execution.Services[Index]).
type ServiceWait struct {
	Index  int
	Reason Reason
}

// Waiting is an execution left waiting by the pass, with why.
type Waiting struct {
	Execution int64
	// Size is the execution's size after this pass: for DYNSIZE the aged
	// size to store (and to pass back in Execution.Size), else the input's.
	Size int64
	// Started: the execution's essential services are all placed (before or
	// by this pass); it waits only for elastic services and holds nothing.
	Started bool
	// Unplaceable: its essential services cannot fit on the ready nodes even
	// once everything Zoe runs there has ended (a missing label or image, a
	// service larger than any eligible node, or — checked only for an
	// execution that would otherwise have become the head — the set not
	// fitting). It does not hold the queue; the engine may keep it (nodes
	// may come back) or fail it.
	Unplaceable bool
	// Reason is the execution's first reason: waiting behind the head in
	// strict order, the set not fitting, or its first service's reason.
	Reason Reason
	// Services lists every unplaced service considered, in input order, with
	// its first unfit reason; empty when the execution waits behind another.
	Services []ServiceWait
}

// HeldNode is room held on one node.
type HeldNode struct {
	Node   string
	Cores  float64
	Memory int64
}

// Hold is what backfill holds for the blocked head of the queue.
type Hold struct {
	Execution int64
	Nodes     []HeldNode
}

// Decision is the result of one pass.
type Decision struct {
	// Starts grouped by execution in the policy's order, then by service
	// index.
	Starts []Start
	// Removes is always empty for now (see Remove).
	Removes []Remove
	// Waiting in the policy's order: the index is the queue position.
	Waiting []Waiting
	// Held is the room held for the head with backfill; nil otherwise.
	Held *Hold
}
