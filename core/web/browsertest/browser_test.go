package browsertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	dockerclient "github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
)

func randomSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// flavour is what differs between the back-ends in the walkthrough.
type flavour struct {
	// param and value: the shop entry's parameter the user sets.
	param, value string
	// startsSlowly: the service takes long enough to start that the
	// execution page is shown before it runs (backend-sim's start delay).
	startsSlowly bool
	// servicePage is text the service's page shows through the proxy.
	servicePage func(id int64) []string
	// liveLog makes (or waits for) a log line written after the
	// execution page was shown and returns it; the page must show it
	// without being reloaded.
	liveLog func(t *testing.T, b *testutil.Browser, proxyURL string) string
	// initialLog is a line in the log from the start, which the
	// parameter set.
	initialLog string
}

func TestSim(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "bt-sim-"+randomSuffix(), simBlock, simManifest,
		`["ZOE_SIM_LOG", "hello"], ["ZOE_SIM_START_DELAY", "5s"]`)
	greeting := "greeting-" + randomSuffix()
	fl := flavour{
		param: "Greeting", value: greeting, startsSlowly: true, initialLog: greeting,
		servicePage: func(id int64) []string {
			prefix := fmt.Sprintf("/proxy/%d/web0/8080", id)
			return []string{"A simulated service of Zoe's sim back-end", "GET " + prefix + "/",
				"X-Forwarded-Prefix\n" + prefix, "REVERSE_PROXY_PATH_8080\n" + prefix}
		},
		liveLog: func(t *testing.T, b *testutil.Browser, proxyURL string) string {
			// The simulated service logs each request: one made now, from
			// outside the page, must show on it.
			path := "live-" + randomSuffix()
			alice := d.bearer(t, "alice")
			if a := alice.get(proxyURL + path); a.status != http.StatusOK {
				t.Fatalf("GET %s through the proxy: %d", proxyURL+path, a.status)
			}
			return "http: GET " + proxyURL + path
		},
	}
	t.Run("walkthrough", func(t *testing.T) { walkthrough(t, d, fl) })
	t.Run("guest", func(t *testing.T) { guest(t, d, "Greeting", "from a guest") })
	t.Run("example notebook", func(t *testing.T) {
		exampleNotebook(t, d, []string{"A simulated service of Zoe's sim back-end", "REVERSE_PROXY_PATH_8888"})
	})
	t.Run("proxy", func(t *testing.T) { proxyWiring(t, d) })
}

func TestDocker(t *testing.T) {
	t.Parallel()
	// Shared with the other packages' Docker tests (testutil.DockerLock):
	// never beside one that needs the engine's cores alone.
	testutil.DockerLock(t, false)
	d := startDockerDaemon(t)
	fl := flavour{
		param: "Tick interval", value: "300ms", initialLog: "listening on :8080",
		servicePage: func(int64) []string { return []string{"hello from "} },
		liveLog: func(t *testing.T, b *testutil.Browser, _ string) string {
			// The service prints "tick N": the next ones must come.
			text := b.Text("pre.logtext")
			last := 0
			for _, m := range regexp.MustCompile(`tick (\d+)`).FindAllStringSubmatch(text, -1) {
				n, _ := strconv.Atoi(m[1])
				last = max(last, n)
			}
			return fmt.Sprintf("tick %d", last+2)
		},
	}
	t.Run("walkthrough", func(t *testing.T) { walkthrough(t, d, fl) })
	t.Run("guest", func(t *testing.T) { guest(t, d, "Tick interval", "2s") })
}

// TestDockerDask is the README's path from the shop's page to a Dask
// computation in a notebook, on the real images of make images. The
// cluster reserves 1.75 of the 2 cores here: no other Docker test (of any
// package) runs beside it, or their executions would wait. It holds the
// engine alone from once its daemon runs to the end, not while the daemon
// starts (under make test's load, time the other Docker tests would wait
// for).
func TestDockerDask(t *testing.T) {
	t.Parallel()
	lock := testutil.DockerLockLater(t) // released after the deployment's removal
	cli, err := dockerclient.New(dockerclient.FromEnv)
	if err != nil {
		t.Fatalf("Docker client: %v", err)
	}
	defer cli.Close()
	testutil.RequireAnalyticsImages(t, cli)
	d := startDockerDaemon(t)
	// Before the browser's tab opens: the tab's whole life is bounded
	// (testutil.TestTimeout), and on a busy machine the engine's other
	// holders may keep it for minutes.
	lock(true)
	daskNotebook(t, d)
}

// startDockerDaemon starts a daemon on the local Docker engine, with the
// test images built, whose containers are removed when t ends.
func startDockerDaemon(t *testing.T) *daemon {
	t.Helper()
	cli, err := dockerclient.New(dockerclient.FromEnv)
	if err != nil {
		t.Fatalf("Docker client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	if err := testimages.Build(t.Context(), cli); err != nil {
		// Fails (not skips) under CI=true, as every Docker test does.
		if os.Getenv("CI") != "true" {
			t.Skipf("no usable Docker engine (DOCKER_HOST or /var/run/docker.sock): %v", err)
		}
		t.Fatalf("these tests need a reachable Docker engine (DOCKER_HOST or /var/run/docker.sock): %v", err)
	}
	if err := dockerOnce(); err != nil {
		t.Fatalf("building the Docker back-end plugin: %v", err)
	}
	dep := "bt-dk-" + randomSuffix()
	t.Cleanup(func() { removeDeployment(t, cli, dep) })
	return startDaemon(t, dep, dockerBlock, dockerManifest, `["TICK", "1s"], ["PORT", "8080"]`)
}

// removeDeployment removes what a Docker deployment left.
func removeDeployment(t *testing.T, cli *dockerclient.Client, dep string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := dockerclient.Filters{}.Add("label", "zoe.deployment="+dep)
	if list, err := cli.ContainerList(ctx, dockerclient.ContainerListOptions{All: true, Filters: f}); err == nil {
		for _, c := range list.Items {
			_, _ = cli.ContainerRemove(ctx, c.ID, dockerclient.ContainerRemoveOptions{Force: true})
		}
	}
	if list, err := cli.NetworkList(ctx, dockerclient.NetworkListOptions{Filters: f}); err == nil {
		for _, n := range list.Items {
			_, _ = cli.NetworkRemove(ctx, n.ID, dockerclient.NetworkRemoveOptions{})
		}
	}
}

// js evaluates a JavaScript expression in the page.
func js[T any](t *testing.T, b *testutil.Browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), testutil.StepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitStatus waits until the execution page's status badge says status.
func waitStatus(t *testing.T, b *testutil.Browser, status string) {
	t.Helper()
	testutil.WaitFor(t, 2*time.Minute, fmt.Sprintf("the execution page to say %q", status), func() (bool, string) {
		// Asked again when the page is being replaced (a click's form
		// answer loading): "Inspected target navigated or closed".
		ctx, cancel := context.WithTimeout(b.Context(), testutil.StepTimeout)
		defer cancel()
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("ex-status") || {}).textContent || ""`))
		if err != nil {
			return false, err.Error()
		}
		return got == status, fmt.Sprintf("it says %q", got)
	})
}

// waitURL waits until the browser shows the page at want.
func waitURL(t *testing.T, b *testutil.Browser, want string) {
	t.Helper()
	testutil.WaitFor(t, testutil.StepTimeout, "the browser to show "+want, func() (bool, string) {
		got := b.URL()
		return got == want, "it shows " + got
	})
}

// mark leaves a value in the page's window, which a reload loses.
func mark(t *testing.T, b *testutil.Browser) string {
	t.Helper()
	m := "mark-" + randomSuffix()
	js[bool](t, b, fmt.Sprintf(`(window.zoeTestMark = %q, true)`, m))
	return m
}

func notReloaded(t *testing.T, b *testutil.Browser, m, what string) {
	t.Helper()
	if got := js[string](t, b, `window.zoeTestMark || ""`); got != m {
		t.Errorf("the page was reloaded while %s", what)
	}
}

// logIn logs in through the login page.
func logIn(t *testing.T, b *testutil.Browser, d *daemon, user string) {
	t.Helper()
	b.Navigate(d.url + "/")
	b.WaitText("Log in to Zoe")
	b.Fill("Username", user)
	b.Fill("Password", password(user))
	b.Click("Log in")
	b.WaitText("Welcome, " + user)
}

var execPath = regexp.MustCompile(`/executions/(\d+)$`)

// startFromShop starts the shop's entry from its start page, and returns
// the execution's id once its page shows.
func startFromShop(t *testing.T, b *testutil.Browser, d *daemon, name, param, value string) int64 {
	t.Helper()
	b.Click("ZApp shop")
	waitURL(t, b, d.url+"/shop")
	b.WaitText("Web demo")
	b.Screenshot("shop")
	b.AssertClean()
	b.Click("Start Web demo")
	b.WaitText("Start Web demo")
	b.Screenshot("start page")
	b.AssertClean()
	b.Fill("Execution name", name)
	b.Fill(param, value)
	b.Click("Start")
	var m []string
	testutil.WaitFor(t, testutil.StepTimeout, "an execution's page after the start", func() (bool, string) {
		m = execPath.FindStringSubmatch(b.URL())
		return m != nil, "the browser shows " + b.URL()
	})
	b.WaitSelector("#ex-status")
	id, _ := strconv.ParseInt(m[1], 10, 64)
	return id
}

// walkthrough is what a user does with no terminal: log in, start a ZApp
// from the shop, watch it start, open its page through the proxy, read
// its log live, and stop it; another user may not open its page.
func walkthrough(t *testing.T, d *daemon, fl flavour) {
	b := chromium.Browser(t)
	b.Navigate(d.url + "/")
	b.WaitText("Log in to Zoe")
	b.Screenshot("login")
	b.AssertClean()
	logIn(t, b, d, "alice")
	b.Screenshot("home")
	b.AssertClean()

	id := startFromShop(t, b, d, "browser run", fl.param, fl.value)
	execURL := fmt.Sprintf("%s/executions/%d", d.url, id)
	m := mark(t, b)
	first := js[string](t, b, `document.getElementById("ex-status").textContent`)
	b.Screenshot("execution " + first)
	if fl.startsSlowly && first == "running" {
		t.Errorf("the execution page was shown after the service started (5 s after the start): nothing to watch")
	}
	waitStatus(t, b, "running")
	// The endpoint's link comes with the service, without a reload.
	b.WaitSelector("#endpoints a")
	notReloaded(t, b, m, "the execution started")
	b.WaitText(fl.initialLog)
	b.Screenshot("execution running")
	b.AssertClean()

	// Every page, as the browser got it, passes the HTML check.
	c := d.client(t)
	c.loginPage("alice")
	for _, p := range []string{"/", "/shop", "/shop/web-0", "/upload", "/upload?from=web-0", "/executions", fmt.Sprintf("/executions/%d", id),
		"/executions?status=running", fmt.Sprintf("/executions/%d/no-such-page", id)} {
		c.checkHTML(p)
	}
	d.client(t).checkHTML("/login")

	// The service's page, through the proxy.
	href := js[string](t, b, `document.querySelector("#endpoints a").getAttribute("href")`)
	proxyURL := fmt.Sprintf("/proxy/%d/web0/8080/", id)
	if href != proxyURL {
		t.Errorf("the endpoint links to %q, want %q", href, proxyURL)
	}
	b.Click("open through Zoe's proxy")
	for _, want := range fl.servicePage(id) {
		b.WaitText(want)
	}
	if got := b.URL(); got != d.url+proxyURL {
		t.Errorf("the link led to %s", got)
	}
	b.Screenshot("service page")
	b.AssertClean()

	// Someone not logged in is sent to the login page, and back.
	anon := chromium.Browser(t)
	if status := anon.Navigate(d.url + proxyURL); status != http.StatusUnauthorized {
		t.Errorf("an anonymous visit to the service: %d, want 401", status)
	}
	anon.Click("Log in to Zoe")
	anon.WaitSelector("#password") // the login page, not the proxy's, which has the link's text
	anon.Fill("Username", "alice")
	anon.Fill("Password", password("alice"))
	anon.Click("Log in")
	for _, want := range fl.servicePage(id) {
		anon.WaitText(want)
	}
	anon.Screenshot("service page after logging in")

	// Its log, live.
	b.Navigate(execURL)
	waitStatus(t, b, "running")
	m = mark(t, b)
	line := fl.liveLog(t, b, proxyURL)
	b.WaitText(line)
	notReloaded(t, b, m, "the log was written")
	b.Screenshot("live log")
	b.AssertClean()

	// Another user may not open it.
	bob := chromium.Browser(t)
	logIn(t, bob, d, "bob")
	if status := bob.Navigate(d.url + proxyURL); status != http.StatusForbidden {
		t.Errorf("bob opens alice's service: %d, want 403", status)
	}
	bob.WaitText("is not yours")
	bob.Screenshot("another user refused")
	if status := bob.Navigate(execURL); status != http.StatusNotFound && status != http.StatusForbidden {
		t.Errorf("bob opens alice's execution page: %d, want 403 or 404", status)
	}

	// Stop it.
	b.Click("Terminate")
	waitStatus(t, b, "terminated")
	b.Screenshot("terminated")
	b.AssertClean()
	if a := d.bearer(t, "alice").get(proxyURL); a.status != http.StatusNotFound {
		t.Errorf("the proxy URL of a terminated execution: %d, want 404", a.status)
	}
	b.Click("Executions")
	waitURL(t, b, d.url+"/executions")
	b.WaitText("browser run")
	b.Screenshot("executions")
	b.AssertClean()
}

// guest: a guest starts the shop's entry from the pages, and the API
// refuses them.
func guest(t *testing.T, d *daemon, param, value string) {
	b := chromium.Browser(t)
	logIn(t, b, d, "gus")
	b.Screenshot("guest home")
	b.AssertClean()
	id := startFromShop(t, b, d, "guest run", param, value)
	waitStatus(t, b, "running")
	b.Screenshot("guest execution")
	b.AssertClean()
	c := d.client(t)
	c.loginPage("gus")
	for _, p := range []string{"/", "/shop", "/shop/web-0", "/executions", fmt.Sprintf("/executions/%d", id)} {
		c.checkHTML(p)
	}
	status, token := d.apiLogin(t, "gus")
	if status != http.StatusForbidden || token != "" {
		t.Errorf("a guest's API login: %d (token %t), want 403 and no token", status, token != "")
	}
	// Nor may the guest's session cookie be used on the API.
	if a := c.get(fmt.Sprintf("/api/v1/executions/%d", id)); a.status != http.StatusUnauthorized && a.status != http.StatusForbidden {
		t.Errorf("the API with a guest's session cookie: %d %s", a.status, a.body)
	}
	b.Click("Terminate")
	waitStatus(t, b, "terminated")
	b.AssertClean()
}

// exampleNotebook starts the example shop's notebook (examples/shop) as
// the README's walkthrough does, and opens it through Zoe's proxy: on
// backend-sim, a simulated service's page.
func exampleNotebook(t *testing.T, d *daemon, page []string) {
	b := chromium.Browser(t)
	startExampleEntry(t, b, d, "Jupyter notebook", "Idle shutdown (minutes)", "my notebook")
	b.Screenshot("notebook running")
	b.AssertClean()
	execURL := b.URL()
	// The click returns before the navigation ends: the link is read from
	// the page, and the browser waited for, not asked where it is at once.
	link := d.url + js[string](t, b, `document.querySelector("#endpoints a").getAttribute("href")`)
	b.Click("open through Zoe's proxy")
	waitURL(t, b, link)
	for _, want := range page {
		b.WaitText(want)
	}
	b.Screenshot("notebook page")
	b.Navigate(execURL)
	b.Click("Terminate")
	waitStatus(t, b, "terminated")
}

// startExampleEntry logs alice in and starts the example shop's entry
// from its start page, with its defaults (the start page shows field),
// and waits until it runs and its endpoints show.
func startExampleEntry(t *testing.T, b *testutil.Browser, d *daemon, entry, field, name string) {
	t.Helper()
	logIn(t, b, d, "alice")
	b.Click("ZApp shop")
	waitURL(t, b, d.url+"/shop")
	b.WaitText(entry)
	b.Click("Start " + entry)
	b.WaitText(field)
	b.Fill("Execution name", name)
	b.Click("Start")
	waitStatus(t, b, "running")
	b.WaitSelector("#endpoints a")
}

// daskNotebook is the path of the README from the shop to a computation:
// alice starts the example shop's Dask cluster from the web page, opens
// its notebook through Zoe's proxy (the real Jupyter of make images),
// makes a notebook, and computes on the cluster in a cell.
func daskNotebook(t *testing.T, d *daemon) {
	b := chromium.Browser(t)
	// Jupyter's pages take their time on 2 busy cores.
	b.SetStepTimeout(3 * time.Minute)
	startExampleEntry(t, b, d, "Dask cluster with a notebook", "Workers", "my cluster")
	b.Screenshot("Dask cluster running")
	execURL := b.URL()
	link := js[string](t, b, `[...document.querySelectorAll("#endpoints a")].map(a => a.getAttribute("href")).find(h => h.includes("/notebook0/8888/")) || ""`)
	if !strings.HasSuffix(link, "/notebook0/8888/tree") {
		t.Fatalf("the notebook's link: %q", link)
	}
	prefix := strings.TrimSuffix(link, "/tree")
	// Running is when the containers started: until Jupyter listens, the
	// proxy says so (502, a page that reloads itself every 3 seconds).
	testutil.WaitFor(t, 3*time.Minute, "Jupyter answering through the proxy", func() (bool, string) {
		status := b.Navigate(d.url + link)
		return status == http.StatusOK, fmt.Sprintf("status %d", status)
	})
	// Jupyter's file list, through the proxy, without a token to type.
	b.WaitText("Select items to perform actions on them.")
	b.Screenshot("Jupyter through the proxy")
	// A new notebook, as the New menu makes one (the page's own API call),
	// then opened.
	ctx, cancel := context.WithTimeout(b.Context(), time.Minute)
	defer cancel()
	name, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`fetch(%q, {method: "POST",
		headers: {"Content-Type": "application/json", "X-XSRFToken": (document.cookie.match(/_xsrf=([^;]*)/) || [])[1] || ""},
		body: JSON.stringify({type: "notebook"})}).then(r => r.json()).then(j => j.name || JSON.stringify(j))`, prefix+"/api/contents"),
		chromedp.EvalAwaitPromise))
	if err != nil || !strings.HasSuffix(name, ".ipynb") {
		t.Fatalf("creating a notebook: %s %v", name, err)
	}
	b.Navigate(d.url + prefix + "/notebooks/" + name)
	testutil.WaitFor(t, 3*time.Minute, "the notebook's kernel connected", func() (bool, string) {
		ok := js[bool](t, b, `!!(window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected())`)
		return ok, "not yet"
	})
	js[bool](t, b, `(Jupyter.notebook.get_cell(0).set_text(`+"`"+`from dask.distributed import Client
import dask.array as da
client = Client()
client.wait_for_workers(1, timeout=120)
print("the cluster's sum:", da.ones((2000, 2000), chunks=500).sum().compute())`+"`"+`), Jupyter.notebook.execute_cell_and_select_below(), true)`)
	b.WaitText("the cluster's sum: 4000000.0")
	b.Screenshot("a Dask computation in the notebook")
	b.Navigate(execURL)
	b.Click("Terminate")
	waitStatus(t, b, "terminated")
}
