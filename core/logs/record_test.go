package logs

import (
	"bytes"
	"testing"
	"time"
)

// FuzzRecord: any line and time round-trip through one record, which is
// one line of the file.
func FuzzRecord(f *testing.F) {
	for _, s := range []string{"", "a", "\n", "\\", "\\n", "a\\", "\xff\x00\r\n", "x y z"} {
		f.Add([]byte(s), int64(1740830400123456789), true)
	}
	f.Fuzz(func(t *testing.T, line []byte, ns int64, stderr bool) {
		at := time.Unix(0, ns)
		kind := Stdout
		if stderr {
			kind = Stderr
		}
		b := appendRecord(nil, at, kind, line)
		if bytes.IndexByte(b, '\n') != len(b)-1 {
			t.Fatalf("record %q is not one line", b)
		}
		r, ok := decode(b[:len(b)-1])
		if !ok || !r.time.Equal(at) || r.kind != kind || !bytes.Equal(r.payload, line) {
			t.Fatalf("%q at %v: decoded %v %v %s %q", line, at, ok, r.time, r.kind, r.payload)
		}
	})
}
