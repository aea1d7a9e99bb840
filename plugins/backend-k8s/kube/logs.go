package kube

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
//
// A followed stream ends once the Pod has ended and all of its output was
// sent, as the contract asks: a kubelet ends it some seconds after the
// container exits, but not every node does (kwok's never), so once the Pod
// has ended and the stream is still open logEndGrace later, it is cut and
// the rest is read again without following, from the last line's time.
func (p *Plugin) Logs(ctx context.Context, h backend.Handle, opts backend.LogOptions) (<-chan backend.LogEntry, error) {
	rt, pod, err := p.locate(ctx, h)
	if err != nil {
		return nil, err
	}
	lo := &corev1.PodLogOptions{Container: ContainerName, Follow: opts.Follow && !ended(pod), Timestamps: true}
	if opts.Tail > 0 {
		lo.TailLines = ptr(int64(opts.Tail))
	}
	if !opts.Since.IsZero() {
		lo.SinceTime = &metav1.Time{Time: opts.Since.Truncate(time.Second)}
	}
	// The stream is opened in the background: the API server answers a
	// follow only once the container has written something (the kubelet
	// sends nothing before), and a silent service must not hold its
	// caller.
	streamCtx, cutStream := context.WithCancel(ctx)
	var cut atomic.Bool
	if lo.Follow {
		go func() {
			if rt.waitEnded(streamCtx, pod) != nil {
				return
			}
			select {
			case <-streamCtx.Done():
			case <-time.After(logEndGrace):
				cut.Store(true)
				cutStream()
			}
		}()
	}
	out := make(chan backend.LogEntry, 64)
	go func() {
		defer close(out)
		defer cutStream()
		// The last line's time and how many lines had it: where reading
		// again starts.
		var last time.Time
		atLast := 0
		send := func(e backend.LogEntry) bool {
			if !opts.Since.IsZero() && e.Time.Before(opts.Since) {
				return true
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return false
			}
			if e.Time.Equal(last) {
				atLast++
			} else {
				last, atLast = e.Time, 1
			}
			return true
		}
		rc, err := rt.cs.CoreV1().Pods(rt.namespace).GetLogs(pod.Name, lo).Stream(streamCtx)
		if err == nil {
			err = readLogLines(bufio.NewReaderSize(rc, 64<<10), send)
			_ = rc.Close()
		}
		if cut.Load() && ctx.Err() == nil {
			err = rt.readRest(ctx, pod.Name, lo, last, atLast, send)
		}
		switch {
		case err == nil || ctx.Err() != nil:
		case apierrors.IsBadRequest(err):
			// No output to read yet (a container still being created),
			// or none at all: the caller asks again.
			p.log.Debug("no output of the pod to read", "pod", pod.Name, "error", err)
		default:
			p.log.Warn("pod log stream broken", "pod", pod.Name, "error", err)
		}
	}()
	return out, nil
}

// logEndGrace is how long a followed stream may stay open after its Pod
// has ended before it is cut (a kubelet checks every few seconds).
const logEndGrace = time.Second

// readRest reads an ended Pod's output without following, from the second
// of last on, and gives send the lines after the atLast ones of time last
// (which were sent already): all when nothing was.
func (rt *runtime) readRest(ctx context.Context, pod string, followed *corev1.PodLogOptions, last time.Time, atLast int,
	send func(backend.LogEntry) bool) error {
	lo := *followed
	lo.Follow = false
	if !last.IsZero() {
		lo.SinceTime = &metav1.Time{Time: last.Truncate(time.Second)}
		lo.TailLines = nil
	}
	rc, err := rt.cs.CoreV1().Pods(rt.namespace).GetLogs(pod, &lo).Stream(ctx)
	if err != nil {
		return wrap(err, "logs of pod %s", pod)
	}
	defer rc.Close()
	seen := 0
	return readLogLines(bufio.NewReaderSize(rc, 64<<10), func(e backend.LogEntry) bool {
		if e.Time.Before(last) {
			return true
		}
		if e.Time.Equal(last) && seen < atLast {
			seen++
			return true
		}
		return send(e)
	})
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
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			// A stream cut or broken: what came of the last line may be
			// part of it, which the next read sends whole.
			return err
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
