// Package notify mails an execution's owner when the execution ends in
// error, or ends after running longer than a configured time.
//
// The notifier follows the store's event feed (state.Store.EventsAfter) and
// never touches the engine: a slow or dead mail server delays mail, never
// an execution. Mails wait in a bounded queue and are retried with
// exponential back-off a bounded number of times; when the queue is full
// the notifier stops reading the feed until there is room, so neither its
// memory nor its work grows with an outage.
//
// Delivery is at least once for every execution that ends while the daemon
// runs with notifications on. The notifier keeps a cursor in the store
// (state.Store.SetFeedCursor, named "notify"): every event up to it has had
// its mail sent or given up on. It starts from the end of the feed the
// first time, and from the cursor after a restart, so a crash loses no
// mail but may send again the mails that were in flight (they keep their
// Message-ID, so many mail readers show them once). Ends older than MaxAge
// when read (notifications switched off and on again) are skipped.
//
// Several daemons sharing one PostgreSQL store share the cursor too, but
// each sends what it reads: give the notifications block to one of them.
package notify

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/mail"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk"
)

// CursorName is the notifier's feed cursor in the store.
const CursorName = "notify"

// Defaults of Config.
const (
	DefaultQueueSize   = 1000
	DefaultMaxAttempts = 6
	DefaultBackoff     = 10 * time.Second
	DefaultMaxBackoff  = 10 * time.Minute
	DefaultPoll        = time.Second
	DefaultMaxAge      = 24 * time.Hour
	feedPage           = 500
)

// Store is what the notifier reads of the state, and its cursor.
type Store interface {
	EventsAfter(ctx context.Context, afterID int64, f state.EventFilter) ([]state.Event, error)
	LastEventID(ctx context.Context) (int64, error)
	FeedCursor(ctx context.Context, name string) (int64, bool, error)
	SetFeedCursor(ctx context.Context, name string, id int64) error
	GetExecution(ctx context.Context, id int64) (state.Execution, error)
	GetUser(ctx context.Context, username string) (state.User, error)
	Identity(ctx context.Context) (string, error)
}

// Sender delivers one mail (SMTP is the real one).
type Sender interface {
	Send(ctx context.Context, from, to string, msg []byte) error
}

// Config configures a Notifier; zero durations and sizes take the defaults.
type Config struct {
	Store  Store
	Sender Sender
	// From is the sender, such as "Zoe <zoe@example.org>".
	From string
	// PublicURL is where users reach Zoe; the mail links to
	// PublicURL/executions/<id>. "" for no link.
	PublicURL string
	// LongRunning: an execution that ran at least this long gets a mail
	// whatever its end; 0: only errors.
	LongRunning time.Duration
	QueueSize   int
	MaxAttempts int
	// Backoff is the wait before the first retry; it doubles with each
	// retry up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// Poll is how often the feed is read when it has nothing new.
	Poll time.Duration
	// MaxAge: an end older than this when read is not mailed.
	MaxAge time.Duration
}

// Notifier sends the mails. Run it once.
type Notifier struct {
	log hclog.Logger
	cfg Config

	storeID string
	// slots holds a token per mail queued or in retry: QueueSize bounds it.
	slots chan struct{}
	wake  chan struct{}

	mu      sync.Mutex
	queue   jobHeap
	pending map[int64]struct{} // event ids of mails not settled
	read    int64              // every event up to it has been read
}

// New returns a notifier; Run starts it.
func New(log hclog.Logger, cfg Config) *Notifier {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.QueueSize, DefaultQueueSize)
	def(&cfg.MaxAttempts, DefaultMaxAttempts)
	defDur(&cfg.Backoff, DefaultBackoff)
	defDur(&cfg.MaxBackoff, DefaultMaxBackoff)
	defDur(&cfg.Poll, DefaultPoll)
	defDur(&cfg.MaxAge, DefaultMaxAge)
	return &Notifier{log: log, cfg: cfg, slots: make(chan struct{}, cfg.QueueSize), wake: make(chan struct{}, 1),
		pending: map[int64]struct{}{}}
}

// Queued is how many mails wait to be sent or retried.
func (n *Notifier) Queued() int { return len(n.slots) }

// Run follows the feed and sends mail until ctx ends; it returns once its
// cursor is saved. Mails not sent by then are sent after the next start.
func (n *Notifier) Run(ctx context.Context) error {
	start, err := n.start(ctx)
	if err != nil {
		return err
	}
	n.read = start
	n.log.Info("e-mail notifications on", "from_event", start, "long_running", n.cfg.LongRunning)
	var wg sync.WaitGroup
	wg.Go(func() { n.sendLoop(ctx) })
	saved := start
	n.follow(ctx, &saved)
	wg.Wait()
	// The last word, past ctx: a cursor left behind only costs mails sent
	// twice, but a few seconds keep that small.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	n.save(sctx, &saved)
	return nil
}

// start is where the feed is read from: the cursor, or the end of the
// feed the first time (recorded at once, so that what ends from now on is
// mailed even after a crash).
func (n *Notifier) start(ctx context.Context) (int64, error) {
	for {
		id, ok, err := n.cfg.Store.FeedCursor(ctx, CursorName)
		if err == nil && !ok {
			if id, err = n.cfg.Store.LastEventID(ctx); err == nil {
				err = n.cfg.Store.SetFeedCursor(ctx, CursorName, id)
			}
		}
		if err == nil {
			n.storeID, err = n.cfg.Store.Identity(ctx)
		}
		if err == nil {
			return id, nil
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("notifications: %w", ctx.Err())
		}
		n.log.Warn("notifications: cannot read the feed cursor; trying again", "error", err)
		if !sleep(ctx, n.cfg.Poll*5) {
			return 0, fmt.Errorf("notifications: %w", ctx.Err())
		}
	}
}

// follow reads the feed and queues the mails.
func (n *Notifier) follow(ctx context.Context, saved *int64) {
	for ctx.Err() == nil {
		n.mu.Lock()
		after := n.read
		n.mu.Unlock()
		evs, err := n.cfg.Store.EventsAfter(ctx, after, state.EventFilter{Limit: feedPage})
		if err != nil && ctx.Err() == nil {
			n.log.Warn("notifications: reading the event feed failed", "error", err)
		}
		done := 0
		for _, ev := range evs {
			if !n.handle(ctx, ev) {
				break // the store failed or ctx ended: read it again
			}
			done++
		}
		n.save(ctx, saved)
		if err == nil && done == len(evs) && len(evs) == feedPage {
			continue
		}
		if !sleep(ctx, n.cfg.Poll) {
			return
		}
	}
}

// handle queues the event's mail, if it calls for one, and marks it read.
// It is false when the event must be read again.
func (n *Notifier) handle(ctx context.Context, ev state.Event) bool {
	if ev.ServiceName == "" && (ev.To == string(state.StatusError) || ev.To == string(state.StatusTerminated)) {
		m, ok, err := n.message(ctx, ev)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("notifications: cannot read the execution; trying again", "execution", ev.ExecutionID, "error", err)
			}
			return false
		}
		if ok {
			select {
			case n.slots <- struct{}{}:
			case <-ctx.Done():
				return false
			}
			n.mu.Lock()
			n.pending[ev.ID] = struct{}{}
			heap.Push(&n.queue, &job{m: m, due: time.Now()})
			n.mu.Unlock()
			n.poke()
		}
	}
	n.mu.Lock()
	n.read = ev.ID
	n.mu.Unlock()
	return true
}

// message is the mail ev calls for; ok is false when none is to be sent.
func (n *Notifier) message(ctx context.Context, ev state.Event) (message, bool, error) {
	log := n.log.With("execution", ev.ExecutionID, "owner", ev.Owner)
	if age := time.Since(ev.Time); age > n.cfg.MaxAge {
		log.Info("notifications: not mailing an end this old", "ended", ev.Time, "max_age", n.cfg.MaxAge)
		return message{}, false, nil
	}
	e, err := n.cfg.Store.GetExecution(ctx, ev.ExecutionID)
	if errors.Is(err, sdk.ErrNotFound) {
		return message{}, false, nil // deleted already
	}
	if err != nil {
		return message{}, false, err
	}
	m := message{EventID: ev.ID, StoreID: n.storeID, Execution: e, Status: ev.To, Reason: ev.Reason, Ended: ev.Time,
		Owner: e.Owner, From: n.cfg.From, LongRunning: n.cfg.LongRunning}
	if ev.To != string(state.StatusError) && (n.cfg.LongRunning <= 0 || ran(e, ev.Time) < n.cfg.LongRunning) {
		log.Debug("notifications: a short run that did not fail; no mail", "ran", ran(e, ev.Time))
		return message{}, false, nil
	}
	u, err := n.cfg.Store.GetUser(ctx, e.Owner)
	if errors.Is(err, sdk.ErrNotFound) {
		return message{}, false, nil
	}
	if err != nil {
		return message{}, false, err
	}
	if u.Email == "" {
		log.Debug("notifications: the owner has no e-mail address")
		return message{}, false, nil
	}
	// The auth source's address is not checked when it is stored.
	if a, err := mail.ParseAddress(u.Email); err != nil || a.Name != "" {
		log.Warn("notifications: the owner's e-mail address is not valid; no mail", "address", strconv.Quote(u.Email))
		return message{}, false, nil
	}
	m.To = u.Email
	if n.cfg.PublicURL != "" {
		m.Link = fmt.Sprintf("%s/executions/%d", n.cfg.PublicURL, e.ID)
	}
	return m, true, nil
}

// save records how far every mail is settled: the event before the oldest
// pending mail, or the last event read.
func (n *Notifier) save(ctx context.Context, saved *int64) {
	n.mu.Lock()
	upTo := n.read
	for id := range n.pending {
		upTo = min(upTo, id-1)
	}
	n.mu.Unlock()
	if upTo <= *saved {
		return
	}
	if err := n.cfg.Store.SetFeedCursor(ctx, CursorName, upTo); err != nil {
		if ctx.Err() == nil {
			n.log.Warn("notifications: cannot save the feed cursor", "error", err)
		}
		return
	}
	*saved = upTo
}

func (n *Notifier) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// sendLoop sends the queued mails as they fall due, one at a time.
func (n *Notifier) sendLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		n.mu.Lock()
		var j *job
		wait := time.Hour
		if len(n.queue) > 0 {
			if d := time.Until(n.queue[0].due); d <= 0 {
				j = heap.Pop(&n.queue).(*job)
			} else {
				wait = d
			}
		}
		n.mu.Unlock()
		if j == nil {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-n.wake:
			case <-timer.C:
			}
			continue
		}
		n.send(ctx, j)
		if ctx.Err() != nil {
			return
		}
	}
}

func (n *Notifier) send(ctx context.Context, j *job) {
	m := j.m
	log := n.log.With("execution", m.Execution.ID, "owner", m.Owner)
	msg, err := m.withDate(time.Now()).bytes()
	if err == nil {
		err = n.cfg.Sender.Send(ctx, n.cfg.From, m.To, msg)
	}
	if err != nil && ctx.Err() != nil {
		return // not settled: sent again after the next start
	}
	j.attempts++
	switch {
	case err == nil:
		log.Info("notification sent", "status", m.Status, "attempts", j.attempts)
	case j.attempts >= n.cfg.MaxAttempts:
		log.Warn("notification not sent; giving up", "attempts", j.attempts, "error", err)
	default:
		wait := n.backoff(j.attempts)
		log.Warn("notification not sent; trying again", "attempts", j.attempts, "retry_in", wait, "error", err)
		j.due = time.Now().Add(wait)
		n.mu.Lock()
		heap.Push(&n.queue, j)
		n.mu.Unlock()
		return
	}
	n.mu.Lock()
	delete(n.pending, m.EventID)
	n.mu.Unlock()
	<-n.slots
}

// backoff is the wait after the attempts-th failure: Backoff doubled for
// each earlier failure, at most MaxBackoff, less up to a fifth at random
// so that retries spread out.
func (n *Notifier) backoff(attempts int) time.Duration {
	d := n.cfg.Backoff
	for i := 1; i < attempts && d < n.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.cfg.MaxBackoff)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

func (m message) withDate(t time.Time) message { m.Date = t; return m }

// sleep waits d or until ctx ends; it is false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

type job struct {
	m        message
	due      time.Time
	attempts int
}

// jobHeap orders the mails by when they are due.
type jobHeap []*job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h jobHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *jobHeap) Push(x any)        { *h = append(*h, x.(*job)) }
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return j
}
