package web_test

// The pages through a real daemon (daemon.Run with the real plugin
// binaries: auth-file, workspace-dir and backend-sim, the simulated
// cluster) on SQLite, driven by an HTTP client with a cookie jar as a
// browser without JavaScript would. backend-sim stands in for Docker: these
// tests are about the pages; the browser tests drive Chromium.

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/zoe-project/zoe/core/daemon"
	"github.com/zoe-project/zoe/internal/testutil"
)

var binDir string

var pngEncode = png.Encode

func TestMain(m *testing.M) {
	os.Exit(testutil.RunWithBinaries(m, "zoe-web-bin-", true, &binDir))
}

var passwords = map[string]string{
	"root": "root-secret", "alice": "alice-secret", "bob": "bob-secret", "dora": "dora-secret", "gus": "gus-secret",
}

const config = `deployment_name = "webtest"
data_dir        = "data"
shop_dir        = "shop"

http {
  %s
  trusted_proxies = ["127.0.0.1"]
}

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
    labels = ["ssd", "gpu"]
  }
}
`

// The test shop: one entry every role sees, with a string and a bounded
// int parameter, a port through the proxy and one published directly,
// and a README trying to run a script.
const manifest = `{"version": 1, "zapps": [{
  "category": "Tests", "name": "Demo app", "description": "demo.json", "readable_descr": "README.md",
  "enabled_for": ["all"],
  "parameters": [
    {"kind": "environment", "name": "ZOE_SIM_LOG", "readable_name": "Log line", "description": "Lines the service writes, separated by |.", "type": "string", "default": "hello from the demo"},
    {"kind": "environment", "name": "THREADS", "readable_name": "Threads", "description": "How many.", "type": "int", "min": 1, "max": 8, "step": 1, "default": 2}
  ]}]}`

const demo = `{"name": "demo", "version": 3, "will_end": false, "size": 128, "services": [{
  "name": "main", "image": "zoe/test:1", "monitor": true, "startup_order": 0, "essential_count": 1, "total_count": 1,
  "resources": {"memory": {"min": 268435456, "max": null}, "cores": {"min": 0.5, "max": null}},
  "ports": [
    {"name": "notebook", "protocol": "tcp", "port_number": 8888, "url_template": "http://{ip_port}{proxy_path}/lab", "proxy": true},
    {"name": "ssh", "protocol": "tcp", "port_number": 22, "url_template": "ssh://{ip_port}", "proxy": false}
  ],
  "environment": [["ZOE_SIM_LOG", "x"], ["THREADS", "2"]], "volumes": [], "command": null}]}`

const readme = "# Demo\n\nA *demo*.\n\n<script>alert(1)</script><img src=\"https://evil.example/x.png\" onerror=\"alert(2)\">\n"

// env is a running daemon.
type env struct {
	t    *testing.T
	addr string // http://host:port
	base string // "" or the base path
}

func newEnv(t *testing.T, basePath string) *env {
	t.Helper()
	dir := t.TempDir()
	shop := filepath.Join(dir, "shop", "demo")
	if err := os.MkdirAll(shop, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"manifest.json": manifest, "demo.json": demo, "README.md": readme} {
		if err := os.WriteFile(filepath.Join(shop, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logo := image.NewRGBA(image.Rect(0, 0, 8, 8))
	var png bytes.Buffer
	if err := pngEncode(&png, logo); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shop, "logo.png"), png.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var users []testutil.User
	for _, u := range []struct{ name, role string }{{"root", "admin"}, {"alice", "user"}, {"bob", "user"}, {"dora", "user"}, {"gus", "guest"}} {
		users = append(users, testutil.User{Name: u.name, Password: passwords[u.name], Role: u.role})
	}
	testutil.WriteUsersFile(t, filepath.Join(dir, "users.csv"), users...)
	bp := ""
	if basePath != "" {
		bp = fmt.Sprintf("base_path = %q", basePath)
	}
	file := filepath.Join(dir, "zoe.hcl")
	// Port 0: the daemon's listener gets a free port, given by Ready; a
	// port found free beforehand could be taken by another test's process
	// before the daemon binds it.
	if err := os.WriteFile(file, fmt.Appendf(nil, "listen = %q\n"+config, "127.0.0.1:0", bp), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs)
		}
	})
	ready := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- daemon.Run(ctx, daemon.Options{ConfigFile: file, Executable: filepath.Join(binDir, "zoe"), Version: "test",
			Diagnostics: logs, LogOutput: logs, Ready: func(a net.Addr) { ready <- a }})
	}()
	var addr string
	select {
	case a := <-ready:
		addr = a.String()
	case err := <-errc:
		cancel()
		t.Fatalf("the daemon stopped before serving: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("the daemon did not serve within 60s")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	return &env{t: t, addr: "http://" + addr, base: strings.TrimSuffix(basePath, "/")}
}

// with is e for a subtest.
func (e *env) with(t *testing.T) *env { return &env{t: t, addr: e.addr, base: e.base} }

// browser is a cookie-keeping client that does not follow redirects, so
// that each answer can be looked at.
type browser struct {
	e      *env
	c      *http.Client
	header http.Header // sent with every request
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, header: http.Header{}, c: &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// answer is a page as received.
type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) location() string { return a.header.Get("Location") }

func (b *browser) do(method, path string, form url.Values) answer {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.addr+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

func (b *browser) get(path string) answer { b.e.t.Helper(); return b.do("GET", b.e.base+path, nil) }

// post sends a form to a path under the base path.
func (b *browser) post(path string, form url.Values) answer {
	b.e.t.Helper()
	return b.do("POST", b.e.base+path, form)
}

// follow GETs where a redirect leads.
func (b *browser) follow(a answer) answer {
	b.e.t.Helper()
	if a.status != http.StatusSeeOther && a.status != http.StatusFound {
		b.e.t.Fatalf("not a redirect: %d %s", a.status, a.body)
	}
	return b.do("GET", a.location(), nil)
}

// csrf is the CSRF token of the page's first form posting to action.
func csrf(t *testing.T, page, action string) string {
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
	t.Fatalf("no form posting to %s with a csrf field in:\n%s", action, page)
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

// login logs in through the login form; the answer is the form's.
func (b *browser) login(user, password, next string) answer {
	b.e.t.Helper()
	page := b.get("/login")
	if page.status != 200 {
		b.e.t.Fatalf("login page: %d", page.status)
	}
	return b.post("/login", url.Values{"csrf": {csrf(b.e.t, page.body, b.e.base+"/login")},
		"username": {user}, "password": {password}, "next": {next}})
}

// as is a browser logged in as user.
func (e *env) as(user string) *browser {
	e.t.Helper()
	b := e.browser()
	if a := b.login(user, passwords[user], ""); a.status != http.StatusSeeOther {
		e.t.Fatalf("login as %s: %d %s", user, a.status, a.body)
	}
	return b
}

// sessionCookie is the browser's session cookie value.
func (b *browser) sessionCookie() *http.Cookie {
	u, _ := url.Parse(b.e.addr + b.e.base + "/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "zoe_session" {
			return c
		}
	}
	return nil
}

// apiStatus calls the API directly with a bearer token.
func (e *env) apiStatus(token, method, path string, body string) int {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.addr+e.base+"/api/v1"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// startDemo starts the shop's entry through its start page and returns
// the execution page's path.
func (b *browser) startDemo(params url.Values) answer {
	b.e.t.Helper()
	page := b.get("/shop/demo-0")
	if page.status != 200 {
		b.e.t.Fatalf("start page: %d %s", page.status, page.body)
	}
	form := url.Values{"csrf": {csrf(b.e.t, page.body, b.e.base+"/shop/demo-0")}, "name": {"demo run"}}
	for k, v := range params {
		form[k] = v
	}
	return b.post("/shop/demo-0", form)
}
