package api_test

// The API through a real daemon (daemon.Run with the real plugin binaries:
// auth-file, workspace-dir and backend-sim, the simulated cluster) on
// SQLite. backend-sim stands in for Docker here because these tests are
// about the API, not containers; the Docker back-end has its own.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/daemon"
	"github.com/zoe-project/zoe/internal/testutil"
)

var binDir string

func TestMain(m *testing.M) {
	os.Exit(testutil.RunWithBinaries(m, "zoe-api-bin-", true, &binDir))
}

// Users of every test daemon and their passwords.
var passwords = map[string]string{
	"root":  "root-secret",  // admin
	"alice": "alice-secret", // user
	"bob":   "bob-secret",   // user
	"dora":  "dora-secret",  // user, changed by admins in tests
	"gus":   "gus-secret",   // guest
}

const simConfig = `deployment_name = "apitest"
data_dir        = "data"
shop_dir        = %q

auth "file" {
  users_file = "users.csv"
}

workspace "dir" {
  base_path = "ws"
}

backend "sim" {
  default_run = "1h"
  pull_images = true
  node "node1" {
    cores  = 16
    memory = "64GiB"
  }
}

service_logs {
  max_file_size = "64KiB"
  max_files     = 2
}
`

// env is a running daemon.
type env struct {
	t      *testing.T
	file   string
	opts   daemon.Options
	base   string // http://host:port/api/v1
	cancel context.CancelFunc
	errc   chan error
}

// newEnv writes the users file and the configuration and starts a daemon;
// text replaces the configuration when not "".
func newEnv(t *testing.T, text string) *env {
	t.Helper()
	dir := t.TempDir()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if text == "" {
		text = fmt.Sprintf(simConfig, filepath.Join(root, "examples", "shop"))
	}
	var users []testutil.User
	for _, u := range []struct{ name, role string }{{"root", "admin"}, {"alice", "user"}, {"bob", "user"}, {"dora", "user"}, {"gus", "guest"}} {
		users = append(users, testutil.User{Name: u.name, Password: passwords[u.name], Role: u.role})
	}
	testutil.WriteUsersFile(t, filepath.Join(dir, "users.csv"), users...)
	// Port 0: the daemon's listener gets a free port, which start reads
	// from it; a port found free beforehand could be taken by another
	// test's process before the daemon binds it.
	file := filepath.Join(dir, "zoe.hcl")
	if err := os.WriteFile(file, fmt.Appendf(nil, "listen = %q\n%s", "127.0.0.1:0", text), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs)
		}
	})
	e := &env{t: t, file: file, opts: daemon.Options{
		ConfigFile: file, Executable: filepath.Join(binDir, "zoe"), Version: "1.2.3-test",
		Diagnostics: logs, LogOutput: logs,
	}}
	e.start()
	t.Cleanup(e.stop)
	return e
}

// start runs the daemon until stop; its address is new at each start.
func (e *env) start() {
	e.t.Helper()
	ready := make(chan net.Addr, 1)
	opts := e.opts
	opts.Ready = func(a net.Addr) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.errc = cancel, make(chan error, 1)
	go func() { e.errc <- daemon.Run(ctx, opts) }()
	select {
	case a := <-ready:
		e.base = "http://" + a.String() + "/api/v1"
	case err := <-e.errc:
		e.cancel = nil
		e.t.Fatalf("the daemon stopped before serving: %v", err)
	case <-time.After(2 * time.Minute):
		e.t.Fatal("the daemon did not serve within 2 minutes")
	}
}

// stop stops the daemon (again: a no-op).
func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	if err := <-e.errc; err != nil {
		e.t.Errorf("daemon: %v", err)
	}
}

// who calls the API: a user with a password, a bearer token, or nobody.
type who struct {
	user, password, token string
}

func (e *env) as(user string) who { return who{user: user, password: passwords[user]} }

var anonymous = who{}

// response is an API answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// apiError decodes the error shape and checks it is complete.
func (r response) apiError(t *testing.T) client.ErrorBody {
	t.Helper()
	var e client.Error
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("status %d: not the error shape: %s (%v)", r.status, r.body, err)
	}
	return e.Error
}

// do sends a request; body is JSON-encoded unless it is []byte or a string.
func (e *env) do(w who, method, path string, body any) response {
	e.t.Helper()
	return e.doHeader(w, method, path, body, nil)
}

func (e *env) doHeader(w who, method, path string, body any, header http.Header) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	switch {
	case w.token != "":
		req.Header.Set("Authorization", "Bearer "+w.token)
	case w.user != "":
		req.SetBasicAuth(w.user, w.password)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// must sends a request and fails the test unless the status is want.
func (e *env) must(w who, method, path string, body any, want int, v any) response {
	e.t.Helper()
	r := e.do(w, method, path, body)
	if r.status != want {
		e.t.Fatalf("%s %s as %q: status %d, want %d: %s", method, path, w.user, r.status, want, r.body)
	}
	if v != nil {
		r.json(e.t, v)
	}
	return r
}

// app is a one-service ZApp for backend-sim with the environment given.
func app(name string, env map[string]string) map[string]any {
	envList := [][]string{}
	for k, v := range env {
		envList = append(envList, []string{k, v})
	}
	return map[string]any{
		"name": name, "version": 3, "will_end": false, "size": 512,
		"services": []any{map[string]any{
			"name": "main", "image": "zoe/test:1", "monitor": true, "essential_count": 1, "total_count": 1,
			"startup_order": 0,
			"resources":     map[string]any{"memory": map[string]any{"min": 1 << 28, "max": nil}, "cores": map[string]any{"min": 0.5, "max": nil}},
			"ports": []any{map[string]any{"name": "web", "protocol": "tcp", "port_number": 8888,
				"url_template": "http://{ip_port}/", "proxy": false}},
			"environment": envList, "volumes": []any{}, "command": nil,
		}},
	}
}

// start starts a ZApp as w and returns the new execution.
func (e *env) startApp(w who, name string, zapp map[string]any) client.Execution {
	e.t.Helper()
	var ex client.Execution
	e.must(w, "POST", "/executions", map[string]any{"name": name, "description": zapp}, http.StatusCreated, &ex)
	return ex
}

// await polls the execution until its status is one of statuses.
func (e *env) await(w who, id int64, statuses ...string) client.Execution {
	e.t.Helper()
	var ex client.Execution
	waitFor(e.t, fmt.Sprintf("execution %d to be %v", id, statuses), func() (bool, string) {
		ex = client.Execution{}
		e.must(w, "GET", fmt.Sprintf("/executions/%d", id), nil, http.StatusOK, &ex)
		return slices.Contains(statuses, ex.Status), ex.Status + " " + ex.ErrorMessage
	})
	return ex
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	testutil.WaitFor(t, 30*time.Second, what, cond)
}
