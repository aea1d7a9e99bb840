package shop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// parseJSON decodes one JSON document into generic values (numbers kept as
// json.Number), so that every type mistake can be reported with its path
// instead of the first one encoding/json meets. Syntax errors carry the
// line and column.
func parseJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, syntaxError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		off := dec.InputOffset()
		return nil, fmt.Errorf("%s: unexpected data after the JSON value", position(data, off))
	}
	return v, nil
}

func syntaxError(data []byte, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		// Offset is just past the offending byte.
		return fmt.Errorf("%s: %w", position(data, max(se.Offset-1, 0)), err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%s: unexpected end of file", position(data, int64(len(data))))
	}
	return err
}

// position renders a byte offset as "line L, column C" (both from 1).
func position(data []byte, off int64) string {
	off = min(off, int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return fmt.Sprintf("line %d, column %d", line, col)
}

// jsonType names the JSON type of a generic value for messages.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// walker reports the type mistakes of one decoded file into ps.
type walker struct {
	file string
	ps   *problems
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// object checks that v is an object holding every key of required and no
// key outside required and optional.
func (w walker) object(path string, v any, required, optional []string) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		w.ps.errorf(w.file, path, "must be an object, got %s", jsonType(v))
		return nil, false
	}
	good := true
	for _, k := range required {
		if _, ok := m[k]; !ok {
			w.ps.errorf(w.file, path, "missing required key %q", k)
			good = false
		}
	}
	var unknown []string
	for k := range m {
		if !slices.Contains(required, k) && !slices.Contains(optional, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	known := slices.Sorted(slices.Values(append(slices.Clone(required), optional...)))
	for _, k := range unknown {
		w.ps.errorf(w.file, join(path, k), "unknown key; the known keys are %s", strings.Join(known, ", "))
		good = false
	}
	return m, good
}

// str reads a non-empty string at m[key]; absent keys are left to object.
func (w walker) str(path string, m map[string]any, key string) (string, bool) {
	v, ok := m[key]
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		w.ps.errorf(w.file, join(path, key), "must be a string, got %s", jsonType(v))
		return "", false
	}
	if s == "" {
		w.ps.errorf(w.file, join(path, key), "must not be empty")
		return "", false
	}
	return s, true
}

// anyStr reads a string at m[key] that may be empty.
func (w walker) anyStr(path string, m map[string]any, key string) (string, bool) {
	v, ok := m[key]
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		w.ps.errorf(w.file, join(path, key), "must be a string, got %s", jsonType(v))
	}
	return s, ok
}

// strList reads a list of non-empty strings at m[key]; present reports
// whether the key is there at all.
func (w walker) strList(path string, m map[string]any, key string) (list []string, present, ok bool) {
	v, present := m[key]
	if !present {
		return nil, false, true
	}
	arr, isArr := v.([]any)
	if !isArr {
		w.ps.errorf(w.file, join(path, key), "must be an array of strings, got %s", jsonType(v))
		return nil, true, false
	}
	ok = true
	list = make([]string, 0, len(arr))
	for i, item := range arr {
		s, isStr := item.(string)
		switch {
		case !isStr:
			w.ps.errorf(w.file, index(join(path, key), i), "must be a string, got %s", jsonType(item))
			ok = false
		case s == "":
			w.ps.errorf(w.file, index(join(path, key), i), "must not be empty")
			ok = false
		default:
			list = append(list, s)
		}
	}
	return list, true, ok
}

// integer reads a JSON number holding an integer (2.0 is accepted, as the
// original's Python accepted it).
func (w walker) integer(path string, v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		w.ps.errorf(w.file, path, "must be an integer, got %s", jsonType(v))
		return 0, false
	}
	if i, err := n.Int64(); err == nil {
		return i, true
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		w.ps.errorf(w.file, path, "must be an integer, got %s", n)
		return 0, false
	}
	return int64(f), true
}
