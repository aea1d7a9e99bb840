// Package scheduler is Zoe's elastic scheduler as pure logic: Schedule takes
// the queue, the running executions that still wait for elastic services and
// a snapshot of the platform, and returns which services to start on which
// node and why every other execution waits. It does no I/O, reads no clock
// (Input.Now is the time), starts no goroutine and is deterministic: the
// random placement derives from Input.Seed.
//
// # Fit
//
// A node takes new services only when its state is ready and it does not
// carry the label "disabled" (the original's way of disabling a host);
// disabled (draining), unreachable and unknown states take nothing. A
// service fits a node iff the node carries all of the service's labels, has
// the service's image or the back-end can pull (Input.CanPull), and
// cores ≤ free cores and memory ≤ free memory. Free is the node's total less
// Node.Reserved less what this pass placed. The original used a strict < for
// memory only; an exact fit is a fit here, for both resources alike.
// Resources are counted in millicores and bytes, so sums are exact.
//
// # Order
//
// FIFO keeps the input (submission) order; SIZE sorts by the size hint,
// ascending and stable; DYNSIZE sorts by a size that starts at InitialSize
// and, for executions tried before, loses AgingPerSecond for every second
// between Execution.LastTried and Input.Now, starting again from the
// initial size when it reaches zero or less (§5.4). The caller stores
// Waiting.Size and sets LastTried to Now for the executions left waiting.
//
// # Placement
//
// Candidates are ordered by number of labels first, so that special nodes
// stay free, then average: fewest containers (spread); waterfill: most
// containers (pack); ties go to the node name; each placement in the pass
// counts as one more container. Random: among the nodes with the fewest
// labels that have a fitting one, the first fitting node at or after a
// position drawn from a hash of Input.Seed, the execution id and the
// service's index, wrapping around (a hash, so that tries undone by all or
// nothing do not change later draws).
//
// # The pass
//
// The original's loop re-simulated every accepted execution for each new one.
// What it computes is: the essentials of the executions in order, all or
// nothing per execution, then the elastic services of those that started,
// greedily, in what is left. That is what the pass does, in one sweep:
//
//  1. Essentials in policy order. An execution whose pending essential
//     services do not all fit places none of them. If it could never fit on
//     the ready nodes (a label or image no ready node has, a service larger
//     than any eligible node, or the set not fitting on the nodes even empty)
//     it is reported Unplaceable and does not hold the queue. Otherwise it is
//     the head, and the sweep stops. Running executions have no pending
//     essentials: they never block.
//  2. Elastic services of the executions accepted in step 1, in order.
//  3. With strict order (Backfill false) the executions after the head wait
//     "behind" it, running ones' elastic services included. With Backfill,
//     room is held for the head (below), then the executions after it are
//     swept like step 1 (without a new head) and step 2 in the rest.
//
// Progress is "the execution's essentials were placed", in cores and memory
// alike, not the original's drop of free memory; nothing written during the
// pass leaves it.
//
// # Backfill without delaying the head
//
// When the head blocks, the pass plans where its pending essentials will go:
// for each, in order, among the eligible ready nodes whose capacity (total
// less Node.Foreign, less what the plan already put there) fits it, the one
// with the fewest labels, then one held for it by the previous pass
// (Input.Held, so that the hold stays put from pass to pass), then the least
// still to be freed (missing fraction of cores plus of memory), then the
// first by name. That room — the head's cores and memory on those nodes — is
// held: it is subtracted from the nodes' free room before backfilling, so
// free room a node has beyond it can be used, but nothing backfilled ever
// takes any of what the head needs there, however long it runs. "Without
// delaying the head" thus means: the head starts at the latest when the Zoe
// services already on its held nodes have ended, as in strict order; it may
// start sooner elsewhere, though backfilled executions may occupy other
// nodes that would have freed up first. Only the head is protected (as in
// EASY backfilling): executions after it may be overtaken. Decision.Held
// reports the room held. Executions ahead of the head keep their priority
// over it, elastic services included, as in the original.
//
// # Images
//
// Without CanPull a service fits only nodes that have its image, and one
// whose image is on no eligible node waits with that reason. With CanPull
// images are ignored: the back-end pulls where the service is placed.
//
// # Removal
//
// Like the original, the scheduler never preempts: Decision.Removes is
// always empty (an elastic service on a node since disabled keeps running;
// draining is the back-end's and the administrator's business).
//
// # Complexity
//
// Ready nodes are grouped into classes, one per distinct requirement (label
// set, plus image without CanPull), built on first use from per-label and
// per-image node lists. Each class is a tournament tree over its nodes in
// static order whose inner entries hold the most free cores, the most free
// memory and the smallest placement key below them; finding the preferred
// fitting node is a branch and bound that skips subtrees where nothing fits
// or nothing can win, typically O(log N) (O(N) at worst, when the maxima of
// a subtree come from different nodes); a placement updates the node's
// leaf in the trees of the classes holding it, O(k log N). A service larger
// than a class's free maxima is rejected in O(1), and each class remembers
// the Pareto front of requests that failed (free room only shrinks during a
// pass), so a queue that no longer fits is rejected in O(log F) per service.
// A pass is O(E log E) for the policy's sort plus about O(S log N) for S
// services on N nodes. All per-service state is laid out in queue order, so
// the pass reads memory sequentially whatever the policy.
package scheduler
