package logs

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/zoe-project/zoe/sdk"
)

// Writer appends the entries of one service. A service has at most one
// Writer at a time (the engine's collector).
type Writer struct {
	s *Store
	l *svcLog
	// catching: since the last Resync, no entry has been appended; entries
	// already stored are dropped.
	catching bool
	seen     int // entries at time l.last seen while catching
	done     bool
}

// Open returns the writer of a service's log. A new log is created by its
// first record (a service that prints nothing costs no file); until then
// it reads as empty.
// source names what the entries come from (the back-end's handle id of the
// container): when it is the source the log already ends with, writing
// resumes (see Resync); otherwise the new source's entries follow the old
// one's. Opening a closed log opens it again. A service that has a writer
// already is refused with sdk.ErrConflict.
func (s *Store) Open(executionID int64, service, source string) (*Writer, error) {
	l, err := s.acquire(executionID, service)
	if err != nil {
		return nil, err
	}
	w, err := s.open(l, source)
	s.trim()
	if err != nil {
		s.release(l)
		return nil, err
	}
	return w, nil
}

func (s *Store) open(l *svcLog, source string) (*Writer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.writer {
		return nil, fmt.Errorf("logs: service %s of execution %d has a writer already: %w", l.key.service, l.key.exec,
			sdk.ErrConflict)
	}
	if l.removed {
		return nil, notFound(l.key)
	}
	st, err := l.load()
	if err != nil {
		return nil, err
	}
	l.seq, l.size = max(st.seq, 1), st.size
	l.source, l.last, l.n, l.closed = st.source, st.last, st.n, st.closed
	l.header = nil
	// The file is opened at the first write (file): a service that prints
	// nothing costs no file, and starting one costs no system call but
	// load's listing.
	switch {
	case st.seq == 0:
		// A new log is created at the first write, with its open record
		// of now.
		l.header = appendRecord(nil, time.Now(), kindOpen, []byte(source))
		l.source, l.last, l.n = source, time.Time{}, 0
	case st.size == 0 || !st.haveSource || st.source != source || st.closed:
		// An empty newest file (a crash between creating it at a rotation
		// and writing its header) gets its open record here: every file
		// starts with one, which is what a later load finds the source by.
		if st.source != source {
			l.last, l.n = time.Time{}, 0
		}
		if err := l.write(appendRecord(nil, time.Now(), kindOpen, []byte(source))); err != nil {
			l.closeFile()
			return nil, err
		}
		l.source, l.closed = source, false
	}
	l.writer = true
	l.notify()
	return &Writer{s: s, l: l, catching: true}, nil
}

// Resync tells the writer that the next entries come from a new
// subscription to its source, which starts at the beginning of the
// source's output: until one of them is new, those already stored are
// dropped (see "Resuming without duplicates"). A new Writer is resyncing.
func (w *Writer) Resync() {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	w.catching, w.seen = true, 0
}

// Since is where a new subscription to the writer's source should start:
// the time of the last entry stored from it, zero for all of its output.
func (w *Writer) Since() time.Time {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	return w.l.last
}

// Append stores one entry, unless the writer is catching up and has it
// already; it says whether it stored it. A zero time is replaced by the
// current time; such an entry cannot be told apart from those stored, so it
// ends a catch-up (it may be stored twice, never lost). The stream must be
// Stdout or Stderr.
func (w *Writer) Append(e Entry) (bool, error) {
	ok, err := w.append(e)
	w.s.trim()
	return ok, err
}

func (w *Writer) append(e Entry) (bool, error) {
	if e.Stream != Stdout && e.Stream != Stderr {
		return false, fmt.Errorf("logs: stream %q: %w", e.Stream, sdk.ErrInvalidArgument)
	}
	l := w.l
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case w.done:
		return false, fmt.Errorf("logs: append to a closed writer: %w", sdk.ErrConflict)
	case l.removed:
		return false, notFound(l.key)
	}
	if w.catching {
		switch {
		case e.Time.IsZero():
			// A line without a time cannot be matched with those stored:
			// better stored twice than lost.
		case e.Time.Before(l.last):
			return false, nil
		case e.Time.Equal(l.last):
			w.seen++
			if w.seen <= l.n {
				return false, nil
			}
		}
		w.catching = false
	}
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	if l.closed {
		if l.header == nil {
			if err := l.write(appendRecord(nil, time.Now(), kindOpen, []byte(l.source))); err != nil {
				return false, err
			}
		}
		l.closed = false
	}
	l.buf = appendRecord(l.buf[:0], t, e.Stream, e.Line)
	if l.size > 0 && l.size+int64(len(l.buf)) > w.s.opts.MaxFileSize {
		if err := w.s.rotate(l); err != nil {
			return false, err
		}
	}
	if err := l.write(l.buf); err != nil {
		return false, err
	}
	if t.Equal(l.last) {
		l.n++
	} else {
		l.last, l.n = t, 1
	}
	l.notify()
	return true, nil
}

// Close releases the writer. The log stays open: followers keep waiting
// for the next writer or for Store.Close.
func (w *Writer) Close() error {
	l := w.l
	l.mu.Lock()
	if w.done {
		l.mu.Unlock()
		return nil
	}
	w.done = true
	l.writer = false
	err := l.closeFile()
	if l.header != nil {
		// Its followers wait for a log that will not come.
		l.header = nil
		l.notify()
	}
	l.mu.Unlock()
	w.s.release(l)
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	return nil
}

// Close ends a service's log for good: its followers return once they have
// read it all. A service without a log is left without one; a writer opened
// later opens the log again.
func (s *Store) Close(executionID int64, service string) error {
	err := s.closeLog(executionID, service)
	s.trim()
	return err
}

func (s *Store) closeLog(executionID int64, service string) error {
	l, err := s.acquire(executionID, service)
	if err != nil {
		return err
	}
	defer s.release(l)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.removed {
		return nil
	}
	rec := appendRecord(nil, time.Now(), kindClose, nil)
	if l.writer {
		if l.closed {
			return nil
		}
		if l.header != nil {
			// No log yet: none is created, but the followers waiting
			// for it end.
			l.closed = true
			l.notify()
			return nil
		}
		if err := l.write(rec); err != nil {
			return err
		}
		l.closed = true
		l.notify()
		return nil
	}
	st, err := l.load()
	if err != nil || st.seq == 0 || st.closed {
		return err
	}
	f, err := os.OpenFile(l.path(st.seq), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	_, err = f.Write(rec)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	l.notify()
	if err != nil {
		return fmt.Errorf("logs: close the log of %s: %w", service, err)
	}
	return nil
}

// write appends b to the current file, created first if the log is new;
// l.mu is held and a writer open.
func (l *svcLog) write(b []byte) error {
	if l.header != nil {
		if err := l.create(); err != nil {
			return err
		}
	}
	return l.writeRecord(b)
}

// create creates the directory and the first file of a new log, with its
// open record (l.header).
func (l *svcLog) create() error {
	if l.f == nil {
		if err := os.MkdirAll(l.dir, 0o700); err != nil {
			return fmt.Errorf("logs: %w", err)
		}
		f, err := os.OpenFile(l.path(l.seq), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("logs: %w", err)
		}
		l.setFile(f)
	}
	if err := l.writeRecord(l.header); err != nil {
		return err
	}
	l.header = nil
	return nil
}

// writeRecord appends b to the current file.
func (l *svcLog) writeRecord(b []byte) error {
	f, err := l.file()
	if err != nil {
		return err
	}
	n, err := f.Write(b)
	if err != nil {
		if n > 0 {
			// A partial record would swallow the next one.
			_ = f.Truncate(l.size)
		}
		return fmt.Errorf("logs: write %s: %w", f.Name(), err)
	}
	l.size += int64(n)
	return nil
}

// rotate starts the next file, which begins with the source's open record,
// and removes the rotated files beyond MaxFiles.
func (s *Store) rotate(l *svcLog) error {
	next := l.seq + 1
	f, err := os.OpenFile(l.path(next), os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("logs: rotate: %w", err)
	}
	hdr := appendRecord(nil, time.Now(), kindOpen, []byte(l.source))
	if _, err := f.Write(hdr); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("logs: rotate: %w", err)
	}
	l.setFile(f)
	l.seq, l.size = next, int64(len(hdr))
	seqs, err := l.files()
	if err != nil {
		return nil // the new file is written; pruning waits for the next rotation
	}
	for _, q := range seqs {
		if q < next-int64(s.opts.MaxFiles) {
			if err := os.Remove(l.path(q)); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("cannot remove a rotated log file", "file", l.path(q), "error", err)
			}
		}
	}
	return nil
}

// loaded is what a writer resumes from.
type loaded struct {
	seq        int64 // the current file; 0: no log
	size       int64 // its size, a partial last record cut off
	haveSource bool
	source     string
	closed     bool
	last       time.Time
	n          int
}

// load reads the state a writer resumes from, from the newest file and, when
// the last entries' run goes back to its start, the ones before. A partial
// last record (a write cut by a crash) is cut off the current file. l.mu is
// held and no writer is open.
func (l *svcLog) load() (loaded, error) {
	seqs, err := l.files()
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(seqs) == 0) {
		return loaded{}, nil
	}
	if err != nil {
		return loaded{}, fmt.Errorf("logs: %w", err)
	}
	cur := seqs[len(seqs)-1]
	fs, err := scanFile(l.path(cur))
	if err != nil {
		return loaded{}, err
	}
	if fs.complete < fs.size {
		if err := os.Truncate(l.path(cur), fs.complete); err != nil {
			return loaded{}, fmt.Errorf("logs: cut a partial record: %w", err)
		}
	}
	st := loaded{seq: cur, size: fs.complete, haveSource: fs.haveSource, source: fs.source, closed: fs.closed,
		last: fs.last, n: fs.n}
	for i, more := len(seqs)-2, fs.fromStart; more && i >= 0; i-- {
		p, err := scanFile(l.path(seqs[i]))
		if errors.Is(err, os.ErrNotExist) {
			break // rotated away meanwhile
		}
		if err != nil {
			return loaded{}, err
		}
		if !st.haveSource {
			st.haveSource, st.source = p.haveSource, p.source
		}
		if p.source != st.source || (st.n > 0 && p.n > 0 && !p.last.Equal(st.last)) {
			break
		}
		if st.n == 0 {
			st.last = p.last
		}
		st.n += p.n
		more = p.fromStart
	}
	return st, nil
}

// fileScan is what one file says of the state at its end.
type fileScan struct {
	size, complete int64
	haveSource     bool
	source         string // of the last open record
	closed         bool   // the last open or close record is a close
	last           time.Time
	n              int
	// fromStart: the run of entries at time last (or, when n is 0, the
	// absence of entries) goes back to the file's start within one source,
	// so the file before may hold more of it.
	fromStart bool
}

func scanFile(path string) (fileScan, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileScan{}, fmt.Errorf("logs: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fileScan{}, fmt.Errorf("logs: %w", err)
	}
	fs := fileScan{size: fi.Size(), fromStart: true}
	r := newLineReader(f)
	for {
		line, ok, err := r.next()
		if err != nil {
			return fileScan{}, fmt.Errorf("logs: read %s: %w", path, err)
		}
		if !ok {
			break
		}
		t, kind, rest, ok := parseHead(line)
		if !ok {
			continue
		}
		switch kind {
		case kindOpen:
			src := string(unescape(rest))
			if fs.haveSource && src != fs.source {
				fs.last, fs.n, fs.fromStart = time.Time{}, 0, false
			}
			fs.haveSource, fs.source, fs.closed = true, src, false
		case kindClose:
			fs.closed = true
		default:
			switch {
			case fs.n > 0 && t.Equal(fs.last):
				fs.n++
			case fs.n == 0 && fs.fromStart:
				fs.last, fs.n = t, 1
			default:
				fs.last, fs.n, fs.fromStart = t, 1, false
			}
		}
	}
	fs.complete = r.off
	return fs, nil
}
