package web_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/zoe-project/zoe/internal/testutil"
)

// TestAdminInBrowser: an admin manages Zoe with Chromium, by clicking
// through the pages, at a phone's width; the pages run no script the CSP
// refuses and load nothing from elsewhere. The daemon serves at / (the
// other tests use a base path).
func TestAdminInBrowser(t *testing.T) {
	e := newEnv(t, "")
	e.as("alice") // a user to manage
	b := testutil.NewBrowser(t)
	ctx := b.Context()
	if _, err := chromedp.Run(ctx, chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile)); err != nil {
		t.Fatalf("a phone's viewport: %v", err)
	}
	// noOverflow fails when the page is wider than the phone: everything
	// wide scrolls inside its own box.
	noOverflow := func(page string) {
		t.Helper()
		// The elements reaching beyond the phone's width (360 px), but
		// those inside a box that scrolls.
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("body *")]
  .filter((e) => e.getBoundingClientRect().right > 361 && !e.closest(".scroll"))
  .map((e) => e.tagName + (e.id ? "#" + e.id : "") + (e.className ? "." + e.className : "") + " " + Math.round(e.getBoundingClientRect().right))`))
		if err != nil || len(wide) > 0 {
			t.Errorf("%s is wider than a phone: %v %v", page, wide, err)
		}
		sw, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, document.documentElement.clientWidth]`))
		if err != nil || sw[0] > sw[1] {
			t.Errorf("%s scrolls sideways: scroll width and width %v %v", page, sw, err)
		}
	}

	b.Navigate(e.addr + "/login")
	b.Fill("Username", "root")
	b.Fill("Password", passwords["root"])
	b.Click("Log in")
	b.WaitText("Welcome, root")

	b.Click("Admin")
	b.WaitText("Reserved on all nodes")
	b.WaitSelector("meter")
	noOverflow("the status page")
	b.Screenshot("admin-status")

	b.Click("Users and tokens")
	b.Click("alice")
	b.WaitText("Role and quota")
	noOverflow("a user's page")
	b.Fill("Role", "guest")
	b.Click("Save role, quota and address")
	b.WaitText("The changes are saved.")
	if got := b.Text(".facts"); !strings.Contains(got, "guest (given by an admin") {
		t.Errorf("alice's role after the change: %q", got)
	}
	b.Screenshot("admin-user")

	b.Click("Quotas")
	b.Fill("Name", "students")
	b.Fill("Executions at a time", "2")
	b.Fill("Cores reserved at a time", "4")
	b.Fill("Memory reserved at a time", "16GiB")
	b.Fill("Longest run of an execution", "8h")
	b.Click("Create the quota")
	b.WaitText("The quota is created.")
	if got := b.PageText(); !strings.Contains(got, "students") || !strings.Contains(got, "16.0 GiB") {
		t.Errorf("the quotas after creating one:\n%s", got)
	}
	noOverflow("the quotas")
	b.Screenshot("admin-quotas")
	b.Click("Delete quota students")
	b.WaitText("Delete quota students?")
	b.Click("Delete quota students")
	b.WaitText("The quota is deleted")

	b.Click("Failed logins")
	b.WaitText("Password checks")
	noOverflow("the failed logins")
	b.AssertClean()

	// A bad value is said beside its field (the answer is a 400, so
	// after AssertClean).
	b.Click("Quotas")
	b.Fill("Name", "bad")
	b.Fill("Memory reserved at a time", "lots")
	b.Click("Create the quota")
	b.WaitText(`invalid size "lots"`)
	if got := b.Text("#new-memory-help"); !strings.Contains(got, "invalid size") {
		t.Errorf("beside the memory field: %q", got)
	}
	b.Screenshot("admin-quota-error")
	if u, _ := url.Parse(b.URL()); u.Path != "/admin/quotas" {
		t.Errorf("after the bad form: %s", b.URL())
	}
}
