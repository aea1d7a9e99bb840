package web_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/core/api"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/web"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// oneUser is an auth source of one user, in process: this test is about
// the cookie's flags under TLS, which the daemon tests cannot reach without
// a certificate; the real API and store are used.
type oneUser struct{}

func (oneUser) Authenticate(_ context.Context, user, password string) (auth.Identity, error) {
	if user != "alice" || password != "pw" {
		return auth.Identity{}, sdk.ErrInvalidCredentials
	}
	return auth.Identity{Username: "alice", Role: auth.RoleUser}, nil
}

func (oneUser) Lookup(_ context.Context, user string) (auth.Identity, error) {
	if user != "alice" {
		return auth.Identity{}, sdk.ErrNotFound
	}
	return auth.Identity{Username: "alice", Role: auth.RoleUser}, nil
}

func (oneUser) Generation(context.Context) (uint64, error) { return 1, nil }

// TestCookiesUnderTLS: served over TLS, the session and login cookies are
// Secure, HttpOnly and SameSite=Lax, for the base path only.
func TestCookiesUnderTLS(t *testing.T) {
	st, err := state.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "zoe.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := api.New(nil, api.Config{Store: st, Auth: []api.Authenticator{oneUser{}}})
	t.Cleanup(a.Shutdown)
	srv := httptest.NewTLSServer(web.New(nil, web.Config{API: a, BasePath: "/z", Secure: true}))
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	c := srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	resp, err := c.Get(srv.URL + "/z/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	checkCookie(t, resp, "zoe_login")
	b := &browser{e: &env{t: t, addr: srv.URL, base: "/z"}, c: c, header: http.Header{}}
	page := b.get("/login")
	resp, err = c.PostForm(srv.URL+"/z/login", url.Values{"csrf": {csrf(t, page.body, "/z/login")}, "username": {"alice"}, "password": {"pw"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	checkCookie(t, resp, "zoe_session")
}

func checkCookie(t *testing.T, resp *http.Response, name string) {
	t.Helper()
	for _, raw := range resp.Header.Values("Set-Cookie") {
		if !strings.HasPrefix(raw, name+"=") {
			continue
		}
		for _, want := range []string{"Path=/z", "HttpOnly", "Secure", "SameSite=Lax"} {
			if !strings.Contains(raw, want) {
				t.Errorf("%s: %q lacks %s", name, raw, want)
			}
		}
		return
	}
	t.Errorf("no %s cookie set", name)
}

// TestCookiesBehindProxy: behind a TLS-terminating proxy named in
// trusted_proxies, a request it says came over https gets Secure cookies;
// the same header from anyone else, or over http, does not.
func TestCookiesBehindProxy(t *testing.T) {
	st, err := state.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "zoe.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := api.New(nil, api.Config{Store: st, Auth: []api.Authenticator{oneUser{}}})
	t.Cleanup(a.Shutdown)
	for _, c := range []struct {
		name    string
		trusted string
		proto   string
		secure  bool
	}{
		{"a trusted proxy, https", "127.0.0.0/8", "https", true},
		{"a trusted proxy, https first of two", "127.0.0.1/32", "https, http", true},
		{"a trusted proxy, http", "127.0.0.0/8", "http", false},
		{"no trusted proxy", "", "https", false},
		{"another proxy", "192.0.2.0/24", "https", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := web.Config{API: a, BasePath: "/z"}
			if c.trusted != "" {
				cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix(c.trusted)}
			}
			srv := httptest.NewServer(web.New(nil, cfg))
			t.Cleanup(srv.Close)
			req, _ := http.NewRequest("GET", srv.URL+"/z/login", nil)
			req.Header.Set("X-Forwarded-Proto", c.proto)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			raw := resp.Header.Get("Set-Cookie")
			if !strings.HasPrefix(raw, "zoe_login=") || strings.Contains(raw, "; Secure") != c.secure {
				t.Errorf("Set-Cookie %q, want zoe_login Secure %v", raw, c.secure)
			}
		})
	}
}
