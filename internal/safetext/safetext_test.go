package safetext

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestNameProblem(t *testing.T) {
	tests := []struct {
		name, in, want string // want: a part of the problem, "" for none
	}{
		{"plain", "my notebook", ""},
		{"accents and emoji", "café ☕ 数据", ""},
		{"empty", "", ""},
		{"escape", "a\x1b]0;pwned\x07", "U+001B at byte 1"},
		{"newline", "a\nb", "U+000A"},
		{"tab", "a\tb", "U+0009"},
		{"DEL", "a\x7f", "U+007F"},
		{"C1 CSI", "a\u009b2J", "U+009B"},
		{"right-to-left override", "gpj.\u202eexe", "U+202E"},
		{"line separator", "a\u2028b", "U+2028"},
		{"paragraph separator", "a\u2029b", "U+2029"},
		{"zero width space", "a\u200bb", "U+200B"},
		{"tag character", "a\U000E0041", "U+E0041"},
		{"invalid UTF-8", "ab\xffc", "byte 2 is not"},
		{"truncated UTF-8", "ab\xe2\x82", "valid UTF-8"},
		{"replacement character", "a\ufffd", "U+FFFD"},
		{"Hangul choseong filler", "\u115f", "U+115F"},
		{"Hangul jungseong filler", "a\u1160", "U+1160"},
		{"Hangul filler", "\u3164", "U+3164"},
		{"halfwidth Hangul filler", "\uffa0", "U+FFA0"},
		{"combining grapheme joiner", "a\u034fb", "U+034F"},
		{"spaces only", "   ", "blank"},
		{"inner spaces", " a b ", ""},
		{"emoji with a variation selector", "\u2764\ufe0f", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NameProblem(tt.in)
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("NameProblem(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	tests := []struct {
		in, all, lines string
	}{
		{"plain text", "plain text", "plain text"},
		{"\x1b]0;pwned\x07\x1b[2J", `\x1b]0;pwned\x07\x1b[2J`, `\x1b]0;pwned\x07\x1b[2J`},
		{"a\tb\nc\r\n", `a\x09b\x0ac\x0d\x0a`, "a\tb\nc\\x0d\n"},
		{"\x7f\u009b\u0085", `\x7f\x9b\x85`, `\x7f\x9b\x85`},
		{"x\u202ey\u2028z\u2029", `x\u202ey\u2028z\u2029`, `x\u202ey\u2028z\u2029`},
		{"\U000E0001", `\U000e0001`, `\U000e0001`},
		{"bad \xff\xfe utf-8", `bad \xff\xfe utf-8`, `bad \xff\xfe utf-8`},
		{"café ☕ \\x1b", "café ☕ \\x1b", "café ☕ \\x1b"},
	}
	for _, tt := range tests {
		if got := Escape(tt.in); got != tt.all {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.all)
		}
		if got := EscapeLines(tt.in); got != tt.lines {
			t.Errorf("EscapeLines(%q) = %q, want %q", tt.in, got, tt.lines)
		}
	}
}

func TestEscapeJSON(t *testing.T) {
	for _, s := range []string{"plain", "\x1b[2J\x7f\u009b", "a\u202eb\u2028\u2029", "\U000E0001 tag", "café"} {
		doc, err := json.Marshal(map[string]string{"name": s})
		if err != nil {
			t.Fatal(err)
		}
		got := EscapeJSON(append(doc, '\n'))
		for _, r := range string(got) {
			if Unsafe(r) && r != '\n' {
				t.Errorf("EscapeJSON(%s) = %s: %U left raw", doc, got, r)
			}
		}
		var back map[string]string
		if err := json.Unmarshal(got, &back); err != nil || back["name"] != s {
			t.Errorf("EscapeJSON(%s) = %s, decodes to %q (%v)", doc, got, back["name"], err)
		}
	}
	// A raw message is copied as it is by encoding/json, invalid UTF-8
	// included.
	doc, err := json.Marshal(map[string]json.RawMessage{"d": json.RawMessage("{\"a\":\"x\x9by\"}")})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(EscapeJSON(doc)); got != `{"d":{"a":"x\ufffdy"}}` {
		t.Errorf("EscapeJSON(%q) = %q", doc, got)
	}
}
