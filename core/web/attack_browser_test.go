package web_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zoe-project/zoe/internal/testutil"
)

// TestAttackBrowserScripts: in headless Chromium, which sends Fetch
// Metadata to 127.0.0.1, a script running at Zoe's origin cannot read a
// page with fetch (a service's page through the proxy has that origin),
// while the execution page's own live log still works.
func TestAttackBrowserScripts(t *testing.T) {
	e := newEnv(t, "/zoe")
	ex := e.as("alice").startDemo(url.Values{"p.ZOE_SIM_LOG": {"a line to see live"}}).location()
	b := testutil.NewBrowser(t)
	if st := b.Navigate(e.addr + "/zoe/login"); st != 200 {
		t.Fatalf("login page: %d", st)
	}
	b.Fill("Username", "alice")
	b.Fill("Password", passwords["alice"])
	b.Click("Log in")
	b.WaitText("Welcome, alice")
	if st := b.Navigate(e.addr + ex); st != 200 {
		t.Fatalf("execution page: %d", st)
	}
	b.WaitText("a line to see live")
	ctx, cancel := context.WithTimeout(b.Context(), 60*time.Second)
	defer cancel()
	for _, path := range []string{"/zoe/", ex, "/zoe/executions"} {
		status, err := chromedp.Run(ctx, chromedp.Evaluate[int](
			`fetch(`+js(path)+`, {credentials: "include"}).then((r) => r.status)`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if status != 403 {
			t.Errorf("a script's fetch of %s: %d, want 403", path, status)
		}
	}
}

func js(s string) string { return "'" + s + "'" }
