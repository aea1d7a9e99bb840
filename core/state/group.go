package state

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zoe-project/zoe/sdk"
)

// group is group commit. A commit waits for the disk (fsync), and that wait
// costs the same for one transaction as for thirty, so the write
// transactions that queue while one commits are run together next, in one
// database transaction, each in a savepoint of its own (a failing one is
// rolled back alone), and share one commit. Each caller returns once the
// commit that holds its writes is done: durability is the same as one
// commit each. When a batch fails as a whole (its commit fails, or
// PostgreSQL breaks a deadlock with another daemon's batch), each of its
// transactions is run again in a batch of its own, so a batch never fails
// a write that would succeed alone: the functions passed to tx may run
// more than once, and must set what they return rather than add to it.
//
// There is no goroutine of its own: the caller that finds no batch running
// leads; it runs the batch of everyone queued at that moment, hands the
// lead to the first of those who came meanwhile, and returns. A caller
// whose context ends while it waits in the queue leaves it; once in a
// batch, it waits for the batch's outcome, which batchTimeout bounds.
type group struct {
	// alone runs fn in a transaction of its own.
	alone func(ctx context.Context, fn func(querier) error) error
	// begin starts the transaction of a batch. The statements of q, its
	// savepoints among them, run with ctx whatever context their callers
	// pass (see detached); end runs the last statements and commits
	// (commit true) or rolls back.
	begin func(ctx context.Context) (q batchQuerier, end func(commit bool) error, err error)
	// overlap lets the next batch run while one commits, on another
	// connection (PostgreSQL): the commit is the longest part of a batch.
	// The committing batch waits for nothing of the next one but the rows
	// its events refer to (the foreign key's lock), which is why no
	// transaction locks an execution's row FOR UPDATE but to delete it.
	overlap bool

	mu      sync.Mutex
	queue   []*member
	leading bool
}

// batchQuerier is the querier of a batch's transaction.
type batchQuerier interface {
	querier
	// member is called before each member's function runs, done after
	// it, with its error: the querier may keep things for the end of the
	// batch (pgBatch's events), and drops a failed member's.
	member()
	done(err error)
}

const (
	// maxBatch bounds a batch: its transactions wait for the slowest, and
	// on PostgreSQL more than 64 savepoints that write overflow the
	// server's cache of subtransactions, which slows every snapshot.
	maxBatch = 32
	// batchTimeout bounds a batch, whose callers wait for it even when
	// their contexts end: a database that stops answering fails it, and
	// each of its writes runs again with its caller's context.
	batchTimeout = time.Minute
)

// A member is queued, then taken into a batch or abandoned by its caller.
const (
	queued int32 = iota
	taken
	abandoned
)

type member struct {
	ctx   context.Context
	fn    func(querier) error
	done  chan outcome
	state atomic.Int32
	// solo runs in a batch of its own: the batch it was in failed.
	solo bool
}

func newMember(ctx context.Context, fn func(querier) error, solo bool) *member {
	return &member{ctx: ctx, fn: fn, done: make(chan outcome, 1), solo: solo}
}

type outcome struct {
	err error
	// lead says the member is to run the next batch.
	lead bool
	// alone says the batch failed: the member is to run again, in a batch
	// of its own.
	alone bool
}

// tx runs fn in a write transaction, alone or with others. The batches
// run one at a time: SQLite has one writer, and on PostgreSQL batches
// running side by side could deadlock on each other's rows (see overlap).
func (g *group) tx(ctx context.Context, fn func(querier) error) error {
	return g.do(newMember(ctx, fn, false))
}

func (g *group) do(m *member) error {
	g.mu.Lock()
	g.queue = append(g.queue, m)
	lead := !g.leading
	if lead {
		g.leading = true
		m.state.Store(taken)
	}
	g.mu.Unlock()
	if !lead {
		var o outcome
		select {
		case o = <-m.done:
		case <-m.ctx.Done():
			if m.state.CompareAndSwap(queued, abandoned) {
				return m.ctx.Err()
			}
			// Taken meanwhile: its outcome, or the lead, is on the way.
			o = <-m.done
		}
		switch {
		case o.alone:
			return g.do(newMember(m.ctx, m.fn, true))
		case !o.lead:
			return o.err
		}
	}
	// m is first in the queue: it came alone, or was handed the lead.
	batch := g.take(m)
	var outs []outcome
	handed, delivered := false, false
	defer func() {
		if delivered {
			return
		}
		// The batch panicked; the panic goes on in this caller, the others
		// learn that their writes did not commit.
		err := fmt.Errorf("a batch of writes failed: %w", sdk.ErrInternal)
		outs = make([]outcome, len(batch))
		for i := range outs {
			outs[i] = outcome{err: err}
		}
		if !handed {
			g.handOver()
		}
		g.deliver(batch, outs)
	}()
	outs, commit := g.run(batch)
	if commit != nil && g.overlap {
		g.handOver()
		handed = true
	}
	if commit != nil {
		outs = commit()
	}
	if !handed {
		g.handOver()
		handed = true
	}
	g.deliver(batch, outs)
	delivered = true
	if outs[0].alone {
		return g.do(newMember(m.ctx, m.fn, true))
	}
	return outs[0].err
}

// take removes the leader m, first in the queue, and the members that
// join its batch from the queue, and returns the batch.
func (g *group) take(m *member) []*member {
	g.mu.Lock()
	defer g.mu.Unlock()
	batch := []*member{m}
	i := 1
	for ; !m.solo && i < len(g.queue) && len(batch) < maxBatch; i++ {
		c := g.queue[i]
		if c.solo {
			break
		}
		if c.state.CompareAndSwap(queued, taken) {
			batch = append(batch, c)
		}
	}
	g.queue = append([]*member(nil), g.queue[i:]...)
	return batch
}

// handOver gives the lead to the first member queued that is still
// waiting, if any.
func (g *group) handOver() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.queue) > 0 {
		if next := g.queue[0]; next.state.CompareAndSwap(queued, taken) {
			next.done <- outcome{lead: true}
			return
		}
		g.queue = g.queue[1:]
	}
	g.leading = false
}

// deliver gives the batch's other members their outcomes.
func (g *group) deliver(batch []*member, outs []outcome) {
	for i, m := range batch[1:] {
		m.done <- outs[i+1]
	}
}

// run runs the members of a batch and returns their outcomes, or commit,
// which ends the batch and returns them. A batch of one runs alone, with
// its caller's context.
func (g *group) run(batch []*member) ([]outcome, func() []outcome) {
	outs := make([]outcome, len(batch))
	if len(batch) == 1 {
		outs[0].err = g.alone(batch[0].ctx, batch[0].fn)
		return outs, nil
	}
	again := func() []outcome {
		for i := range outs {
			outs[i] = outcome{alone: true}
		}
		return outs
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	q, end, err := g.begin(ctx)
	if err != nil {
		cancel()
		return again(), nil
	}
	ended := false
	defer func() {
		if !ended {
			_ = end(false)
			cancel()
		}
	}()
	for i, m := range batch {
		if err := m.ctx.Err(); err != nil {
			outs[i].err = err
			continue
		}
		// Not released: the commit releases them all, and a release
		// would cost PostgreSQL a round trip per member. Each nests in
		// the one before, and a rollback goes to the innermost.
		if _, err := q.exec(ctx, "SAVEPOINT member"); err != nil {
			return again(), nil
		}
		q.member()
		err := m.fn(q)
		q.done(err)
		if err != nil {
			outs[i].err = err
			// Fails when the error ended the whole transaction (SQLite
			// rolls it back on a full disk or an I/O error; PostgreSQL
			// aborts it on a deadlock).
			if _, rerr := q.exec(ctx, "ROLLBACK TO SAVEPOINT member"); rerr != nil {
				return again(), nil
			}
		}
	}
	ended = true
	return nil, func() []outcome {
		defer cancel()
		if err := end(true); err != nil {
			return again()
		}
		return outs
	}
}

// detached runs statements with the batch's context, whatever context the
// members pass: a member whose caller gives up must not interrupt a
// statement, which would end the whole batch (SQLite rolls back the
// transaction of an interrupted write, pgx closes the connection).
type detached struct {
	ctx context.Context
	q   querier
}

func (d detached) exec(_ context.Context, query string, a ...any) (int64, error) {
	return d.q.exec(d.ctx, query, a...)
}

func (d detached) query(_ context.Context, query string, a ...any) (rows, error) {
	return d.q.query(d.ctx, query, a...)
}

func (d detached) queryRow(_ context.Context, query string, a ...any) row {
	return d.q.queryRow(d.ctx, query, a...)
}

// plainBatch is the batch querier of a database that needs nothing at a
// batch's end (SQLite).
type plainBatch struct{ detached }

func (plainBatch) member()    {}
func (plainBatch) done(error) {}
