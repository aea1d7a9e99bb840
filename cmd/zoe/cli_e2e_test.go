package main

// The zoe client commands, as the built binary, against a running zoe
// server on backend-sim (the simulated cluster, a real back-end plugin
// process; Docker has its own tests). Each call runs the binary with an
// environment of its own: a fresh HOME and configuration directory, and
// only the ZOE_* variables the case gives.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/internal/safetext"
	"github.com/zoe-project/zoe/internal/testutil"
)

// cliUsers are the users of the CLI's daemon: role and password.
var cliUsers = map[string][2]string{
	"alice": {"admin", "wonderland"},
	"carol": {"user", "carol-secret"},
	"dave":  {"user", "dave-secret"},
	"gus":   {"guest", "gus-secret"},
}

const cliConfig = `listen          = %q
deployment_name = "clitest"
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
  node "node1" {
    cores   = 16
    memory  = "64GiB"
    address = "10.9.0.1"
  }
}
`

// cliServer starts a daemon with cliUsers and the example shop.
func cliServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	var users []testutil.User
	for name, u := range cliUsers {
		users = append(users, testutil.User{Name: name, Password: u[1], Role: u[0]})
	}
	testutil.WriteUsersFile(t, filepath.Join(dir, "users.csv"), users...)
	addr := anyPort
	config := filepath.Join(dir, "zoe.hcl")
	text := fmt.Sprintf(cliConfig, addr, filepath.Join(root, "examples", "shop"))
	if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return launchServer(t, addr, config, cliUsers["alice"][1])
}

// home is one user's terminal: a HOME of its own, where zoe login stores
// its credentials.
type home struct {
	t    *testing.T
	dir  string
	addr string
	env  []string // extra KEY=VALUE
}

// at is h reporting to t (a subtest's).
func (h *home) at(t *testing.T) *home {
	c := *h
	c.t = t
	return &c
}

func newHome(t *testing.T, s *server, env ...string) *home {
	return &home{t: t, dir: t.TempDir(), addr: s.addr, env: env}
}

// as is a home whose commands pass a user's credentials in ZOE_USER and
// ZOE_PASSWORD.
func asUser(t *testing.T, s *server, name string) *home {
	return newHome(t, s, "ZOE_USER="+name, "ZOE_PASSWORD="+cliUsers[name][1])
}

// zoe runs the binary with ZOE_ADDR set and stdin as its input.
func (h *home) zoe(stdin string, args ...string) result {
	h.t.Helper()
	return h.zoeEnv(nil, stdin, args...)
}

func (h *home) zoeEnv(extra []string, stdin string, args ...string) result {
	h.t.Helper()
	env := append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + h.dir,
		"XDG_CONFIG_HOME=" + filepath.Join(h.dir, ".config"),
		"ZOE_ADDR=" + h.addr,
	}, h.env...)
	env = append(env, extra...)
	return runZoeEnv(h.t, env, stdin, args...)
}

// running is a command left running: a follower.
type running struct {
	t      *testing.T
	args   []string
	cmd    *exec.Cmd
	stdout *testutil.SyncBuffer
	stderr *testutil.SyncBuffer
	done   chan struct{} // closed once it has exited
}

// start runs a command in the background until it ends or is interrupted.
func (h *home) start(args ...string) *running {
	h.t.Helper()
	cmd := exec.Command(zoeBin(), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + h.dir,
		"XDG_CONFIG_HOME=" + filepath.Join(h.dir, ".config"), "ZOE_ADDR=" + h.addr}, h.env...)
	r := &running{t: h.t, args: args, cmd: cmd, stdout: &testutil.SyncBuffer{}, stderr: &testutil.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = r.stdout, r.stderr
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(r.done)
	}()
	h.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-r.done
	})
	return r
}

// waitOutput waits until the standard output contains want.
func (r *running) waitOutput(want string) {
	r.t.Helper()
	waitFor(r.t, 30*time.Second, fmt.Sprintf("zoe %s to print %q", strings.Join(r.args, " "), want), func() (bool, string) {
		out := r.stdout.String()
		return strings.Contains(out, want), out + r.stderr.String()
	})
}

// wait waits for the command to end by itself (interrupt: after SIGINT)
// and returns how.
func (r *running) wait(interrupt bool) result {
	r.t.Helper()
	if interrupt {
		if err := r.cmd.Process.Signal(os.Interrupt); err != nil {
			r.t.Fatal(err)
		}
	}
	select {
	case <-r.done:
	case <-time.After(2 * time.Minute):
		r.t.Fatalf("zoe %s still runs", strings.Join(r.args, " "))
	}
	return result{code: r.cmd.ProcessState.ExitCode(), stdout: r.stdout.String(), stderr: r.stderr.String()}
}

// ok runs a command that must succeed and returns its standard output.
func (h *home) ok(args ...string) string {
	h.t.Helper()
	r := h.zoe("", args...)
	if r.code != 0 {
		h.t.Fatalf("zoe %s: exit %d\nstderr: %s\nstdout: %s", strings.Join(args, " "), r.code, r.stderr, r.stdout)
	}
	checkOneLineStderr(h.t, r)
	return r.stdout
}

// fails runs a command that must fail with code and a one-line error
// containing every one of want.
func (h *home) fails(code int, want []string, args ...string) result {
	h.t.Helper()
	r := h.zoe("", args...)
	if r.code != code {
		h.t.Fatalf("zoe %s: exit %d, want %d\nstderr: %s\nstdout: %s", strings.Join(args, " "), r.code, code, r.stderr, r.stdout)
	}
	checkOneLineStderr(h.t, r)
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			h.t.Errorf("zoe %s: stderr %q does not say %q", strings.Join(args, " "), r.stderr, w)
		}
	}
	return r
}

// okJSON runs a command with -o json and decodes its output into v.
func (h *home) okJSON(v any, args ...string) {
	h.t.Helper()
	out := h.ok(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		h.t.Fatalf("zoe %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// checkOneLineStderr: errors are one line, never a stack trace; only a
// list of problems follows it, one indented line each.
func checkOneLineStderr(t *testing.T, r result) {
	t.Helper()
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic:") {
		t.Errorf("stack trace on stderr:\n%s", r.stderr)
	}
	if r.code != 0 {
		lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
		if !strings.HasPrefix(lines[0], "zoe: ") || (len(lines) > 1 && !strings.HasSuffix(lines[0], ":")) {
			t.Errorf("the error is not one line starting with \"zoe: \", or a list:\n%s", r.stderr)
		}
		for _, l := range lines[1:] {
			if !strings.HasPrefix(l, "  ") || strings.TrimSpace(l) == "" {
				t.Errorf("the error's line %q is not an indented problem:\n%s", l, r.stderr)
			}
		}
	}
	// No error names its category code: "(conflict)", "(invalid_argument)".
	if regexp.MustCompile(`\((invalid_argument|unauthenticated|permission_denied|not_found|method_not_allowed|conflict|` +
		`quota_exceeded|too_large|unsupported_media_type|unsupported|unavailable|internal|too_many_requests)\)`).MatchString(r.stderr) {
		t.Errorf("stderr has a category code:\n%s", r.stderr)
	}
}

// A ZApp the simulated cluster runs until stopped, with a web endpoint and
// three lines of output, the first a hostile one (it would retitle the
// window, clear the screen and print in red on a terminal).
const cliZApp = `{
  "name": "cli-app", "version": 3, "will_end": false, "size": 512,
  "services": [{
    "name": "main", "image": "zoe/test:1", "monitor": true,
    "essential_count": 1, "total_count": 1, "startup_order": 0,
    "resources": {"memory": {"min": 268435456, "max": null}, "cores": {"min": 0.5, "max": null}},
    "ports": [{"name": "web", "protocol": "tcp", "port_number": 8888, "url_template": "http://{ip_port}/", "proxy": false}],
    "environment": [["ZOE_SIM_LOG", "\u001b]0;pwned\u0007\u001b[2J\u009b31mfake|hello from main|second line"]],
    "volumes": [], "command": null
  }]
}`

// hostileLine is the first line of cliZApp's output.
const hostileLine = "\x1b]0;pwned\x07\x1b[2J\u009b31mfake"

// cliExecution is the part of `zoe exec get -o json` scripts rely on.
type cliExecution struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Owner    string `json:"owner"`
	Status   string `json:"status"`
	Services []struct {
		ID     int64  `json:"id"`
		Name   string `json:"name"`
		Status string `json:"status"`
	} `json:"services"`
	Endpoints []struct {
		Service string `json:"service"`
		Name    string `json:"name"`
		Port    int    `json:"port"`
		URL     string `json:"url"`
	} `json:"endpoints"`
}

func TestCLIAgainstDaemon(t *testing.T) {
	s := cliServer(t)
	zappFile := filepath.Join(t.TempDir(), "app.json")
	if err := os.WriteFile(zappFile, []byte(cliZApp), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("anonymous", func(t *testing.T) {
		h := newHome(t, s)
		if out := h.ok("info"); !strings.Contains(out, "clitest") {
			t.Errorf("zoe info does not name the deployment:\n%s", out)
		}
		var info map[string]string
		h.okJSON(&info, "info")
		if info["deployment_name"] != "clitest" || info["api_version"] != "v1" {
			t.Errorf("zoe info -o json: %v", info)
		}
		// 401: no credentials anywhere.
		h.fails(1, []string{"log in"}, "exec", "ls")
		h.fails(1, nil, "exec", "ls", "-o", "json")
	})

	t.Run("wrong password and guests", func(t *testing.T) {
		h := newHome(t, s, "ZOE_USER=carol", "ZOE_PASSWORD=nope")
		h.fails(1, []string{"ZOE_USER", "invalid username or password"}, "exec", "ls")
		// zoe login says what is wrong, not to run zoe login.
		r := newHome(t, s, "ZOE_PASSWORD=nope").fails(1, []string{"as carol: the user name or password is wrong"}, "login", "--user", "carol")
		if strings.Contains(r.stderr, "zoe login") {
			t.Errorf("zoe login with a wrong password: %s", r.stderr)
		}
		g := asUser(t, s, "gus")
		g.fails(1, []string{"guest"}, "exec", "ls")
		if r := g.zoe("", "login"); r.code == 0 {
			t.Errorf("a guest logged in: %s", r.stdout)
		}
	})

	t.Run("usage errors exit 2", func(t *testing.T) {
		h := asUser(t, s, "carol")
		h.fails(2, []string{"--shop"}, "exec", "start")
		h.fails(2, nil, "exec", "get", "not-a-number")
		h.fails(2, nil, "exec", "ls", "-o", "yaml")
		h.fails(2, nil, "exec", "start", zappFile, "--param", "x=1")
		h.fails(2, nil, "no-such-command")
	})

	t.Run("login stores a token", func(t *testing.T) {
		h := newHome(t, s)
		r := h.zoe(cliUsers["carol"][1]+"\n", "login", "--user", "carol")
		if r.code != 0 {
			t.Fatalf("zoe login: exit %d: %s", r.code, r.stderr)
		}
		creds := filepath.Join(h.dir, ".config", "zoe", "credentials.json")
		fi, err := os.Stat(creds)
		if err != nil {
			t.Fatalf("zoe login stored nothing: %v", err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("credentials mode %04o, want 0600", fi.Mode().Perm())
		}
		b, _ := os.ReadFile(creds)
		if strings.Contains(string(b), cliUsers["carol"][1]) {
			t.Error("the credentials file holds the password")
		}
		// The stored token is enough: no password in the environment.
		var ls struct {
			Executions []cliExecution `json:"executions"`
		}
		h.okJSON(&ls, "exec", "ls")
		var tokens struct {
			Tokens []struct {
				ID int64 `json:"id"`
			} `json:"tokens"`
		}
		h.okJSON(&tokens, "token", "ls")
		if len(tokens.Tokens) == 0 {
			t.Errorf("zoe token ls lists no token after zoe login")
		}
		// A token in the environment wins over the stored one.
		if r := h.zoeEnv([]string{"ZOE_TOKEN=zoe_bogus"}, "", "exec", "ls"); r.code != 1 {
			t.Errorf("zoe exec ls with a bogus $ZOE_TOKEN: exit %d", r.code)
		}
		// A credentials file others may read is refused, unless other
		// credentials are given.
		if err := os.Chmod(creds, 0o644); err != nil {
			t.Fatal(err)
		}
		h.fails(1, []string{"chmod 600"}, "exec", "ls")
		if r := h.zoeEnv([]string{"ZOE_USER=carol", "ZOE_PASSWORD=" + cliUsers["carol"][1]}, "", "exec", "ls"); r.code != 0 {
			t.Errorf("zoe exec ls with ZOE_USER beside an open credentials file: exit %d: %s", r.code, r.stderr)
		}
		if err := os.Chmod(creds, 0o600); err != nil {
			t.Fatal(err)
		}
		h.ok("logout")
		if _, err := os.Stat(creds); err == nil {
			t.Error("zoe logout left the credentials file")
		}
		h.fails(1, []string{"log in"}, "exec", "ls")
	})

	carol := asUser(t, s, "carol")
	dave := asUser(t, s, "dave")
	admin := asUser(t, s, "alice")

	t.Run("admins list and revoke a user's tokens", func(t *testing.T) {
		h := newHome(t, s)
		if r := h.zoe(cliUsers["carol"][1]+"\n", "login", "--user", "carol", "--token-name", "owner-test"); r.code != 0 {
			t.Fatalf("zoe login: exit %d: %s", r.code, r.stderr)
		}
		admin := admin.at(t)
		var tokens struct {
			Tokens []struct {
				ID   int64  `json:"id"`
				Name string `json:"name"`
			} `json:"tokens"`
		}
		admin.okJSON(&tokens, "token", "ls", "--owner", "carol")
		i := slices.IndexFunc(tokens.Tokens, func(tk struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		}) bool {
			return tk.Name == "owner-test"
		})
		if i < 0 {
			t.Fatalf("zoe token ls --owner carol: %+v", tokens.Tokens)
		}
		id := strconv.FormatInt(tokens.Tokens[i].ID, 10)
		dave.at(t).fails(1, []string{"admins"}, "token", "ls", "--owner", "carol")
		dave.at(t).fails(1, nil, "token", "rm", "--owner", "carol", id)
		h.ok("exec", "ls")
		if out := admin.ok("token", "rm", "--owner", "carol", id); !strings.Contains(out, "Revoked token "+id) {
			t.Errorf("zoe token rm --owner carol: %q", out)
		}
		h.fails(1, []string{"log in"}, "exec", "ls")
	})

	var ex cliExecution
	t.Run("start, wait, get, logs, endpoints", func(t *testing.T) {
		carol := carol.at(t)
		carol.okJSON(&ex, "exec", "start", zappFile, "--name", "first")
		if ex.ID == 0 || ex.Name != "first" || ex.Owner != "carol" {
			t.Fatalf("zoe exec start -o json: %+v", ex)
		}
		out := carol.ok("exec", "start", zappFile, "--name", "second", "--wait", "--timeout", "60s")
		if !strings.Contains(out, "is running") || !strings.Contains(out, "8888/tcp") {
			t.Errorf("zoe exec start --wait:\n%s", out)
		}
		waitFor(t, 30*time.Second, "the first execution running", func() (bool, string) {
			carol.okJSON(&ex, "exec", "get", strconv.FormatInt(ex.ID, 10))
			return ex.Status == "running", ex.Status
		})
		if len(ex.Services) != 1 || ex.Services[0].Name != "main0" || len(ex.Endpoints) != 1 ||
			ex.Endpoints[0].Port != 8888 || !strings.HasPrefix(ex.Endpoints[0].URL, "http://10.9.0.1:") {
			t.Errorf("zoe exec get -o json: %+v", ex)
		}
		id := strconv.FormatInt(ex.ID, 10)
		get := carol.ok("exec", "get", id)
		for _, w := range []string{"first", "running", "main0"} {
			if !strings.Contains(get, w) {
				t.Errorf("zoe exec get does not show %q:\n%s", w, get)
			}
		}
		if eps := carol.ok("exec", "endpoints", id); !strings.Contains(eps, ex.Endpoints[0].URL) {
			t.Errorf("zoe exec endpoints:\n%s", eps)
		}
		waitFor(t, 30*time.Second, "the service's output", func() (bool, string) {
			out := carol.ok("exec", "logs", id)
			return strings.Contains(out, "hello from main\nsecond line\n"), out
		})
		// Into a pipe or a file, the output is as the container wrote it.
		if out := carol.ok("exec", "logs", id); !strings.Contains(out, "\n"+hostileLine+"\n") {
			t.Errorf("zoe exec logs into a pipe: %q", out)
		}
		if out := carol.ok("exec", "logs", id, "main0", "--tail", "1"); out != "second line\n" {
			t.Errorf("zoe exec logs --tail 1: %q", out)
		}
		ls := carol.ok("exec", "ls")
		if !strings.Contains(ls, "first") || !strings.Contains(ls, "second") {
			t.Errorf("zoe exec ls:\n%s", ls)
		}
	})

	t.Run("JSON for scripts", func(t *testing.T) {
		carol := carol.at(t)
		admin := admin.at(t)
		id := strconv.FormatInt(ex.ID, 10)
		var eps []struct {
			Port int    `json:"port"`
			URL  string `json:"url"`
		}
		carol.okJSON(&eps, "exec", "endpoints", id)
		if len(eps) != 1 || eps[0].Port != 8888 || eps[0].URL == "" {
			t.Errorf("zoe exec endpoints -o json: %+v", eps)
		}
		// One object per line, the time apart from the text.
		out := carol.ok("exec", "logs", id, "-o", "json")
		var lines []struct{ Service, Time, Line string }
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var v struct{ Service, Time, Line string }
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				t.Fatalf("zoe exec logs -o json: %v: %q", err, l)
			}
			lines = append(lines, v)
		}
		for _, r := range out {
			if safetext.Unsafe(r) && r != '\n' {
				t.Errorf("zoe exec logs -o json prints %U raw", r)
			}
		}
		if !slices.ContainsFunc(lines, func(l struct{ Service, Time, Line string }) bool { return l.Line == hostileLine }) {
			t.Errorf("zoe exec logs -o json: %q", lines)
		}
		i := slices.IndexFunc(lines, func(l struct{ Service, Time, Line string }) bool { return l.Line == "hello from main" })
		if i < 0 || i+1 == len(lines) || lines[i+1].Line != "second line" || lines[i].Service != "main0" {
			t.Fatalf("zoe exec logs -o json: %+v", lines)
		}
		if _, err := time.Parse(time.RFC3339Nano, lines[i].Time); err != nil {
			t.Errorf("zoe exec logs -o json: time %q: %v", lines[i].Time, err)
		}
		// Each list command gives its API document.
		for _, tc := range []struct {
			h    *home
			args []string
			key  string
		}{
			{carol, []string{"shop", "ls"}, "entries"},
			{carol, []string{"shop", "show", "notebook-0"}, "parameters"},
			{carol, []string{"token", "ls"}, "tokens"},
			{carol, []string{"stats"}, "queue"},
			{admin, []string{"user", "ls"}, "users"},
			{admin, []string{"quota", "ls"}, "quotas"},
			{admin, []string{"plugin", "ls"}, "plugins"},
		} {
			var v map[string]json.RawMessage
			tc.h.okJSON(&v, tc.args...)
			if _, ok := v[tc.key]; !ok {
				t.Errorf("zoe %s -o json has no %q: %v", strings.Join(tc.args, " "), tc.key, v)
			}
		}
		// Paging by hand: --cursor takes the next_cursor a page gave.
		var p1, p2 struct {
			Executions []cliExecution `json:"executions"`
			NextCursor string         `json:"next_cursor"`
		}
		carol.okJSON(&p1, "exec", "ls", "--limit", "1")
		if len(p1.Executions) != 1 || p1.NextCursor == "" {
			t.Fatalf("zoe exec ls --limit 1 -o json: %+v", p1)
		}
		carol.okJSON(&p2, "exec", "ls", "--limit", "1", "--cursor", p1.NextCursor)
		if len(p2.Executions) != 1 || p2.Executions[0].ID >= p1.Executions[0].ID {
			t.Errorf("the page after %+v: %+v", p1, p2)
		}
		carol.fails(2, []string{"--cursor"}, "exec", "ls", "--all", "--cursor", p1.NextCursor)
		carol.fails(1, []string{"cursor"}, "exec", "ls", "--cursor", "garbage")
	})

	t.Run("followers", func(t *testing.T) {
		carol := carol.at(t)
		var run cliExecution
		carol.okJSON(&run, "exec", "start", zappFile, "--name", "followed", "--wait", "--timeout", "60s")
		if run.ID == 0 || run.Status != "running" || len(run.Endpoints) != 1 {
			t.Fatalf("zoe exec start --wait -o json: %+v", run)
		}
		id := strconv.FormatInt(run.ID, 10)
		events := carol.start("events", "--execution", id, "--since", "0", "-o", "json")
		logs := carol.start("exec", "logs", id, "-f")
		logs.waitOutput("hello from main\nsecond line\n")
		events.waitOutput(`"to":"running"`)
		var killed struct {
			Terminated []cliExecution `json:"terminated"`
		}
		carol.okJSON(&killed, "exec", "kill", id, "--wait")
		if len(killed.Terminated) != 1 || killed.Terminated[0].ID != run.ID || killed.Terminated[0].Status != "terminated" {
			t.Errorf("zoe exec kill --wait -o json: %+v", killed)
		}
		// The followed log ends with the service; the events go on until
		// interrupted.
		if r := logs.wait(false); r.code != 0 {
			t.Errorf("zoe exec logs -f: exit %d: %s", r.code, r.stderr)
		}
		events.waitOutput(`"to":"terminated"`)
		r := events.wait(true)
		if r.code != 0 {
			t.Errorf("zoe events interrupted: exit %d: %s", r.code, r.stderr)
		}
		var tos []string
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var ev struct {
				ExecutionID int64  `json:"execution_id"`
				Service     string `json:"service"`
				To          string `json:"to"`
			}
			if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.ExecutionID != run.ID {
				t.Fatalf("zoe events -o json: %q: %v", l, err)
			}
			if ev.Service == "" {
				tos = append(tos, ev.To)
			}
		}
		if want := []string{"submitted", "queued", "starting", "running", "cleaning_up", "terminated"}; !slices.Equal(tos, want) {
			t.Errorf("zoe events: the execution went %v, want %v", tos, want)
		}
	})

	t.Run("logs of every service, kill of several", func(t *testing.T) {
		carol := carol.at(t)
		two := strings.Replace(cliZApp, `"services": [{`, `"services": [{
    "name": "side", "image": "zoe/test:1", "monitor": false,
    "essential_count": 1, "total_count": 1, "startup_order": 0,
    "resources": {"memory": {"min": 268435456, "max": null}, "cores": {"min": 0.5, "max": null}},
    "ports": [], "environment": [["ZOE_SIM_LOG", "from the side"]], "volumes": [], "command": null
  }, {`, 1)
		file := filepath.Join(t.TempDir(), "two.json")
		if err := os.WriteFile(file, []byte(two), 0o600); err != nil {
			t.Fatal(err)
		}
		var a, b cliExecution
		carol.okJSON(&a, "exec", "start", file, "--wait", "--timeout", "60s")
		carol.okJSON(&b, "exec", "start", zappFile, "--name", "other")
		ida, idb := strconv.FormatInt(a.ID, 10), strconv.FormatInt(b.ID, 10)
		follow := carol.start("exec", "logs", ida, "-f")
		waitFor(t, 30*time.Second, "both services' output", func() (bool, string) {
			out := carol.ok("exec", "logs", ida)
			return strings.Contains(out, "main0 | hello from main\nmain0 | second line\n") &&
				strings.Contains(out, "side0 | from the side\n"), out
		})
		follow.waitOutput("side0 | from the side\n")
		follow.waitOutput("main0 | second line\n")
		var lines []struct{ Service, Line string }
		for _, l := range strings.Split(strings.TrimSpace(carol.ok("exec", "logs", ida, "-o", "json")), "\n") {
			var v struct{ Service, Line string }
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				t.Fatalf("zoe exec logs -o json: %v: %q", err, l)
			}
			lines = append(lines, v)
		}
		if !slices.Contains(lines, struct{ Service, Line string }{"side0", "from the side"}) ||
			!slices.Contains(lines, struct{ Service, Line string }{"main0", "second line"}) {
			t.Errorf("zoe exec logs -o json of two services: %+v", lines)
		}
		if out := carol.ok("exec", "logs", ida, "side0"); !strings.HasPrefix(out, "started side0") || !strings.HasSuffix(out, "\nfrom the side\n") {
			t.Errorf("zoe exec logs SERVICE: %q", out)
		}
		// kill takes several ids; the follower ends with the services.
		out := carol.ok("exec", "kill", ida, idb, "--wait")
		if !strings.Contains(out, "Execution "+ida+": terminated") || !strings.Contains(out, "Execution "+idb+": terminated") {
			t.Errorf("zoe exec kill A B --wait:\n%s", out)
		}
		if r := follow.wait(false); r.code != 0 {
			t.Errorf("zoe exec logs -f of two services: exit %d: %s", r.code, r.stderr)
		}
		r := carol.fails(1, []string{"2 of 2 executions not terminated:"}, "exec", "kill", ida, idb)
		if !strings.Contains(r.stderr, "\n  ") {
			t.Errorf("zoe exec kill of two ended executions:\n%s", r.stderr)
		}
	})

	t.Run("users are isolated", func(t *testing.T) {
		dave := dave.at(t)
		id := strconv.FormatInt(ex.ID, 10)
		dave.fails(1, []string{"no execution"}, "exec", "get", id)
		dave.fails(1, nil, "exec", "kill", id)
		dave.fails(1, nil, "exec", "logs", id)
		var ls struct {
			Executions []cliExecution `json:"executions"`
		}
		dave.okJSON(&ls, "exec", "ls")
		if len(ls.Executions) != 0 {
			t.Errorf("dave sees carol's executions: %+v", ls.Executions)
		}
		dave.fails(1, []string{"admin"}, "user", "ls")
		dave.fails(1, []string{"admin"}, "quota", "ls")
		dave.fails(1, []string{"admin"}, "plugin", "ls")
	})

	t.Run("bad ZApp", func(t *testing.T) {
		carol := carol.at(t)
		bad := filepath.Join(t.TempDir(), "bad.json")
		if err := os.WriteFile(bad, []byte(strings.Replace(cliZApp, `"essential_count": 1`, `"essential_count": 3`, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		carol.fails(1, []string{"services[0]"}, "exec", "start", bad)
		// Several problems: one per line, under the headline.
		worse := filepath.Join(t.TempDir(), "worse.json")
		text := strings.Replace(cliZApp, `"essential_count": 1`, `"essential_count": 3`, 1)
		text = strings.Replace(text, `"image": "zoe/test:1"`, `"image": ""`, 1)
		if err := os.WriteFile(worse, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		r := carol.fails(1, nil, "exec", "start", worse)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if len(lines) < 3 || !strings.HasSuffix(lines[0], ":") || !strings.HasPrefix(lines[1], "  description.services[0].") {
			t.Errorf("zoe exec start of a ZApp with problems:\n%s", r.stderr)
		}
		broken := filepath.Join(t.TempDir(), "broken.json")
		if err := os.WriteFile(broken, []byte("{\n  \"name\": ,\n}"), 0o600); err != nil {
			t.Fatal(err)
		}
		carol.fails(1, []string{"broken.json:2:"}, "exec", "start", broken)
		carol.fails(1, []string{"no execution"}, "exec", "get", "999999")
	})

	t.Run("shop", func(t *testing.T) {
		carol := carol.at(t)
		ls := carol.ok("shop", "ls")
		if !strings.Contains(ls, "notebook") {
			t.Errorf("zoe shop ls:\n%s", ls)
		}
		show := carol.ok("shop", "show", "notebook-0")
		if !regexp.MustCompile(`(?m)^  notebook +1 \(1 essential\) +1 GiB +0\.5$`).MatchString(show) {
			t.Errorf("zoe shop show notebook-0: the services' resources:\n%s", show)
		}
		if !strings.Contains(show, "NOTEBOOK_IDLE_MINUTES") {
			t.Errorf("zoe shop show notebook-0:\n%s", show)
		}
		// The README's table, aligned; no Markdown or HTML left.
		if !regexp.MustCompile(`(?m)^Parameter +What it does +Default\n-+ +-+ +-+$`).MatchString(show) ||
			strings.Contains(show, "|---") || strings.Contains(show, "<") {
			t.Errorf("zoe shop show notebook-0: the description's table:\n%s", show)
		}
		var nb cliExecution
		carol.okJSON(&nb, "exec", "start", "--shop", "notebook-0", "--param", "NOTEBOOK_IDLE_MINUTES=30", "--name", "nb")
		if nb.ID == 0 || nb.Name != "nb" {
			t.Errorf("zoe exec start --shop: %+v", nb)
		}
		carol.fails(1, []string{"NOTEBOOK_IDLE_MINUTES"}, "exec", "start", "--shop", "notebook-0", "--param", "NOTEBOOK_IDLE_MINUTES=7")
		carol.fails(1, nil, "exec", "start", "--shop", "no-such-entry")
		carol.ok("exec", "kill", strconv.FormatInt(nb.ID, 10))
		// The notebook's memory and cores, by flags.
		var sized struct {
			ID     int64   `json:"id"`
			Cores  float64 `json:"cores"`
			Memory int64   `json:"memory"`
		}
		carol.okJSON(&sized, "exec", "start", "--shop", "notebook-0", "--memory", "notebook=768MiB", "--cores", "notebook=1.5")
		if sized.Cores != 1.5 || sized.Memory != 768<<20 {
			t.Errorf("zoe exec start --memory --cores: %+v, want 1.5 cores and 768 MiB", sized)
		}
		carol.ok("exec", "kill", strconv.FormatInt(sized.ID, 10))
		carol.fails(1, []string{"shop.resources.worker", "unknown service"}, "exec", "start", "--shop", "notebook-0", "--cores", "worker=1")
		carol.fails(1, []string{"shop.resources.notebook.memory", "at least 1024 bytes"}, "exec", "start", "--shop", "notebook-0", "--memory", "notebook=1KB")
		carol.fails(2, []string{"--memory"}, "exec", "start", "--shop", "notebook-0", "--memory", "notebook=lots")
		carol.fails(2, []string{"--shop"}, "exec", "start", zappFile, "--cores", "notebook=1")
		// zoe info says what the quota leaves.
		if out := carol.ok("info"); !regexp.MustCompile(`(?m)^Using: +\d+ of 5 executions, [0-9.]+ \(no limit\) cores, .+ \(no limit\) memory$`).MatchString(out) {
			t.Errorf("zoe info does not say what carol uses:\n%s", out)
		}
	})

	t.Run("stats", func(t *testing.T) {
		carol := carol.at(t)
		admin := admin.at(t)
		if out := carol.ok("stats"); out == "" {
			t.Error("zoe stats printed nothing")
		}
		var st map[string]any
		admin.okJSON(&st, "stats")
		if _, ok := st["nodes"]; !ok {
			t.Errorf("zoe stats -o json as an admin has no nodes: %v", st)
		}
	})

	t.Run("kill and rm", func(t *testing.T) {
		carol := carol.at(t)
		admin := admin.at(t)
		id := strconv.FormatInt(ex.ID, 10)
		out := carol.ok("exec", "kill", id, "--wait")
		if !strings.Contains(out, "terminated") {
			t.Errorf("zoe exec kill --wait:\n%s", out)
		}
		var got cliExecution
		carol.okJSON(&got, "exec", "get", id)
		if got.Status != "terminated" {
			t.Errorf("after kill --wait: %s", got.Status)
		}
		// Logs outlive the containers.
		if out := carol.ok("exec", "logs", id); !strings.Contains(out, "hello from main") {
			t.Errorf("logs after the end: %q", out)
		}
		carol.fails(1, []string{"admin"}, "exec", "rm", id)
		var rm struct {
			Deleted []int64 `json:"deleted"`
		}
		admin.okJSON(&rm, "exec", "rm", id)
		if len(rm.Deleted) != 1 || rm.Deleted[0] != ex.ID {
			t.Errorf("zoe exec rm -o json: %+v", rm)
		}
		carol.fails(1, []string{"no execution"}, "exec", "get", id)
		// JSON also says what was done before a failure.
		r := admin.zoe("", "exec", "rm", id, "-o", "json")
		rm.Deleted = nil
		if err := json.Unmarshal([]byte(r.stdout), &rm); r.code != 1 || err != nil || rm.Deleted == nil || len(rm.Deleted) != 0 {
			t.Errorf("zoe exec rm of a deleted execution -o json: exit %d, %q", r.code, r.stdout)
		}
	})

	t.Run("admin", func(t *testing.T) {
		dave := dave.at(t)
		admin := admin.at(t)
		users := admin.ok("user", "ls")
		if !regexp.MustCompile(`(?m)^carol\s+user`).MatchString(users) {
			t.Errorf("zoe user ls:\n%s", users)
		}
		admin.ok("quota", "create", "small", "--executions", "1")
		admin.ok("user", "set", "dave", "--quota", "small")
		var u map[string]any
		admin.okJSON(&u, "user", "get", "dave")
		if u["quota"] != "small" {
			t.Errorf("dave's quota: %v", u)
		}
		var q map[string]any
		admin.okJSON(&q, "quota", "get", "small")
		if fmt.Sprint(q["concurrent_executions"]) != "1" {
			t.Errorf("quota small: %v", q)
		}
		dave.ok("exec", "start", zappFile)
		dave.fails(1, []string{"quota"}, "exec", "start", zappFile)
		admin.ok("user", "set", "dave", "--disable")
		dave.fails(1, []string{"disabled"}, "exec", "ls")
		admin.ok("user", "set", "dave", "--enable", "--default-quota")
		dave.ok("exec", "ls")
		// The address notifications go to: set, shown, refused when bad,
		// back to the auth source's with "".
		if out := admin.ok("user", "set", "dave", "--email", "dave@lab.example"); !strings.Contains(out, "dave@lab.example") {
			t.Errorf("zoe user set --email:\n%s", out)
		}
		admin.fails(1, []string{"email"}, "user", "set", "dave", "--email", "Dave <dave@lab.example>")
		admin.okJSON(&u, "user", "get", "dave")
		if u["email"] != "dave@lab.example" {
			t.Errorf("dave's address: %v", u)
		}
		admin.ok("user", "set", "dave", "--email", "")
		u = nil
		admin.okJSON(&u, "user", "get", "dave")
		if _, ok := u["email"]; ok {
			t.Errorf("dave's address after --email \"\": %v", u)
		}
		if out := admin.ok("plugin", "ls"); !strings.Contains(out, "backend") || !strings.Contains(out, "ready") {
			t.Errorf("zoe plugin ls:\n%s", out)
		}
		// Admins see everyone's executions, and may filter by owner.
		var all struct {
			Executions []cliExecution `json:"executions"`
		}
		admin.okJSON(&all, "exec", "ls", "--owner", "dave")
		if len(all.Executions) != 1 || all.Executions[0].Owner != "dave" {
			t.Errorf("zoe exec ls --owner dave as an admin: %+v", all.Executions)
		}
		admin.ok("quota", "create", "spare")
		var qrm struct {
			Deleted []string `json:"deleted"`
		}
		admin.okJSON(&qrm, "quota", "rm", "spare")
		if len(qrm.Deleted) != 1 || qrm.Deleted[0] != "spare" {
			t.Errorf("zoe quota rm -o json: %+v", qrm)
		}
		admin.fails(1, []string{"name"}, "quota", "create", "no/slash")
	})

	t.Run("completion", func(t *testing.T) {
		h := newHome(t, s)
		if out := h.ok("completion", "bash"); !strings.Contains(out, "complete") {
			t.Error("zoe completion bash printed no completion script")
		}
		// What the shell scripts ask: candidates, then :directive.
		// exec start completes files ending in .json (directive 8,
		// FilterFileExt).
		if out := h.ok("__complete", "exec", "start", "ap"); !strings.Contains(out, "json\n:8") {
			t.Errorf("zoe __complete exec start: %q", out)
		}
		// Ids come from the server: the user's own executions.
		carol := carol.at(t)
		var ls struct {
			Executions []cliExecution `json:"executions"`
		}
		carol.okJSON(&ls, "exec", "ls")
		if len(ls.Executions) == 0 {
			t.Fatal("carol has no executions left to complete")
		}
		out := carol.ok("__complete", "exec", "get", "")
		if !strings.Contains(out, strconv.FormatInt(ls.Executions[0].ID, 10)) {
			t.Errorf("zoe __complete exec get lacks execution %d: %q", ls.Executions[0].ID, out)
		}
	})

	t.Run("logout -o json", func(t *testing.T) {
		h := newHome(t, s)
		if r := h.zoe(cliUsers["carol"][1]+"\n", "login", "--user", "carol"); r.code != 0 {
			t.Fatalf("zoe login: exit %d: %s", r.code, r.stderr)
		}
		var out struct {
			Addr    string `json:"addr"`
			Revoked bool   `json:"revoked"`
			Deleted string `json:"deleted"`
		}
		h.okJSON(&out, "logout")
		if !out.Revoked || out.Addr == "" || !strings.HasSuffix(out.Deleted, "credentials.json") {
			t.Errorf("zoe logout -o json: %+v", out)
		}
	})
}
