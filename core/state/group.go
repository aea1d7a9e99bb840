package state

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/zoe-project/zoe/sdk"
)

// group is group commit. A commit waits for the disk (fsync), and that wait
// costs the same for one transaction as for fifty, so the write
// transactions that queue for the database's writer while it commits are
// run together next, in one database transaction, each in a savepoint of
// its own (a failing one is rolled back alone), and share one commit. Each
// caller returns once the commit that holds its writes is done: durability
// is the same as one commit each.
//
// There is no goroutine of its own: the caller that finds no batch running
// leads; it runs the batch of everyone queued at that moment, hands the
// lead to the first of those who came meanwhile, and returns.
type group struct {
	// run runs a batch and returns each member's error; a batch of one
	// runs as a transaction of its own, with its caller's context.
	run func(batch []*member) []error

	mu      sync.Mutex
	queue   []*member
	leading bool
}

// maxBatch bounds a batch: its transactions wait for the slowest.
const maxBatch = 64

type member struct {
	ctx  context.Context
	fn   func(querier) error
	done chan outcome
}

type outcome struct {
	err error
	// lead says the member is to run the next batch.
	lead bool
}

// tx runs fn in a write transaction, alone or with others.
func (g *group) tx(ctx context.Context, fn func(querier) error) error {
	m := &member{ctx: ctx, fn: fn, done: make(chan outcome, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, m)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if !lead {
		// Waits for the batch even when ctx ends: once queued, fn may be
		// running, and its outcome is what the caller must learn.
		o := <-m.done
		if !o.lead {
			return o.err
		}
	}
	// m is first in the queue: it came alone, or was handed the lead.
	g.mu.Lock()
	n := min(len(g.queue), maxBatch)
	batch := g.queue[:n:n]
	g.queue = append([]*member(nil), g.queue[n:]...)
	g.mu.Unlock()
	var errs []error
	defer func() {
		if errs == nil {
			// run panicked; the panic goes on in this caller, the others
			// learn that their writes did not commit.
			errs = slices.Repeat([]error{fmt.Errorf("a batch of writes failed: %w", sdk.ErrInternal)}, len(batch))
		}
		g.mu.Lock()
		if len(g.queue) > 0 {
			g.queue[0].done <- outcome{lead: true}
		} else {
			g.leading = false
		}
		g.mu.Unlock()
		for i, o := range batch[1:] {
			o.done <- outcome{err: errs[i+1]}
		}
	}()
	errs = g.run(batch)
	return errs[0]
}

// detached runs statements with contexts whose end does not interrupt
// them: a member of a batch whose caller gives up must not interrupt a
// statement, which would roll back the whole batch (SQLite rolls back the
// transaction of an interrupted write).
type detached struct{ q querier }

func (d detached) exec(ctx context.Context, query string, a ...any) (int64, error) {
	return d.q.exec(context.WithoutCancel(ctx), query, a...)
}

func (d detached) query(ctx context.Context, query string, a ...any) (rows, error) {
	return d.q.query(context.WithoutCancel(ctx), query, a...)
}

func (d detached) queryRow(ctx context.Context, query string, a ...any) row {
	return d.q.queryRow(context.WithoutCancel(ctx), query, a...)
}
