package sim

import (
	"context"
	"sync"

	"github.com/zoe-project/zoe/sdk/backend"
)

// logBuffer is the channel buffer of a followed log stream: a simulated
// service writes a few lines, and a follower costs its buffer while it
// waits.
const logBuffer = 8

// follower is a log stream that follows a running service. It has no
// goroutine of its own while it waits: the runtime hands it each new
// record of its service (update), and it sends the new lines on, or has a
// goroutine send them only when its channel is full.
type follower struct {
	ch   chan backend.LogEntry
	done chan struct{} // closed when the stream must end early
	once sync.Once

	mu sync.Mutex
	// latest is the service's last record, nil once it is gone; next is
	// the index of its next line to send.
	latest *service
	next   int
	// sending: a goroutine owns the sends, the channel being full; it
	// ends the stream itself when it must.
	sending bool
	ended   bool // ch is closed
}

func newFollower(next int) *follower {
	return &follower{ch: make(chan backend.LogEntry, logBuffer), done: make(chan struct{}), next: next}
}

// update hands the follower its service's latest record (nil: gone) and
// tells whether the stream has ended.
func (f *follower) update(s *service) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return true
	}
	f.latest = s
	if !f.sending {
		f.flush()
	}
	return f.ended
}

// flush sends what the channel takes at once and leaves the rest to a
// goroutine; it ends the stream once the service has stopped and every
// line is sent. Under f.mu.
func (f *follower) flush() {
	s := f.latest
	if s != nil {
		lines := s.lines()
		for f.next < len(lines) {
			select {
			case f.ch <- entry(lines[f.next]):
				f.next++
			default:
				f.sending = true
				go f.send()
				return
			}
		}
	}
	if s == nil || s.State != backend.ServiceRunning {
		f.end()
	}
}

// send waits for room in the channel for the lines that did not fit, until
// they are sent or the stream must end.
func (f *follower) send() {
	for {
		f.mu.Lock()
		s := f.latest
		var lines []logLine
		if s != nil {
			lines = s.lines()
		}
		if f.next >= len(lines) {
			f.sending = false
			if s == nil || s.State != backend.ServiceRunning {
				f.end()
			}
			f.mu.Unlock()
			return
		}
		e := entry(lines[f.next])
		f.mu.Unlock()
		select {
		case f.ch <- e:
			f.mu.Lock()
			f.next++
			f.mu.Unlock()
		case <-f.done:
			f.mu.Lock()
			f.sending = false
			f.end()
			f.mu.Unlock()
			return
		}
	}
}

// end closes the channel, once. Under f.mu.
func (f *follower) end() {
	if !f.ended {
		f.ended = true
		close(f.ch)
	}
}

// cancel ends the stream early: its context ended, or the runtime closed.
func (f *follower) cancel() {
	f.once.Do(func() { close(f.done) })
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.sending {
		f.end()
	}
}

// follow starts a log stream of the service id from its line next on, if
// the service is there; it ends when the service stops running, goes
// away, or ctx ends. The service is read and the follower registered
// together, under rt.mu: every later record reaches it, in order, from
// transact.
func (rt *runtime) follow(ctx context.Context, id string, next int) (*follower, bool) {
	f := newFollower(next)
	var s *service
	rt.mu.RLock()
	if s = rt.pl.services[id]; s != nil {
		rt.wmu.Lock()
		if rt.followers[id] == nil {
			rt.followers[id] = map[*follower]struct{}{}
		}
		rt.followers[id][f] = struct{}{}
		rt.wmu.Unlock()
	}
	rt.mu.RUnlock()
	if s == nil {
		return nil, false
	}
	context.AfterFunc(ctx, func() {
		rt.unfollow(id, f)
		f.cancel()
	})
	if f.update(s) {
		rt.unfollow(id, f)
	}
	return f, true
}

func (rt *runtime) unfollow(id string, f *follower) {
	rt.wmu.Lock()
	defer rt.wmu.Unlock()
	delete(rt.followers[id], f)
	if len(rt.followers[id]) == 0 {
		delete(rt.followers, id)
	}
}

// updateFollowers hands the followers of each changed service its new
// record (nil: gone).
func (rt *runtime) updateFollowers(changed map[string]*service) {
	type hand struct {
		id string
		f  *follower
		s  *service
	}
	var hands []hand
	rt.wmu.Lock()
	for id, s := range changed {
		for f := range rt.followers[id] {
			hands = append(hands, hand{id, f, s})
		}
	}
	rt.wmu.Unlock()
	for _, h := range hands {
		if h.f.update(h.s) {
			rt.unfollow(h.id, h.f)
		}
	}
}

// updateAllFollowers hands every follower its service's record as the
// platform has it now, after the platform was loaded again.
func (rt *runtime) updateAllFollowers() {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	rt.wmu.Lock()
	changed := make(map[string]*service, len(rt.followers))
	for id := range rt.followers {
		changed[id] = rt.pl.services[id]
	}
	rt.wmu.Unlock()
	rt.updateFollowers(changed)
}

// cancelFollowers ends every stream, when the runtime closes.
func (rt *runtime) cancelFollowers() {
	rt.wmu.Lock()
	var all []*follower
	for _, fs := range rt.followers {
		for f := range fs {
			all = append(all, f)
		}
	}
	rt.followers = map[string]map[*follower]struct{}{}
	rt.wmu.Unlock()
	for _, f := range all {
		f.cancel()
	}
}
