package logs_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/logs"
	"github.com/zoe-project/zoe/sdk"
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

// writingFDs counts the process's files open for writing under dir: the
// writers' files, which Options.MaxOpenFiles bounds. Followers' files,
// open for reading, are not counted: a follower moving to the next file
// holds two for a moment, and lists the directory (one more), so a count
// of every descriptor taken while followers run depends on where they are.
func writingFDs(t *testing.T, dir string) int {
	t.Helper()
	dir, err := filepath.EvalSymlinks(dir) // /proc shows resolved paths
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		// Either may be gone by now: a follower's file, or the
		// descriptor ReadDir used.
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || !strings.HasPrefix(target, dir+"/") {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(info)) {
			if v, ok := strings.CutPrefix(line, "flags:"); ok {
				flags, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
				if err != nil {
					t.Fatalf("fdinfo %s: %q: %v", e.Name(), line, err)
				}
				if flags&uint64(os.O_WRONLY|os.O_RDWR) != 0 {
					n++
				}
			}
		}
	}
	return n
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
		// The writers' files are all there is to count before the
		// followers start; both counts say so.
		n, w := openFDs(t)-base, writingFDs(t, s.Dir())
		if n > budget || w != n {
			t.Fatalf("%d files open after round %d (%d for writing), budget %d", n, r, w, budget)
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
	if n := writingFDs(t, s.Dir()); n > budget {
		t.Fatalf("%d files open for writing, budget %d", n, budget)
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

// BenchmarkOpen opens and closes the writer of a new service, then of one
// with a log, as the engine does when a service starts or the daemon
// restarts.
func BenchmarkOpen(b *testing.B) {
	for _, existing := range []bool{false, true} {
		b.Run(fmt.Sprintf("existing=%v", existing), func(b *testing.B) {
			s, err := logs.New(b.TempDir(), logs.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if existing {
				for i := range b.N {
					w, err := s.Open(1, fmt.Sprintf("svc%d", i), "c1")
					if err != nil {
						b.Fatal(err)
					}
					w.Append(logs.Entry{Time: t0, Stream: logs.Stdout, Line: []byte("x")})
					w.Close()
				}
			}
			b.ResetTimer()
			for i := range b.N {
				w, err := s.Open(1, fmt.Sprintf("svc%d", i), "c1")
				if err != nil {
					b.Fatal(err)
				}
				w.Close()
			}
		})
	}
}

// A writer creates its log at its first record: a service that prints
// nothing costs no file. Meanwhile its log reads as empty.
func TestLazyOpen(t *testing.T) {
	s := newStore(t, "", logs.Options{Poll: time.Hour})
	read := func() ([]logs.Entry, error) {
		var out []logs.Entry
		err := s.Read(t.Context(), 1, "svc0", logs.ReadOptions{}, func(e logs.Entry) error {
			out = append(out, e)
			return nil
		})
		return out, err
	}
	noFiles := func(when string) {
		t.Helper()
		if _, err := os.Stat(filepath.Join(s.Dir(), "1")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the execution's directory: %v", when, err)
		}
		if svcs, err := s.Services(1); err != nil || len(svcs) != 0 {
			t.Errorf("%s: Services: %v %v", when, svcs, err)
		}
	}
	base := openFDs(t)
	w := open(t, s, 1, "svc0", "c1")
	if n := openFDs(t) - base; n != 0 {
		t.Errorf("Open opened %d files", n)
	}
	noFiles("opened")
	if got, err := read(); err != nil || len(got) != 0 {
		t.Errorf("Read of a log not yet written: %v %v", got, err)
	}
	// A follower waits for the first entries, and ends when the log is
	// closed.
	f := follow(t.Context(), s, 1, "svc0", 0)
	all := numbered(0, 3)
	appendAll(t, w, all[0])
	sameEntries(t, f.waitN(t, 1), all[:1])
	if files := logFiles(t, s, 1, "svc0"); len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	if err := s.Close(1, "svc0"); err != nil {
		t.Fatal(err)
	}
	if err := f.end(t); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w = open(t, s, 1, "svc0", "c1")
	if got := appendAll(t, w, all...); got != 2 {
		t.Fatalf("%d entries stored, want 2", got)
	}
	sameEntries(t, readAll(t, s, 1, "svc0", 0), all)

	// Closed before it is written: the followers end, and there is no log.
	w = open(t, s, 2, "svc0", "c1")
	f = follow(t.Context(), s, 2, "svc0", 0)
	if err := s.Close(2, "svc0"); err != nil {
		t.Fatal(err)
	}
	if err := f.end(t); err != nil || len(f.entries()) != 0 {
		t.Fatalf("follower: %v %v", f.entries(), err)
	}
	w.Close()
	// Released without a record: no log, and its followers are told
	// (whether they started before the release or after).
	w = open(t, s, 3, "svc0", "c1")
	f = follow(t.Context(), s, 3, "svc0", 0)
	w.Close()
	if err := f.end(t); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("follower: %v, want not found", err)
	}
	for _, exec := range []int64{2, 3} {
		err := s.Read(t.Context(), exec, "svc0", logs.ReadOptions{}, func(logs.Entry) error { return nil })
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("execution %d: Read: %v, want not found", exec, err)
		}
		if _, err := os.Stat(filepath.Join(s.Dir(), fmt.Sprint(exec))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("execution %d: the directory: %v", exec, err)
		}
	}
}

// BenchmarkAppendReopen appends in turns to more writers than the budget
// of open files: every append reopens its writer's file.
func BenchmarkAppendReopen(b *testing.B) {
	s, err := logs.New(b.TempDir(), logs.Options{MaxOpenFiles: 8})
	if err != nil {
		b.Fatal(err)
	}
	ws := make([]*logs.Writer, 16)
	for i := range ws {
		if ws[i], err = s.Open(1, fmt.Sprintf("svc%d", i), "c1"); err != nil {
			b.Fatal(err)
		}
		defer ws[i].Close()
	}
	e := logs.Entry{Stream: logs.Stdout, Line: []byte("a line of output of a typical length, more or less")}
	b.ResetTimer()
	for i := range b.N {
		e.Time = t0.Add(time.Duration(i))
		if _, err := ws[i%len(ws)].Append(e); err != nil {
			b.Fatal(err)
		}
	}
}
