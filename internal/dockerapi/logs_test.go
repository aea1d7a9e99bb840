package dockerapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/sdk/backend"
)

func TestTimestamp(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Unix(1700000000, 0), "1700000000.000000000"},
		{time.Unix(1700000000, 42), "1700000000.000000042"},
		{time.Unix(1700000000, 999999999).In(time.FixedZone("x", 3600)), "1700000000.999999999"},
	}
	for _, tt := range tests {
		if got := Timestamp(tt.t); got != tt.want {
			t.Errorf("Timestamp(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestLogsOptions(t *testing.T) {
	since := time.Unix(1700000000, 5)
	tests := []struct {
		name        string
		opts        backend.LogOptions
		tail, since string
	}{
		{"everything", backend.LogOptions{}, "all", ""},
		{"a tail, followed", backend.LogOptions{Tail: 10, Follow: true}, "10", ""},
		{"since", backend.LogOptions{Since: since}, "all", "1700000000.000000005"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := LogsOptions(tt.opts)
			if got.Tail != tt.tail || got.Since != tt.since || got.Follow != tt.opts.Follow ||
				!got.ShowStdout || !got.ShowStderr || !got.Timestamps || got.Until != "" || got.Details {
				t.Errorf("LogsOptions(%+v) = %+v; want tail %q, since %q, both streams with timestamps", tt.opts, got, tt.tail, tt.since)
			}
		})
	}
}

// frame is one frame of the engine's multiplexed stream: 1 stdout, 2
// stderr, 3 an error of the engine's.
func frame(stream byte, s string) []byte {
	h := make([]byte, 8, 8+len(s))
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(s)))
	return append(h, s...)
}

func TestCopyLogs(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 123456789, time.UTC)
	stamp := at.Format(time.RFC3339Nano) + " "
	type entry struct {
		stream backend.Stream
		line   string
		time   time.Time
	}
	later := at.Add(time.Millisecond)
	stamp2 := later.Format(time.RFC3339Nano) + " "
	// A line of 2.5 MiB without a newline as the engine sends it: in
	// parts of 16 KiB, each with a timestamp of its own; then a line.
	var long [][]byte
	for range 160 {
		long = append(long, frame(1, stamp2+strings.Repeat("x", 16<<10)))
	}
	long[0] = frame(1, stamp+strings.Repeat("x", 16<<10))
	long = append(long, frame(1, stamp2+"\n"), frame(1, stamp2+"next\n"))
	tests := []struct {
		name    string
		frames  [][]byte
		keep    func(backend.LogEntry) bool
		want    []entry
		wantErr string
	}{
		{"one line a stream", [][]byte{frame(1, stamp+"out\n"), frame(2, stamp+"err\n")}, nil,
			[]entry{{backend.Stdout, "out", at}, {backend.Stderr, "err", at}}, ""},
		{"a line across frames", [][]byte{frame(1, stamp+"hel"), frame(1, "lo\n"+stamp+"again\n")}, nil,
			[]entry{{backend.Stdout, "hello", at}, {backend.Stdout, "again", at}}, ""},
		{"a line in the engine's parts", [][]byte{frame(1, stamp+"aa"), frame(2, stamp+"err\n"), frame(1, stamp2+"bb "), frame(1, stamp2+stamp2+"cc\n")}, nil,
			[]entry{{backend.Stderr, "err", at}, {backend.Stdout, "aabb " + stamp2 + "cc", at}}, ""},
		{"a line longer than MaxLogLine", long, nil, []entry{
			{backend.Stdout, strings.Repeat("x", MaxLogLine), at}, {backend.Stdout, strings.Repeat("x", MaxLogLine), at},
			{backend.Stdout, strings.Repeat("x", 160*16<<10-2*MaxLogLine), at}, {backend.Stdout, "next", later}}, ""},
		{"a carriage return", [][]byte{frame(1, stamp+"dos\r\n")}, nil, []entry{{backend.Stdout, "dos", at}}, ""},
		{"no timestamp", [][]byte{frame(1, "plain text\n")}, nil, []entry{{backend.Stdout, "plain text", time.Time{}}}, ""},
		{"an empty line", [][]byte{frame(1, stamp+"\n")}, nil, []entry{{backend.Stdout, "", at}}, ""},
		{"a last line without its newline", [][]byte{frame(2, stamp+"last")}, nil, []entry{{backend.Stderr, "last", at}}, ""},
		{"kept by keep", [][]byte{frame(1, stamp+"a\n"+stamp+"b\n")}, func(e backend.LogEntry) bool { return string(e.Line) != "a" },
			[]entry{{backend.Stdout, "b", at}}, ""},
		{"a truncated frame", [][]byte{frame(1, stamp+"whole\n"), frame(1, "cut short")[:10]}, nil,
			[]entry{{backend.Stdout, "whole", at}}, ""},
		{"the engine's error", [][]byte{frame(1, stamp+"before\n"), frame(3, "no such container")}, nil,
			[]entry{{backend.Stdout, "before", at}}, "no such container"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := make(chan backend.LogEntry, 16)
			err := CopyLogs(context.Background(), bytes.NewReader(bytes.Join(tt.frames, nil)), out, tt.keep)
			close(out)
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("CopyLogs = %v, want an error with %q", err, tt.wantErr)
			}
			var got []entry
			for e := range out {
				got = append(got, entry{e.Stream, string(e.Line), e.Time})
			}
			// Long lines are shown by their length and ends.
			show := func(es []entry) string {
				var b strings.Builder
				for _, e := range es {
					l := e.line
					if len(l) > 80 {
						l = fmt.Sprintf("%s…(%d bytes)…%s", l[:30], len(l), l[len(l)-30:])
					}
					fmt.Fprintf(&b, "\n  %s %q at %s", e.stream, l, e.time.Format(time.RFC3339Nano))
				}
				return b.String()
			}
			if len(got) != len(tt.want) {
				t.Fatalf("entries:%s\nwant:%s", show(got), show(tt.want))
			}
			for i := range got {
				if got[i].stream != tt.want[i].stream || got[i].line != tt.want[i].line || !got[i].time.Equal(tt.want[i].time) {
					t.Errorf("entry %d:%s\nwant:%s", i, show(got[i:i+1]), show(tt.want[i:i+1]))
				}
			}
		})
	}
}

// TestCopyLogsCancelled: a reader gone (ctx ended) ends the copy without
// an error, and without waiting for room in out.
func TestCopyLogsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := make(chan backend.LogEntry) // nobody reads
	if err := CopyLogs(ctx, bytes.NewReader(frame(1, "a\nb\n")), out, nil); err != nil {
		t.Errorf("CopyLogs = %v, want nil once ctx ended", err)
	}
}
