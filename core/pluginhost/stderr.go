package pluginhost

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
)

// A plugin may be a third party's, and its output is read by the core: go-plugin
// parses stderr lines itself with unchecked type assertions (a line such as
// {"@message":1} panics the core) and would pass terminal escape sequences
// through to the core's log. So go-plugin's parsing is turned off (its
// logger for the plugin's stderr is off, see goPluginLogger) and pluginOutput
// reads the plugin's output instead, trusting nothing in it.

// maxLine bounds a line of a plugin's output, as go-plugin's own buffer
// does; the rest of a longer line is dropped, and counted.
const maxLine = 64 << 10

// maxModule bounds the name a line's "@module" adds to its logger's.
const maxModule = 64

// goPluginLogger is the logger go-plugin gets: its own messages reach the
// core's log as they are, but the one it would write the plugin's stderr
// lines to (named after the binary) is off, which makes it skip them.
type goPluginLogger struct {
	hclog.Logger
	binary string // the base name of the plugin's binary
	// ending is set when the host ends the process on purpose (a stop, a
	// refused configuration, a lost plugin replaced): its exit, even by
	// SIGKILL, is then expected, and logged at debug.
	ending *atomic.Bool
}

// exitMessage is go-plugin's line when the process ends, at error when
// it did not exit with 0 (killed, for one).
const exitMessage = "plugin process exited"

func (l goPluginLogger) expected(msg string) bool {
	return msg == exitMessage && l.ending != nil && l.ending.Load()
}

func (l goPluginLogger) Error(msg string, args ...any) {
	if l.expected(msg) {
		l.Logger.Debug(msg, args...)
		return
	}
	l.Logger.Error(msg, args...)
}

func (l goPluginLogger) Info(msg string, args ...any) {
	if l.expected(msg) {
		l.Logger.Debug(msg, args...)
		return
	}
	l.Logger.Info(msg, args...)
}

func (l goPluginLogger) Named(name string) hclog.Logger {
	if name == l.binary {
		return hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard})
	}
	return l.Logger.Named(name)
}

// pluginOutput is an io.Writer that turns a plugin's output into lines of
// the core's log. A line in hclog's JSON format ("@level", "@message",
// "@timestamp", "@module", other keys attributes; any of them of any type)
// keeps its level and attributes; any other line is logged at def, or
// inferred from a "[WARN]"-like prefix, or at error after a "panic:" line.
// Lines below min are dropped: the plugin was told its level, and may not
// heed it. Messages, keys and values are escaped so that nothing the
// plugin writes reaches a terminal raw.
type pluginOutput struct {
	log hclog.Logger
	def hclog.Level
	min hclog.Level
	// self are the plugin's names (its label, kind-label, binary): a line's
	// "@module" that starts with one does not name the plugin twice.
	self []string
	// now is the time a line is read (time.Now; tests set it).
	now func() time.Time

	mu      sync.Mutex
	buf     []byte
	dropped int // bytes of the current line beyond maxLine
	inPanic bool
}

func newPluginOutput(log hclog.Logger, def, min hclog.Level) *pluginOutput {
	return &pluginOutput{log: log, def: def, min: min, now: time.Now}
}

// Write takes any part of the output; a line is logged once complete.
func (w *pluginOutput) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		room := maxLine - len(w.buf)
		if len(part) > room {
			w.dropped += len(part) - room
			part = part[:room]
		}
		w.buf = append(w.buf, part...)
		if i < 0 {
			break
		}
		w.line(bytes.TrimSuffix(w.buf, []byte("\r")))
		w.buf, w.dropped = w.buf[:0], 0
		p = p[i+1:]
	}
	return n, nil
}

func (w *pluginOutput) line(line []byte) {
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	if w.dropped > 0 {
		w.emit(w.log, w.def, clean(line), "truncated_bytes", w.dropped)
		return
	}
	if line[0] == '{' && w.jsonLine(line) {
		return
	}
	level := w.def
	switch s := string(line); {
	case strings.HasPrefix(s, "[TRACE]"):
		level = hclog.Trace
	case strings.HasPrefix(s, "[DEBUG]"):
		level = hclog.Debug
	case strings.HasPrefix(s, "[INFO]"):
		level = hclog.Info
	case strings.HasPrefix(s, "[WARN]"):
		level = hclog.Warn
	case strings.HasPrefix(s, "[ERROR]"):
		level = hclog.Error
	case strings.HasPrefix(s, "panic: ") || strings.HasPrefix(s, "fatal error: "):
		// A Go crash: its stack trace follows, untagged.
		w.inPanic = true
		level = hclog.Error
	case w.inPanic:
		level = hclog.Error
	}
	w.emit(w.log, level, clean(line))
}

// jsonLine logs a line in hclog's JSON format; false if it is not one (not
// a JSON object, or no known "@level").
func (w *pluginOutput) jsonLine(line []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(line, &m) != nil {
		return false
	}
	s, _ := jsonString(m["@level"])
	level := hclog.LevelFromString(s)
	if level == hclog.NoLevel || level == hclog.Off {
		return false
	}
	delete(m, "@level")
	log := w.log
	if mod, ok := jsonString(m["@module"]); ok {
		delete(m, "@module")
		if mod = w.ownModule(mod); mod != "" {
			log = log.Named(truncate(clean([]byte(mod)), maxModule))
		}
	}
	var msg string
	if v, ok := m["@message"]; ok {
		delete(m, "@message")
		msg = text(v)
	}
	var args []any
	if v, ok := m["@timestamp"]; ok {
		delete(m, "@timestamp")
		if t, ok := w.lateTime(v); ok {
			args = append(args, "plugin_time", t)
		}
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}) {
		key := clean([]byte(k))
		if key == "" || key[0] == '@' {
			// Not to be taken for the core's own fields.
			key = "_" + key
		}
		args = append(args, key, value(m[k]))
	}
	w.emit(log, level, msg, args...)
	return true
}

// maxLag is how long a line may take from the plugin to the core's log
// before the time the plugin gave it is worth a field of its own.
const maxLag = time.Second

// lateTime is a line's "@timestamp" as a field, when it says something:
// the core's line has the time it was read, which is the plugin's to
// within the pipe's delay, so a second time stamp is noise. Only a
// readable time that is further than maxLag from now (output the plugin
// held back) is kept; a zero or unreadable one tells nothing and goes.
func (w *pluginOutput) lateTime(v json.RawMessage) (string, bool) {
	s, ok := jsonString(v)
	if !ok {
		return "", false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return "", false
	}
	if lag := w.now().Sub(t); lag <= maxLag && lag >= -maxLag {
		return "", false
	}
	return t.UTC().Format(hclog.TimeFormat), true
}

// ownModule is a line's "@module" without the plugin's own name, which
// its logger has already.
func (w *pluginOutput) ownModule(mod string) string {
	for _, name := range w.self {
		if mod == name {
			return ""
		}
		if rest, ok := strings.CutPrefix(mod, name+"."); ok {
			return rest
		}
	}
	return mod
}

func (w *pluginOutput) emit(log hclog.Logger, level hclog.Level, msg string, args ...any) {
	if level < w.min {
		return
	}
	log.Log(level, msg, args...)
}

// jsonString is v's string, if v is a JSON string.
func jsonString(v json.RawMessage) (string, bool) {
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// value is a JSON value as an attribute: a number or a boolean as itself,
// anything else as text.
func value(v json.RawMessage) any {
	switch s := string(v); {
	case s == "true" || s == "false":
		return s == "true"
	case len(s) > 0 && (s[0] == '-' || s[0] >= '0' && s[0] <= '9'):
		// The decoder checked it is a number.
		return json.Number(s)
	}
	return text(v)
}

// text is a JSON value as text, escaped: a string's content, anything
// else's JSON.
func text(v json.RawMessage) string {
	if s, ok := jsonString(v); ok {
		return clean([]byte(s))
	}
	var b bytes.Buffer
	if json.Compact(&b, v) == nil {
		v = b.Bytes()
	}
	return clean(v)
}

// clean escapes what is not printable (control characters, terminal escape
// sequences, invalid UTF-8) the way Go quotes strings; the rest stays as it
// is.
func clean(s []byte) string {
	if printable(s) {
		return string(s)
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRune(s)
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[0])>>4, 16))
			b.WriteString(strconv.FormatUint(uint64(s[0])&15, 16))
		case r == ' ' || unicode.IsPrint(r):
			b.Write(s[:n])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		s = s[n:]
	}
	return b.String()
}

func printable(s []byte) bool {
	for _, c := range s {
		if c < ' ' || c >= 0x7f {
			return false // maybe fine, checked rune by rune
		}
	}
	return true
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
