package plugintest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/zoe-project/zoe/sdk/backend"
)

// checkLogs: every line has its time; Tail, Since (inclusive) and the two
// together select what the contract says; Follow sends the lines there are,
// then new ones as they are written, and ends once the service exited. The
// core resumes a broken stream with Since at the time of the last line it
// stored, so an exclusive Since would lose lines and a Since ignored would
// store them twice.
func checkLogs(t *testing.T, p backend.Backend, s BackendSuite) {
	if s.NoLogs != "" {
		t.Skip("no output to read: " + s.NoLogs)
	}
	ctx := ctxFor(t, s.Timeout)
	_, spec := prepare(t, ctx, p, s.LongRunning())
	st := start(t, ctx, p, spec)
	all := waitLines(t, ctx, p, st.Handle, 2)
	for _, l := range all {
		if l.Time.IsZero() {
			t.Fatalf("a line without its time: %q; the core resumes streams from the time of the last line", l.Line)
		}
	}
	last := all[len(all)-1]
	since := func(at time.Time) []backend.LogEntry {
		var out []backend.LogEntry
		for _, l := range all {
			if !l.Time.Before(at) {
				out = append(out, l)
			}
		}
		return out
	}
	cases := []struct {
		what string
		opts backend.LogOptions
		want []backend.LogEntry
	}{
		{"all", backend.LogOptions{}, all},
		{"tail 1", backend.LogOptions{Tail: 1}, all[len(all)-1:]},
		{"tail 2", backend.LogOptions{Tail: 2}, all[len(all)-2:]},
		{"tail beyond the start", backend.LogOptions{Tail: len(all) + 10}, all},
		{"since the first line", backend.LogOptions{Since: all[0].Time}, all},
		{"since the last line (inclusive)", backend.LogOptions{Since: last.Time}, since(last.Time)},
		{"since after the last line", backend.LogOptions{Since: last.Time.Add(time.Nanosecond)}, nil},
		{"since the first line, tail 1", backend.LogOptions{Since: all[0].Time, Tail: 1}, all[len(all)-1:]},
	}
	for _, c := range cases {
		if got := readLogs(t, ctx, p, st.Handle, c.opts); !sameLines(got, c.want) {
			t.Errorf("Logs %s (%+v):%s\nwant:%s", c.what, c.opts, formatLines(got), formatLines(c.want))
		}
	}
	checkFollow(t, ctx, p, st.Handle, all, s.Timeout)
}

// checkFollow follows a running service that wrote the lines seen, stops
// it, and checks that the stream sent those lines, then at least the one
// the service wrote on being stopped, and then ended by itself.
func checkFollow(t *testing.T, ctx context.Context, p backend.Backend, h backend.Handle, seen []backend.LogEntry, timeout time.Duration) {
	t.Helper()
	ch, err := p.Logs(ctx, h, backend.LogOptions{Follow: true})
	if err != nil {
		t.Fatalf("Logs with Follow: %v", err)
	}
	var got []backend.LogEntry
	for len(got) < len(seen) {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("Logs with Follow ended while the service runs, after:%s", formatLines(got))
			}
			got = append(got, e)
		case <-ctx.Done():
			t.Fatalf("Logs with Follow sent%s\nof the lines there are:%s", formatLines(got), formatLines(seen))
		}
	}
	if !sameLines(got, seen) {
		t.Errorf("Logs with Follow began with:%s\nwant the lines there are:%s", formatLines(got), formatLines(seen))
	}
	if err := p.Stop(ctx, h, timeout/4); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for {
		select {
		case e, ok := <-ch:
			if ok {
				got = append(got, e)
				continue
			}
			if len(got) <= len(seen) {
				t.Errorf("Logs with Follow sent no new line: the service writes one when stopped; got:%s", formatLines(got))
			}
			return
		case <-ctx.Done():
			t.Fatalf("Logs with Follow did not end once the service exited; got:%s", formatLines(got))
		}
	}
}

func sameLines(a, b []backend.LogEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Time.Equal(b[i].Time) || a[i].Stream != b[i].Stream || !bytes.Equal(a[i].Line, b[i].Line) {
			return false
		}
	}
	return true
}
