package client

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestSSEReader(t *testing.T) {
	stream := ": a comment, then a keep-alive\n" +
		":\n\n" +
		"id: 1\nevent: execution\ndata: {\"a\":1}\n\n" +
		// CRLF line endings, no space after the colon, a field without a
		// colon, an unknown field, two data lines.
		"id:2\r\ndata:first\r\ndata\r\nfoo: bar\r\ndata: third\r\n\r\n" +
		// An id with no data updates the last id but dispatches nothing.
		"id: 3\n\n" +
		"retry: 2500\ndata:  two spaces\n\n" +
		// An empty id resets it; an id with NUL is ignored.
		"id\ndata: x\n\n" +
		"id: a\x00b\ndata: y\n\n" +
		"id: 8\ndata: z\n\n" +
		// Not ended by a blank line: dropped.
		"id: 9\ndata: unfinished\n"
	r := newSSEReader(strings.NewReader(stream), "")
	want := []sseMessage{
		{ID: "1", Event: "execution", Data: `{"a":1}`},
		{ID: "2", Data: "first\n\nthird"},
		{ID: "3", Data: " two spaces"},
		{ID: "", Data: "x"},
		{ID: "", Data: "y"},
		{ID: "8", Data: "z"},
	}
	for i, w := range want {
		m, err := r.next()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if m != w {
			t.Errorf("message %d: %+v, want %+v", i, m, w)
		}
	}
	if r.retry != 2500*time.Millisecond {
		t.Errorf("retry %v, want 2.5s", r.retry)
	}
	if _, err := r.next(); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("after the last message: %v, want EOF", err)
	}
	if r.lastID != "8" {
		t.Errorf("last id %q, want 8 (the unfinished message was not received)", r.lastID)
	}
}

func TestSSEReaderLongLine(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	r := newSSEReader(strings.NewReader("data: "+long+"\n\n"), "")
	m, err := r.next()
	if err != nil || m.Data != long {
		t.Fatalf("a 200 KiB data line: %d bytes, %v", len(m.Data), err)
	}
}
