package api

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// passwordQueue bounds the password checks that run at once: each costs a
// bcrypt comparison, tens to hundreds of milliseconds of a core, and
// unbounded they starve one another and everything else. Waiting checks
// are served in lines by priority (checkPriority): known, trusted,
// doubtful, suspect. A crowd of wrong guesses thus waits behind a user who types the
// right password; with
// more than one place, one is kept for the first line, so that such a user
// does not even wait for a guess to finish.
type passwordQueue struct {
	mu    sync.Mutex
	free  int // places free to run a check
	slots int
	// reserved places are for known and trusted checks only.
	reserved int
	// maxWaiting bounds the checks that wait; more are refused.
	maxWaiting int
	lines      [priorities][]*pqWaiter
	refused    uint64
}

// Priorities of password checks, first served first.
const (
	known priority = iota
	trusted
	doubtful
	suspect
	priorities
)

type priority int

type pqWaiter struct {
	ready chan struct{} // closed once granted or evicted
	// granted: the waiter holds a place; evicted: a check of a higher
	// priority took its place in the full queue. Both under the queue's
	// lock.
	granted, evicted bool
}

// errQueueFull means too many password checks wait already.
var errQueueFull = errors.New("too many password checks are waiting")

func newPasswordQueue(slots, maxWaiting int) *passwordQueue {
	q := &passwordQueue{free: slots, slots: slots, maxWaiting: maxWaiting}
	if slots > 1 {
		q.reserved = 1
	}
	return q
}

// canRun tells whether a check of priority p may take a free place.
func (q *passwordQueue) canRun(p priority) bool {
	if p <= trusted {
		return q.free > 0
	}
	return q.free > q.reserved
}

func (q *passwordQueue) waiting() int {
	n := 0
	for _, l := range q.lines {
		n += len(l)
	}
	return n
}

// acquire waits for a place to run a check, until ctx ends; release gives
// it back. When the queue is full, the newest check of the lowest priority
// below p is refused to make room, or else this one.
func (q *passwordQueue) acquire(ctx context.Context, p priority) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err // given up already: no place, no check
	}
	q.mu.Lock()
	if q.canRun(p) && len(q.lines[p]) == 0 {
		q.free--
		q.mu.Unlock()
		return q.release, nil
	}
	if q.waiting() >= q.maxWaiting {
		lower := priorities - 1
		for lower > p && len(q.lines[lower]) == 0 {
			lower--
		}
		if lower <= p {
			q.refused++
			q.mu.Unlock()
			return nil, errQueueFull
		}
		l := q.lines[lower]
		last := l[len(l)-1]
		q.lines[lower] = l[:len(l)-1]
		last.evicted = true
		close(last.ready)
		q.refused++
	}
	w := &pqWaiter{ready: make(chan struct{})}
	q.lines[p] = append(q.lines[p], w)
	q.mu.Unlock()

	select {
	case <-w.ready:
	case <-ctx.Done():
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case w.granted && ctx.Err() == nil:
		return q.release, nil
	case w.granted:
		// Granted as it was given up: the place goes to the next.
		q.free++
		q.dispatch()
		return nil, ctx.Err()
	case w.evicted:
		return nil, errQueueFull
	}
	q.lines[p] = slices.DeleteFunc(q.lines[p], func(x *pqWaiter) bool { return x == w })
	return nil, ctx.Err()
}

func (q *passwordQueue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.free++
	q.dispatch()
}

// dispatch gives the free places to the first waiters of the first lines
// that may take them.
func (q *passwordQueue) dispatch() {
	for p := range q.lines {
		for len(q.lines[p]) > 0 && q.canRun(priority(p)) {
			w := q.lines[p][0]
			q.lines[p] = q.lines[p][1:]
			q.free--
			w.granted = true
			close(w.ready)
		}
	}
}

// queueStats are a passwordQueue's counts.
type queueStats struct {
	Running int
	// Waiting by priority.
	Waiting [priorities]int
	Refused uint64
}

func (q *passwordQueue) stats() queueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := queueStats{Running: q.slots - q.free, Refused: q.refused}
	for p, l := range q.lines {
		st.Waiting[p] = len(l)
	}
	return st
}

// sharedChecks lets concurrent requests with the same credentials share
// one check: when a cached answer expires under load, the hashing would
// otherwise run once per waiting request. A check runs while at least one
// request waits for it; when every one has gone, it is cancelled (its
// place in the queue given up, the plugin not asked, or its call
// cancelled).
type sharedChecks struct {
	mu sync.Mutex
	m  map[string]*sharedCheck
}

type sharedCheck struct {
	done    chan struct{}
	res     checked // set before done is closed
	waiters int
	cancel  context.CancelFunc
}

// join returns the check of key in progress, or starts run under a context
// with ctx's values and timeout passwordCheckTimeout. Whoever joins calls
// leave when it stops waiting, done or not; a joiner that never leaves
// keeps the check going (a renewal in the background).
func (g *sharedChecks) join(ctx context.Context, key string, run func(context.Context) checked) (c *sharedCheck, leave func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c = g.m[key]
	if c == nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), passwordCheckTimeout)
		c = &sharedCheck{done: make(chan struct{}), cancel: cancel}
		if g.m == nil {
			g.m = map[string]*sharedCheck{}
		}
		g.m[key] = c
		go func() {
			defer cancel()
			res := run(cctx)
			g.mu.Lock()
			if g.m[key] == c {
				delete(g.m, key)
			}
			g.mu.Unlock()
			c.res = res
			close(c.done)
		}()
	}
	c.waiters++
	var once sync.Once
	return c, func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			c.waiters--
			if c.waiters == 0 {
				select {
				case <-c.done:
				default:
					// Nobody waits for it any more; a new request
					// with the same credentials starts afresh.
					c.cancel()
					if g.m[key] == c {
						delete(g.m, key)
					}
				}
			}
		})
	}
}

// maxWaitingChecks bounds the password checks that wait for a place: more
// are answered 503 at once.
const maxWaitingChecks = 128
