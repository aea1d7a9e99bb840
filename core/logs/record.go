package logs

import (
	"bytes"
	"time"
)

// Record kinds besides the streams.
const (
	kindOpen  = "open"
	kindClose = "close"
)

// record is one decoded line of a log file.
type record struct {
	time    time.Time
	kind    string
	payload []byte
}

// appendRecord encodes one record at the end of b.
func appendRecord(b []byte, t time.Time, kind string, payload []byte) []byte {
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, kind...)
	b = append(b, ' ')
	for len(payload) > 0 {
		i := bytes.IndexAny(payload, "\\\n")
		if i < 0 {
			b = append(b, payload...)
			break
		}
		b = append(b, payload[:i]...)
		if payload[i] == '\n' {
			b = append(b, '\\', 'n')
		} else {
			b = append(b, '\\', '\\')
		}
		payload = payload[i+1:]
	}
	return append(b, '\n')
}

// parseHead decodes a record's time and kind; rest is the escaped payload.
// line has no newline.
func parseHead(line []byte) (t time.Time, kind string, rest []byte, ok bool) {
	i := bytes.IndexByte(line, ' ')
	if i < 0 {
		return t, "", nil, false
	}
	j := bytes.IndexByte(line[i+1:], ' ')
	if j < 0 {
		return t, "", nil, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(line[:i]))
	if err != nil {
		return t, "", nil, false
	}
	switch k := line[i+1 : i+1+j]; string(k) {
	case Stdout:
		kind = Stdout
	case Stderr:
		kind = Stderr
	case kindOpen:
		kind = kindOpen
	case kindClose:
		kind = kindClose
	default:
		return t, "", nil, false
	}
	return t, kind, line[i+2+j:], true
}

// isEntry tells whether a line of a file is an entry's record, without
// decoding it.
func isEntry(line []byte) bool {
	i := bytes.IndexByte(line, ' ')
	if i < 0 {
		return false
	}
	k := line[i+1:]
	if j := bytes.IndexByte(k, ' '); j >= 0 {
		k = k[:j]
	} else {
		return false
	}
	return string(k) == Stdout || string(k) == Stderr
}

// decode decodes one line of a file, without its newline. The payload is
// a new slice.
func decode(line []byte) (record, bool) {
	t, kind, rest, ok := parseHead(line)
	if !ok {
		return record{}, false
	}
	return record{time: t, kind: kind, payload: unescape(rest)}, true
}

func unescape(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\\')
		if i < 0 || i == len(b)-1 {
			// A lone backslash at the end is not written by appendRecord;
			// kept as it is.
			out = append(out, b...)
			break
		}
		out = append(out, b[:i]...)
		switch b[i+1] {
		case 'n':
			out = append(out, '\n')
		case '\\':
			out = append(out, '\\')
		default:
			out = append(out, b[i], b[i+1])
		}
		b = b[i+2:]
	}
	return out
}
