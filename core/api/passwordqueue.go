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
// are served in two lines: the ordinary ones first, then the suspect ones
// (recent failures from the address or for the user name), so that a
// crowd of wrong guesses waits behind a user who types the right password.
type passwordQueue struct {
	mu    sync.Mutex
	free  int // places free to run a check
	slots int
	// maxWaiting bounds the checks that wait; more are refused.
	maxWaiting      int
	normal, suspect []*pqWaiter
	refused         uint64
}

type pqWaiter struct {
	ready chan struct{} // closed once granted or evicted
	// granted: the waiter holds a place; evicted: a normal check took its
	// place in the full queue. Both under the queue's lock.
	granted, evicted bool
}

// errQueueFull means too many password checks wait already.
var errQueueFull = errors.New("too many password checks are waiting")

func newPasswordQueue(slots, maxWaiting int) *passwordQueue {
	return &passwordQueue{free: slots, slots: slots, maxWaiting: maxWaiting}
}

// acquire waits for a place to run a check, until ctx ends; release gives
// it back. A suspect check waits behind every ordinary one, and is the one
// refused when the queue is full.
func (q *passwordQueue) acquire(ctx context.Context, suspect bool) (release func(), err error) {
	q.mu.Lock()
	if q.free > 0 {
		q.free--
		q.mu.Unlock()
		return q.release, nil
	}
	if len(q.normal)+len(q.suspect) >= q.maxWaiting {
		if suspect || len(q.suspect) == 0 {
			q.refused++
			q.mu.Unlock()
			return nil, errQueueFull
		}
		// An ordinary check takes the place of the newest suspect one.
		last := q.suspect[len(q.suspect)-1]
		q.suspect = q.suspect[:len(q.suspect)-1]
		last.evicted = true
		close(last.ready)
		q.refused++
	}
	w := &pqWaiter{ready: make(chan struct{})}
	if suspect {
		q.suspect = append(q.suspect, w)
	} else {
		q.normal = append(q.normal, w)
	}
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
		q.handOn()
		return nil, ctx.Err()
	case w.evicted:
		return nil, errQueueFull
	}
	q.normal = slices.DeleteFunc(q.normal, func(x *pqWaiter) bool { return x == w })
	q.suspect = slices.DeleteFunc(q.suspect, func(x *pqWaiter) bool { return x == w })
	return nil, ctx.Err()
}

func (q *passwordQueue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.handOn()
}

// handOn gives a place to the first waiter, or frees it.
func (q *passwordQueue) handOn() {
	var w *pqWaiter
	switch {
	case len(q.normal) > 0:
		w, q.normal = q.normal[0], q.normal[1:]
	case len(q.suspect) > 0:
		w, q.suspect = q.suspect[0], q.suspect[1:]
	default:
		q.free++
		return
	}
	w.granted = true
	close(w.ready)
}

// queueStats are a passwordQueue's counts.
type queueStats struct {
	Running, Waiting, WaitingSuspect int
	Refused                          uint64
}

func (q *passwordQueue) stats() queueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return queueStats{Running: q.slots - q.free, Waiting: len(q.normal), WaitingSuspect: len(q.suspect), Refused: q.refused}
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
