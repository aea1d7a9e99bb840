package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// A service's output file holds one line per line of output:
//
//	<unix time in ns> <o|e> <the line, without its newline>
//
// written whole by one write, in the order of the times, by its supervisor.
// A line longer than maxLine is cut in pieces of maxLine bytes.
const maxLine = 64 << 10

// logWriter is the supervisor's side: it times and writes lines from
// both streams, up to a total of max bytes.
type logWriter struct {
	mu   sync.Mutex
	f    *os.File
	n    int64
	max  int64
	full bool
}

func (w *logWriter) line(stream byte, data []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.full {
		return
	}
	// The time is taken under the lock, so that the file is in time order.
	entry := strconv.AppendInt(nil, time.Now().UnixNano(), 10)
	entry = append(append(append(entry, ' ', stream, ' '), data...), '\n')
	if w.n+int64(len(entry)) > w.max {
		w.full = true
		entry = strconv.AppendInt(nil, time.Now().UnixNano(), 10)
		entry = append(entry, " e [localproc: output beyond max_log_bytes dropped]\n"...)
	}
	n, _ := w.f.Write(entry)
	w.n += int64(n)
}

// copyLines reads one stream of the service until it ends.
func copyLines(r io.Reader, stream byte, w *logWriter) {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			w.line(stream, bytes.TrimSuffix(line, []byte("\n")))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// parseLine reads one line of the output file.
func parseLine(line []byte) (backend.LogEntry, bool) {
	ns, rest, ok1 := bytes.Cut(line, []byte(" "))
	stream, text, ok2 := bytes.Cut(rest, []byte(" "))
	n, err := strconv.ParseInt(string(ns), 10, 64)
	if !ok1 || !ok2 || err != nil || len(stream) != 1 {
		return backend.LogEntry{}, false
	}
	e := backend.LogEntry{Time: time.Unix(0, n), Stream: backend.Stdout, Line: bytes.Clone(text)}
	if stream[0] == 'e' {
		e.Stream = backend.Stderr
	}
	return e, true
}

// logReader reads whole lines of a growing output file.
type logReader struct {
	br      *bufio.Reader
	partial []byte
}

// next returns the next whole line, or false at the end of what is there.
func (r *logReader) next() ([]byte, bool) {
	for {
		chunk, err := r.br.ReadSlice('\n')
		if err == nil {
			line := append(r.partial, chunk[:len(chunk)-1]...)
			r.partial = nil
			return line, true
		}
		r.partial = append(r.partial, chunk...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, false // the rest is being written
		}
	}
}

// Logs streams a service's output from its file. With Follow it polls the
// file, and ends once the supervisor recorded the exit (it writes the
// status after the last line) and the file was read to its end.
func (b *Backend) Logs(ctx context.Context, h backend.Handle, opts backend.LogOptions) (<-chan backend.LogEntry, error) {
	s, err := b.setup()
	if err != nil {
		return nil, err
	}
	sv, err := s.lookup(h)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(sv.dir, logFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errors.Join(err, sdk.ErrNotFound) // removed just now
	}
	if err != nil {
		return nil, err
	}
	ch := make(chan backend.LogEntry, 64)
	go func() {
		defer close(ch)
		defer func() { _ = f.Close() }()
		r := &logReader{br: bufio.NewReaderSize(f, maxLine)}
		send := func(e backend.LogEntry) bool {
			select {
			case ch <- e:
				return true
			case <-ctx.Done():
			case <-b.closed:
			}
			return false
		}
		// What is there: after Since, the last Tail of those.
		var first []backend.LogEntry
		for line, ok := r.next(); ok; line, ok = r.next() {
			if e, ok := parseLine(line); ok && !e.Time.Before(opts.Since) {
				first = append(first, e)
				if opts.Tail > 0 && len(first) > opts.Tail {
					first = first[1:]
				}
			}
		}
		for _, e := range first {
			if !send(e) {
				return
			}
		}
		if !opts.Follow {
			return
		}
		for {
			// The state first, then the file: lines written before the
			// exit was recorded are read below.
			now, err := s.lookup(h)
			done := err != nil || now.status.State == backend.ServiceExited
			for line, ok := r.next(); ok; line, ok = r.next() {
				if e, ok := parseLine(line); ok && !e.Time.Before(opts.Since) && !send(e) {
					return
				}
			}
			if done {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-b.closed:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return ch, nil
}
