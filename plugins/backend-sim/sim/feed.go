package sim

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

const (
	// maxPending is how far a subscriber may fall behind before it is
	// hopelessly behind and its stream is closed.
	maxPending = 10000
	// maxBacklog bounds the events kept for the next subscriber while there
	// is none; the oldest are dropped first.
	maxBacklog = 10000
	// subscriberBuffer is the channel buffer of each subscriber.
	subscriberBuffer = 64
)

// feed hands the platform's events to this instance's subscribers: those
// of its own transactions and those other instances appended to the state
// file. It outlives re-configurations.
type feed struct {
	log *slog.Logger

	mu sync.Mutex
	// cursors holds, per platform ID, the number of the last event handed on.
	cursors map[string]uint64
	subs    map[*subscriber]struct{}
	// backlog holds events that came while there was no subscriber;
	// dropping tells that some were dropped since the last subscriber.
	backlog  []backend.Event
	dropping bool
	closed   bool
	done     chan struct{}
}

func newFeed(log *slog.Logger) *feed {
	return &feed{log: log, cursors: map[string]uint64{}, subs: map[*subscriber]struct{}{}, done: make(chan struct{})}
}

// begin starts following a platform after its event seq, unless it is
// followed already.
func (f *feed) begin(id string, seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.cursors[id]; !ok {
		f.cursors[id] = seq
	}
}

// deliver hands on the deployment's events among records, new events of
// the platform id, that are new to this feed: the cursor only moves
// forward, so every event is handed on once, whoever saw it first.
func (f *feed) deliver(id string, records []eventRecord, deployment string) {
	if id == "" || len(records) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cursor := f.cursors[id]
	var out []backend.Event
	for _, r := range records {
		if r.Seq <= cursor {
			continue
		}
		if r.Seq > cursor+1 && cursor > 0 {
			f.log.Warn("missed events of the simulated platform: this instance did not read the state file for two compactions",
				"missed", r.Seq-cursor-1, "window", maxEvents)
		}
		cursor = r.Seq
		if r.Deployment == deployment {
			out = append(out, r.Event)
		}
	}
	f.cursors[id] = cursor
	if len(out) == 0 || f.closed {
		return
	}
	if len(f.subs) == 0 {
		f.backlog = append(f.backlog, out...)
		if len(f.backlog) > maxBacklog && !f.dropping {
			f.log.Warn("no event subscriber for a long time: dropping the oldest events", "kept", maxBacklog)
			f.dropping = true
		}
		// The oldest are dropped in batches, so that each event costs O(1):
		// the backlog holds up to twice maxBacklog, of which the next
		// subscriber gets the last maxBacklog.
		if len(f.backlog) > 2*maxBacklog {
			f.backlog = slices.Clone(f.backlog[len(f.backlog)-maxBacklog:])
		}
		return
	}
	for s := range f.subs {
		s.push(out)
	}
}

// subscribe returns a stream of the events to come, starting with the
// backlog when this is the only subscriber. It ends with ctx.
func (f *feed) subscribe(ctx context.Context) (<-chan backend.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, fmt.Errorf("the sim back-end is closed: %w", sdk.ErrUnavailable)
	}
	s := &subscriber{ch: make(chan backend.Event, subscriberBuffer), wake: make(chan struct{}, 1)}
	if len(f.subs) == 0 {
		s.queue, f.backlog, f.dropping = f.backlog[max(len(f.backlog)-maxBacklog, 0):], nil, false
	}
	f.subs[s] = struct{}{}
	go f.pump(ctx, s)
	return s.ch, nil
}

// pump moves a subscriber's queue into its channel, one event at a time so
// that the queue's length is what the subscriber has yet to take, and so
// that a slow reader holds up nobody but itself.
func (f *feed) pump(ctx context.Context, s *subscriber) {
	defer close(s.ch)
	defer f.remove(s)
	for {
		s.mu.Lock()
		over, empty := s.over, len(s.queue) == 0
		var e backend.Event
		if !over && !empty {
			e = s.queue[0]
			s.queue = s.queue[1:]
		}
		s.mu.Unlock()
		switch {
		case over:
			f.log.Warn("an event subscriber is hopelessly behind: closing its stream", "pending", maxPending)
			return
		case empty:
			select {
			case <-s.wake:
			case <-ctx.Done():
				return
			case <-f.done:
				return
			}
		default:
			select {
			case s.ch <- e:
			case <-ctx.Done():
				return
			case <-f.done:
				return
			}
		}
	}
}

func (f *feed) remove(s *subscriber) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.subs, s)
}

// close ends every stream.
func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.done)
	}
}

type subscriber struct {
	ch   chan backend.Event
	wake chan struct{}

	mu    sync.Mutex
	queue []backend.Event
	// over: the subscriber fell hopelessly behind.
	over bool
}

func (s *subscriber) push(evs []backend.Event) {
	s.mu.Lock()
	if len(s.queue)+len(evs) > maxPending {
		s.over, s.queue = true, nil
	} else if !s.over {
		s.queue = append(s.queue, evs...)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
