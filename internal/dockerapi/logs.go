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

// MaxLogLine bounds one log line: a longer one is sent in parts of this
// size, each with the line's time, so that a service writing without
// newlines cannot make the plug-in hold all it writes (as the Kubernetes
// back-end's logs do).
const MaxLogLine = 1 << 20

// lineWriter cuts one stream into LogEntries, one per line, each line
// starting with the engine's RFC 3339 timestamp. The engine stores a line
// longer than 16 KiB in parts and sends each with a timestamp of its own,
// where the line goes on: those are dropped, the line keeps its first.
type lineWriter struct {
	ctx    context.Context
	stream backend.Stream
	out    chan<- backend.LogEntry
	keep   func(backend.LogEntry) bool
	buf    []byte
	// cont: part of the current line was sent already (it was longer than
	// MaxLogLine), at stamp; the rest is sent with that time.
	cont  bool
	stamp time.Time
}

// Write takes one frame of the engine's stream: one message, with the
// engine's timestamp first.
func (w *lineWriter) Write(b []byte) (int, error) {
	n := len(b)
	if len(w.buf) > 0 || w.cont {
		// The rest of a long line: its part's timestamp is not the line's.
		if _, rest, ok := cutTimestamp(b); ok {
			b = rest
		}
	}
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := w.buf[:i]
		w.buf = w.buf[i+1:]
		if err := w.emit(line); err != nil {
			return 0, err
		}
		w.cont = false
	}
	for {
		end := MaxLogLine // of the line's text, after its timestamp
		if !w.cont {
			if _, rest, ok := cutTimestamp(w.buf); ok {
				end += len(w.buf) - len(rest)
			}
		}
		if len(w.buf) < end {
			break
		}
		if err := w.emit(w.buf[:end]); err != nil {
			return 0, err
		}
		w.cont = true
		w.buf = append([]byte(nil), w.buf[end:]...) // lets the sent part go
	}
	return n, nil
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		_ = w.emit(w.buf)
		w.buf = nil
	}
}

// cutTimestamp splits "<RFC 3339 time> <rest>", looking at b's first
// bytes only.
func cutTimestamp(b []byte) (time.Time, []byte, bool) {
	i := bytes.IndexByte(b[:min(len(b), len(time.RFC3339Nano)+8)], ' ')
	if i < 0 {
		return time.Time{}, b, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(b[:i]))
	if err != nil {
		return time.Time{}, b, false
	}
	return t, b[i+1:], true
}

// emit sends line, the first part of a line with its timestamp or, when
// w.cont, a later part of one without.
func (w *lineWriter) emit(line []byte) error {
	e := backend.LogEntry{Stream: w.stream}
	if w.cont {
		e.Time = w.stamp
	} else if t, rest, ok := cutTimestamp(line); ok {
		e.Time, line = t, rest
		w.stamp = t
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
