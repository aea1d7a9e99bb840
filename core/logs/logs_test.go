package logs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/logs"
	"github.com/zoe-project/zoe/sdk"
)

const wait = 10 * time.Second

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newStore(t *testing.T, dir string, opts logs.Options) *logs.Store {
	t.Helper()
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "logs")
	}
	s, err := logs.New(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func open(t *testing.T, s *logs.Store, exec int64, svc, source string) *logs.Writer {
	t.Helper()
	w, err := s.Open(exec, svc, source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func appendAll(t *testing.T, w *logs.Writer, es ...logs.Entry) int {
	t.Helper()
	n := 0
	for _, e := range es {
		ok, err := w.Append(e)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			n++
		}
	}
	return n
}

func readAll(t *testing.T, s *logs.Store, exec int64, svc string, tail int) []logs.Entry {
	t.Helper()
	var out []logs.Entry
	if err := s.Read(t.Context(), exec, svc, logs.ReadOptions{Tail: tail}, func(e logs.Entry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// numbered returns n entries "line i", one per millisecond from t0.
func numbered(from, n int) []logs.Entry {
	out := make([]logs.Entry, n)
	for i := range out {
		k := from + i
		stream := logs.Stdout
		if k%3 == 0 {
			stream = logs.Stderr
		}
		out[i] = logs.Entry{Time: t0.Add(time.Duration(k) * time.Millisecond), Stream: stream,
			Line: fmt.Appendf(nil, "line %d", k)}
	}
	return out
}

func sameEntries(t *testing.T, got, want []logs.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d:\n got %s\nwant %s", len(got), len(want), show(got), show(want))
	}
	for i := range got {
		if !got[i].Time.Equal(want[i].Time) || got[i].Stream != want[i].Stream || !bytes.Equal(got[i].Line, want[i].Line) {
			t.Fatalf("entry %d: got %v %s %q, want %v %s %q", i, got[i].Time, got[i].Stream, got[i].Line,
				want[i].Time, want[i].Stream, want[i].Line)
		}
	}
}

func show(es []logs.Entry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%q ", e.Line)
	}
	return b.String()
}

func TestRoundTrip(t *testing.T) {
	s := newStore(t, "", logs.Options{})
	w := open(t, s, 1, "svc0", "c1")
	long := bytes.Repeat([]byte("0123456789abcdef\\\n"), 10000) // longer than the read buffer
	lines := [][]byte{
		nil, []byte("plain"), []byte("two\nlines"), []byte(`back\slash`), []byte(`\n literally`), []byte("\\"),
		[]byte("ends with a backslash\\"), []byte("\r\n"), []byte("\xff\xfe invalid utf-8 \xc3"), []byte("nul\x00byte"),
		[]byte("  spaces  "), []byte("2025-03-01T12:00:00Z stdout looks like a record"), []byte("\n\n\n"), long,
	}
	var want []logs.Entry
	for i, l := range lines {
		e := logs.Entry{Time: t0.Add(time.Duration(i) * time.Nanosecond), Stream: logs.Stdout, Line: l}
		if i%2 == 1 {
			e.Stream = logs.Stderr
		}
		want = append(want, e)
	}
	// A time zone and a monotonic reading do not matter.
	want = append(want, logs.Entry{Time: time.Now().In(time.FixedZone("x", 3600)), Stream: logs.Stdout, Line: []byte("now")})
	if n := appendAll(t, w, want...); n != len(want) {
		t.Fatalf("stored %d of %d", n, len(want))
	}
	got := readAll(t, s, 1, "svc0", 0)
	for i := range got {
		if got[i].Line == nil {
			got[i].Line = []byte{}
		}
	}
	want[0].Line = []byte{}
	sameEntries(t, got, want)
	// The file is one line per record.
	data, err := os.ReadFile(filepath.Join(s.Dir(), "1", "svc0", "00000001.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte("\n")); n != len(want)+1 {
		t.Errorf("%d lines in the file for %d entries and the open record", n, len(want))
	}
}

func TestAppendChecks(t *testing.T) {
	s := newStore(t, "", logs.Options{})
	w := open(t, s, 1, "a", "c1")
	if _, err := w.Append(logs.Entry{Time: t0, Stream: "stdin", Line: []byte("x")}); !errors.Is(err, sdk.ErrInvalidArgument) {
		t.Errorf("unknown stream: %v", err)
	}
	before := time.Now()
	if ok, err := w.Append(logs.Entry{Stream: logs.Stdout, Line: []byte("no time")}); !ok || err != nil {
		t.Fatalf("zero time: %v %v", ok, err)
	}
	got := readAll(t, s, 1, "a", 0)
	if len(got) != 1 || got[0].Time.Before(before) || got[0].Time.After(time.Now()) {
		t.Errorf("zero time stored as %+v", got)
	}
	if _, err := s.Open(1, "a", "c1"); !errors.Is(err, sdk.ErrConflict) {
		t.Errorf("second writer: %v", err)
	}
	w.Close()
	if _, err := w.Append(logs.Entry{Time: t0, Stream: logs.Stdout}); !errors.Is(err, sdk.ErrConflict) {
		t.Errorf("append after close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	open(t, s, 1, "a", "c1") // the writer is free again
}

func TestBadNames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	s := newStore(t, dir, logs.Options{})
	for _, tt := range []struct {
		exec int64
		svc  string
	}{{1, ""}, {1, "."}, {1, ".."}, {1, "a/b"}, {1, "../x"}, {1, `a\b`}, {1, "a\x00"}, {1, strings.Repeat("a", 256)},
		{0, "a"}, {-1, "a"}} {
		if _, err := s.Open(tt.exec, tt.svc, "c"); !errors.Is(err, sdk.ErrInvalidArgument) {
			t.Errorf("Open(%d, %q): %v", tt.exec, tt.svc, err)
		}
		err := s.Read(t.Context(), tt.exec, tt.svc, logs.ReadOptions{}, func(logs.Entry) error { return nil })
		if !errors.Is(err, sdk.ErrInvalidArgument) {
			t.Errorf("Read(%d, %q): %v", tt.exec, tt.svc, err)
		}
		if err := s.Close(tt.exec, tt.svc); !errors.Is(err, sdk.ErrInvalidArgument) {
			t.Errorf("Close(%d, %q): %v", tt.exec, tt.svc, err)
		}
	}
	if err := s.RemoveExecution(0); !errors.Is(err, sdk.ErrInvalidArgument) {
		t.Errorf("RemoveExecution(0): %v", err)
	}
	// Nothing was created outside the store, nor inside it.
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 0 {
		t.Errorf("store directory: %v %v", ents, err)
	}
	ents, err = os.ReadDir(filepath.Dir(dir))
	if err != nil || len(ents) != 1 {
		t.Errorf("parent directory: %v %v", ents, err)
	}
}

func TestModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "logs")
	s := newStore(t, dir, logs.Options{MaxFileSize: 100})
	w := open(t, s, 7, "svc0", "c1")
	appendAll(t, w, numbered(0, 20)...)
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700 | os.ModeDir
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNoLog(t *testing.T) {
	s := newStore(t, "", logs.Options{})
	for _, follow := range []bool{false, true} {
		err := s.Read(t.Context(), 1, "none", logs.ReadOptions{Follow: follow}, func(logs.Entry) error { return nil })
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("follow %v: %v", follow, err)
		}
	}
	// Closing a service that has no log leaves it without one.
	if err := s.Close(1, "none"); err != nil {
		t.Fatal(err)
	}
	if err := s.Read(t.Context(), 1, "none", logs.ReadOptions{}, func(logs.Entry) error { return nil }); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("after Close: %v", err)
	}
	if svcs, err := s.Services(1); err != nil || len(svcs) != 0 {
		t.Errorf("Services: %v %v", svcs, err)
	}
}

func logFiles(t *testing.T, s *logs.Store, exec int64, svc string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.Dir(), fmt.Sprint(exec), svc))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestRotation(t *testing.T) {
	s := newStore(t, "", logs.Options{MaxFileSize: 300, MaxFiles: 2})
	w := open(t, s, 1, "svc0", "c1")
	all := numbered(0, 200)
	appendAll(t, w, all...)
	files := logFiles(t, s, 1, "svc0")
	if len(files) != 3 {
		t.Fatalf("files %v, want the current one and 2 rotated", files)
	}
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(s.Dir(), "1", "svc0", f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 300 {
			t.Errorf("%s has %d bytes", f, fi.Size())
		}
	}
	got := readAll(t, s, 1, "svc0", 0)
	if len(got) < 10 {
		t.Fatalf("only %d entries kept", len(got))
	}
	// What is kept is the end, in order.
	sameEntries(t, got, all[len(all)-len(got):])
	for _, tail := range []int{1, 3, len(got) - 1, len(got), len(got) + 5} {
		want := all[len(all)-min(tail, len(got)):]
		sameEntries(t, readAll(t, s, 1, "svc0", tail), want)
	}
	if svcs, err := s.Services(1); err != nil || !slices.Equal(svcs, []string{"svc0"}) {
		t.Errorf("Services: %v %v", svcs, err)
	}
}

// follower collects what a following Read gives.
type follower struct {
	mu   sync.Mutex
	got  []logs.Entry
	done chan error
	more chan struct{}
}

func follow(ctx context.Context, s *logs.Store, exec int64, svc string, tail int) *follower {
	f := &follower{done: make(chan error, 1), more: make(chan struct{}, 1)}
	go func() {
		f.done <- s.Read(ctx, exec, svc, logs.ReadOptions{Follow: true, Tail: tail}, func(e logs.Entry) error {
			f.mu.Lock()
			f.got = append(f.got, e)
			f.mu.Unlock()
			select {
			case f.more <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	return f
}

func (f *follower) entries() []logs.Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// waitN waits until the follower has n entries.
func (f *follower) waitN(t *testing.T, n int) []logs.Entry {
	t.Helper()
	deadline := time.After(wait)
	for {
		if got := f.entries(); len(got) >= n {
			return got
		}
		select {
		case <-f.more:
		case err := <-f.done:
			t.Fatalf("follower ended with %d entries of %d: %v", len(f.entries()), n, err)
		case <-deadline:
			t.Fatalf("follower has %d entries of %d", len(f.entries()), n)
		}
	}
}

func (f *follower) end(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f.done:
		return err
	case <-time.After(wait):
		t.Fatal("the follower did not end")
		return nil
	}
}

func TestFollow(t *testing.T) {
	// An hour's poll: only the writer's notification can wake the follower.
	s := newStore(t, "", logs.Options{MaxFileSize: 400, MaxFiles: 100, Poll: time.Hour})
	w := open(t, s, 1, "svc0", "c1")
	all := numbered(0, 300)
	appendAll(t, w, all[:5]...)
	f := follow(t.Context(), s, 1, "svc0", 2)
	sameEntries(t, f.waitN(t, 2), all[3:5])
	// Written one at a time, across many rotations.
	for i := 5; i < len(all); i++ {
		appendAll(t, w, all[i])
		if i%50 == 0 {
			sameEntries(t, f.waitN(t, i-2), all[3:i+1])
		}
	}
	sameEntries(t, f.waitN(t, len(all)-3), all[3:])
	if len(logFiles(t, s, 1, "svc0")) < 10 {
		t.Fatalf("too few rotations: %v", logFiles(t, s, 1, "svc0"))
	}
	select {
	case err := <-f.done:
		t.Fatalf("the follower ended before the log was closed: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	// Released writer: the log stays open.
	w.Close()
	select {
	case err := <-f.done:
		t.Fatalf("the follower ended when the writer was released: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := s.Close(1, "svc0"); err != nil {
		t.Fatal(err)
	}
	if err := f.end(t); err != nil {
		t.Fatalf("follower: %v", err)
	}
	sameEntries(t, f.entries(), all[3:])
	// A follower of a closed log reads it and returns.
	f = follow(t.Context(), s, 1, "svc0", 0)
	if err := f.end(t); err != nil {
		t.Fatal(err)
	}
	sameEntries(t, f.entries(), all)
}

func TestFollowContext(t *testing.T) {
	s := newStore(t, "", logs.Options{Poll: time.Hour})
	w := open(t, s, 1, "svc0", "c1")
	appendAll(t, w, numbered(0, 1)...)
	ctx, cancel := context.WithCancel(t.Context())
	f := follow(ctx, s, 1, "svc0", 0)
	f.waitN(t, 1)
	cancel()
	if err := f.end(t); !errors.Is(err, context.Canceled) {
		t.Errorf("follower: %v", err)
	}
	// fn's error ends Read with it.
	boom := errors.New("boom")
	if err := s.Read(t.Context(), 1, "svc0", logs.ReadOptions{Follow: true}, func(logs.Entry) error { return boom }); err != boom {
		t.Errorf("Read: %v", err)
	}
}

// TestFollowOtherProcess: a follower that started before any writer of
// its process (after a restart, a writer elsewhere) sees the writes by
// polling, and a writer that comes later wakes it.
func TestFollowOtherProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	writerSide := newStore(t, dir, logs.Options{})
	w := open(t, writerSide, 1, "svc0", "c1")
	all := numbered(0, 4)
	appendAll(t, w, all[0])
	reader := newStore(t, dir, logs.Options{Poll: 20 * time.Millisecond})
	f := follow(t.Context(), reader, 1, "svc0", 0)
	f.waitN(t, 1)
	appendAll(t, w, all[1])
	f.waitN(t, 2)
	w.Close()
	if err := writerSide.Close(1, "svc0"); err != nil {
		t.Fatal(err)
	}
	if err := f.end(t); err != nil {
		t.Fatal(err)
	}
	sameEntries(t, f.entries(), all[:2])

	// A writer of the follower's store, opened after it, wakes it.
	slow := newStore(t, dir, logs.Options{Poll: time.Hour})
	w2 := open(t, slow, 1, "svc1", "c2")
	appendAll(t, w2, all[0])
	w2.Close()
	f = follow(t.Context(), slow, 1, "svc1", 0)
	f.waitN(t, 1)
	w2 = open(t, slow, 1, "svc1", "c2")
	appendAll(t, w2, all[1:]...)
	sameEntries(t, f.waitN(t, 4), all)
}

func TestConcurrentReaders(t *testing.T) {
	s := newStore(t, "", logs.Options{MaxFileSize: 4096, MaxFiles: 1000, Poll: time.Hour})
	w := open(t, s, 1, "svc0", "c1")
	all := numbered(0, 2000)
	var fs []*follower
	for i := range 8 {
		if i == 4 {
			appendAll(t, w, all[:500]...) // half of them start late
		}
		fs = append(fs, follow(t.Context(), s, 1, "svc0", 0))
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 4 {
			for range 200 {
				_ = readAll(t, s, 1, "svc0", 10*i)
			}
		}
	})
	for _, e := range all[500:] {
		if _, err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if err := s.Close(1, "svc0"); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		if err := f.end(t); err != nil {
			t.Fatalf("follower %d: %v", i, err)
		}
		sameEntries(t, f.entries(), all)
	}
	wg.Wait()
}

func TestRemoveExecution(t *testing.T) {
	s := newStore(t, "", logs.Options{Poll: time.Hour})
	w := open(t, s, 3, "svc0", "c1")
	w2 := open(t, s, 4, "svc0", "c1")
	appendAll(t, w, numbered(0, 3)...)
	appendAll(t, w2, numbered(0, 3)...)
	f := follow(t.Context(), s, 3, "svc0", 0)
	f.waitN(t, 3)
	if err := s.RemoveExecution(3); err != nil {
		t.Fatal(err)
	}
	if err := f.end(t); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("follower of a removed log: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "3")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("execution directory: %v", err)
	}
	if _, err := w.Append(numbered(5, 1)[0]); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("writer of a removed log: %v", err)
	}
	if err := s.Read(t.Context(), 3, "svc0", logs.ReadOptions{}, func(logs.Entry) error { return nil }); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Read: %v", err)
	}
	// The other execution is untouched.
	if got := readAll(t, s, 4, "svc0", 0); len(got) != 3 {
		t.Errorf("execution 4 has %d entries", len(got))
	}
	if err := s.RemoveExecution(3); err != nil {
		t.Errorf("removing again: %v", err)
	}
	if ids, err := s.Executions(); err != nil || !slices.Equal(ids, []int64{4}) {
		t.Errorf("executions with logs: %v %v", ids, err)
	}
}

// TestResume: a writer opened again on the same source (the daemon or the
// plugin restarted) drops what it has stored, lines of equal time
// included, and keeps what is new.
func TestResume(t *testing.T) {
	same := func(i int) time.Time { return t0.Add(time.Duration(i/3) * time.Second) } // three lines a second
	stream := make([]logs.Entry, 12)
	for i := range stream {
		stream[i] = logs.Entry{Time: same(i), Stream: logs.Stdout, Line: fmt.Appendf(nil, "l%d", i)}
	}
	for _, tt := range []struct {
		name     string
		opts     logs.Options
		stored   int // stored before the restart; stream[stored:] is new
		reopened bool
	}{
		{"in the middle of a second", logs.Options{}, 7, false},
		{"at the end of a second", logs.Options{}, 6, false},
		{"nothing stored", logs.Options{}, 0, false},
		{"after a close", logs.Options{}, 5, true},
		// Every record in its own file: the run of equal times spans files.
		{"across rotations", logs.Options{MaxFileSize: 1, MaxFiles: 100}, 8, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "logs")
			s := newStore(t, dir, tt.opts)
			w := open(t, s, 1, "svc0", "c1")
			appendAll(t, w, stream[:tt.stored]...)
			w.Close()
			if tt.reopened {
				if err := s.Close(1, "svc0"); err != nil {
					t.Fatal(err)
				}
			}
			// Restarted: a new store on the same directory.
			s = newStore(t, dir, tt.opts)
			w = open(t, s, 1, "svc0", "c1")
			// The back-end's stream starts again from the beginning, and
			// breaks twice.
			n := appendAll(t, w, stream[:tt.stored+2]...)
			w.Resync()
			n += appendAll(t, w, stream[:tt.stored+1]...)
			w.Resync()
			n += appendAll(t, w, stream...)
			if n != len(stream)-tt.stored {
				t.Errorf("appended %d, want %d", n, len(stream)-tt.stored)
			}
			sameEntries(t, readAll(t, s, 1, "svc0", 0), stream)
		})
	}
}

// TestNewSource: the output of a new container (an elastic service
// started again) follows the old one's whatever its times, and resuming
// after a restart knows which source the log ends with.
func TestNewSource(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	s := newStore(t, dir, logs.Options{})
	first := numbered(100, 3)
	second := numbered(0, 3) // earlier times (another node's clock)
	w := open(t, s, 1, "worker0", "c1")
	appendAll(t, w, first...)
	w.Close()
	w = open(t, s, 1, "worker0", "c2")
	if n := appendAll(t, w, second...); n != 3 {
		t.Fatalf("appended %d of the new source's entries", n)
	}
	w.Close()
	s = newStore(t, dir, logs.Options{})
	w = open(t, s, 1, "worker0", "c2")
	if n := appendAll(t, w, second...); n != 0 {
		t.Errorf("appended %d again after a restart", n)
	}
	sameEntries(t, readAll(t, s, 1, "worker0", 0), append(slices.Clone(first), second...))
}

// TestPartialRecord: a record cut by a crash is not read, and the next
// writer cuts it off before appending.
func TestPartialRecord(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	s := newStore(t, dir, logs.Options{})
	all := numbered(0, 4)
	w := open(t, s, 1, "svc0", "c1")
	appendAll(t, w, all[:2]...)
	w.Close()
	path := filepath.Join(dir, "1", "svc0", "00000001.log")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("2025-03-01T12:00:00.5Z stdout cut in the mid"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	sameEntries(t, readAll(t, s, 1, "svc0", 0), all[:2])
	s = newStore(t, dir, logs.Options{})
	w = open(t, s, 1, "svc0", "c1")
	appendAll(t, w, all...)
	sameEntries(t, readAll(t, s, 1, "svc0", 0), all)
	// A malformed line is skipped.
	w.Close()
	f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("garbage\n")
	f.Close()
	w = open(t, s, 1, "svc0", "c1")
	appendAll(t, w, numbered(4, 1)...)
	sameEntries(t, readAll(t, s, 1, "svc0", 0), numbered(0, 5))
}

func BenchmarkAppend(b *testing.B) {
	s, err := logs.New(b.TempDir(), logs.Options{})
	if err != nil {
		b.Fatal(err)
	}
	w, err := s.Open(1, "svc0", "c1")
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	line := []byte(`2025-03-01 12:00:00 INFO  org.apache.spark.executor.Executor: Finished task 3.0 in stage 7.0 (TID 42)`)
	e := logs.Entry{Time: t0, Stream: logs.Stdout, Line: line}
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e.Time = t0.Add(time.Duration(i))
		if _, err := w.Append(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadTail(b *testing.B) {
	s, err := logs.New(b.TempDir(), logs.Options{})
	if err != nil {
		b.Fatal(err)
	}
	w, err := s.Open(1, "svc0", "c1")
	if err != nil {
		b.Fatal(err)
	}
	line := bytes.Repeat([]byte("x"), 100)
	for i := range 50000 {
		if _, err := w.Append(logs.Entry{Time: t0.Add(time.Duration(i)), Stream: logs.Stdout, Line: line}); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	for b.Loop() {
		n := 0
		if err := s.Read(context.Background(), 1, "svc0", logs.ReadOptions{Tail: 100}, func(logs.Entry) error {
			n++
			return nil
		}); err != nil || n != 100 {
			b.Fatal(n, err)
		}
	}
}

// TestCrashAtRotation: a crash between creating the next file and writing
// its header leaves it empty; the next writer gives it its open record, so
// that later ones still resume where the log ends instead of storing the
// source's output again.
func TestCrashAtRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	s := newStore(t, dir, logs.Options{})
	all := numbered(0, 6)
	w := open(t, s, 1, "svc0", "c1")
	appendAll(t, w, all[:3]...)
	w.Close()
	if err := os.WriteFile(filepath.Join(dir, "1", "svc0", "00000002.log"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Each round resumes at the last stored entry, the source sends
	// everything again from there, and the log ends up with it once.
	for _, round := range []struct{ resume, upTo int }{{2, 5}, {4, 6}} {
		s = newStore(t, dir, logs.Options{})
		w = open(t, s, 1, "svc0", "c1")
		if since := w.Since(); !since.Equal(all[round.resume].Time) {
			t.Fatalf("the writer resumes at %v, want %v", since, all[round.resume].Time)
		}
		appendAll(t, w, all[round.resume:round.upTo]...)
		w.Close()
		sameEntries(t, readAll(t, s, 1, "svc0", 0), all[:round.upTo])
	}
}

// TestZeroTimeEndsCatchUp: a line without a time, from a back-end that
// gives none, cannot be matched with the stored ones: it is stored, not
// taken for one already there and dropped.
func TestZeroTimeEndsCatchUp(t *testing.T) {
	s := newStore(t, "", logs.Options{})
	w := open(t, s, 1, "svc0", "c1")
	appendAll(t, w, numbered(0, 2)...)
	w.Resync()
	stored, err := w.Append(logs.Entry{Stream: logs.Stdout, Line: []byte("no time")})
	if err != nil || !stored {
		t.Fatalf("a line without a time while catching up: stored %v, %v", stored, err)
	}
	got := readAll(t, s, 1, "svc0", 0)
	if len(got) != 3 || string(got[2].Line) != "no time" || got[2].Time.IsZero() {
		t.Errorf("log %+v", got)
	}
}
