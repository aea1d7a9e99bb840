package testutil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jsonv2 "github.com/chromedp/cdproto/cdp/jsonv2"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The browser tests drive Debian's headless Chromium (make deps installs it)
// through the DevTools protocol with chromedp.
//
// A Chromium is one browser process; each test gets a Browser, a tab in a
// browser context of its own (its own cookies and storage), so tests that
// share a Chromium do not see each other's sessions. A package with several
// browser tests shares one Chromium from TestMain (a start costs about a
// second on an idle machine, several on a busy one); a single test can use
// NewBrowser, which starts its own.
//
//	var chromium = testutil.NewChromium()
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		chromium.Stop()
//		os.Exit(code)
//	}
//
//	func TestLogin(t *testing.T) {
//		b := chromium.Browser(t)
//		b.Navigate(srv.URL + "/login")
//		b.Fill("User name", "alice")
//		b.Fill("Password", pw)
//		b.Click("Log in")
//		b.WaitText("Welcome, alice")
//		b.Screenshot("home")
//		b.AssertClean()
//	}

// Timeouts of the browser: StepTimeout bounds each action of a Browser
// (a navigation, a wait for text), TestTimeout the whole life of its tab.
// They are generous because the machine running the tests may be busy;
// they bound a hang, they are not a speed requirement.
const (
	StepTimeout  = 2 * time.Minute
	TestTimeout  = 10 * time.Minute
	startTimeout = 2 * time.Minute
)

// FindChromium returns the path of the Chromium binary, or an error
// saying how to install it. It looks for the binary itself first
// (Debian's /usr/bin/chromium is a shell wrapper whose /dev/shm check
// prints a spurious error on some machines), then for the wrapper's name
// on PATH.
func FindChromium() (string, error) {
	return findChromium([]string{"/usr/lib/chromium/chromium", "chromium"})
}

func findChromium(chromiumPaths []string) (string, error) {
	for _, p := range chromiumPaths {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", errors.New("chromium not found (looked for " + strings.Join(chromiumPaths, ", ") +
		"): run make deps, which installs Debian's chromium package")
}

// Chromium is one headless Chromium process, started on first use and
// stopped by Stop. It is safe for concurrent use by parallel tests.
type Chromium struct {
	once sync.Once
	err  error

	dir        string // user data directory, removed by Stop
	allocStop  context.CancelFunc
	browserCtx context.Context
	browserEnd context.CancelFunc
	pid        int // of the browser process, also its process group
	block      *browserProxy
	isolated   bool        // in a network namespace of its own (browsernet.go)
	output     *SyncBuffer // Chromium's stdout and stderr

	stopOnce sync.Once
	stopErr  error

	paths []string // where to look for the binary, for tests; nil: FindChromium's
}

// NewChromium returns a browser that starts on first use.
func NewChromium() *Chromium { return &Chromium{} }

// NewBrowser starts a Chromium for t alone, stopped (every process of it
// killed) when t ends, and returns a tab in it. Prefer a shared
// NewChromium when a package has several browser tests.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	c := NewChromium()
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stopping chromium: %v", err)
		}
	})
	return c.Browser(t)
}

// start runs Chromium with flags that keep it off every network but
// loopback: no background, sync, update or metrics traffic, a host
// resolver that resolves nothing but localhost, and a proxy that refuses
// everything not on loopback, so that an address literal such as
// http://192.0.2.1/ goes nowhere either. Where it can, Chromium runs in a
// network namespace of its own and the proxy is its way to loopback
// (browsernet.go says why).
func (c *Chromium) start() error {
	find := FindChromium
	if c.paths != nil {
		find = func() (string, error) { return findChromium(c.paths) }
	}
	path, err := find()
	if err != nil {
		return err
	}
	c.isolated = canIsolate()
	proxyAddr := isolatedProxyAddr
	if !c.isolated {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("the browser's proxy: %w", err)
		}
		c.block = startBrowserProxy(ln, false)
		proxyAddr = c.block.addr
	}
	c.dir, err = os.MkdirTemp("", "zoe-chromium-")
	if err != nil {
		return fmt.Errorf("user data directory: %w", err)
	}
	c.output = &SyncBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(c.dir),
		chromedp.NoSandbox, // as root in containers; the pages it loads are the tests' own
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(c.output),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("dns-prefetch-disable", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,OptimizationHints,MediaRouter,DialMediaRouteProvider,InterestFeedContentSuggestions"),
		chromedp.Flag("force-webrtc-ip-handling-policy", "disable_non_proxied_udp"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
		chromedp.ProxyServer("http://"+proxyAddr),
		// A process group of its own, so that Stop kills every process
		// Chromium started; and killed if this test binary dies (what
		// chromedp does when no ModifyCmdFunc is given).
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
			if c.isolated {
				cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNET
			}
		}),
	)
	if c.isolated {
		// Loopback through the proxy too: it is the way out of the
		// namespace (by default Chromium sends loopback to no proxy).
		opts = append(opts, chromedp.Flag("proxy-bypass-list", "<-loopback>"))
	}
	allocCtx, allocStop := chromedp.NewExecAllocator(context.Background(), opts...)
	c.allocStop = allocStop
	c.browserCtx, c.browserEnd = chromedp.NewContext(allocCtx)

	// The first Do starts the browser and ties it to the context it is
	// given, so it gets browserCtx itself; a timer bounds the start.
	timer := time.AfterFunc(startTimeout, allocStop)
	err = chromedp.Do(c.browserCtx)
	stopped := !timer.Stop()
	if err != nil {
		if stopped {
			err = fmt.Errorf("no answer after %s: %w", startTimeout, err)
		}
		return fmt.Errorf("start %s: %w; its output:\n%s", path, err, c.output.String())
	}
	c.pid = chromedp.FromContext(c.browserCtx).Browser.Process().Pid
	if c.isolated {
		// The proxy in the browser's namespace, before any page asks.
		ln, err := listenInNetns(c.pid, isolatedProxyAddr)
		if err != nil {
			return fmt.Errorf("the browser's proxy in its network namespace: %w", err)
		}
		c.block = startBrowserProxy(ln, true)
	}
	return nil
}

// Stop kills every process of the browser (its whole process group),
// waits until none is left and removes its profile. It may be called more
// than once and on a browser that never started.
func (c *Chromium) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

func (c *Chromium) stop() error {
	// Stop any start still under way, then wait for it.
	c.once.Do(func() { c.err = errors.New("chromium stopped before it started") })
	var errs []error
	if c.pid > 0 {
		// Killed while the browser process is still unreaped, so that its
		// process group id cannot belong to anyone else yet.
		if err := syscall.Kill(-c.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill process group %d: %w", c.pid, err))
		}
	}
	if c.browserEnd != nil {
		c.browserEnd()
	}
	if c.allocStop != nil {
		c.allocStop() // waits for the browser process to be reaped
	}
	if c.pid > 0 {
		deadline := time.Now().Add(10 * time.Second)
		for left := ChromiumProcesses(c.pid, c.dir); len(left) > 0; left = ChromiumProcesses(c.pid, c.dir) {
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("chromium processes left after kill: %v", left))
				break
			}
			for _, p := range left {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if c.block != nil {
		c.block.close()
	}
	if c.dir != "" {
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove profile: %w", err))
		}
	}
	return errors.Join(errs...)
}

// ChromiumProcesses lists the live (not zombie) processes in process group
// pgid or whose command line names the user data directory dir: what is
// left of a Chromium after Stop should be none.
func ChromiumProcesses(pgid int, dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte("--user-data-dir=" + dir + "\x00")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces, so split
		// after its closing parenthesis.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		group, _ := strconv.Atoi(f[2])
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if group == pgid || (dir != "" && strings.Contains(string(cmdline)+"\x00", string(want))) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Browser opens a new tab for t in a browser context of its own, closed
// when t ends. When Chromium is missing or cannot start, t fails under
// CI=true and is skipped otherwise.
func (c *Chromium) Browser(t testing.TB) *Browser {
	t.Helper()
	c.once.Do(func() { c.err = c.start() })
	if c.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("browser tests (CI): %v", c.err)
		}
		t.Skipf("browser tests skipped: %v", c.err)
	}
	b := &Browser{t: t, chromium: c, allowed: map[string]bool{}, stepTimeout: StepTimeout}
	timeout := TestTimeout
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok && time.Until(dl)-5*time.Second < timeout {
			timeout = max(time.Until(dl)-5*time.Second, time.Second)
		}
	}
	parent, cancelTimeout := context.WithTimeout(c.browserCtx, timeout)
	b.ctx, b.cancel = chromedp.NewContext(parent,
		chromedp.WithNewBrowserContext(),
		chromedp.WithListener(b.event))
	// The first Do opens the tab; later steps have timeouts of their own.
	if err := chromedp.Do(b.ctx); err != nil {
		b.cancel()
		cancelTimeout()
		t.Fatalf("open a browser tab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b.saveScreenshot("failure")
			if msgs := b.Console(); len(msgs) > 0 {
				t.Logf("browser console:\n  %s", strings.Join(msgs, "\n  "))
			}
		}
		if off := b.OffSiteRequests(); len(off) > 0 && !b.offSiteAllowed {
			t.Errorf("requests outside the test server (allowed: %s): %v", strings.Join(b.allowedOrigins(), ", "), off)
		}
		b.cancel()
		cancelTimeout()
	})
	return b
}

// Browser is one tab, for one test. Its methods fail the test when an
// action fails or times out (StepTimeout). It records what the page logs
// to its console and every request it makes, for AssertClean.
type Browser struct {
	t        testing.TB
	chromium *Chromium
	ctx      context.Context
	cancel   context.CancelFunc

	mu             sync.Mutex
	console        []consoleEntry
	requests       []*Request
	byID           map[network.RequestID]*Request
	allowed        map[string]bool // host:port of the origins navigated to
	offSiteAllowed bool
	shots          int
	stepTimeout    time.Duration
}

type consoleEntry struct {
	error bool
	text  string
}

// Request is a request the page made.
type Request struct {
	URL    string
	Method string
	Type   string // Document, Script, Image, XHR, Fetch, EventSource, WebSocket...
	Status int64  // HTTP status; 0 when no response came
	Failed string // the network error, such as net::ERR_NAME_NOT_RESOLVED, when it failed
}

func (r Request) String() string {
	s := r.Method + " " + r.URL
	if r.Status != 0 {
		s += " " + strconv.FormatInt(r.Status, 10)
	}
	if r.Failed != "" {
		s += " " + r.Failed
	}
	return s
}

// Context is the tab's chromedp context, for what the helpers do not
// cover: chromedp.Run(b.Context(), chromedp.Evaluate[int]("1+1")). Bound
// each call with a timeout derived from it.
func (b *Browser) Context() context.Context { return b.ctx }

// event runs in chromedp's read loop for the tab, in the order events
// arrive: it must return at once and send no command.
func (b *Browser) event(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		b.console = append(b.console, consoleEntry{
			error: ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert,
			text:  "console." + string(ev.Type) + ": " + consoleArgs(ev.Args),
		})
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		b.console = append(b.console, consoleEntry{error: true,
			text: fmt.Sprintf("exception: %s (%s:%d)", text, d.URL, d.LineNumber+1)})
	case *log.EventEntryAdded:
		e := ev.Entry
		text := fmt.Sprintf("%s %s: %s", e.Source, e.Level, e.Text)
		if e.URL != "" {
			text += " (" + e.URL + ")"
		}
		b.console = append(b.console, consoleEntry{error: e.Level == log.EntryLevelError, text: text})
	case *network.EventRequestWillBeSent:
		if b.byID == nil {
			b.byID = map[network.RequestID]*Request{}
		}
		// A redirect sends this event again with the same id: each hop is
		// a request of its own.
		r := &Request{URL: ev.Request.URL, Method: ev.Request.Method, Type: string(ev.Type)}
		b.requests = append(b.requests, r)
		b.byID[ev.RequestID] = r
	case *network.EventResponseReceived:
		if r := b.byID[ev.RequestID]; r != nil {
			r.Status = ev.Response.Status
		}
	case *network.EventLoadingFailed:
		if r := b.byID[ev.RequestID]; r != nil {
			r.Failed = ev.ErrorText
			if ev.BlockedReason != "" {
				r.Failed += " (blocked: " + string(ev.BlockedReason) + ")"
			}
		}
	case *network.EventWebSocketCreated:
		b.requests = append(b.requests, &Request{URL: ev.URL, Method: "GET", Type: "WebSocket"})
	}
}

func consoleArgs(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		var s string
		switch {
		case a.Type == runtime.RemoteObjectTypeString && jsonv2.Unmarshal(a.Value, &s) == nil:
		case a.Description != "":
			s = a.Description
		case a.UnserializableValue != "":
			s = string(a.UnserializableValue)
		case len(a.Value) > 0:
			s = string(a.Value)
		default:
			s = string(a.Type)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// SetStepTimeout changes how long each action may take (StepTimeout by
// default), for a test that expects a wait to fail.
func (b *Browser) SetStepTimeout(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stepTimeout = d
}

func (b *Browser) timeout() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stepTimeout
}

// step runs one action under the step timeout.
func (b *Browser) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout())
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

func run[T any](b *Browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout())
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// Navigate loads rawURL, waits for its load event and returns the HTTP
// status of the document. The URL's origin becomes one the page may load
// from; a request to any other is an off-site request.
func (b *Browser) Navigate(rawURL string) int64 {
	b.t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		b.t.Fatalf("browser: navigate to %q: not an http(s) URL", rawURL)
	}
	b.mu.Lock()
	b.allowed[hostPort(u)] = true
	b.mu.Unlock()
	resp := run(b, "navigate to "+rawURL, chromedp.NavigateResponse(rawURL))
	if resp == nil {
		return 0
	}
	return resp.Status
}

// AllowOrigin adds an origin (such as a second test server's URL) that
// the pages may load from.
func (b *Browser) AllowOrigin(rawURL string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		b.t.Fatalf("browser: allow origin %q: %v", rawURL, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.allowed[hostPort(u)] = true
}

// AllowOffSite is for a test that makes off-site requests on purpose: they
// no longer fail the test when it ends.
func (b *Browser) AllowOffSite() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.offSiteAllowed = true
}

// hostPort is u's host with its port made explicit, so that
// http://127.0.0.1/ and http://127.0.0.1:80/ compare equal; ws and wss
// count as their http counterparts.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return strings.ToLower(u.Host)
	}
	port := "80"
	if u.Scheme == "https" || u.Scheme == "wss" {
		port = "443"
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// js returns s as a JavaScript string literal.
func js(s string) string {
	q, _ := json.Marshal(s) // a string always marshals
	return string(q)
}

// findFieldJS finds the form controls a person would call key: by the
// text of their label (for= or wrapping, the control's own text left
// out), aria-label, aria-labelledby, or else their name.
const findFieldJS = `((key) => {
  const norm = (s) => (s || "").replace(/\s+/g, " ").trim();
  const labelText = (l) => {
    const c = l.cloneNode(true);
    c.querySelectorAll("input,select,textarea,button").forEach((e) => e.remove());
    return norm(c.textContent);
  };
  const controls = [...document.querySelectorAll("input,select,textarea")]
    .filter((e) => e.type !== "hidden");
  const byLabel = controls.filter((e) =>
    [...(e.labels || [])].some((l) => labelText(l) === key) ||
    norm(e.getAttribute("aria-label")) === key ||
    (e.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean)
      .map((id) => norm(document.getElementById(id)?.textContent)).join(" ") === key);
  return byLabel.length ? byLabel : controls.filter((e) => e.name === key);
})(%s)`

// findClickableJS finds the buttons and links whose accessible name (their
// aria-label, else their text or an input's value) is key.
const findClickableJS = `((key) => {
  const norm = (s) => (s || "").replace(/\s+/g, " ").trim();
  return [...document.querySelectorAll("button,a[href],input[type=submit],input[type=button],input[type=reset],[role=button]")]
    .filter((e) => {
      const name = e.getAttribute("aria-label") ||
        (e.tagName === "INPUT" ? e.value : e.innerText || e.textContent);
      return norm(name) === key;
    });
})(%s)`

// one returns a selector for the single element find gives for key, and
// fails the test when there are none or several.
func (b *Browser) one(what, find, key string) chromedp.JSPath {
	b.t.Helper()
	expr := fmt.Sprintf(find, js(key))
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout())
	defer cancel()
	// The page may still be loading the form: wait for a match.
	var n int
	for {
		var err error
		n, err = chromedp.Run(ctx, chromedp.Evaluate[int](expr+".length"))
		if err == nil && n > 0 {
			break
		}
		if ctx.Err() != nil {
			b.t.Fatalf("browser: no %s %q on %s after %s (last error: %v)", what, key, b.URL(), b.timeout(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n > 1 {
		b.t.Fatalf("browser: %d elements match %s %q on %s: make the page's names unique or use a CSS selector", n, what, key, b.URL())
	}
	return chromedp.JSPath(expr + "[0]")
}

// Fill types value into the form field called field: the text of its
// label, its aria-label, or else its name. A select gets the option whose
// value or text is value.
func (b *Browser) Fill(field, value string) {
	b.t.Helper()
	sel := b.one("form field", findFieldJS, field)
	kind := run(b, "read field "+field, chromedp.Evaluate[string](string(sel)+".tagName + ' ' + "+string(sel)+".type"))
	what := fmt.Sprintf("fill %q", field)
	if strings.HasPrefix(kind, "SELECT") {
		ok := run(b, what, chromedp.Evaluate[bool](fmt.Sprintf(`((e, v) => {
  const o = [...e.options].find((o) => o.value === v || o.text.trim() === v);
  if (!o) return false;
  e.value = o.value;
  e.dispatchEvent(new Event("input", {bubbles: true}));
  e.dispatchEvent(new Event("change", {bubbles: true}));
  return true;
})(%s, %s)`, sel, js(value))))
		if !ok {
			b.t.Fatalf("browser: %s: no option %q", what, value)
		}
		return
	}
	// Cleared by script, then typed key by key as a person would, into
	// the focused field: key events need no DOM node id, which a page
	// just loaded can leave stale in chromedp ("Could not find node with
	// given id").
	b.step(what,
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`((e) => { e.focus(); e.value = ""; e.dispatchEvent(new Event("input", {bubbles: true})); })(%s)`, sel)),
		chromedp.KeyEvent(value))
	if got := run(b, "read field "+field, chromedp.Evaluate[string](string(sel)+".value")); got != value {
		b.t.Fatalf("browser: %s: the field holds %q", what, got)
	}
}

// Click clicks the button or link whose accessible name is name (its
// aria-label, else its text, or an input button's value), with the mouse
// at its centre.
func (b *Browser) Click(name string) {
	b.t.Helper()
	b.clickAt(fmt.Sprintf("click %q", name), b.one("button or link", findClickableJS, name))
}

// clickAt clicks the middle of the element sel finds, found and measured
// in one evaluation in the page as it is (no DOM node id, which a page
// just loaded can leave stale in chromedp).
func (b *Browser) clickAt(what string, sel chromedp.JSPath) {
	b.t.Helper()
	xy := run(b, what, chromedp.Evaluate[[]float64](fmt.Sprintf(`((e) => {
  e.scrollIntoView({block: "center", inline: "center"});
  const r = e.getBoundingClientRect();
  return [r.left + r.width / 2, r.top + r.height / 2];
})(%s)`, sel)))
	if len(xy) != 2 {
		b.t.Fatalf("browser: %s: no position", what)
	}
	b.step(what, chromedp.MouseClickXY(xy[0], xy[1]))
}

// ClickSelector clicks the first element matching the CSS selector css.
func (b *Browser) ClickSelector(css string) {
	b.t.Helper()
	b.step("click "+css, chromedp.Click(chromedp.CSS(css)))
}

// waitJS waits until the JavaScript expression cond is true, across page
// loads (an evaluation during a navigation fails and is tried again).
func (b *Browser) waitJS(what, cond string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout())
	defer cancel()
	var last error
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err
		}
		if ctx.Err() != nil {
			text := b.pageTextNoFail()
			if len(text) > 2000 {
				text = text[:2000] + "..."
			}
			b.t.Fatalf("browser: waited %s for %s on %s (last error: %v); the page says:\n%s", b.timeout(), what, b.URL(), last, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// parsed is true once the page's HTML is all parsed: a text or element
// may show while the rest of a page is still arriving, and what a test
// reads next (PageText, Text, a click) must find the whole page.
const parsed = `document.readyState !== "loading"`

// WaitText waits until the page's visible text contains text, and the
// page is all parsed.
func (b *Browser) WaitText(text string) {
	b.t.Helper()
	b.waitJS(fmt.Sprintf("the text %q", text),
		fmt.Sprintf(`%s && !!document.body && document.body.innerText.includes(%s)`, parsed, js(text)))
}

// WaitSelector waits until an element matching the CSS selector css is
// present and visible, and the page is all parsed.
func (b *Browser) WaitSelector(css string) {
	b.t.Helper()
	b.waitJS("a visible "+css,
		fmt.Sprintf(`%s && (() => { const e = document.querySelector(%s); return !!e && e.getClientRects().length > 0; })()`, parsed, js(css)))
}

// Text returns the visible text of the first element matching css.
//
// It reads the element in the page by script, not by chromedp's DOM node
// ids: right after a page load chromedp may still hold the old page's ids
// ("No node with given id found"), as Fill and Click avoid too.
func (b *Browser) Text(css string) string {
	b.t.Helper()
	q, err := json.Marshal(css)
	if err != nil {
		b.t.Fatalf("browser: text of %s: %v", css, err)
	}
	expr := `(() => { const e = document.querySelector(` + string(q) + `); return e ? e.innerText : null })()`
	deadline := time.Now().Add(b.timeout())
	for {
		if text := run(b, "text of "+css, chromedp.Evaluate[*string](expr)); text != nil {
			return *text
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("browser: text of %s: no such element after %s", css, b.timeout())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PageText returns the visible text of the whole page.
func (b *Browser) PageText() string {
	b.t.Helper()
	return run(b, "page text", chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
}

func (b *Browser) pageTextNoFail() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// URL returns the address of the page shown.
func (b *Browser) URL() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "(unknown page: " + err.Error() + ")"
	}
	return u
}

// ScreenshotDir is where t's screenshots go: $ZOE_TEST_ARTIFACTS, or
// browser-screenshots in the temporary directory, then the test's name
// (a directory per subtest).
func ScreenshotDir(t testing.TB) string {
	root := os.Getenv("ZOE_TEST_ARTIFACTS")
	if root == "" {
		root = filepath.Join(os.TempDir(), "browser-screenshots")
	}
	parts := []string{root}
	for p := range strings.SplitSeq(t.Name(), "/") {
		parts = append(parts, safeName(p))
	}
	return filepath.Join(parts...)
}

func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, s)
	if strings.Trim(s, ".") == "" {
		return "_" + s
	}
	return s
}

// Screenshot saves a PNG of the whole page (beyond the window) as
// <name>.png in ScreenshotDir, logs and returns its path.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	path, err := b.screenshot(name)
	if err != nil {
		b.t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	return path
}

func (b *Browser) screenshot(name string) (string, error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout())
	defer cancel()
	// A page being replaced (a form's answer loading after a click) has
	// no size: "Cannot take screenshot with 0 width". The shot waits for
	// a loaded page with a size, across such loads.
	var png []byte
	var last error
	for {
		ready, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
			`document.readyState === "complete" && document.documentElement.getBoundingClientRect().width > 0`))
		if err == nil && ready {
			if png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil { // 100: PNG
				break
			}
		}
		if err != nil {
			last = err
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("no loaded page to take within %s (last error: %v)", b.timeout(), last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	dir := ScreenshotDir(b.t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b.mu.Lock()
	b.shots++
	n := b.shots
	b.mu.Unlock()
	// Numbered, so that the files sort in the order the test took them.
	path := filepath.Join(dir, fmt.Sprintf("%02d-%s.png", n, safeName(name)))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return "", err
	}
	b.t.Logf("screenshot %s: %s", name, path)
	return path, nil
}

// saveScreenshot is Screenshot for a cleanup: it logs a failure instead.
func (b *Browser) saveScreenshot(name string) {
	if _, err := b.screenshot(name); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// sync makes sure every event the browser sent so far has been recorded:
// the events before a command's answer are handled before the answer.
func (b *Browser) sync() {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	_, _ = chromedp.Run(ctx, chromedp.Evaluate[int]("0"))
}

// Console returns everything the page and the browser logged to its
// console so far.
func (b *Browser) Console() []string {
	b.sync()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, e := range b.console {
		out = append(out, e.text)
	}
	return out
}

// ConsoleErrors returns the console's errors: console.error calls,
// uncaught exceptions, and the browser's own errors such as a resource
// that failed to load or a Content-Security-Policy violation.
func (b *Browser) ConsoleErrors() []string {
	b.sync()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, e := range b.console {
		if e.error && !strings.Contains(e.text, networkChanged) {
			out = append(out, e.text)
		}
	}
	return out
}

// Requests returns every request the page made so far, in order.
func (b *Browser) Requests() []Request {
	b.sync()
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Request, 0, len(b.requests))
	for _, r := range b.requests {
		out = append(out, *r)
	}
	return out
}

// FailedRequests returns the requests that got a network error or an HTTP
// status of 400 or more. A stream that had its answer and was then
// closed by the page (an EventSource closed by its script once it has
// what it waited for: a 2xx status, then net::ERR_ABORTED) did not fail.
func (b *Browser) FailedRequests() []Request {
	var out []Request
	for _, r := range b.Requests() {
		if r.Failed == "net::ERR_ABORTED" && r.Status >= 200 && r.Status < 300 || r.Failed == networkChanged {
			continue
		}
		if r.Failed != "" || r.Status >= 400 {
			out = append(out, r)
		}
	}
	return out
}

// OffSiteRequests returns the requests to an origin other than those
// navigated to (or allowed with AllowOrigin). Unless AllowOffSite was
// called, any fails the test when it ends. data: and blob: URLs stay in
// the page and do not count.
func (b *Browser) OffSiteRequests() []Request {
	reqs := b.Requests()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Request
	for _, r := range reqs {
		u, err := url.Parse(r.URL)
		if err != nil {
			out = append(out, r)
			continue
		}
		switch u.Scheme {
		case "data", "blob", "about":
			continue
		}
		if !b.allowed[hostPort(u)] {
			out = append(out, r)
		}
	}
	return out
}

func (b *Browser) allowedOrigins() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for h := range b.allowed {
		out = append(out, h)
	}
	return out
}

// networkChanged is how Chromium fails the requests in flight when the
// host's network interfaces change: not the page's fault, but the Docker
// tests beside it creating and removing their networks' interfaces (seen
// on a favicon in TestSim/example_notebook). Only a Chromium sharing the
// machine's network (not root) sees them (browsernet.go).
const networkChanged = "net::ERR_NETWORK_CHANGED"

// AssertClean fails the test if the page logged an error to its console,
// a request failed, or a request went outside the allowed origins.
func (b *Browser) AssertClean() {
	b.t.Helper()
	if errs := b.ConsoleErrors(); len(errs) > 0 {
		b.t.Errorf("browser console errors on %s:\n  %s", b.URL(), strings.Join(errs, "\n  "))
	}
	if failed := b.FailedRequests(); len(failed) > 0 {
		b.t.Errorf("failed requests: %v", failed)
	}
	if off := b.OffSiteRequests(); len(off) > 0 {
		b.t.Errorf("requests outside the test server (allowed: %s): %v", strings.Join(b.allowedOrigins(), ", "), off)
	}
}
