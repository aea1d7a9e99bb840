package state

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
)

// TestGroup: the writes that queue while a batch runs are run together
// next, each caller gets its own outcome, and the lead passes on.
func TestGroup(t *testing.T) {
	release := make(chan struct{})
	var (
		mu      sync.Mutex
		batches [][]string
	)
	g := &group{}
	g.run = func(batch []*member) []error {
		errs := make([]error, len(batch))
		var names []string
		for i, m := range batch {
			q := &nameQ{}
			errs[i] = m.fn(q)
			names = append(names, q.name)
		}
		mu.Lock()
		batches = append(batches, names)
		first := len(batches) == 1
		mu.Unlock()
		if first {
			<-release // holds the first batch until the others queued
		}
		return errs
	}
	write := func(name string) func(querier) error {
		return func(q querier) error {
			q.(*nameQ).name = name
			if name == "bad" {
				return errors.New("bad write")
			}
			return nil
		}
	}
	ctx := t.Context()
	errs := make(chan string, 5)
	var wg sync.WaitGroup
	call := func(name string) {
		wg.Go(func() {
			if err := g.tx(ctx, write(name)); err != nil {
				errs <- name + ": " + err.Error()
			}
		})
	}
	call("first")
	queued := func(n int) func() (bool, string) {
		return func() (bool, string) {
			g.mu.Lock()
			defer g.mu.Unlock()
			mu.Lock()
			defer mu.Unlock()
			return len(batches) == 1 && len(g.queue) == n, fmt.Sprintf("%d batches, %d queued", len(batches), len(g.queue))
		}
	}
	testutil.WaitFor(t, 10*time.Second, "the first batch", queued(0))
	for i, name := range []string{"a", "bad", "b"} {
		call(name)
		testutil.WaitFor(t, 10*time.Second, "queued writes", queued(i+1))
	}
	close(release)
	wg.Wait()
	close(errs)
	var got []string
	for e := range errs {
		got = append(got, e)
	}
	if !slices.Equal(got, []string{"bad: bad write"}) {
		t.Errorf("errors %q, want only bad's", got)
	}
	if len(batches) != 2 || !slices.Equal(batches[0], []string{"first"}) ||
		!slices.Equal(batches[1], []string{"a", "bad", "b"}) {
		t.Errorf("batches %q, want [first] [a bad b]", batches)
	}
	if g.leading || len(g.queue) != 0 {
		t.Errorf("after the writes: leading %v, %d queued", g.leading, len(g.queue))
	}
}

// nameQ is a querier that only records who used it.
type nameQ struct {
	querier
	name string
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
	errs := db.runBatch(ms)
	if errs[0] != nil || errs[3] != nil {
		t.Fatalf("the good writes failed: %v", errs)
	}
	if sdk.Category(s.fail("x", errs[1])) != sdk.ErrAlreadyExists {
		t.Errorf("the duplicate: %v", errs[1])
	}
	if !errors.Is(errs[2], context.Canceled) {
		t.Errorf("the cancelled write: %v", errs[2])
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

// TestGroupPanic: a write that panics fails its batch, not the writes
// after it.
func TestGroupPanic(t *testing.T) {
	release := make(chan struct{})
	g := &group{}
	g.run = func(batch []*member) []error {
		errs := make([]error, len(batch))
		for i, m := range batch {
			errs[i] = m.fn(nil)
		}
		return errs
	}
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
