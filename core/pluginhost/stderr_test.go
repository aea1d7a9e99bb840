package pluginhost

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/internal/testutil"
)

func TestPluginOutput(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	for _, tc := range []struct {
		name string
		def  hclog.Level
		min  hclog.Level
		in   []string // written one after the other
		want []map[string]any
	}{
		{name: "hclog JSON", in: []string{`{"@level":"warn","@message":"m","@timestamp":"2025-01-02T03:04:05.000000Z","k":"v","n":2,"@module":"sub"}` + "\n"},
			want: []map[string]any{{"@level": "warn", "@message": "m", "@module": "core.sub", "k": "v", "n": 2.0}}},
		// The core's line has its own time; the plugin's is kept only
		// when it is late, and never as year 1.
		{name: "time stamps", in: []string{
			`{"@level":"info","@message":"late","@timestamp":"2025-01-02T03:04:00.000000Z"}` + "\n",
			`{"@level":"info","@message":"other zone","@timestamp":"2025-01-02T04:04:05+01:00"}` + "\n",
			`{"@level":"info","@message":"zero","@timestamp":"0001-01-01T00:00:00Z"}` + "\n",
			`{"@level":"info","@message":"unreadable","@timestamp":"yesterday"}` + "\n",
			`{"@level":"info","@message":"on time","@timestamp":"2025-01-02T03:04:04.500000Z"}` + "\n"},
			want: []map[string]any{{"@level": "info", "@message": "late", "plugin_time": "2025-01-02T03:04:00.000Z"},
				{"@level": "info", "@message": "other zone"}, {"@level": "info", "@message": "zero"},
				{"@level": "info", "@message": "unreadable"}, {"@level": "info", "@message": "on time"}}},
		// The logger names the plugin already.
		{name: "module of the plugin's own name", in: []string{
			`{"@level":"info","@message":"a","@module":"auth-x"}` + "\n",
			`{"@level":"info","@message":"b","@module":"zoe-plugin-auth-x.client"}` + "\n",
			`{"@level":"info","@message":"c","@module":"x"}` + "\n",
			`{"@level":"info","@message":"d","@module":"xy"}` + "\n"},
			want: []map[string]any{{"@level": "info", "@message": "a"}, {"@level": "info", "@message": "b", "@module": "core.client"},
				{"@level": "info", "@message": "c"}, {"@level": "info", "@message": "d", "@module": "core.xy"}}},
		{name: "split writes", in: []string{`{"@level":"info",`, `"@message":"m"}`, "\nplain\n"},
			want: []map[string]any{{"@level": "info", "@message": "m"}, {"@level": "debug", "@message": "plain"}}},
		{name: "wrong types", in: []string{`{"@message":1}` + "\n" + `{"@level":"error","@message":{"a":"\u001b"},"@timestamp":[1]}` + "\n"},
			want: []map[string]any{{"@level": "debug", "@message": `{"@message":1}`},
				{"@level": "error", "@message": `{"a":"\u001b"}`}}},
		{name: "reserved keys", in: []string{`{"@level":"info","@message":"m","@caller":"c","":1}` + "\n"},
			want: []map[string]any{{"@level": "info", "@message": "m", "_@caller": "c", "_": 1.0}}},
		{name: "control characters", in: []string{"a\x1b[2J\x00\xff\u202e\tb\r\n"},
			want: []map[string]any{{"@level": "debug", "@message": `a\x1b[2J\x00\xff\u202e\tb`}}},
		{name: "prefixes", def: hclog.Info, in: []string{"[WARN] w\n[ERROR] e\n[TRACE] t\nx\n"},
			want: []map[string]any{{"@level": "warn", "@message": "[WARN] w"}, {"@level": "error", "@message": "[ERROR] e"},
				{"@level": "trace", "@message": "[TRACE] t"}, {"@level": "info", "@message": "x"}}},
		{name: "panic", in: []string{"panic: boom\n\ngoroutine 1 [running]:\n"},
			want: []map[string]any{{"@level": "error", "@message": "panic: boom"}, {"@level": "error", "@message": "goroutine 1 [running]:"}}},
		{name: "below the plugin's level", min: hclog.Warn, in: []string{`{"@level":"info","@message":"i"}` + "\nplain\n" + `{"@level":"error","@message":"e"}` + "\n"},
			want: []map[string]any{{"@level": "error", "@message": "e"}}},
		{name: "long line", in: []string{`{"@level":"error","@message":"`, long, `"}` + "\nnext\n"},
			want: []map[string]any{{"@level": "debug", "@message": `{"@level":"error","@message":"` + long[:maxLine-30],
				"truncated_bytes": float64(len(long) + 32 - maxLine)}, {"@level": "debug", "@message": "next"}}},
		{name: "not hclog JSON", in: []string{`{"level":"info"}` + "\n" + `{"@level":"off","@message":"o"}` + "\n{\n"},
			want: []map[string]any{{"@level": "debug", "@message": `{"level":"info"}`},
				{"@level": "debug", "@message": `{"@level":"off","@message":"o"}`}, {"@level": "debug", "@message": "{"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := &testutil.SyncBuffer{}
			log := hclog.New(&hclog.LoggerOptions{Name: "core", Level: hclog.Trace, Output: out, JSONFormat: true})
			def := tc.def
			if def == hclog.NoLevel {
				def = hclog.Debug
			}
			w := newPluginOutput(log, def, tc.min)
			w.self = []string{"zoe-plugin-auth-x", "auth-x", "x"}
			w.now = func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }
			for _, s := range tc.in {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			var got []map[string]any
			for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
				if line == "" {
					continue
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				delete(m, "@timestamp")
				if m["@module"] == "core" {
					delete(m, "@module")
				}
				got = append(got, m)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d lines, want %d:\n%s", len(got), len(tc.want), out)
			}
			for i := range got {
				if g, _ := json.Marshal(got[i]); string(g) != mustJSON(t, tc.want[i]) {
					t.Errorf("line %d:\n got %s\nwant %s", i, g, mustJSON(t, tc.want[i]))
				}
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
