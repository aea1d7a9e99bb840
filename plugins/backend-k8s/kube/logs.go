package kube

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zoe-project/zoe/sdk/backend"
)

// maxLogLine bounds one line read from the cluster; a longer one is cut
// into lines of about this size.
const maxLogLine = 1 << 20

// Logs streams the Pod's output from the API server (which asks the
// kubelet), with the kubelet's timestamps. Kubernetes merges stdout and
// stderr into one stream: every line is reported as stdout. Since is cut to
// the second by the API: lines before it are dropped here.
func (p *Plugin) Logs(ctx context.Context, h backend.Handle, opts backend.LogOptions) (<-chan backend.LogEntry, error) {
	rt, pod, err := p.locate(ctx, h)
	if err != nil {
		return nil, err
	}
	lo := &corev1.PodLogOptions{Container: ContainerName, Follow: opts.Follow, Timestamps: true}
	if opts.Tail > 0 {
		lo.TailLines = ptr(int64(opts.Tail))
	}
	if !opts.Since.IsZero() {
		lo.SinceTime = &metav1.Time{Time: opts.Since.Truncate(time.Second)}
	}
	rc, err := rt.cs.CoreV1().Pods(rt.namespace).GetLogs(pod.Name, lo).Stream(ctx)
	if err != nil {
		return nil, wrap(err, "logs of pod %s", pod.Name)
	}
	out := make(chan backend.LogEntry, 64)
	go func() {
		defer close(out)
		defer rc.Close()
		err := readLogLines(bufio.NewReaderSize(rc, 64<<10), func(e backend.LogEntry) bool {
			if !opts.Since.IsZero() && e.Time.Before(opts.Since) {
				return true
			}
			select {
			case out <- e:
				return true
			case <-ctx.Done():
				return false
			}
		})
		if err != nil && ctx.Err() == nil {
			p.log.Warn("pod log stream broken", "pod", pod.Name, "error", err)
		}
	}()
	return out, nil
}

// readLogLines reads the kubelet's timestamped lines and gives each to
// emit until it says stop; a line longer than maxLogLine is cut into parts
// of that size, each with the line's time, so that no line ends the stream.
func readLogLines(r *bufio.Reader, emit func(backend.LogEntry) bool) error {
	var line []byte
	var stamp time.Time
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		full := err == nil
		if err == bufio.ErrBufferFull && len(line) < maxLogLine {
			continue
		}
		if len(line) > 0 {
			text := bytes.TrimSuffix(line, []byte{'\n'})
			if stamp.IsZero() {
				// The first part of a line holds its time.
				e, ok := parseLogLine(text)
				if ok && !emit(e) {
					return nil
				}
				if ok && !full {
					stamp = e.Time
				}
			} else if !emit(backend.LogEntry{Time: stamp, Stream: backend.Stdout, Line: bytes.Clone(text)}) {
				return nil
			}
			if full {
				stamp = time.Time{}
			}
			line = line[:0]
		}
		switch {
		case err == nil || err == bufio.ErrBufferFull:
		case err == io.EOF:
			return nil
		default:
			return err
		}
	}
}

// parseLogLine splits "<RFC3339Nano time> <line>", as the kubelet writes
// lines with timestamps.
func parseLogLine(b []byte) (backend.LogEntry, bool) {
	ts, line, ok := bytes.Cut(b, []byte{' '})
	if !ok {
		ts, line = b, nil
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return backend.LogEntry{}, false
	}
	return backend.LogEntry{Time: t, Stream: backend.Stdout, Line: bytes.Clone(line)}, true
}
