package dockerapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/sdk/backend"
)

// Timestamp is t in the engine's own format for since and until,
// seconds and nanoseconds: it keeps what came at or after that instant.
func Timestamp(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// LogsOptions is opts in the engine's terms: stdout and stderr, each line
// with the engine's timestamp, which CopyLogs reads back. Swarm's service
// logs take the same fields: client.ServiceLogsOptions(LogsOptions(opts)).
func LogsOptions(opts backend.LogOptions) client.ContainerLogsOptions {
	tail := "all"
	if opts.Tail > 0 {
		tail = strconv.Itoa(opts.Tail)
	}
	since := ""
	if !opts.Since.IsZero() {
		since = Timestamp(opts.Since)
	}
	return client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: opts.Follow, Tail: tail, Since: since, Timestamps: true}
}

// CopyLogs sends the entries of a log stream asked for with LogsOptions to
// out, one per line, until the stream or ctx ends; keep, when set, says
// which to send. A last line without its newline is sent too. The error is
// the stream's, nil when it ended or ctx did.
func CopyLogs(ctx context.Context, r io.Reader, out chan<- backend.LogEntry, keep func(backend.LogEntry) bool) error {
	stdout := &lineWriter{ctx: ctx, stream: backend.Stdout, out: out, keep: keep}
	stderr := &lineWriter{ctx: ctx, stream: backend.Stderr, out: out, keep: keep}
	_, err := stdcopy.StdCopy(stdout, stderr, r)
	stdout.flush()
	stderr.flush()
	if err != nil && ctx.Err() == nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// lineWriter cuts one stream into LogEntries, one per line, each line
// starting with the engine's RFC 3339 timestamp.
type lineWriter struct {
	ctx    context.Context
	stream backend.Stream
	out    chan<- backend.LogEntry
	keep   func(backend.LogEntry) bool
	buf    []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := w.buf[:i]
		w.buf = w.buf[i+1:]
		if err := w.emit(line); err != nil {
			return 0, err
		}
	}
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		_ = w.emit(w.buf)
		w.buf = nil
	}
}

func (w *lineWriter) emit(line []byte) error {
	e := backend.LogEntry{Stream: w.stream}
	if ts, rest, ok := bytes.Cut(line, []byte(" ")); ok {
		if t, err := time.Parse(time.RFC3339Nano, string(ts)); err == nil {
			e.Time, line = t, rest
		}
	}
	e.Line = bytes.Clone(bytes.TrimSuffix(line, []byte("\r")))
	if w.keep != nil && !w.keep(e) {
		return nil
	}
	select {
	case w.out <- e:
		return nil
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
}
