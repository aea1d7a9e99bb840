package main

// Out-of-process tests: the real zoe binary and the real plugin binaries,
// built once in TestMain into one directory, so that the default plugin_dir
// (the directory of the zoe binary) finds the plugins.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/zoe-project/zoe/internal/testutil"
)

var binDir string

func TestMain(m *testing.M) {
	os.Exit(testutil.RunWithBinaries(m, "zoe-cmd-test-", true, &binDir)) // the CLI's tests run ZApps on backend-sim
}

func zoeBin() string { return filepath.Join(binDir, "zoe") }

// ---------------------------------------------------------------------------
// Fixtures

// baseConfig is a valid configuration without listen; relative paths
// resolve against the file's directory.
const baseConfig = `deployment_name = "itest"
data_dir        = "data"

auth "file" {
  users_file = "users.csv"
}

workspace "dir" {
  base_path = "ws"
}
`

// fixture is a directory holding a users file (users.csv, mode 0600) and,
// once written, a configuration file.
type fixture struct {
	dir      string
	password string // of the user "alice" in users.csv
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), password: "wonderland"}
	hash, err := bcrypt.GenerateFromPassword([]byte(f.password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "users.csv"), fmt.Appendf(nil, "alice,%s,admin\n", hash), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// write writes text as the configuration file zoe.hcl and returns its
// absolute path.
func (f *fixture) write(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(f.dir, "zoe.hcl")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// lineOf is the 1-based line of the first occurrence of marker in text.
func lineOf(t *testing.T, text, marker string) int {
	t.Helper()
	i := strings.Index(text, marker)
	if i < 0 {
		t.Fatalf("marker %q is not in the configuration", marker)
	}
	return strings.Count(text[:i], "\n") + 1
}

// squash collapses runs of white space, so that text the diagnostic writer
// wrapped at 100 columns still matches.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

type result struct {
	code           int
	stdout, stderr string
}

// runZoe runs the zoe binary to completion with stdin as its input.
func runZoe(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runZoeEnv(t, nil, stdin, args...)
}

// runZoeEnv is runZoe with exactly env as the environment (nil: this
// process's).
func runZoeEnv(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, zoeBin(), args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("zoe %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("zoe %s did not finish within the deadline", strings.Join(args, " "))
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// ---------------------------------------------------------------------------
// A running server

type server struct {
	cmd      *exec.Cmd
	addr     string
	password string // alice's, an admin
	output   *testutil.SyncBuffer
	done     chan struct{} // closed once the process was reaped
}

// The timeout only ends a hang: a password check (bcrypt, cost 12) took
// more than 5 s under the whole suite's load once.
var httpClient = &http.Client{Timeout: 2 * time.Minute}

// startServer writes a valid configuration listening on a free port, starts
// `zoe server -config FILE` and waits until the API answers.
func startServer(t *testing.T) *server {
	t.Helper()
	f := newFixture(t)
	config := f.write(t, fmt.Sprintf("listen = %q\n", anyPort)+baseConfig)
	return launchServer(t, anyPort, config, f.password)
}

// anyPort is the listen address of the tests' servers: the system picks
// the port as the server listens, and launchServer reads it from the
// server's "zoe is ready" line. A port found free before the server starts
// can be taken meanwhile by another test's process (it was, once).
const anyPort = "127.0.0.1:0"

var readyURL = regexp.MustCompile(`zoe is ready: url=https?://([^/ ]+)/`)

// launchServer starts `zoe server -config config` listening on addr and
// waits until the API answers; password is the admin alice's. With addr
// anyPort, the server's address is the one it reports.
func launchServer(t *testing.T, addr, config, password string) *server {
	t.Helper()
	s := &server{addr: addr, password: password, output: &testutil.SyncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(zoeBin(), "server", "-config", config)
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		if !s.exited() {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(15 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.done
			}
		}
		if t.Failed() {
			t.Logf("zoe server output:\n%s", s.output.String())
		}
	})
	waitFor(t, 2*time.Minute, "the API answers", func() (bool, string) {
		if s.exited() {
			t.Fatalf("zoe server exited (%v) before serving", s.cmd.ProcessState)
		}
		if strings.HasSuffix(s.addr, ":0") {
			m := readyURL.FindStringSubmatch(s.output.String())
			if m == nil {
				return false, "not ready yet"
			}
			s.addr = m[1]
		}
		code, err := getJSON(s.addr, "/api/v1/info", nil)
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusOK, "status " + strconv.Itoa(code)
	})
	return s
}

func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// awaitExit waits for the process to end and returns its exit code (-1
// when a signal ended it).
func (s *server) awaitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("zoe server still runs after %s", timeout)
		return 0
	}
}

// getJSON GETs path and decodes a JSON answer into v (if not nil),
// whatever the status code.
func getJSON(addr, path string, v any) (int, error) {
	return getJSONAs(addr, path, "", "", v)
}

// getJSONAs is getJSON with HTTP Basic credentials (none when user is "").
func getJSONAs(addr, path, user, password string, v any) (int, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, err
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		return resp.StatusCode, fmt.Errorf("Content-Type %q, want application/json", ct)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %v\n%s", path, err, body)
		}
	}
	return resp.StatusCode, nil
}

// The JSON of GET /api/v1/health, spelt out here so that the test pins the
// wire format.
type pluginStatus struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	State     string `json:"state"`
	Restarts  int    `json:"restarts"`
	LastError string `json:"last_error"`
	PID       int    `json:"pid"`
}

type health struct {
	Status  string         `json:"status"`
	Plugins []pluginStatus `json:"plugins"`
}

func (h health) plugin(kind, name string) (pluginStatus, bool) {
	for _, p := range h.Plugins {
		if p.Kind == kind && p.Name == name {
			return p, true
		}
	}
	return pluginStatus{}, false
}

func (s *server) health(t *testing.T) (int, health) {
	t.Helper()
	var h health
	// The plugins' details are for admins; the fixture's alice is one.
	code, err := getJSONAs(s.addr, "/api/v1/health", "alice", s.password, &h)
	if err != nil {
		t.Fatalf("GET /api/v1/health: %v", err)
	}
	return code, h
}

// waitFor is testutil.WaitFor.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	testutil.WaitFor(t, timeout, what, cond)
}

// ---------------------------------------------------------------------------
// Processes, from /proc

// procStat returns the state letter and parent pid of a process.
func procStat(pid int) (state string, ppid int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, err
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 {
		return "", 0, fmt.Errorf("malformed /proc/%d/stat: %q", pid, s)
	}
	ppid, err = strconv.Atoi(fields[1])
	return fields[0], ppid, err
}

// gone tells whether a process no longer runs: no such process, or a
// zombie waiting for a reaper (its parent died and init may not reap).
func gone(t *testing.T, pid int) (bool, string) {
	t.Helper()
	state, _, err := procStat(pid)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH):
		return true, "no such process"
	case err != nil:
		t.Fatalf("process %d: %v", pid, err)
	}
	return state == "Z" || state == "X", fmt.Sprintf("process %d is in state %s", pid, state)
}

// checkPluginProcess checks that pid is a live plugin process run from
// binary by the zoe process parent.
func checkPluginProcess(t *testing.T, pid, parent int, binary string) {
	t.Helper()
	state, ppid, err := procStat(pid)
	if err != nil {
		t.Fatalf("plugin process %d: %v", pid, err)
	}
	if state == "Z" || state == "X" {
		t.Errorf("plugin process %d is dead (state %s)", pid, state)
	}
	if ppid != parent {
		t.Errorf("plugin process %d has parent %d, want the zoe process %d", pid, ppid, parent)
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		t.Fatalf("plugin process %d: %v", pid, err)
	}
	if want := filepath.Join(binDir, binary); exe != want {
		t.Errorf("plugin process %d runs %s, want %s", pid, exe, want)
	}
}

// readyPlugins checks that health lists exactly the two plugins, ready,
// and returns them.
func readyPlugins(t *testing.T, s *server) (authP, wsP pluginStatus) {
	t.Helper()
	code, h := s.health(t)
	if code != http.StatusOK || h.Status != "ok" {
		t.Fatalf("health: %d %q, want 200 \"ok\": %+v", code, h.Status, h)
	}
	if len(h.Plugins) != 2 {
		t.Fatalf("health lists %d plugins, want 2: %+v", len(h.Plugins), h.Plugins)
	}
	var ok bool
	if authP, ok = h.plugin("auth", "file"); !ok {
		t.Fatalf("health lists no auth plugin \"file\": %+v", h.Plugins)
	}
	if wsP, ok = h.plugin("workspace", "dir"); !ok {
		t.Fatalf("health lists no workspace plugin \"dir\": %+v", h.Plugins)
	}
	for _, p := range []pluginStatus{authP, wsP} {
		if p.State != "ready" || p.Version == "" || p.PID <= 0 || p.Restarts != 0 || p.LastError != "" {
			t.Errorf("plugin %s %s: %+v, want ready with a version and a pid, no restarts, no error", p.Kind, p.Name, p)
		}
	}
	return authP, wsP
}

// killAndAwaitRestart SIGKILLs the auth plugin and waits until the core
// started it again; it returns the new status.
func killAndAwaitRestart(t *testing.T, s *server, old pluginStatus) pluginStatus {
	t.Helper()
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the auth plugin %d: %v", old.PID, err)
	}
	var now pluginStatus
	seen := map[string]bool{}
	waitFor(t, 2*time.Minute, "the auth plugin is restarted", func() (bool, string) {
		code, h := s.health(t)
		p, ok := h.plugin("auth", "file")
		if !ok {
			t.Fatalf("health lists no auth plugin: %+v", h)
		}
		seen[p.State] = true
		allReady := !slices.ContainsFunc(h.Plugins, func(p pluginStatus) bool { return p.State != "ready" })
		if allReady != (code == http.StatusOK) || allReady != (h.Status == "ok") {
			t.Errorf("health answers %d %q with plugins %+v", code, h.Status, h.Plugins)
		}
		now = p
		return p.State == "ready" && p.Restarts == 1 && p.PID != old.PID, fmt.Sprintf("%+v", p)
	})
	for state := range seen {
		if state != "ready" && state != "restarting" {
			t.Errorf("the auth plugin went through state %q while restarting", state)
		}
	}
	if now.PID <= 0 || now.Version != old.Version {
		t.Errorf("restarted auth plugin: %+v, want a pid and version %q", now, old.Version)
	}
	return now
}

// ---------------------------------------------------------------------------
// Server tests

func TestServerAPI(t *testing.T) {
	s := startServer(t)
	version := runZoe(t, "", "--version")
	wantVersion, ok := strings.CutPrefix(strings.TrimSpace(version.stdout), "zoe version ")
	if version.code != 0 || !ok || wantVersion == "" {
		t.Fatalf("zoe --version: %+v", version)
	}

	t.Run("info", func(t *testing.T) {
		var info map[string]string
		code, err := getJSON(s.addr, "/api/v1/info", &info)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"name": "zoe", "version": wantVersion, "api_version": "v1", "deployment_name": "itest"}
		if code != http.StatusOK || !mapsEqual(info, want) {
			t.Errorf("GET /api/v1/info: %d %v, want 200 %v", code, info, want)
		}
	})

	t.Run("health", func(t *testing.T) {
		authP, wsP := readyPlugins(t, s)
		checkPluginProcess(t, authP.PID, s.cmd.Process.Pid, "zoe-plugin-auth-file")
		checkPluginProcess(t, wsP.PID, s.cmd.Process.Pid, "zoe-plugin-workspace-dir")
	})

	// Outside /api/ are the web pages (their own 404 page is HTML).
	for _, path := range []string{"/api/nope", "/api/v1/nope", "/api/v2/info", "/api/v1/info/extra"} {
		t.Run("404 "+path, func(t *testing.T) {
			var e struct {
				Error *struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			code, err := getJSON(s.addr, path, &e)
			if err != nil {
				t.Fatal(err)
			}
			if code != http.StatusNotFound {
				t.Errorf("GET %s: %d, want 404", path, code)
			}
			if e.Error == nil || e.Error.Code == "" || !strings.Contains(e.Error.Message, path) {
				t.Errorf("GET %s: error %+v, want {\"error\":{\"code\":...,\"message\": naming the path}}", path, e.Error)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestPluginKilledIsRestarted(t *testing.T) {
	s := startServer(t)
	authP, wsP := readyPlugins(t, s)

	now := killAndAwaitRestart(t, s, authP)
	checkPluginProcess(t, now.PID, s.cmd.Process.Pid, "zoe-plugin-auth-file")
	// The core reaps the plugin it lost.
	waitFor(t, 2*time.Minute, "the killed plugin is reaped", func() (bool, string) {
		_, _, err := procStat(authP.PID)
		return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH), fmt.Sprintf("/proc/%d: %v", authP.PID, err)
	})

	_, h := s.health(t)
	if ws, _ := h.plugin("workspace", "dir"); ws.PID != wsP.PID || ws.Restarts != 0 || ws.State != "ready" {
		t.Errorf("workspace plugin after the auth plugin's restart: %+v, want untouched %+v", ws, wsP)
	}
	if code, _ := s.health(t); code != http.StatusOK {
		t.Errorf("health after the restart: %d, want 200", code)
	}
}

func TestCoreKilledLeavesNoPlugins(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("after a plugin restart=%v", restart), func(t *testing.T) {
			s := startServer(t)
			authP, wsP := readyPlugins(t, s)
			if restart {
				authP = killAndAwaitRestart(t, s, authP)
			}
			if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if code := s.awaitExit(t, 10*time.Second); code != -1 {
				t.Errorf("zoe killed by SIGKILL exited %d", code)
			}
			for _, pid := range []int{authP.PID, wsP.PID} {
				waitFor(t, 2*time.Minute, fmt.Sprintf("plugin process %d ends", pid), func() (bool, string) { return gone(t, pid) })
			}
		})
	}
}

func TestSIGTERMStopsCleanly(t *testing.T) {
	s := startServer(t)
	authP, wsP := readyPlugins(t, s)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.awaitExit(t, 20*time.Second); code != 0 {
		t.Errorf("zoe exited %d after SIGTERM, want 0", code)
	}
	for _, pid := range []int{authP.PID, wsP.PID} {
		waitFor(t, 2*time.Minute, fmt.Sprintf("plugin process %d ends", pid), func() (bool, string) { return gone(t, pid) })
	}
	if out := s.output.String(); !strings.Contains(out, "shutting down") {
		t.Errorf("zoe's log does not say it is shutting down:\n%s", out)
	}
	if _, err := httpClient.Get("http://" + s.addr + "/api/v1/info"); err == nil {
		t.Errorf("the API still answers after zoe exited")
	}
}

// ---------------------------------------------------------------------------
// Configuration errors

type configCase struct {
	name string
	// text of the configuration file; {{SUM}} becomes the sha256 of the
	// auth plugin's binary.
	text  string
	setup func(t *testing.T, dir string)
	// marker is text on the line the diagnostic must point at; "" when it
	// points at none.
	marker string
	// atStart: the diagnostic points at the start of the file.
	atStart bool
	// want are strings the diagnostics must hold (white space squashed).
	want []string
}

func brokenConfigs() []configCase {
	withAuth := func(body string) string {
		return strings.Replace(baseConfig, "  users_file = \"users.csv\"\n", body, 1)
	}
	return []configCase{
		{
			name:   "syntax error",
			text:   withAuth("  users_file = \n"),
			marker: "users_file =",
			want:   []string{"Error: Invalid expression"},
		},
		{
			name:   "unclosed block",
			text:   baseConfig + "backend \"docker\" {\n",
			marker: "backend \"docker\"",
			want:   []string{"Error: Unclosed configuration block"},
		},
		{
			name:   "attribute unknown to the plugin",
			text:   withAuth("  users_file = \"users.csv\"\n  colour     = \"red\"\n"),
			marker: "colour",
			want:   []string{"Error: Unsupported argument", `"colour"`},
		},
		{
			name:   "users file missing",
			text:   withAuth("  users_file = \"missing.csv\"\n"),
			marker: "missing.csv",
			want:   []string{"Error: Cannot use users file", "missing.csv", "no such file or directory"},
		},
		{
			name: "users file readable by others",
			text: withAuth("  users_file = \"open.csv\"\n"),
			setup: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, "open.csv"), []byte("bob,pw,user\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				// WriteFile's mode is subject to the umask.
				if err := os.Chmod(filepath.Join(dir, "open.csv"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			marker: "open.csv",
			want:   []string{"Error: Cannot use users file", "chmod 600"},
		},
		{
			name:   "unknown plugin",
			text:   strings.Replace(baseConfig, "auth \"file\" {\n  users_file = \"users.csv\"\n}", "auth \"nope\" {}", 1),
			marker: "auth \"nope\"",
			want:   []string{`Error: Unknown auth plugin "nope"`, "auth-file, backend-sim, workspace-dir"},
		},
		{
			name:   "checksum mismatch",
			text:   withAuth("  users_file = \"users.csv\"\n  checksum   = \"sha256:" + strings.Repeat("0", 64) + "\"\n"),
			marker: "auth \"file\" {",
			want:   []string{`Error: Cannot start auth plugin "file"`, "sha256 does not match the checksum", "refusing to run it"},
		},
		{
			name:    "no workspace block",
			text:    strings.Replace(baseConfig, "workspace \"dir\" {\n  base_path = \"ws\"\n}\n", "", 1),
			atStart: true,
			want:    []string{"Error: No workspace block"},
		},
	}
}

// writeCase writes c's configuration into a fresh fixture.
func writeCase(t *testing.T, c configCase) (dir, file string) {
	t.Helper()
	f := newFixture(t)
	if c.setup != nil {
		c.setup(t, f.dir)
	}
	text := c.text
	if strings.Contains(text, "{{SUM}}") {
		b, err := os.ReadFile(filepath.Join(binDir, "zoe-plugin-auth-file"))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		text = strings.ReplaceAll(text, "{{SUM}}", hex.EncodeToString(sum[:]))
	}
	return f.dir, f.write(t, text)
}

// checkDiagnostics checks that stderr holds c's diagnostic, at its line.
func checkDiagnostics(t *testing.T, c configCase, file, stderr string) {
	t.Helper()
	if c.marker != "" || c.atStart {
		line := 1
		if c.marker != "" {
			line = lineOf(t, c.text, c.marker)
		}
		want := fmt.Sprintf("on %s line %d", file, line)
		if !strings.Contains(stderr, want) {
			t.Errorf("the diagnostics do not say %q:\n%s", want, stderr)
		}
	}
	for _, w := range c.want {
		if !strings.Contains(squash(stderr), squash(w)) {
			t.Errorf("the diagnostics do not say %q:\n%s", w, stderr)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	valid := []configCase{
		{name: "valid", text: baseConfig},
		{name: "valid with the right checksum", text: strings.Replace(baseConfig,
			"  users_file = \"users.csv\"\n", "  users_file = \"users.csv\"\n  checksum   = \"sha256:{{SUM}}\"\n", 1)},
	}
	for _, c := range valid {
		t.Run(c.name, func(t *testing.T) {
			dir, file := writeCase(t, c)
			r := runZoe(t, "", "config", "validate", file)
			if r.code != 0 || r.stdout != file+" is valid\n" {
				t.Errorf("zoe config validate: exit %d, stdout %q, want 0 and %q\nstderr:\n%s", r.code, r.stdout, file+" is valid\n", r.stderr)
			}
			if strings.Contains(r.stderr, "Error:") {
				t.Errorf("diagnostics for a valid file:\n%s", r.stderr)
			}
			// ValidateOnly: the workspace plugin checks, creates nothing.
			if _, err := os.Stat(filepath.Join(dir, "ws")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("validate created the workspace base directory (stat: %v)", err)
			}
		})
	}
	for _, c := range brokenConfigs() {
		t.Run(c.name, func(t *testing.T) {
			dir, file := writeCase(t, c)
			r := runZoe(t, "", "config", "validate", file)
			if r.code != 1 {
				t.Errorf("zoe config validate: exit %d, want 1", r.code)
			}
			if strings.Contains(r.stdout, "is valid") {
				t.Errorf("stdout says the file is valid: %q", r.stdout)
			}
			checkDiagnostics(t, c, file, r.stderr)
			if _, err := os.Stat(filepath.Join(dir, "ws")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("validate created the workspace base directory (stat: %v)", err)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "none.hcl")
		r := runZoe(t, "", "config", "validate", file)
		if r.code != 1 || !strings.Contains(r.stderr, "Failed to read configuration file") || !strings.Contains(r.stderr, file) {
			t.Errorf("zoe config validate on a missing file: exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
}

func TestServerRefusesBrokenConfig(t *testing.T) {
	for _, c := range brokenConfigs() {
		t.Run(c.name, func(t *testing.T) {
			addr := freeAddr(t)
			c.text = fmt.Sprintf("listen = %q\n", addr) + c.text
			_, file := writeCase(t, c)
			r := runZoe(t, "", "server", "-config", file)
			if r.code != 1 {
				t.Errorf("zoe server: exit %d, want 1", r.code)
			}
			checkDiagnostics(t, c, file, r.stderr)
			if strings.Contains(r.stderr, "zoe is ready") {
				t.Errorf("zoe served a broken configuration:\n%s", r.stderr)
			}
			if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				conn.Close()
				t.Errorf("something listens on %s", addr)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Users and passwords

var passwordLine = regexp.MustCompile(`(?m)^    (\S+)$`)

// userHash returns the password column of username's line in a users file.
func userHash(t *testing.T, content, username string) (hash, role string) {
	t.Helper()
	for line := range strings.Lines(content) {
		fields := strings.Split(strings.TrimSpace(line), ",")
		if len(fields) >= 3 && fields[0] == username {
			return fields[1], fields[2]
		}
	}
	t.Fatalf("the users file has no line for %q", username)
	return "", ""
}

func TestUsersInit(t *testing.T) {
	// bcrypt at cost 12 takes seconds under the race detector.
	t.Parallel()
	cases := []struct {
		name  string
		args  []string
		admin string
	}{
		{"default admin", nil, "admin"},
		{"named admin", []string{"--admin", "root"}, "root"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// A missing parent directory is created.
			file := filepath.Join(t.TempDir(), "sub", "users.csv")
			r := runZoe(t, "", append([]string{"users", "init", file}, c.args...)...)
			if r.code != 0 {
				t.Fatalf("zoe users init: exit %d\n%s", r.code, r.stderr)
			}
			m := passwordLine.FindAllStringSubmatch(r.stdout, -1)
			if len(m) != 1 {
				t.Fatalf("zoe users init printed %d password lines, want 1", len(m))
			}
			pw := m[0][1]
			if n := strings.Count(r.stdout+r.stderr, pw); n != 1 {
				t.Errorf("the password is printed %d times, want once", n)
			}
			if !strings.Contains(r.stdout, file) || !strings.Contains(r.stdout, strconv.Quote(c.admin)) {
				t.Errorf("zoe users init does not name the file and the admin %q", c.admin)
			}
			fi, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("users file mode %04o, want 0600", fi.Mode().Perm())
			}
			content, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(content), pw) {
				t.Errorf("the users file holds the password in plain text")
			}
			hash, role := userHash(t, string(content), c.admin)
			if role != "admin" {
				t.Errorf("role %q, want admin", role)
			}
			if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)); err != nil {
				t.Errorf("the printed password does not match the hash in the file: %v", err)
			}

			// A second run refuses and leaves the file as it was.
			again := runZoe(t, "", "users", "init", file)
			if again.code != 1 || !strings.Contains(again.stderr, "exists") {
				t.Errorf("zoe users init on an existing file: exit %d, stderr %q, want 1 and \"exists\"", again.code, again.stderr)
			}
			if passwordLine.MatchString(again.stdout) {
				t.Errorf("the failed run printed a password")
			}
			after, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, content) {
				t.Errorf("the failed run changed the users file")
			}
		})
	}
}

func TestHashPassword(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, stdin, password string
		code                  int
		stderr                string
	}{
		// Each good case costs a bcrypt comparison at cost 12, seconds under
		// the race detector: few cases, run in parallel.
		{name: "line", stdin: "correct horse\n", password: "correct horse"},
		{name: "no newline", stdin: "s3cret", password: "s3cret"},
		{name: "first line, CRLF", stdin: "first\r\nsecond\n", password: "first"},
		{name: "empty", stdin: "\n", code: 1, stderr: "empty password"},
		{name: "no input", stdin: "", code: 1, stderr: "empty password"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := runZoe(t, c.stdin, "hash-password")
			if r.code != c.code {
				t.Fatalf("zoe hash-password: exit %d, want %d\n%s", r.code, c.code, r.stderr)
			}
			if c.code != 0 {
				if !strings.Contains(r.stderr, c.stderr) || r.stdout != "" {
					t.Errorf("zoe hash-password: stdout %q, stderr %q, want none and %q", r.stdout, r.stderr, c.stderr)
				}
				return
			}
			hash := strings.TrimSuffix(r.stdout, "\n")
			if strings.ContainsAny(hash, "\n ") || !strings.HasPrefix(hash, "$2") {
				t.Fatalf("zoe hash-password printed %q, want one bcrypt hash", r.stdout)
			}
			if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(c.password)); err != nil {
				t.Errorf("the hash does not match the password: %v", err)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// In-process unit tests

func TestGoStyleFlags(t *testing.T) {
	cases := []struct {
		in, want []string
	}{
		{[]string{"server", "-config", "f.hcl"}, []string{"server", "--config", "f.hcl"}},
		{[]string{"server", "-config=f.hcl"}, []string{"server", "--config=f.hcl"}},
		{[]string{"server", "--config", "f.hcl"}, []string{"server", "--config", "f.hcl"}},
		{[]string{"server", "-configx", "-c"}, []string{"server", "-configx", "-c"}},
		{[]string{"config", "validate", "-config"}, []string{"config", "validate", "--config"}},
		{[]string{}, []string{}},
	}
	for _, c := range cases {
		if got := goStyleFlags(c.in, "config"); !slices.Equal(got, c.want) {
			t.Errorf("goStyleFlags(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
