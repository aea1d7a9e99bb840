package main

// Output helpers of the API commands: JSON documents, tables, sizes and
// times for people.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zoe-project/zoe/internal/safetext"
)

// table writes aligned columns: rows are tab-separated cells; Flush
// prints them.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(anySlice(header)...)
	}
	return t
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// row adds one row; cells are printed with %v, "" as "-", on one line,
// escaped (safe).
func (t *table) row(cells ...any) {
	for i, c := range cells {
		s := fmt.Sprint(c)
		if s == "" {
			s = "-"
		}
		s = safe(s)
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, s)
	}
	fmt.Fprintln(t.tw)
}

func (t *table) flush() error { return t.tw.Flush() }

// fields writes "Label:  value" lines, aligned; empty values are left out.
type fields struct{ t *table }

func newFields(w io.Writer) *fields { return &fields{t: newTable(w)} }

func (f *fields) add(label string, value any) {
	s := fmt.Sprint(value)
	if s == "" {
		return
	}
	f.t.row(label+":", s)
}

func (f *fields) flush() error { return f.t.flush() }

// size is bytes for people: "512 B", "4 GiB", "1.5 GiB".
func size(b int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(b), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", b)
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " " + units[i]
}

// limitSize is a quota's memory: 0 is unlimited.
func limitSize(b int64) string {
	if b == 0 {
		return "unlimited"
	}
	return size(b)
}

// cores prints a number of cores without useless decimals.
func cores(c float64) string { return strconv.FormatFloat(c, 'f', -1, 64) }

func limitCores(c float64) string {
	if c == 0 {
		return "unlimited"
	}
	return cores(c)
}

func limitCount(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.Itoa(n)
}

// limitSeconds is a run-time limit in seconds: 0 is unlimited.
func limitSeconds(s int64) string {
	if s == 0 {
		return "unlimited"
	}
	return duration(time.Duration(s) * time.Second)
}

// duration is d rounded for people: "8h", "1h30m", "45s".
func duration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		d = d.Round(time.Minute)
	case d >= time.Minute:
		d = d.Round(time.Second)
	default:
		d = d.Round(100 * time.Millisecond)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// timeLocal is a time in the local zone; "" for the zero time.
func timeLocal(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func timePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return timeLocal(*t)
}

// safe is text from the server (names, messages, reasons) for a
// terminal: on one line (tabs, newlines and carriage returns become
// spaces) and with the characters a terminal would act on escaped, so
// that a name cannot retitle the window, clear the screen or print fake
// lines (\x1b, \u202e: safetext.Escape).
func safe(s string) string {
	// Byte by byte: strings.Map would turn invalid UTF-8 into U+FFFD,
	// hiding it.
	b := []byte(s)
	for i, c := range b {
		if c == '\t' || c == '\n' || c == '\r' {
			b[i] = ' '
		}
	}
	return safetext.Escape(string(b))
}

// writeJSONLine prints v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error {
	return encodeJSON(w, v, "")
}

// encodeJSON prints v as JSON, indented with indent when not "". The
// characters a terminal would act on are \u escapes (encoding/json
// leaves DEL, C1 and format characters such as U+202E raw).
func encodeJSON(w io.Writer, v any, indent string) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(safetext.EscapeJSON(buf.Bytes()))
	return err
}
