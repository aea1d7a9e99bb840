package browsertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zoe-project/zoe/internal/htmlcheck"
)

// proxyWiring checks, over HTTP, who the daemon's proxy lets through to
// a service of alice's: her bearer token and her session cookie reach
// it, so does an admin (in a sandbox); bob is refused (403), an anonymous
// caller asked to log in (401, with the login page's link), and once the
// execution is terminated its URL is 404 at once.
func proxyWiring(t *testing.T, d *daemon) {
	alice := d.bearer(t, "alice")
	var ex struct {
		ID int64 `json:"id"`
	}
	body, _ := json.Marshal(map[string]any{"name": "proxied",
		"description": json.RawMessage(fmt.Sprintf(webZApp, `["ZOE_SIM_LOG", "proxied"]`))})
	a := alice.do("POST", "/api/v1/executions", strings.NewReader(string(body)), http.Header{"Content-Type": {"application/json"}})
	if a.status != http.StatusCreated && a.status != http.StatusAccepted {
		t.Fatalf("start: %d %s", a.status, a.body)
	}
	if err := json.Unmarshal([]byte(a.body), &ex); err != nil || ex.ID == 0 {
		t.Fatalf("start: %s (%v)", a.body, err)
	}
	prefix := fmt.Sprintf("/proxy/%d/web0/8080", ex.ID)
	path := prefix + "/a/b?c=d"
	waitFor(t, "the service to answer through the proxy", 60*time.Second, func() (bool, string) {
		a := alice.get(path)
		return a.status == http.StatusOK, fmt.Sprint(a.status)
	})

	cookie := d.client(t)
	cookie.loginPage("alice")
	bobCookie := d.client(t)
	bobCookie.loginPage("bob")
	cases := []struct {
		name   string
		c      *client
		status int
		want   []string
	}{
		{"alice's bearer token", alice, http.StatusOK, []string{"GET " + path, `<dd id="forwarded-prefix">` + prefix + "</dd>"}},
		{"alice's session cookie", cookie, http.StatusOK, []string{"GET " + path}},
		{"an admin", d.bearer(t, "root"), http.StatusOK, []string{"GET " + path}},
		{"bob's bearer token", d.bearer(t, "bob"), http.StatusForbidden, []string{"is not yours"}},
		{"bob's session cookie", bobCookie, http.StatusForbidden, []string{"is not yours"}},
		{"anonymous", d.client(t), http.StatusUnauthorized, []string{`href="/login?next=` + url.QueryEscape(path) + `"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.c.t = t
			// As a browser asks: the refusals are then pages.
			a := c.c.do("GET", path, nil, http.Header{"Accept": {"text/html"}})
			if a.status != c.status {
				t.Fatalf("status %d, want %d:\n%s", a.status, c.status, a.body)
			}
			for _, w := range c.want {
				if !strings.Contains(a.body, strings.ReplaceAll(w, "&", "&amp;")) && !strings.Contains(a.body, w) {
					t.Errorf("the answer lacks %q:\n%s", w, a.body)
				}
			}
			// The proxy's own pages (and the simulated service's) are
			// well-formed and load nothing; the proxy's may have a style
			// element, which their Content-Security-Policy allows.
			base, _ := url.Parse(d.url + path)
			for _, p := range htmlcheck.Check(strings.NewReader(a.body), base) {
				if p.Rule != htmlcheck.RuleInlineStyle {
					t.Errorf("HTML: %v", p)
				}
			}
			// Zoe's own credentials never reach the service.
			if c.status == http.StatusOK && (strings.Contains(a.body, "zoe_session") || strings.Contains(a.body, "Bearer")) {
				t.Errorf("the service saw Zoe's credentials:\n%s", a.body)
			}
		})
	}
	// The admin's view runs in a sandbox: the service's scripts cannot act
	// with the admin's session.
	if a := d.bearer(t, "root").get(path); !strings.Contains(strings.Join(a.header.Values("Content-Security-Policy"), ", "), "sandbox") {
		t.Errorf("an admin's view of a user's service has no sandbox: CSP %q", a.header.Values("Content-Security-Policy"))
	}

	t.Run("WebSocket", func(t *testing.T) {
		ws := "ws" + strings.TrimPrefix(d.url, "http") + prefix + "/echo"
		hdr := http.Header{"Authorization": {"Bearer " + alice.token}}
		c, _, err := websocket.Dial(contextFor(t, 30*time.Second), ws, &websocket.DialOptions{HTTPHeader: hdr})
		if err != nil {
			t.Fatalf("WebSocket through the proxy: %v", err)
		}
		defer c.CloseNow()
		ctx := contextFor(t, 30*time.Second)
		if err := c.Write(ctx, websocket.MessageText, []byte("ping through zoe")); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := c.Read(ctx); err != nil || string(msg) != "ping through zoe" {
			t.Fatalf("echo: %q %v", msg, err)
		}
		if _, resp, err := websocket.Dial(contextFor(t, 30*time.Second), ws, &websocket.DialOptions{
			HTTPHeader: http.Header{"Authorization": {"Bearer " + d.bearer(t, "bob").token}}}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("bob's WebSocket: %v, %v", resp, err)
		}
	})

	// Terminated: the very next request is refused, without waiting for
	// the execution to be cleaned up.
	if a := alice.do("POST", fmt.Sprintf("/api/v1/executions/%d/terminate", ex.ID), nil, nil); a.status != http.StatusAccepted && a.status != http.StatusOK {
		t.Fatalf("terminate: %d %s", a.status, a.body)
	}
	if a := alice.get(path); a.status != http.StatusNotFound {
		t.Errorf("right after the terminate: %d, want 404:\n%s", a.status, a.body)
	}
}
