package kube

import (
	"bufio"
	"bytes"
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zoe-project/zoe/sdk/backend"
)

// maxLogLine bounds one line read from the cluster; a longer one is cut
// into lines of this size.
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
		sc := bufio.NewScanner(rc)
		sc.Buffer(make([]byte, 64<<10), maxLogLine)
		for sc.Scan() {
			e, ok := parseLogLine(sc.Bytes())
			if !ok || (!opts.Since.IsZero() && e.Time.Before(opts.Since)) {
				continue
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
		if err := sc.Err(); err != nil && ctx.Err() == nil {
			p.log.Warn("pod log stream broken", "pod", pod.Name, "error", err)
		}
	}()
	return out, nil
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
