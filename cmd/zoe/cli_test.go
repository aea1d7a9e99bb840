package main

// In-process unit tests of the client commands' helpers.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/safetext"
)

func TestSize(t *testing.T) {
	cases := map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 4 << 30: "4 GiB",
		64 << 30: "64 GiB", 2<<40 + 1<<39: "2.5 TiB", 1<<20 + 1: "1 MiB",
	}
	for in, want := range cases {
		if got := size(in); got != want {
			t.Errorf("size(%d) = %q, want %q", in, got, want)
		}
	}
	if limitSize(0) != "unlimited" || limitCores(0) != "unlimited" || limitCount(0) != "unlimited" || limitSeconds(0) != "unlimited" {
		t.Error("0 limits do not print as unlimited")
	}
	if got := limitSeconds(8 * 3600); got != "8h" {
		t.Errorf("limitSeconds(8h) = %q", got)
	}
	if got := limitSeconds(5400); got != "1h30m" {
		t.Errorf("limitSeconds(90m) = %q", got)
	}
	if got := cores(0.5); got != "0.5" {
		t.Errorf("cores(0.5) = %q", got)
	}
}

func TestParseLimits(t *testing.T) {
	sizes := map[string]int64{"4GiB": 4 << 30, "0": 0, "unlimited": 0, "1.5 GB": 1_500_000_000, "512MiB": 512 << 20}
	for in, want := range sizes {
		if got, err := parseLimitSize(in); err != nil || got != want {
			t.Errorf("parseLimitSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"4 furlongs", "-1", "1.5B"} {
		if _, err := parseLimitSize(bad); err == nil {
			t.Errorf("parseLimitSize(%q) accepted", bad)
		}
	}
	durations := map[string]int64{"8h": 28800, "90m": 5400, "2d": 172800, "0": 0, "unlimited": 0, "1h0m30s": 3630}
	for in, want := range durations {
		if got, err := parseLimitDuration(in); err != nil || got != want {
			t.Errorf("parseLimitDuration(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"8 hours", "-1h", "1.5s", "d"} {
		if _, err := parseLimitDuration(bad); err == nil {
			t.Errorf("parseLimitDuration(%q) accepted", bad)
		}
	}
}

func TestPickService(t *testing.T) {
	ex := &client.Execution{ID: 4, Services: []client.Service{
		{ID: 10, Name: "master0", Group: "master"},
		{ID: 11, Name: "worker0", Group: "worker"},
		{ID: 12, Name: "worker1", Group: "worker"},
	}}
	cases := []struct{ name, want, err string }{
		{name: "worker1", want: "worker1"},
		{name: "master", want: "master0"},
		{name: "12", want: "worker1"},
		{name: "", err: "execution 4 has several services: name one of master0, worker0, worker1"},
		{name: "worker", err: "execution 4 has 2 instances of worker: name one of master0, worker0, worker1"},
		{name: "nope", err: `execution 4 has no service "nope"; its services are master0, worker0, worker1`},
	}
	for _, c := range cases {
		s, err := pickService(ex, c.name)
		switch {
		case c.err != "":
			if err == nil || err.Error() != c.err {
				t.Errorf("pickService(%q): %v, want %q", c.name, err, c.err)
			}
		case err != nil || s.Name != c.want:
			t.Errorf("pickService(%q) = %v, %v; want %s", c.name, s, err, c.want)
		}
	}
	one := &client.Execution{ID: 5, Services: []client.Service{{ID: 1, Name: "nb0"}}}
	if s, err := pickService(one, ""); err != nil || s.Name != "nb0" {
		t.Errorf("the only service: %v %v", s, err)
	}
	if _, err := pickService(&client.Execution{ID: 6, Status: "queued"}, ""); err == nil || !strings.Contains(err.Error(), "no services yet") {
		t.Errorf("no services: %v", err)
	}
}

func TestPosition(t *testing.T) {
	data := []byte("{\n  \"a\": 1,\n  oops\n}")
	var v any
	var se *json.SyntaxError
	if err := json.Unmarshal(data, &v); !errors.As(err, &se) {
		t.Fatalf("Unmarshal: %v", err)
	}
	line, col := position(data, se.Offset)
	if line != 3 || col != 3 {
		t.Errorf("position = %d:%d, want 3:3", line, col)
	}
}

func TestReadDescription(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cmd := &cobra.Command{}
	good := write("good.json", `{"name":"x"}`)
	if d, err := readDescription(cmd, good); err != nil || string(d) != `{"name":"x"}` {
		t.Errorf("good file: %s %v", d, err)
	}
	bad := write("bad.json", "{\n  \"name\": \"x\",\n}")
	if _, err := readDescription(cmd, bad); err == nil || !strings.HasPrefix(err.Error(), bad+":3:1: not valid JSON") {
		t.Errorf("malformed file: %v", err)
	}
	arr := write("arr.json", `[1]`)
	if _, err := readDescription(cmd, arr); err == nil || !strings.Contains(err.Error(), "a ZApp description is a JSON object") {
		t.Errorf("array: %v", err)
	}
	if _, err := readDescription(cmd, filepath.Join(dir, "none.json")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	cmd.SetIn(strings.NewReader(`{"name":"stdin"}`))
	if d, err := readDescription(cmd, "-"); err != nil || !strings.Contains(string(d), "stdin") {
		t.Errorf("standard input: %s %v", d, err)
	}
}

func TestParseParams(t *testing.T) {
	cmd := &cobra.Command{Use: "start"}
	got, err := parseParams(cmd, []string{"A=1", "B=x=y", "C="})
	if err != nil || len(got) != 3 || got["A"] != "1" || got["B"] != "x=y" || got["C"] != "" {
		t.Errorf("parseParams: %v %v", got, err)
	}
	for _, bad := range [][]string{{"A"}, {"=1"}, {"A=1", "A=2"}} {
		_, err := parseParams(cmd, bad)
		var u usageError
		if !errors.As(err, &u) {
			t.Errorf("parseParams(%q): %v, want a usage error", bad, err)
		}
	}
}

func TestParseResources(t *testing.T) {
	cmd := &cobra.Command{Use: "start"}
	got, err := parseResources(cmd, []string{"worker=2GiB", "master=512MiB"}, []string{"worker=1.5", "notebook=2"})
	if err != nil {
		t.Fatal(err)
	}
	mem := func(n int64) *int64 { return &n }
	cores := func(f float64) *float64 { return &f }
	want := map[string]client.ServiceResources{
		"worker": {Memory: mem(2 << 30), Cores: cores(1.5)}, "master": {Memory: mem(512 << 20)}, "notebook": {Cores: cores(2)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseResources: %v, want %v", got, want)
	}
	if got, err := parseResources(cmd, nil, nil); got != nil || err != nil {
		t.Errorf("no flags: %v %v, want nothing", got, err)
	}
	for _, bad := range []struct{ memory, cores []string }{
		{[]string{"worker"}, nil}, {[]string{"=2GiB"}, nil}, {[]string{"worker=2XB"}, nil}, {[]string{"worker=1.5B"}, nil},
		{[]string{"worker=1GiB", "worker=2GiB"}, nil},
		{nil, []string{"worker"}}, {nil, []string{"worker=many"}}, {nil, []string{"worker=Inf"}}, {nil, []string{"worker=NaN"}},
		{nil, []string{"worker=1", "worker=2"}},
	} {
		_, err := parseResources(cmd, bad.memory, bad.cores)
		var u usageError
		if !errors.As(err, &u) {
			t.Errorf("parseResources(%q, %q): %v, want a usage error", bad.memory, bad.cores, err)
		}
	}
}

// TestCredentialPrecedence checks flags > environment > stored file, and
// that a stored token goes only to the server it came from.
func TestCredentialPrecedence(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if u, p, ok := r.BasicAuth(); ok {
			auth = "basic " + u + ":" + p
		}
		seen = append(seen, auth)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"username":"x","role":"user","enabled":true,"quota":"user"}`))
	}))
	defer srv.Close()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	if _, err := saveCredentials(&credentials{Addr: srv.URL, Username: "s", Token: "stored"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		flags func(c *cli)
		env   map[string]string
		want  string
		kind  string
	}{
		{name: "stored", want: "Bearer stored", kind: "stored"},
		{name: "ZOE_USER", env: map[string]string{"ZOE_USER": "eve", "ZOE_PASSWORD": "pw"}, want: "basic eve:pw", kind: "ZOE_USER"},
		{name: "ZOE_TOKEN beats ZOE_USER", env: map[string]string{"ZOE_TOKEN": "env", "ZOE_USER": "eve", "ZOE_PASSWORD": "pw"}, want: "Bearer env", kind: "ZOE_TOKEN"},
		{name: "--user beats ZOE_TOKEN", flags: func(c *cli) { c.user = "flag" }, env: map[string]string{"ZOE_TOKEN": "env", "ZOE_PASSWORD": "pw"}, want: "basic flag:pw", kind: "--user"},
		{name: "--token beats all", flags: func(c *cli) { c.token, c.user = "flag", "u" }, env: map[string]string{"ZOE_TOKEN": "env", "ZOE_PASSWORD": "pw"}, want: "Bearer flag", kind: "--token"},
		{name: "another address gets no stored token", flags: func(c *cli) { c.addr = strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) }, want: "", kind: ""},
		{name: "ZOE_ADDR too", env: map[string]string{"ZOE_ADDR": strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)}, want: "", kind: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI()
			c.getenv = func(k string) string { return tc.env[k] }
			if tc.flags != nil {
				tc.flags(c)
			}
			cmd := &cobra.Command{}
			cmd.SetIn(&bytes.Buffer{})
			var stderr bytes.Buffer
			cmd.SetErr(&stderr)
			cl, err := c.client(cmd)
			if err != nil {
				t.Fatal(err)
			}
			// Only --token warns that the token is on a command line.
			if warned := strings.Contains(stderr.String(), "--token shows the token to every user"); warned != (tc.kind == "--token") {
				t.Errorf("stderr %q; want the --token warning: %v", stderr.String(), tc.kind == "--token")
			}
			seen = nil
			if _, err := cl.Me(t.Context()); err != nil {
				t.Fatal(err)
			}
			if len(seen) != 1 || seen[0] != tc.want || c.source.kind != tc.kind {
				t.Errorf("sent %q from %q, want %q from %q", seen, c.source.kind, tc.want, tc.kind)
			}
		})
	}
	t.Run("ZOE_USER without a password", func(t *testing.T) {
		c := newCLI()
		c.getenv = func(k string) string { return map[string]string{"ZOE_USER": "eve"}[k] }
		cmd := &cobra.Command{}
		cmd.SetIn(&bytes.Buffer{})
		if _, err := c.client(cmd); err == nil || !strings.Contains(err.Error(), "set ZOE_PASSWORD") {
			t.Errorf("client: %v", err)
		}
	})
}

func TestCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	if c, _, err := loadCredentials(); c != nil || err != nil {
		t.Fatalf("no file: %v %v", c, err)
	}
	exp := time.Now().Add(-time.Minute)
	path, err := saveCredentials(&credentials{Addr: "http://a", Username: "u", Token: "t", TokenID: 3, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "zoe", "credentials.json") {
		t.Errorf("path %s", path)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %04o", p, fi.Mode().Perm(), err, want)
		}
	}
	c, _, err := loadCredentials()
	if err != nil || c.Token != "t" || c.TokenID != 3 || !c.expired() {
		t.Fatalf("load: %+v %v", c, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadCredentials(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a file others may read: %v", err)
	}
	if ok, err := removeCredentials(); !ok || err != nil {
		t.Errorf("remove: %v %v", ok, err)
	}
	if ok, err := removeCredentials(); ok || err != nil {
		t.Errorf("remove again: %v %v", ok, err)
	}
}

// hostile is what a container or a user could send to reach a terminal:
// a new window title, a cleared screen, a carriage return over the line,
// a C1 CSI, a right-to-left override, a line separator, invalid UTF-8.
const hostile = "a\x1b]0;pwned\x07\x1b[2J\rfake\u009b31m\u202eb\u2028c\x7f\xff"

func TestTablesAndNamesAreEscaped(t *testing.T) {
	var b bytes.Buffer
	tb := newTable(&b, "ID", "NAME")
	tb.row(1, hostile)
	tb.row(2, "données\tx\ny")
	if err := tb.flush(); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, r := range out {
		if r != '\n' && safetext.Unsafe(r) || r == utf8.RuneError {
			t.Errorf("the table prints %U raw:\n%q", r, out)
		}
	}
	for _, want := range []string{`a\x1b]0;pwned\x07\x1b[2J fake\x9b31m\u202eb\u2028c\x7f\xff`, "données x y"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table does not show %q:\n%s", want, out)
		}
	}
	if got := errorLine(errors.New("no execution \"x\x1b[2J\"\nsecond")); got != `no execution "x\x1b[2J"; second` {
		t.Errorf("errorLine = %q", got)
	}
	keys, _ := viewLines(&client.Execution{ID: 1, Name: hostile, Status: "running"}, true)
	var view bytes.Buffer
	v := &liveView{w: &view, seen: map[string]string{}}
	v.show(&client.Execution{ID: 1, Name: hostile, Status: "running", ErrorMessage: "x\x1b[2J"})
	if len(keys) != 1 || strings.ContainsAny(view.String(), "\x1b\r\u009b\u202e") {
		t.Errorf("live view: %q", view.String())
	}
}

func TestJSONOutputIsEscaped(t *testing.T) {
	for _, write := range []func(io.Writer, any) error{writeJSON, writeJSONLine} {
		var b bytes.Buffer
		if err := write(&b, map[string]string{"name": hostile, "cmd": "a && b < c"}); err != nil {
			t.Fatal(err)
		}
		for _, r := range b.String() {
			if r != '\n' && safetext.Unsafe(r) {
				t.Errorf("JSON output prints %U raw: %s", r, b.String())
			}
		}
		var back map[string]string
		if err := json.Unmarshal(b.Bytes(), &back); err != nil || back["name"] != strings.ToValidUTF8(hostile, "\ufffd") || back["cmd"] != "a && b < c" {
			t.Errorf("JSON output %s decodes to %q (%v)", b.String(), back, err)
		}
	}
}

func TestLogsEscapedOnATerminal(t *testing.T) {
	long := strings.Repeat("é", 40000) // 80,000 bytes: the buffer fills mid-character
	for _, tc := range []struct{ name, in string }{
		{"hostile", hostile + "\nnext\tline\n"},
		{"no final newline", "x\x1b[2J"},
		{"long line", long + "\x1b\n" + long},
		{"empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := copyLog(&b, strings.NewReader(tc.in), "main0", false, true); err != nil {
				t.Fatal(err)
			}
			if want := safetext.EscapeLines(tc.in); b.String() != want {
				t.Errorf("escaped %d bytes into %d, want %d:\n%.200q", len(tc.in), b.Len(), len(want), b.String())
			}
			b.Reset()
			if err := copyLog(&b, strings.NewReader(tc.in), "main0", false, false); err != nil || b.String() != tc.in {
				t.Errorf("raw: %q", b.String())
			}
		})
	}
}

// Credentials sent over plain HTTP to another machine are readable on the
// network: the CLI says so, except for this machine and https.
func TestWarnPlainHTTP(t *testing.T) {
	for _, tc := range []struct {
		addr string
		warn bool
	}{
		{"zoe.example.org:8080", true},
		{"http://10.1.2.3:8080", true},
		{"http://[2001:db8::1]:8080/zoe", true},
		{"https://zoe.example.org", false},
		{"127.0.0.1:8080", false},
		{"http://127.7.0.1:8080", false},
		{"localhost:8080", false},
		{"http://[::1]:8080", false},
	} {
		cmd := &cobra.Command{}
		var stderr bytes.Buffer
		cmd.SetErr(&stderr)
		warnPlainHTTP(cmd, tc.addr)
		if got := strings.Contains(stderr.String(), "over plain HTTP"); got != tc.warn {
			t.Errorf("%s: warned %v (%q), want %v", tc.addr, got, stderr.String(), tc.warn)
		}
	}
}
