package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"testing/slogtest"
	"time"

	"github.com/hashicorp/go-hclog"
)

// hostRead reads a line as go-plugin's host does (client.go, parseJSON):
// failing here means the core's log would get the raw line at debug level.
func hostRead(t *testing.T, line []byte) (level hclog.Level, msg string, attrs map[string]any) {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal(line, &raw); err != nil {
		t.Fatalf("line is not JSON: %v\n%s", err, line)
	}
	msg, ok := raw["@message"].(string)
	if !ok {
		t.Fatalf("@message is %T, the host needs a string: %s", raw["@message"], line)
	}
	lv, ok := raw["@level"].(string)
	if !ok {
		t.Fatalf("@level is %T, the host needs a string: %s", raw["@level"], line)
	}
	if ts, ok := raw["@timestamp"]; ok {
		s, _ := ts.(string)
		if _, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", s); err != nil {
			t.Fatalf("the host cannot parse @timestamp %v: %v", ts, err)
		}
	}
	delete(raw, "@message")
	delete(raw, "@level")
	delete(raw, "@timestamp")
	return hclog.LevelFromString(lv), msg, raw
}

type stringer struct{}

func (stringer) String() string { return "as a string" }

type nilErr struct{ msg string }

func (e *nilErr) Error() string { return e.msg }

func TestHandlerWritesWhatTheHostReads(t *testing.T) {
	var nilError *nilErr
	tests := []struct {
		name      string
		log       func(*slog.Logger)
		level     hclog.Level
		msg       string
		attrs     map[string]any
		present   []string // attributes whose value varies, only there
		noWritten bool
	}{
		{name: "info with attributes",
			log:   func(l *slog.Logger) { l.Info("loaded users file", "path", "/u.csv", "users", 3, "ok", true) },
			level: hclog.Info, msg: "loaded users file", attrs: map[string]any{"path": "/u.csv", "users": 3.0, "ok": true}},
		{name: "levels map to hclog's",
			log:   func(l *slog.Logger) { l.Log(t.Context(), slog.LevelDebug-4, "very fine") },
			level: hclog.Trace, msg: "very fine", attrs: map[string]any{}},
		{name: "debug", log: func(l *slog.Logger) { l.Debug("d") }, level: hclog.Debug, msg: "d", attrs: map[string]any{}},
		{name: "warn", log: func(l *slog.Logger) { l.Warn("w") }, level: hclog.Warn, msg: "w", attrs: map[string]any{}},
		{name: "above error is error",
			log:   func(l *slog.Logger) { l.Log(t.Context(), slog.LevelError+4, "e") },
			level: hclog.Error, msg: "e", attrs: map[string]any{}},
		{name: "errors, durations, times and stringers as text",
			log: func(l *slog.Logger) {
				l.Error("failed", "error", errors.New("boom"), "after", 1500*time.Millisecond,
					"at", time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), "s", stringer{})
			},
			level: hclog.Error, msg: "failed",
			attrs: map[string]any{"error": "boom", "after": "1.5s", "at": "2024-05-06T07:08:09Z", "s": "as a string"}},
		{name: "groups and With flatten to dotted keys",
			log: func(l *slog.Logger) {
				l.With("host", "h1").WithGroup("req").With("id", 7).Info("m", slog.Group("user", "name", "alice"), "n", 1)
			},
			level: hclog.Info, msg: "m",
			attrs: map[string]any{"host": "h1", "req.id": 7.0, "req.user.name": "alice", "req.n": 1.0}},
		{name: "the host's own keys cannot be overwritten",
			log:   func(l *slog.Logger) { l.Info("real", "@message", 5, "@level", "error", "@timestamp", "x") },
			level: hclog.Info, msg: "real",
			attrs: map[string]any{"_@message": 5.0, "_@level": "error", "_@timestamp": "x"}},
		{name: "values JSON cannot encode keep the line",
			log:   func(l *slog.Logger) { l.Info("m", "nan", math.NaN(), "ch", make(chan int), "f", 1.5) },
			level: hclog.Info, msg: "m",
			attrs: map[string]any{"nan": "NaN", "f": 1.5}, present: []string{"ch"}},
		{name: "a panicking value keeps the line",
			log:   func(l *slog.Logger) { l.Info("m", "err", nilError) },
			level: hclog.Info, msg: "m", attrs: map[string]any{}, present: []string{"err"}},
		{name: "message with quotes and newlines stays one line",
			log:   func(l *slog.Logger) { l.Info("a \"b\"\nc") },
			level: hclog.Info, msg: "a \"b\"\nc", attrs: map[string]any{}},
		{name: "below the level is not written",
			log: func(l *slog.Logger) { l.Log(t.Context(), slog.LevelDebug-4, "trace") }, noWritten: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			level := slog.LevelDebug - 4
			if tc.noWritten {
				level = slog.LevelDebug
			}
			tc.log(slog.New(newHandler(&buf, level)))
			if tc.noWritten {
				if buf.Len() != 0 {
					t.Fatalf("wrote %q", buf.String())
				}
				return
			}
			if n := strings.Count(buf.String(), "\n"); n != 1 || !strings.HasSuffix(buf.String(), "\n") {
				t.Fatalf("want one line, got %d: %q", n, buf.String())
			}
			level2, msg, attrs := hostRead(t, buf.Bytes())
			if level2 != tc.level || msg != tc.msg {
				t.Errorf("host reads level %s message %q, want %s %q", level2, msg, tc.level, tc.msg)
			}
			for _, k := range tc.present {
				if _, ok := attrs[k].(string); !ok {
					t.Errorf("attribute %s is %v, want some text", k, attrs[k])
				}
				delete(attrs, k)
			}
			got, _ := json.Marshal(attrs)
			want, _ := json.Marshal(tc.attrs)
			if string(got) != string(want) {
				t.Errorf("attributes %s, want %s", got, want)
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in   string
		want slog.Level
	}{
		{"trace", slog.LevelDebug - 4}, {"debug", slog.LevelDebug}, {"INFO", slog.LevelInfo}, {"", slog.LevelInfo},
		{"warn", slog.LevelWarn}, {"error", slog.LevelError}, {"off", levelOff}, {"nonsense", slog.LevelInfo},
	}
	for _, tc := range tests {
		if got := parseLevel(tc.in); got != tc.want {
			t.Errorf("parseLevel(%q) = %v, want %v", tc.in, got, tc.want)
		}
		// What the core sends is hclog's name of its level; the round trip
		// through levelName must land on the same hclog level.
		if tc.in != "" && tc.in != "off" && tc.in != "nonsense" {
			if got, want := hclog.LevelFromString(levelName(parseLevel(tc.in))), hclog.LevelFromString(tc.in); got != want {
				t.Errorf("%q comes back as %s", tc.in, got)
			}
		}
	}
}

// slogtest checks the rules every slog.Handler must keep (zero attributes
// dropped, empty groups ignored, With and WithGroup, ...). It expects nested
// groups and slog's own key names, so the lines are read back into those.
func TestHandlerKeepsSlogRules(t *testing.T) {
	var buf bytes.Buffer
	h := newHandler(&buf, slog.LevelDebug)
	results := func() []map[string]any {
		var ms []map[string]any
		for line := range strings.SplitSeq(strings.TrimSuffix(buf.String(), "\n"), "\n") {
			var raw map[string]any
			if err := json.Unmarshal([]byte(line), &raw); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			m := map[string]any{}
			for k, v := range raw {
				switch k {
				case "@level":
					m[slog.LevelKey] = v
				case "@message":
					m[slog.MessageKey] = v
				case "@timestamp":
					m[slog.TimeKey] = v
				default:
					parts := strings.Split(k, ".")
					at := m
					for _, p := range parts[:len(parts)-1] {
						next, ok := at[p].(map[string]any)
						if !ok {
							next = map[string]any{}
							at[p] = next
						}
						at = next
					}
					at[parts[len(parts)-1]] = v
				}
			}
			ms = append(ms, m)
		}
		return ms
	}
	if err := slogtest.TestHandler(h, results); err != nil {
		t.Error(err)
	}
}
