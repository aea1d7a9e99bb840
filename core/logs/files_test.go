package logs_test

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/zoe-project/zoe/core/logs"
)

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestOpenFilesBudget(t *testing.T) {
	const (
		budget  = 8
		writers = 100
		rounds  = 40
	)
	// Small files: every writer rotates several times, some of them while
	// its file is closed.
	s := newStore(t, "", logs.Options{MaxOpenFiles: budget, MaxFileSize: 400, MaxFiles: 1000})
	base := openFDs(t)
	ws := make([]*logs.Writer, writers)
	for i := range ws {
		ws[i] = open(t, s, 1, fmt.Sprintf("svc%d", i), "c1")
		if n := openFDs(t) - base; n > budget {
			t.Fatalf("%d files open after opening %d writers, budget %d", n, i+1, budget)
		}
	}
	all := numbered(0, 2*rounds)
	// In turns: every append but those of the most recent writers reopens
	// a file.
	for r := range rounds {
		for i, w := range ws {
			if ok, err := w.Append(all[r]); err != nil || !ok {
				t.Fatalf("writer %d round %d: %v %v", i, r, ok, err)
			}
		}
		if n := openFDs(t) - base; n > budget {
			t.Fatalf("%d files open after round %d, budget %d", n, r, budget)
		}
	}
	// Followers of some services, then all writers at once.
	followers := map[int]*follower{}
	for _, i := range []int{0, 7, 50, 99} {
		followers[i] = follow(t.Context(), s, 1, fmt.Sprintf("svc%d", i), 0)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i, w := range ws {
		wg.Go(func() {
			for _, e := range all[rounds:] {
				if ok, err := w.Append(e); err != nil || !ok {
					errs <- fmt.Errorf("writer %d: %v %w", i, ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := openFDs(t) - base; n > budget+len(followers) {
		t.Fatalf("%d files open with %d followers, budget %d", n, len(followers), budget)
	}
	for i, w := range ws {
		svc := fmt.Sprintf("svc%d", i)
		if since := w.Since(); !since.Equal(all[len(all)-1].Time) {
			t.Errorf("%s: Since %v, want %v", svc, since, all[len(all)-1].Time)
		}
		// Closing a log whose file was closed writes its close record.
		if err := s.Close(1, svc); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		sameEntries(t, readAll(t, s, 1, svc, 0), all)
		if files := logFiles(t, s, 1, svc); len(files) < 5 {
			t.Fatalf("%s: too few rotations: %v", svc, files)
		}
	}
	for i, f := range followers {
		if err := f.end(t); err != nil {
			t.Fatalf("follower of svc%d: %v", i, err)
		}
		sameEntries(t, f.entries(), all)
	}
	if n := openFDs(t) - base; n > 0 {
		t.Fatalf("%d files left open", n)
	}
	// A writer opened again resumes where the log ends.
	w := open(t, s, 1, "svc3", "c1")
	if got := appendAll(t, w, all...); got != 0 {
		t.Fatalf("%d entries stored twice", got)
	}
	sameEntries(t, readAll(t, s, 1, "svc3", 0), all)
}
