package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/net/html"

	"github.com/zoe-project/zoe/internal/htmlcheck"
	"github.com/zoe-project/zoe/internal/testutil"
)

var (
	binDir   string
	chromium = testutil.NewChromium()
)

// One Chromium for the whole test binary, stopped when the tests end.
type stopChromium struct{ m *testing.M }

func (s stopChromium) Run() int {
	code := s.m.Run()
	if err := chromium.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping chromium:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func TestMain(m *testing.M) {
	os.Exit(testutil.RunWithBinaries(stopChromium{m}, "zoe-browsertest-bin-", true, &binDir))
}

// The users of every daemon: name, role, uid (the Docker back-end runs
// services as their owner's uid).
var users = []struct {
	name, role string
	uid        int
}{{"root", "admin", 1100}, {"alice", "user", 1101}, {"bob", "user", 1102}, {"gus", "guest", 1103}}

func password(user string) string { return "pw-" + user + "-secret" }

// The test shop: one entry, visible to every role, whose service serves
// a page on port 8080 through the proxy, with a parameter whose value
// shows in the service's log. The simulated and the Docker entries differ
// in how: on backend-sim the Greeting is a line the service writes
// (ZOE_SIM_LOG) and the service takes 2 s to start (so that the page sees
// it start); on Docker the service (zoe-test/httpservice:1) prints
// "tick N" every Tick.
const simManifest = `{"version": 1, "zapps": [{
  "category": "Demos", "name": "Web demo", "description": "web.json", "readable_descr": "README.md",
  "enabled_for": ["all"],
  "parameters": [
    {"kind": "environment", "name": "ZOE_SIM_LOG", "readable_name": "Greeting", "description": "A line the service writes to its log.", "type": "string", "default": "hello"}
  ]}]}`

const dockerManifest = `{"version": 1, "zapps": [{
  "category": "Demos", "name": "Web demo", "description": "web.json", "readable_descr": "README.md",
  "enabled_for": ["all"],
  "parameters": [
    {"kind": "environment", "name": "TICK", "readable_name": "Tick interval", "description": "How often the service writes a tick line to its log.", "type": "string", "default": "1s"}
  ]}]}`

const webZApp = `{"name": "web-demo", "version": 3, "will_end": false, "size": 128, "services": [{
  "name": "web", "image": "zoe-test/httpservice:1", "monitor": true, "startup_order": 0, "essential_count": 1, "total_count": 1,
  "resources": {"memory": {"min": 33554432, "max": null}, "cores": {"min": 0.1, "max": null}},
  "ports": [{"name": "web page", "protocol": "tcp", "port_number": 8080, "url_template": "http://{ip_port}{proxy_path}/", "proxy": true}],
  "environment": [%s], "volumes": [], "command": null}]}`

const shopReadme = "# Web demo\n\nA service with a web page, reached through Zoe's proxy.\n"

const simBlock = `backend "sim" {
  default_run = "1h"
  pull_images = true
  serve_http  = true
  node "node1" {
    cores   = 8
    memory  = "16GiB"
    address = "127.0.0.1"
  }
}
`

const dockerBlock = `backend "docker" {}
`

// daemon is a running `zoe server`.
type daemon struct {
	url  string // http://127.0.0.1:port
	dep  string // its deployment name
	out  *testutil.SyncBuffer
	cmd  *exec.Cmd
	done chan struct{}
}

// startDaemon runs `zoe server` with the back-end block and shop given,
// stopped when t ends (its output logged if t failed).
func startDaemon(t *testing.T, deployment, backend, manifest, env string) *daemon {
	t.Helper()
	dir := t.TempDir()
	shop := filepath.Join(dir, "shop", "web")
	if err := os.MkdirAll(shop, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"manifest.json": manifest, "web.json": fmt.Sprintf(webZApp, env), "README.md": shopReadme} {
		if err := os.WriteFile(filepath.Join(shop, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Beside it, the example shop's notebook and Dask cluster, as the
	// README's walkthrough starts them.
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, entry := range []string{"notebook", "dask"} {
		if err := os.CopyFS(filepath.Join(dir, "shop", entry), os.DirFS(filepath.Join(root, "examples", "shop", entry))); err != nil {
			t.Fatal(err)
		}
	}
	var u bytes.Buffer
	for _, us := range users {
		hash, err := bcrypt.GenerateFromPassword([]byte(password(us.name)), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&u, "%s,%s,%s,%d,%d\n", us.name, hash, us.role, us.uid, us.uid)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), u.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	// Port 0: the system picks the port as the daemon listens, and the
	// daemon's "zoe is ready" line gives it; a port found free beforehand
	// could be taken by another test's process before the daemon binds it.
	cfg := fmt.Sprintf(`listen = %q
deployment_name = %q
data_dir = "data"
shop_dir = "shop"

auth "file" {
  users_file = "users.csv"
}

workspace "dir" {
  base_path = "ws"
}

%s`, "127.0.0.1:0", deployment, backend)
	file := filepath.Join(dir, "zoe.hcl")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &daemon{dep: deployment, out: &testutil.SyncBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(filepath.Join(binDir, "zoe"), "server", "-config", file)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("zoe server output:\n%s", d.out)
		}
	})
	waitFor(t, "the daemon to serve", 60*time.Second, func() (bool, string) {
		select {
		case <-d.done:
			t.Fatalf("zoe server exited:\n%s", d.out)
		default:
		}
		if d.url == "" {
			m := readyURL.FindStringSubmatch(d.out.String())
			if m == nil {
				return false, "not ready yet"
			}
			d.url = m[1]
		}
		resp, err := http.Get(d.url + "/api/v1/health")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return d
}

var readyURL = regexp.MustCompile(`zoe is ready: url=(https?://[^/ ]+)/`)

// waitFor polls cond until it holds, for at most limit: a bound on a
// hang, not a speed requirement.
func waitFor(t testing.TB, what string, limit time.Duration, cond func() (bool, string)) {
	t.Helper()
	testutil.WaitFor(t, limit, what, cond)
}

// client is an HTTP client of the daemon: with a cookie jar (a browser
// without JavaScript) or a bearer token, following no redirect.
type client struct {
	t     testing.TB
	d     *daemon
	c     *http.Client
	token string
}

func (d *daemon) client(t testing.TB) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, d: d, c: &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (c *client) do(method, path string, body io.Reader, header http.Header) answer {
	c.t.Helper()
	req, err := http.NewRequest(method, c.d.url+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (c *client) get(path string) answer { c.t.Helper(); return c.do("GET", path, nil, nil) }

// loginPage logs in through the login form.
func (c *client) loginPage(user string) {
	c.t.Helper()
	page := c.get("/login")
	form := url.Values{"csrf": {formCSRF(c.t, page.body, "/login")}, "username": {user}, "password": {password(user)}}
	a := c.do("POST", "/login", strings.NewReader(form.Encode()), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	if a.status != http.StatusSeeOther {
		c.t.Fatalf("log in as %s: %d %s", user, a.status, a.body)
	}
}

// apiLogin asks the API for a bearer token: the status, and the token
// when it gave one.
func (d *daemon) apiLogin(t testing.TB, user string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password(user)})
	resp, err := http.Post(d.url+"/api/v1/sessions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct {
		Token string `json:"token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&s)
	return resp.StatusCode, s.Token
}

// bearer is a client with a bearer token of user.
func (d *daemon) bearer(t testing.TB, user string) *client {
	t.Helper()
	status, token := d.apiLogin(t, user)
	if status != http.StatusCreated || token == "" {
		t.Fatalf("API login as %s: %d", user, status)
	}
	c := d.client(t)
	c.token = token
	return c
}

// formCSRF is the CSRF token of the page's form posting to action.
func formCSRF(t testing.TB, page, action string) string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	for f := range doc.Descendants() {
		if f.Type != html.ElementNode || f.Data != "form" || attr(f, "action") != action {
			continue
		}
		for n := range f.Descendants() {
			if n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") == "csrf" {
				return attr(n, "value")
			}
		}
	}
	t.Fatalf("no form posting to %s in:\n%s", action, page)
	return ""
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// checkHTML fetches a page with c's session and runs it through
// htmlcheck.
func (c *client) checkHTML(path string) {
	c.t.Helper()
	a := c.get(path)
	if a.status != http.StatusOK && a.status != http.StatusNotFound {
		c.t.Errorf("GET %s for the HTML check: %d", path, a.status)
		return
	}
	base, _ := url.Parse(c.d.url + path)
	if problems := htmlcheck.Check(strings.NewReader(a.body), base); len(problems) > 0 {
		c.t.Errorf("HTML of %s:\n  %v", path, problems)
	}
}

// dockerOnce builds the Docker back-end plugin and the test images once
// per test binary.
var dockerOnce = sync.OnceValue(func() error {
	return testutil.Build(binDir, map[string]string{"zoe-plugin-backend-docker": "plugins/backend-docker"})
})

func contextFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
