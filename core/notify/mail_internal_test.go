package notify

import (
	"bytes"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/state"
)

func TestOneLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 100, "plain"},
		{"a\r\nBcc: x", 100, "a  Bcc: x"},
		{"tab\there", 100, "tab here"},
		{"\u2028sep\u0085", 100, "sep"},
		{"bad \xff utf8", 100, "bad \uFFFD utf8"},
		// 20 bytes into 9: three é (6 bytes) and … (3), never half a rune.
		{strings.Repeat("é", 10), 9, strings.Repeat("é", 3) + "…"},
		{strings.Repeat("é", 10), 10, strings.Repeat("é", 3) + "…"},
	} {
		if got := oneLine(tc.in, tc.max); got != tc.want {
			t.Errorf("oneLine(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// TestRan: the run is measured exactly (a threshold below a second
// works); the mail shows it to the second.
func TestRan(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(42 * time.Millisecond)
	e := state.Execution{StartedAt: &start, EndedAt: &end}
	if got := ran(e, time.Time{}); got != 42*time.Millisecond {
		t.Errorf("ran = %s", got)
	}
	if got := ran(state.Execution{}, end); got != 0 {
		t.Errorf("never started: %s", got)
	}
	if got := shown(90*time.Minute + 400*time.Millisecond); got != "1h30m0s" {
		t.Errorf("shown = %s", got)
	}
}

// TestBackoff: it doubles, is capped, and is never more than the bound.
func TestBackoff(t *testing.T) {
	n := New(nil, Config{Backoff: time.Second, MaxBackoff: 10 * time.Second})
	for _, tc := range []struct {
		attempts int
		hi       time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second}, {5, 10 * time.Second}, {50, 10 * time.Second}} {
		for range 20 {
			if d := n.backoff(tc.attempts); d > tc.hi || d < tc.hi*4/5 {
				t.Errorf("backoff(%d) = %s, want in [%s, %s]", tc.attempts, d, tc.hi*4/5, tc.hi)
			}
		}
	}
}

// TestMessageLines: every line of a mail about a long name in a non-Latin
// script stays under RFC 5322's 998 bytes, and the subject decodes whole.
func TestMessageLines(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	name := strings.Repeat("計算", 300)
	m := message{EventID: 7, StoreID: "abc", Execution: state.Execution{ID: 3, Name: name, StartedAt: &start, SubmittedAt: start},
		Status: "error", Reason: strings.Repeat("ü", 3000), Ended: start, Owner: "alice", To: "alice@lab.example",
		From: "Zoe <zoe@zoe.example>", Date: start}
	b, err := m.bytes()
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(b), "\r\n") {
		if len(line) > 998 || strings.ContainsAny(line, "\r\n") {
			t.Errorf("line %d: %d bytes", i, len(line))
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || !strings.Contains(subject, oneLine(name, maxNameLen)) || !strings.HasSuffix(subject, "(#3) ended in error") {
		t.Errorf("subject %q, %v", subject, err)
	}
	if got := msg.Header.Get("Message-ID"); got != "<zoe-notify.7.abc@zoe.example>" {
		t.Errorf("Message-ID %q", got)
	}
}
