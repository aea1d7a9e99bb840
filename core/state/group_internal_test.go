package state

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
)

// fakeDB runs a group's transactions on nothing and records them.
type fakeDB struct {
	mu  sync.Mutex
	log []string
	// hold blocks the transaction of the write named "first".
	hold chan struct{}
	// failCommits fails that many batch commits.
	failCommits int
	// committing, when set, is told of each batch commit, which then
	// waits for commits.
	committing, commits chan struct{}
}

func (d *fakeDB) record(s string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.log = append(d.log, s)
}

func (d *fakeDB) records() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.log)
}

func (d *fakeDB) group() *group {
	return &group{
		alone: func(ctx context.Context, fn func(querier) error) error {
			q := &fakeQ{}
			err := fn(q)
			d.record("alone " + strings.Join(q.names, " "))
			if slices.Contains(q.names, "first") {
				<-d.hold
			}
			return err
		},
		begin: func(context.Context) (batchQuerier, func(bool) error, error) {
			q := &fakeQ{}
			return q, func(commit bool) error {
				if commit && d.commits != nil {
					d.committing <- struct{}{}
					<-d.commits
				}
				d.mu.Lock()
				fail := commit && d.failCommits > 0
				if fail {
					d.failCommits--
				}
				d.mu.Unlock()
				what := "commit"
				if !commit || fail {
					what = "rollback"
				}
				d.record("batch " + strings.Join(q.names, " ") + ": " + what)
				if fail {
					return errors.New("commit failed")
				}
				return nil
			}, nil
		},
	}
}

// fakeQ records the names of the writes that used it.
type fakeQ struct {
	querier
	names []string
}

func (q *fakeQ) exec(context.Context, string, ...any) (int64, error) { return 0, nil }
func (q *fakeQ) member()                                             {}
func (q *fakeQ) done(error)                                          {}

func write(name string) func(querier) error {
	return func(q querier) error {
		fq := q.(*fakeQ)
		fq.names = append(fq.names, name)
		if name == "bad" {
			return errors.New("bad write")
		}
		return nil
	}
}

// queueBehindFirst starts "first", alone, holds it, and queues the others
// behind it in their order; it returns each one's error, by name, once
// they have all run.
func queueBehindFirst(t *testing.T, d *fakeDB, g *group, names ...string) map[string]error {
	t.Helper()
	d.hold = make(chan struct{})
	var (
		mu   sync.Mutex
		errs = map[string]error{}
		wg   sync.WaitGroup
	)
	call := func(name string) {
		wg.Go(func() {
			err := g.tx(t.Context(), write(name))
			mu.Lock()
			errs[name] = err
			mu.Unlock()
		})
	}
	queued := func(n int) func() (bool, string) {
		return func() (bool, string) {
			g.mu.Lock()
			defer g.mu.Unlock()
			rs := d.records()
			return len(rs) == 1 && len(g.queue) == n, fmt.Sprintf("%q done, %d queued", rs, len(g.queue))
		}
	}
	call("first")
	testutil.WaitFor(t, 10*time.Second, "the first write", queued(0))
	for i, name := range names {
		call(name)
		testutil.WaitFor(t, 10*time.Second, "queued writes", queued(i+1))
	}
	close(d.hold)
	wg.Wait()
	return errs
}

// TestGroup: the writes that queue while a batch runs are run together
// next, each caller gets its own outcome, and the lead passes on.
func TestGroup(t *testing.T) {
	d := &fakeDB{}
	g := d.group()
	errs := queueBehindFirst(t, d, g, "a", "bad", "b")
	for name, err := range errs {
		if (err != nil) != (name == "bad") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if want := []string{"alone first", "batch a bad b: commit"}; !slices.Equal(d.records(), want) {
		t.Errorf("transactions %q, want %q", d.records(), want)
	}
	if g.leading || len(g.queue) != 0 {
		t.Errorf("after the writes: leading %v, %d queued", g.leading, len(g.queue))
	}
}

// TestGroupFailedBatch: when a batch does not commit, each of its writes
// runs again alone.
func TestGroupFailedBatch(t *testing.T) {
	d := &fakeDB{failCommits: 1}
	g := d.group()
	errs := queueBehindFirst(t, d, g, "a", "bad", "b")
	for name, err := range errs {
		if (err != nil) != (name == "bad") {
			t.Errorf("%s: %v", name, err)
		}
	}
	got := d.records()
	if len(got) != 5 || got[1] != "batch a bad b: rollback" {
		t.Fatalf("transactions %q, want the batch rolled back, then each write alone", got)
	}
	slices.Sort(got[2:])
	if want := []string{"alone a", "alone b", "alone bad"}; !slices.Equal(got[2:], want) {
		t.Errorf("then %q, want %q", got[2:], want)
	}
}

// TestGroupOverlap: with overlap, the next batch runs while one commits.
func TestGroupOverlap(t *testing.T) {
	d := &fakeDB{committing: make(chan struct{}), commits: make(chan struct{})}
	g := d.group()
	g.overlap = true
	errC := make(chan error, 1)
	go func() {
		// While a and b wait for their commit, c runs: the commit waits
		// for it (without overlap, this would never end).
		<-d.committing
		errC <- g.tx(t.Context(), write("c"))
		close(d.commits)
	}()
	errs := queueBehindFirst(t, d, g, "a", "b")
	if err := <-errC; err != nil {
		t.Fatal(err)
	}
	for name, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if want := []string{"alone first", "alone c", "batch a b: commit"}; !slices.Equal(d.records(), want) {
		t.Errorf("transactions %q, want %q", d.records(), want)
	}
}

// TestGroupAbandon: a caller whose context ends while it waits in the
// queue returns at once, and its write is not run.
func TestGroupAbandon(t *testing.T) {
	d := &fakeDB{hold: make(chan struct{})}
	g := d.group()
	queued := func(n int) func() (bool, string) {
		return func() (bool, string) {
			g.mu.Lock()
			defer g.mu.Unlock()
			return len(g.queue) == n, fmt.Sprintf("%d queued", len(g.queue))
		}
	}
	first := make(chan error, 1)
	go func() { first <- g.tx(t.Context(), write("first")) }()
	testutil.WaitFor(t, 10*time.Second, "the first write", func() (bool, string) {
		return len(d.records()) == 1, fmt.Sprint(d.records())
	})
	ctx, cancel := context.WithCancel(t.Context())
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- g.tx(ctx, write("x")) }()
	testutil.WaitFor(t, 10*time.Second, "x queued", queued(1))
	cancel()
	// While first still runs (without leaving the queue, x would wait
	// for it, and this would never end).
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("x: %v", err)
	}
	after := make(chan error, 1)
	go func() { after <- g.tx(t.Context(), write("a")) }()
	testutil.WaitFor(t, 10*time.Second, "a queued", queued(2))
	close(d.hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-after; err != nil {
		t.Fatal(err)
	}
	if want := []string{"alone first", "alone a"}; !slices.Equal(d.records(), want) {
		t.Errorf("transactions %q, want %q", d.records(), want)
	}
	if g.leading || len(g.queue) != 0 {
		t.Errorf("after the writes: leading %v, %d queued", g.leading, len(g.queue))
	}
}

// TestGroupPanic: a write that panics fails its batch, not the writes
// after it.
func TestGroupPanic(t *testing.T) {
	release := make(chan struct{})
	g := &group{alone: func(ctx context.Context, fn func(querier) error) error { return fn(nil) }}
	ok := func(querier) error { return nil }
	boom := func(querier) error {
		<-release
		panic("boom")
	}
	ctx := t.Context()
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		_ = g.tx(ctx, boom)
	}()
	other := make(chan error, 1)
	testutil.WaitFor(t, 10*time.Second, "the panicking batch", func() (bool, string) {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.leading, "not leading"
	})
	go func() { other <- g.tx(ctx, ok) }()
	testutil.WaitFor(t, 10*time.Second, "a queued write", func() (bool, string) {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.queue) == 1, fmt.Sprintf("%d queued", len(g.queue))
	})
	close(release)
	if r := <-panicked; r != "boom" {
		t.Fatalf("the panicking caller got %v", r)
	}
	// Queued after the batch: it runs in the next one.
	if err := <-other; err != nil {
		t.Fatalf("the next write: %v", err)
	}
	if err := g.tx(ctx, ok); err != nil {
		t.Fatalf("a write after: %v", err)
	}
}

// TestSQLiteBatch: in one batch a failing write is rolled back alone, a
// write whose caller gave up is not run, and the others commit.
func TestSQLiteBatch(t *testing.T) {
	ctx := t.Context()
	s, err := openSQLite(ctx, filepath.Join(t.TempDir(), "zoe.db"), testutil.Logger(t), CurrentSchemaVersion)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	db := s.db.(*sqliteDB)
	insert := func(name string) func(querier) error {
		return func(q querier) error {
			// Two statements: the first of a failing write must go too.
			if _, err := q.exec(ctx, "INSERT INTO quotas (name) VALUES ($1)", name+"-x"); err != nil {
				return err
			}
			_, err := q.exec(ctx, "INSERT INTO quotas (name) VALUES ($1)", name)
			return err
		}
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	ms := []*member{
		{ctx: ctx, fn: insert("a")},
		{ctx: ctx, fn: insert("user")}, // the default quota exists
		{ctx: gone, fn: insert("c")},
		{ctx: ctx, fn: insert("d")},
	}
	outs, commit := db.commits.run(ms)
	if outs != nil || commit == nil {
		t.Fatalf("a batch of %d ran as one: %+v", len(ms), outs)
	}
	outs = commit()
	if outs[0] != (outcome{}) || outs[3] != (outcome{}) {
		t.Fatalf("the good writes: %+v", outs)
	}
	if sdk.Category(s.fail("x", outs[1].err)) != sdk.ErrAlreadyExists || outs[1].alone {
		t.Errorf("the duplicate: %+v", outs[1])
	}
	if !errors.Is(outs[2].err, context.Canceled) || outs[2].alone {
		t.Errorf("the cancelled write: %+v", outs[2])
	}
	qs, err := s.ListQuotas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, q := range qs {
		names = append(names, q.Name)
	}
	if want := []string{"a", "a-x", "admin", "d", "d-x", "guest", "user"}; !slices.Equal(names, want) {
		t.Errorf("quotas %q, want %q", names, want)
	}
}
