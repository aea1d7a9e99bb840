package testutil

import (
	"bufio"
	"bytes"
	"fmt"
	"html"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/zoe-project/zoe/internal/htmlcheck"
)

// One Chromium for the browser tests of this package (a start costs about
// a second); TestBrowserCleanup and the start benchmark start their own.
var chromium = NewChromium()

func TestMain(m *testing.M) {
	code := m.Run()
	kube.Stop()
	if err := chromium.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping chromium:", err)
		code = 1
	}
	os.Exit(code)
}

// The pages send a Content-Security-Policy without 'unsafe-inline', as
// Zoe's will, so that an inline script shows up as a console error.
const testCSP = "default-src 'self'; img-src 'self' data: http:; script-src 'self'; style-src 'self'"

func page(title, body string) string {
	return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>` + title + `</title>
<link rel="icon" href="data:,"><script src="/app.js" defer></script></head>
<body>` + body + `</body></html>`
}

// testSite is a small site like the login page of a web interface: a form
// that posts a name, a button whose script changes the text, a page with
// errors in its console and a page that loads images from elsewhere.
type testSite struct {
	*httptest.Server
	mu     sync.Mutex
	posted []string
}

func newTestSite(t testing.TB) *testSite {
	s := &testSite{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		serve(w, page("Log in", `<main><h1>Log in</h1>
<form method="post" action="/login">
<label for="user">User name</label> <input id="user" name="user" autocomplete="username">
<label>Password <input type="password" name="password"></label>
<label for="role">Role</label> <select id="role" name="role"><option value="user">User</option><option value="admin">Administrator</option></select>
<button type="submit">Log in</button>
</form>
<p><button type="button" id="count">Count</button> <output id="out">not clicked</output></p></main>`))
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		user, role := r.PostFormValue("user"), r.PostFormValue("role")
		s.mu.Lock()
		s.posted = append(s.posted, user+"/"+r.PostFormValue("password")+"/"+role)
		s.mu.Unlock()
		serve(w, page("Home", "<main><h1>Hello, "+html.EscapeString(user)+"</h1><p>role: "+html.EscapeString(role)+"</p></main>"))
	})
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `"use strict";
let clicks = 0;
const b = document.getElementById("count");
if (b) b.addEventListener("click", () => {
  clicks++;
  document.getElementById("out").textContent = "clicked " + clicks;
});
if (document.body.dataset.stream) {
  const es = new EventSource("/events");
  es.onmessage = (m) => {
    es.close(); // as Zoe's execution page does once the execution has ended
    document.getElementById("out").textContent = "got: " + m.data;
  };
}
if (document.body.dataset.fail) {
  console.error("boom from the page");
  throw new Error("uncaught on purpose");
}
`)
	})
	mux.HandleFunc("GET /broken", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", testCSP)
		serve(w, strings.Replace(page("Broken", `<main><h1>Broken</h1><script>document.title = "inline ran";</script></main>`),
			"<body>", `<body data-fail="1">`, 1))
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		serve(w, strings.Replace(page("Stream", `<main><h1>Stream</h1><output id="out">nothing yet</output></main>`),
			"<body>", `<body data-stream="1">`, 1))
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: hello\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // open until the page closes it
	})
	mux.HandleFunc("GET /offsite", func(w http.ResponseWriter, r *http.Request) {
		serve(w, page("Off site", `<main><h1>Off site</h1>
<img src="http://example.invalid/x.png" alt="by name">
<img src="http://192.0.2.1:8/y.png" alt="by address"></main>`))
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func serve(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if w.Header().Get("Content-Security-Policy") == "" {
		w.Header().Set("Content-Security-Policy", testCSP)
	}
	fmt.Fprint(w, body)
}

func TestBrowserFormAndScript(t *testing.T) {
	site := newTestSite(t)
	t.Setenv("ZOE_TEST_ARTIFACTS", t.TempDir())
	b := chromium.Browser(t)

	if status := b.Navigate(site.URL + "/"); status != http.StatusOK {
		t.Fatalf("status %d, want 200", status)
	}
	shot := b.Screenshot("login")
	b.Fill("User name", "alice")
	b.Fill("Password", "s3cret pass")
	b.Fill("Role", "Administrator")
	b.Click("Log in")
	b.WaitText("Hello, alice")
	if got := b.Text("p"); got != "role: admin" {
		t.Errorf("text of p = %q, want role: admin", got)
	}
	site.mu.Lock()
	posted := slices.Clone(site.posted)
	site.mu.Unlock()
	if want := []string{"alice/s3cret pass/admin"}; !slices.Equal(posted, want) {
		t.Errorf("the server got %q, want %q", posted, want)
	}

	b.Navigate(site.URL + "/")
	b.Fill("user", "bob") // by name
	b.Fill("user", "carol")
	if got := run(b, "value", chromedp.Value(chromedp.CSS("#user"))); got != "carol" {
		t.Errorf("after two fills the field holds %q, want carol (filled fields are cleared first)", got)
	}
	if got := b.Text("#out"); got != "not clicked" {
		t.Errorf("before the click #out = %q", got)
	}
	b.Click("Count")
	b.ClickSelector("#count")
	b.WaitText("clicked 2")
	b.WaitSelector("#out")

	// Every page of the site loaded cleanly, from the site alone.
	b.AssertClean()
	reqs := b.Requests()
	if len(reqs) < 4 {
		t.Errorf("requests recorded: %v, want at least the two pages, their scripts and the post", reqs)
	}

	// The screenshot is a PNG of the whole page, in the test's directory.
	if dir := filepath.Join(os.Getenv("ZOE_TEST_ARTIFACTS"), t.Name()); filepath.Dir(shot) != dir {
		t.Errorf("screenshot %s is not in %s", shot, dir)
	}
	data, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", shot, err)
	}
	if r := img.Bounds(); r.Dx() < 100 || r.Dy() < 100 {
		t.Errorf("screenshot is %v", r)
	}
}

// The test site's pages pass htmlcheck, but for what the browser tests
// want wrong in them: what the browser refuses, htmlcheck reports.
func TestTestSiteHTML(t *testing.T) {
	site := newTestSite(t)
	base, _ := url.Parse(site.URL)
	for path, want := range map[string][]string{
		"/":        nil,
		"/broken":  {htmlcheck.RuleInlineScript},
		"/offsite": {htmlcheck.RuleExternal, htmlcheck.RuleExternal},
	} {
		resp, err := http.Get(site.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range htmlcheck.Check(resp.Body, base.JoinPath(path)) {
			got = append(got, p.Rule)
		}
		resp.Body.Close()
		if !slices.Equal(got, want) {
			t.Errorf("%s: problems %v, want %v", path, got, want)
		}
	}
}

func TestBrowserMissingElement(t *testing.T) {
	site := newTestSite(t)
	// Fatal paths are checked on a recorder standing in for t.
	cases := []struct {
		name string
		do   func(b *Browser)
		want string
	}{
		{"no such field", func(b *Browser) { b.Fill("Email", "x") }, `no form field "Email"`},
		{"no such text", func(b *Browser) { b.WaitText("Goodbye") }, `waited 1s for the text "Goodbye"`},
		{"no such option", func(b *Browser) { b.Fill("Role", "Root") }, `no option "Root"`},
		{"two buttons named alike", func(b *Browser) {
			_ = run(b, "add a button", chromedp.Evaluate[chromedp.Void](`document.querySelector("main").insertAdjacentHTML("beforeend", "<button>Count</button>")`))
			b.Click("Count")
		}, `2 elements match button or link "Count"`},
	}
	b := chromium.Browser(t)
	b.Navigate(site.URL + "/")
	b.SetStepTimeout(time.Second)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			b.t = rec
			defer func() { b.t = t }()
			rec.run(func() { c.do(b) })
			if !strings.Contains(rec.fatal, c.want) {
				t.Errorf("fatal %q, want it to say %q", rec.fatal, c.want)
			}
		})
	}
}

func TestBrowserConsoleErrors(t *testing.T) {
	site := newTestSite(t)
	b := chromium.Browser(t)
	b.Navigate(site.URL + "/broken")
	b.WaitText("Broken")
	// The deferred script runs before the load event Navigate waits for.
	errs := strings.Join(b.ConsoleErrors(), "\n")
	for _, want := range []string{
		"console.error: boom from the page",
		"uncaught on purpose",
		"Content Security Policy", // the inline script, refused
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("console errors lack %q; they are:\n%s", want, errs)
		}
	}
	if title := run(b, "title", chromedp.Title()); title == "inline ran" {
		t.Error("the inline script ran despite the CSP")
	}

	rec := &recorder{TB: t}
	b.t = rec
	rec.run(b.AssertClean)
	b.t = t
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "boom from the page") {
		t.Errorf("AssertClean reported %q, want the console errors", rec.errors)
	}
}

// A stream the page had its answer from and then closed did not fail; a
// request that got an error status did.
func TestBrowserStreamClosedByThePage(t *testing.T) {
	site := newTestSite(t)
	b := chromium.Browser(t)
	b.Navigate(site.URL + "/stream")
	b.WaitText("got: hello")
	var stream *Request
	for _, r := range b.Requests() {
		if strings.HasSuffix(r.URL, "/events") {
			stream = &r
		}
	}
	if stream == nil || stream.Status != http.StatusOK {
		t.Fatalf("the stream's request: %+v in %v", stream, b.Requests())
	}
	if failed := b.FailedRequests(); len(failed) > 0 {
		t.Errorf("failed requests %v, want none (the page closed the stream %v)", failed, stream)
	}
	b.Navigate(site.URL + "/no-such-page")
	// Chromium may also ask for /favicon.ico of a page without an icon
	// (the 404 is plain text), whenever it gets to it: not the question.
	failed := slices.DeleteFunc(b.FailedRequests(), func(r Request) bool { return strings.HasSuffix(r.URL, "/favicon.ico") })
	if len(failed) != 1 || failed[0].Status != http.StatusNotFound || !strings.HasSuffix(failed[0].URL, "/no-such-page") {
		t.Errorf("failed requests %v, want the 404 of /no-such-page", failed)
	}
}

func TestBrowserOffSiteRequests(t *testing.T) {
	site := newTestSite(t)
	b := chromium.Browser(t)
	b.AllowOffSite()
	b.Navigate(site.URL + "/offsite")

	off := b.OffSiteRequests()
	var urls []string
	for _, r := range off {
		urls = append(urls, r.URL)
		// Refused by the blocking proxy (403) or failed: never loaded.
		if r.Failed == "" && r.Status != http.StatusForbidden {
			t.Errorf("off-site request %v was not blocked", r)
		}
	}
	slices.Sort(urls)
	if want := []string{"http://192.0.2.1:8/y.png", "http://example.invalid/x.png"}; !slices.Equal(urls, want) {
		t.Errorf("off-site requests %v, want %v", off, want)
	}
	// Both went to the proxy that refuses everything, not to the network.
	asked := chromium.block.asked()
	for _, h := range []string{"example.invalid", "192.0.2.1:8"} {
		if !slices.Contains(asked, h) {
			t.Errorf("the blocking proxy was not asked for %s (it was for %v)", h, asked)
		}
	}
	if len(b.FailedRequests()) != 2 {
		t.Errorf("failed requests %v, want the two images", b.FailedRequests())
	}

	// Without AllowOffSite, the end of the test reports them.
	var rec *recorder
	t.Run("unexpected", func(t *testing.T) {
		rec = &recorder{TB: t}
		b := chromium.Browser(rec)
		b.Navigate(site.URL + "/offsite")
	})
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "http://example.invalid/x.png") {
		t.Errorf("the end of a test with off-site requests reported %q", rec.errors)
	}
}

func TestBrowserIsolation(t *testing.T) {
	// Two tabs of one Chromium have separate cookies.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /set", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "alice", Path: "/", HttpOnly: true})
		serve(w, page("Set", "<p>set</p>"))
	})
	mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("session")
		v := "none"
		if err == nil {
			v = c.Value
		}
		serve(w, page("Get", "<p>session: "+html.EscapeString(v)+"</p>"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	a := chromium.Browser(t)
	a.Navigate(srv.URL + "/set")
	a.Navigate(srv.URL + "/get")
	a.WaitText("session: alice")
	other := chromium.Browser(t)
	other.Navigate(srv.URL + "/get")
	other.WaitText("session: none")
}

func TestBrowserCleanup(t *testing.T) {
	site := newTestSite(t)
	var pid int
	var dir string
	t.Run("own chromium", func(t *testing.T) {
		b := NewBrowser(t)
		b.Navigate(site.URL + "/")
		b.WaitText("Log in")
		pid, dir = b.chromium.pid, b.chromium.dir
		// The check below finds the browser's processes while it runs
		// (the browser and its helpers: zygote, renderer, GPU or network).
		if procs := ChromiumProcesses(pid, dir); len(procs) < 2 {
			t.Errorf("chromium processes while running: %v, want the browser and its helpers", procs)
		}
	})
	if pid == 0 {
		t.Fatal("no chromium started")
	}
	if procs := ChromiumProcesses(pid, dir); len(procs) > 0 {
		t.Errorf("chromium processes left after the test: %v", procs)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("profile %s left after the test (%v)", dir, err)
	}
}

func TestChromiumMissing(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			c := &Chromium{paths: []string{"/nonexistent/chromium"}}
			rec := &recorder{TB: t}
			rec.run(func() { c.Browser(rec) })
			if err := c.Stop(); err != nil {
				t.Error(err)
			}
			msg, want := rec.skip, "browser tests skipped: chromium not found"
			if ci == "true" {
				msg, want = rec.fatal, "browser tests (CI): chromium not found"
			}
			if !strings.HasPrefix(msg, want) || !strings.Contains(msg, "make deps") {
				t.Errorf("got fatal %q, skip %q; want %q... with the install hint", rec.fatal, rec.skip, want)
			}
		})
	}
}

func TestScreenshotDir(t *testing.T) {
	t.Setenv("ZOE_TEST_ARTIFACTS", "")
	t.Run("a b/../c", func(t *testing.T) {
		got := ScreenshotDir(t)
		want := filepath.Join(os.TempDir(), "browser-screenshots", "TestScreenshotDir", "a_b", "_..", "c")
		if got != want {
			t.Errorf("ScreenshotDir = %s, want %s", got, want)
		}
	})
}

// BenchmarkChromiumStart starts a Chromium, opens a tab and stops it,
// reporting the start (to the open tab) and the stop apart.
func BenchmarkChromiumStart(b *testing.B) {
	var start, stop time.Duration
	for b.Loop() {
		t0 := time.Now()
		c := NewChromium()
		c.Browser(b)
		t1 := time.Now()
		if err := c.Stop(); err != nil {
			b.Fatal(err)
		}
		start, stop = start+t1.Sub(t0), stop+time.Since(t1)
	}
	b.ReportMetric(start.Seconds()/float64(b.N), "s-start/op")
	b.ReportMetric(stop.Seconds()/float64(b.N), "s-stop/op")
}

// BenchmarkPage is one step of a browser test: load a page with a form,
// fill it, submit it and wait for the next page.
func BenchmarkPage(b *testing.B) {
	site := newTestSite(b)
	br := chromium.Browser(b)
	for b.Loop() {
		br.Navigate(site.URL + "/")
		br.Fill("User name", "alice")
		br.Click("Log in")
		br.WaitText("Hello, alice")
	}
}

// recorder stands in for t to see what the harness reports: Fatalf ends
// the function run gives it, as t.Fatalf ends a test.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	fatal  string
	skip   string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

type fatalStop struct{}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatal = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	panic(fatalStop{})
}

func (r *recorder) Skipf(format string, args ...any) {
	r.mu.Lock()
	r.skip = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	panic(fatalStop{})
}

func (r *recorder) run(f func()) {
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(fatalStop); !ok {
				panic(v)
			}
		}
	}()
	f()
}

// TestBrowserOwnNetwork: as root, the browser runs in a network
// namespace of its own and reaches loopback through the test process's
// proxy, a request waiting for its answer included. Chromium aborts every
// request in flight with net::ERR_NETWORK_CHANGED when it sees the
// machine's interfaces change, and the Docker tests beside the browser
// tests make them change: a fetch and a favicon failed so under the whole
// suite (adding and removing interfaces and containers by hand beside one
// browser did not make it fail, so this test cannot show the failure
// itself; in its own namespace Chromium sees no interface of the machine).
func TestBrowserOwnNetwork(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("not root under CI: the browser gets its own network namespace only as root")
		}
		t.Skip("not root: the browser shares the machine's network")
	}
	inFlight, release := make(chan struct{}, 1), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		serve(w, page("Waiting", `<main><h1>Waiting</h1></main>`))
	})
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		inFlight <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "answered")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	b := chromium.Browser(t)
	b.Navigate(srv.URL + "/")
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if its, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", chromium.pid)); err != nil || its == self || !chromium.isolated {
		t.Fatalf("Chromium's network namespace %q (%v), the test's %q: want one of its own", its, err, self)
	}

	got := make(chan string, 1)
	go func() {
		text, err := chromedp.Run(b.Context(), chromedp.Evaluate[string](
			`fetch("/slow").then((r) => r.text())`, chromedp.EvalAwaitPromise))
		if err != nil {
			text = "error: " + err.Error()
		}
		got <- text
	}()
	select {
	case <-inFlight:
	case text := <-got:
		t.Fatalf("the fetch ended before it was answered: %s", text)
	}
	close(release)
	if text := <-got; text != "answered" {
		t.Errorf("the fetch through the proxy: %q, want answered", text)
	}
	b.AssertClean()
}

// TestBrowserProxyTunnel: the proxy joins a CONNECT (a WebSocket's way
// through it) to a loopback address, and refuses one anywhere else.
func TestBrowserProxyTunnel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "through the tunnel")
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := startBrowserProxy(ln, true)
	defer p.close()
	connect := func(target string) (net.Conn, *bufio.Reader, *http.Response) {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatal(err)
		}
		return c, br, resp
	}
	c, br, resp := connect(srv.Listener.Addr().String())
	defer c.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT to loopback: %s", resp.Status)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "through the tunnel" {
		t.Errorf("through the tunnel: %q", body)
	}
	c2, _, resp := connect("192.0.2.1:443")
	defer c2.Close()
	if resp.StatusCode != http.StatusForbidden || !slices.Contains(p.asked(), "192.0.2.1:443") {
		t.Errorf("CONNECT off loopback: %s, refused %v", resp.Status, p.asked())
	}
}

// TestBrowserWaitsForTheWholePage: a text that shows while the rest of
// the page is still arriving is waited for with the page: what the test
// reads next finds all of it (make test's loop once read a list of
// quotas without its last rows so).
func TestBrowserWaitsForTheWholePage(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		serve(w, `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Start</title>`+
			`<link rel="icon" href="data:,"></head><body><p><a href="/slow">slow page</a></p></body></html>`)
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", testCSP)
		fmt.Fprint(w, `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Slow</title>`+
			`<link rel="icon" href="data:,"></head><body><p>first part</p>`+strings.Repeat("<!-- padding -->", 256))
		w.(http.Flusher).Flush()
		time.Sleep(time.Second)
		fmt.Fprint(w, `<p>second part</p></body></html>`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	b := chromium.Browser(t)
	b.Navigate(srv.URL + "/")
	b.Click("slow page")
	b.WaitText("first part")
	if got := b.PageText(); !strings.Contains(got, "second part") {
		t.Errorf("the page's text once \"first part\" showed: %q, without the rest of the page", got)
	}
}
