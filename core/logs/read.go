package logs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/zoe-project/zoe/sdk"
)

// ReadOptions select what Read gives.
type ReadOptions struct {
	// Tail is the number of last entries to start with; 0 for all.
	Tail int
	// Follow waits for new entries after the stored ones.
	Follow bool
}

// Read calls fn for each stored entry of the service, oldest first; fn may
// keep the entry. With Follow it then waits for new entries, and returns nil
// once the log is closed for good (Close) and read to its end, or ctx's
// error when ctx ends. An error of fn ends Read with it. A service without
// a log gives an error wrapping sdk.ErrNotFound, as does a log removed
// (RemoveExecution) while it is followed; one whose writer has yet to
// write reads as empty.
//
// A follower that falls so far behind that the files it has yet to read are
// rotated away goes on with the oldest file left.
func (s *Store) Read(ctx context.Context, executionID int64, service string, opts ReadOptions, fn func(Entry) error) error {
	l, err := s.acquire(executionID, service)
	if err != nil {
		return err
	}
	defer s.release(l)
	r := &reader{s: s, l: l}
	defer r.close()
	var poll *time.Timer
	wait := func(wake <-chan struct{}) error {
		if poll == nil {
			poll = time.NewTimer(s.opts.Poll)
		} else {
			poll.Reset(s.opts.Poll)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-poll.C:
		}
		return nil
	}
	defer func() {
		if poll != nil {
			poll.Stop()
		}
	}()
	for retried := false; ; {
		wake := l.changed()
		err := r.start(opts.Tail)
		if err == nil {
			break
		}
		if !errors.Is(err, sdk.ErrNotFound) {
			return err
		}
		// A log whose writer has yet to write its first record, which
		// creates it, is empty, as if it existed.
		writing, created, closed := l.writing()
		switch {
		case writing && created && !retried:
			retried = true // created since start looked
			continue
		case !writing || created:
			return err
		case !opts.Follow || closed:
			return nil
		}
		if err := wait(wake); err != nil {
			return err
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Taken before reading: a write after the read wakes it.
		wake := l.changed()
		closed, err := r.drain(fn)
		if err != nil {
			return err
		}
		next, err := r.nextFile()
		if err != nil {
			return err
		}
		if next > 0 {
			// The writer finished this file before it created the next.
			if _, err := r.drain(fn); err != nil {
				return err
			}
			if err := r.openFrom(next); err != nil {
				return err
			}
			continue
		}
		if !opts.Follow || closed {
			return nil
		}
		if err := wait(wake); err != nil {
			return err
		}
	}
}

// writing tells whether the log has a writer in this process, whether the
// writer has created the log, and whether the log is closed.
func (l *svcLog) writing() (writing, created, closed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writer && !l.removed, l.header == nil, l.closed
}

// reader is a position in a service's files.
type reader struct {
	s      *Store
	l      *svcLog
	seq    int64
	f      *os.File
	lr     *lineReader
	closed bool // the last record read closes the log
}

func (r *reader) close() {
	if r.f != nil {
		r.f.Close()
	}
}

// start positions the reader tail entries before the end (at the start
// with 0).
func (r *reader) start(tail int) error {
	seqs, err := r.l.files()
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(seqs) == 0) {
		return notFound(r.l.key)
	}
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	if tail <= 0 {
		return r.openFrom(seqs[0])
	}
	need := tail
	for i := len(seqs) - 1; i >= 0; i-- {
		offs, count, err := entryOffsets(r.l.path(seqs[i]), need)
		if errors.Is(err, os.ErrNotExist) {
			break // rotated away: start after it
		}
		if err != nil {
			return err
		}
		if count >= need {
			err := r.openAt(seqs[i], offs[count%need])
			if errors.Is(err, os.ErrNotExist) {
				// Rotated away since it was read: start after it.
				return r.openFrom(seqs[i])
			}
			return err
		}
		need -= count
	}
	return r.openFrom(seqs[0])
}

// entryOffsets returns the offsets of the last n entries of a file as a
// ring (the oldest of them at count%n when count ≥ n) and the number of
// entries in the file.
func entryOffsets(path string, n int) ([]int64, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("logs: %w", err)
	}
	defer f.Close()
	ring := make([]int64, 0, min(n, 4096))
	count := 0
	lr := newLineReader(f)
	for {
		off := lr.off
		line, ok, err := lr.next()
		if err != nil {
			return nil, 0, fmt.Errorf("logs: read %s: %w", path, err)
		}
		if !ok {
			return ring, count, nil
		}
		if !isEntry(line) {
			continue
		}
		if len(ring) < n {
			ring = append(ring, off)
		} else {
			ring[count%n] = off
		}
		count++
	}
}

// openFrom opens the file seq, or the oldest one after it when it has been
// rotated away, at its start.
func (r *reader) openFrom(seq int64) error {
	for {
		err := r.openAt(seq, 0)
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		seqs, lerr := r.l.files()
		if lerr != nil {
			return r.gone(lerr)
		}
		i := 0
		for i < len(seqs) && seqs[i] <= seq {
			i++
		}
		if i == len(seqs) {
			return notFound(r.l.key)
		}
		seq = seqs[i]
	}
}

func (r *reader) openAt(seq int64, off int64) error {
	f, err := os.Open(r.l.path(seq))
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("logs: %w", err)
	}
	r.close()
	r.f, r.seq, r.lr = f, seq, newLineReader(f)
	r.lr.off = off
	return nil
}

// drain gives the complete records from the position on; it says whether
// the last record read closes the log.
func (r *reader) drain(fn func(Entry) error) (bool, error) {
	for {
		line, ok, err := r.lr.next()
		if err != nil {
			return r.closed, fmt.Errorf("logs: read %s: %w", r.f.Name(), err)
		}
		if !ok {
			return r.closed, nil
		}
		rec, ok := decode(line)
		if !ok {
			r.s.log.Warn("skipping a malformed log record", "file", r.f.Name(), "offset", r.lr.off-int64(len(line))-1)
			continue
		}
		switch rec.kind {
		case kindClose:
			r.closed = true
		case kindOpen:
			r.closed = false
		default:
			r.closed = false
			if err := fn(Entry{Time: rec.time, Stream: rec.kind, Line: rec.payload}); err != nil {
				return false, err
			}
		}
	}
}

// nextFile is the number of the file after the reader's, 0 if none.
func (r *reader) nextFile() (int64, error) {
	l := r.l
	l.mu.Lock()
	writing, cur, removed := l.writer, l.seq, l.removed
	l.mu.Unlock()
	switch {
	case removed:
		return 0, r.gone(os.ErrNotExist)
	case writing && cur == r.seq:
		// The writer of this process is on this file: no listing needed.
		return 0, nil
	}
	seqs, err := l.files()
	if err != nil {
		return 0, r.gone(err)
	}
	for _, q := range seqs {
		if q > r.seq {
			return q, nil
		}
	}
	if len(seqs) == 0 {
		return 0, notFound(r.l.key)
	}
	return 0, nil
}

func (r *reader) gone(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("logs: the log of service %s of execution %d was removed: %w", r.l.key.service, r.l.key.exec,
			sdk.ErrNotFound)
	}
	return fmt.Errorf("logs: %w", err)
}

// lineReader reads the complete lines of a file that may be growing.
type lineReader struct {
	f   *os.File
	br  *bufio.Reader
	off int64 // offset of the next line
	acc []byte
}

func newLineReader(f *os.File) *lineReader {
	return &lineReader{f: f, br: bufio.NewReaderSize(f, 64<<10)}
}

// next returns the next complete line without its newline, valid until the
// next call; false at the end of the complete lines, after which the next
// call reads from the same place again, seeing what was appended since.
func (r *lineReader) next() ([]byte, bool, error) {
	r.acc = r.acc[:0]
	for {
		b, err := r.br.ReadSlice('\n')
		switch {
		case err == nil:
			if len(r.acc) > 0 {
				b = append(r.acc, b...)
				r.acc = b
			}
			r.off += int64(len(b))
			return b[:len(b)-1], true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			r.acc = append(r.acc, b...)
		case errors.Is(err, io.EOF):
			if len(b) == 0 && len(r.acc) == 0 {
				return nil, false, nil
			}
			// A record being written (or cut by a crash): read it again
			// from its start next time.
			if _, err := r.f.Seek(r.off, io.SeekStart); err != nil {
				return nil, false, err
			}
			r.br.Reset(r.f)
			r.acc = r.acc[:0]
			return nil, false, nil
		default:
			return nil, false, err
		}
	}
}
