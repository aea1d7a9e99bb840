package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"
)

// A plugin logs with the standard library's log/slog; the core is told each
// line through the plugin's stderr, which go-plugin's host reads as hclog's
// JSON format: one object per line with "@level", "@message" and, optionally,
// "@timestamp" (in exactly timestampFormat, or the whole line is taken as
// plain text), every other key an attribute. So authors need not know go-hclog
// and the core's log keeps each line's level, message and attributes.

// timestampFormat is the only layout go-plugin's host parses.
const timestampFormat = "2006-01-02T15:04:05.000000Z07:00"

// levelOff is above every level a plugin logs at.
const levelOff = slog.Level(math.MaxInt32)

// parseLevel reads the level the core sets in sdk.LogLevelEnv, named as
// hclog names them; anything else is info, hclog's default.
func parseLevel(s string) slog.Level {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return slog.LevelDebug - 4
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	case "off":
		return levelOff
	}
	return slog.LevelInfo
}

// levelName is l as the host reads it.
func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

// lineWriter writes each line with one Write under a lock, so that lines of
// the plugin's logger and of go-plugin's own never interleave.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// handler is a slog.Handler writing the host's JSON lines. Groups are
// flattened into dotted keys ("req.id"), as slog's text handler does, because
// the core's log prints attributes as key=value.
type handler struct {
	out   io.Writer
	level slog.Leveler
	// attrs are the attributes of With, already encoded as `,"key":value`.
	attrs []byte
	// prefix is the groups of WithGroup, each followed by a dot.
	prefix string
}

func newHandler(out io.Writer, level slog.Leveler) *handler {
	return &handler{out: out, level: level}
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	h2 := *h
	h2.attrs = h.appendAttrs(append([]byte(nil), h.attrs...), h.prefix, as)
	return &h2
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.prefix + name + "."
	return &h2
}

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	buf := make([]byte, 0, 256)
	buf = append(buf, `{"@level":`...)
	buf = appendString(buf, levelName(r.Level))
	buf = append(buf, `,"@message":`...)
	buf = appendString(buf, r.Message)
	if !r.Time.IsZero() {
		buf = append(buf, `,"@timestamp":`...)
		buf = appendString(buf, r.Time.Format(timestampFormat))
	}
	buf = append(buf, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		buf = h.appendAttr(buf, h.prefix, a)
		return true
	})
	buf = append(buf, "}\n"...)
	_, err := h.out.Write(buf)
	return err
}

func (h *handler) appendAttrs(buf []byte, prefix string, as []slog.Attr) []byte {
	for _, a := range as {
		buf = h.appendAttr(buf, prefix, a)
	}
	return buf
}

func (h *handler) appendAttr(buf []byte, prefix string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return buf
	}
	if a.Value.Kind() == slog.KindGroup {
		as := a.Value.Group()
		if a.Key != "" {
			prefix += a.Key + "."
		}
		return h.appendAttrs(buf, prefix, as)
	}
	key := prefix + a.Key
	if reserved(key) {
		// The host would read it as the line's own field, and a non-string
		// "@message" makes it fail.
		key = "_" + key
	}
	buf = append(buf, ',')
	buf = appendString(buf, key)
	buf = append(buf, ':')
	return appendValue(buf, a.Value)
}

func reserved(key string) bool {
	switch key {
	case "@level", "@message", "@timestamp", "@module", "@caller":
		return true
	}
	return false
}

func appendValue(buf []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindString:
		return appendString(buf, v.String())
	case slog.KindInt64, slog.KindUint64, slog.KindBool:
		return append(buf, v.String()...)
	case slog.KindFloat64:
		f := v.Float64()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return appendString(buf, v.String())
		}
		return appendJSON(buf, f)
	case slog.KindDuration:
		return appendString(buf, v.Duration().String())
	case slog.KindTime:
		return appendString(buf, v.Time().Format(time.RFC3339Nano))
	}
	return appendAny(buf, v.Any())
}

func appendAny(buf []byte, x any) (out []byte) {
	defer func() {
		// E.g. a nil *T whose Error method reads the T: the value is lost,
		// not the line or the plugin.
		if r := recover(); r != nil {
			out = appendString(buf, fmt.Sprintf("!PANIC: %v", r))
		}
	}()
	switch x := x.(type) {
	case json.Marshaler:
		return appendJSON(buf, x)
	case error:
		return appendString(buf, x.Error())
	case fmt.Stringer:
		return appendString(buf, x.String())
	}
	return appendJSON(buf, x)
}

// appendJSON appends x as JSON, or as its %+v text if it has none: a line is
// never lost to a value that cannot be encoded.
func appendJSON(buf []byte, x any) []byte {
	b, err := json.Marshal(x)
	if err != nil {
		return appendString(buf, fmt.Sprintf("%+v", x))
	}
	return append(buf, b...)
}

func appendString(buf []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always encodes
	return append(buf, b...)
}
