package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/api"
	"github.com/zoe-project/zoe/core/proxy"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/web"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// attackUser is an auth source of two users, alice and bob (password
// pw), in process: the
// test is about how the proxy's caller is found; the real API and store
// are used.
type attackUser struct{}

func (attackUser) Authenticate(_ context.Context, user, password string) (auth.Identity, error) {
	if (user != "alice" && user != "bob") || password != "pw" {
		return auth.Identity{}, sdk.ErrInvalidCredentials
	}
	return auth.Identity{Username: user, Role: auth.RoleUser}, nil
}

func (attackUser) Lookup(_ context.Context, user string) (auth.Identity, error) {
	if user != "alice" && user != "bob" {
		return auth.Identity{}, sdk.ErrNotFound
	}
	return auth.Identity{Username: user, Role: auth.RoleUser}, nil
}

func (attackUser) Generation(context.Context) (uint64, error) { return 1, nil }

// TestAttackProxyCallerAppCredentials: a proxied app's own Authorization
// header (Jupyter's "token <t>", an app's Basic login) is the app's, not
// Zoe's: a browser with a Zoe session is identified by its session and
// the header goes on to the app, instead of being checked as Zoe
// credentials (refused, counted as failed Zoe logins, and the app's
// password handed to Zoe's auth sources). A Zoe bearer token in the
// header is still Zoe's and is checked.
func TestAttackProxyCallerAppCredentials(t *testing.T) {
	st, err := state.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "zoe.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := api.New(nil, api.Config{Store: st, Auth: []api.Authenticator{attackUser{}}})
	t.Cleanup(a.Shutdown)
	sess := attackLogin(t, a, "alice")
	cookie := "zoe_session=" + strconv.FormatInt(sess.TokenInfo.ID, 10) + "." + sess.Token
	bob := attackLogin(t, a, "bob")
	bobCookie := "zoe_session=" + strconv.FormatInt(bob.TokenInfo.ID, 10) + "." + bob.Token
	who := proxyCaller(a)
	for _, tc := range []struct {
		name, cookie, auth string
		user               string // "" for refused as unauthenticated
		header             bool
	}{
		{"session and the app's token scheme", cookie, "token 0123abcd", "alice", false},
		{"session and the app's Basic login", cookie, "Basic YXBwOmFwcA==", "alice", false},
		{"session and the app's own bearer token", cookie, "Bearer app-token", "alice", false},
		{"session and a bad Zoe token", cookie, "Bearer zoe_forged", "", false},
		{"Zoe token alone", "", "Bearer " + sess.Token, "alice", true},
		{"Zoe Basic login alone", "", "Basic YWxpY2U6cHc=", "alice", true},
		{"the app's token alone", "", "token 0123abcd", "", false},
		{"session alone", cookie, "", "alice", false},
		// A cookie planted for a longer path is sent first: two sessions
		// of different users are refused, not the first one believed.
		{"bob's session planted before alice's", bobCookie + "; " + cookie, "", "", false},
		{"alice's session twice", cookie + "; " + cookie, "", "alice", false},
		{"a stale session before alice's", "zoe_session=1.zoe_stale; " + cookie, "", "alice", false},
		{"a planted nameless value", "zoe_session=x; " + cookie, "", "alice", false},
		// Each session is looked up: many are refused before any is.
		{"five sessions", "zoe_session=1.zoe_a; zoe_session=2.zoe_b; zoe_session=3.zoe_c; zoe_session=4.zoe_d; " + cookie, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/proxy/1/nb/8888/", nil)
			if tc.cookie != "" {
				r.Header.Set("Cookie", tc.cookie)
			}
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			c, err := who(r)
			if tc.user == "" {
				if !errors.Is(err, proxy.ErrUnauthenticated) {
					t.Errorf("got %+v, %v; want unauthenticated", c, err)
				}
				return
			}
			if err != nil || c.Username != tc.user || c.Authorization != tc.header {
				t.Errorf("got %+v, %v; want %s (identified by the header: %v)", c, err, tc.user, tc.header)
			}
			if r.Header.Get("Authorization") != tc.auth {
				t.Errorf("the request's Authorization header was changed to %q", r.Header.Get("Authorization"))
			}
		})
	}
}

// attackLogin logs user in through the API and returns the session.
func attackLogin(t *testing.T, a *api.Server, user string) client.Session {
	t.Helper()
	rec := httptest.NewRecorder()
	login := httptest.NewRequest("POST", "/api/v1/sessions", strings.NewReader(`{"username":"`+user+`","password":"pw"}`))
	login.Header.Set("Content-Type", "application/json")
	a.ServeHTTP(rec, login)
	var sess client.Session
	if err := json.Unmarshal(rec.Body.Bytes(), &sess); err != nil || sess.Token == "" {
		t.Fatalf("login as %s: %d %s", user, rec.Code, rec.Body)
	}
	return sess
}

// attackTargets is the proxy's view of one running execution of alice's,
// 7, whose service nb0 has port 8888 proxied to addr: a fake of the store
// for the proxy only (the pages and the API use a real one).
type attackTargets struct{ addr string }

func (a attackTargets) GetExecution(_ context.Context, id int64) (state.Execution, error) {
	if id != 7 {
		return state.Execution{}, sdk.ErrNotFound
	}
	return state.Execution{ID: 7, Owner: "alice", Status: state.StatusRunning}, nil
}

func (a attackTargets) Services(context.Context, int64) ([]state.Service, error) {
	return []state.Service{{ID: 70, ExecutionID: 7, Name: "nb0", Status: state.ServiceRunning,
		Description: []byte(`{"name":"nb0","ports":[{"name":"web","port_number":8888,"protocol":"tcp","proxy":true}]}`)}}, nil
}

func (a attackTargets) Endpoints(context.Context, int64) ([]state.Endpoint, error) {
	host, port, _ := strings.Cut(a.addr, ":")
	n, _ := strconv.Atoi(port)
	return []state.Endpoint{{ServiceID: 70, ServiceName: "nb0", Name: "web", Port: 8888, Protocol: "tcp",
		ExternalAddress: host, ExternalPort: n}}, nil
}

func (a attackTargets) Version(context.Context) (uint64, bool) { return 1, true }

// TestAttackProxyCookiesThroughMount: the daemon's wiring, with and
// without a base path: the session cookie the login page sets (for the
// base path) reaches the proxy and identifies the browser, but neither it
// nor the login cookie reaches the service, whose attempt to set Zoe's
// cookie is dropped; the app's own cookie and Authorization pass.
func TestAttackProxyCookiesThroughMount(t *testing.T) {
	var seen struct {
		sync.Mutex
		cookie, auth string
	}
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Lock()
		seen.cookie, seen.auth = r.Header.Get("Cookie"), r.Header.Get("Authorization")
		seen.Unlock()
		w.Header().Add("Set-Cookie", "zoe_session=planted; Path=/")
		w.Header().Add("Set-Cookie", "zoe_login=planted; Path=/")
		w.Header().Add("Set-Cookie", "app=1; Path=/")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(svc.Close)
	for _, base := range []string{"/", "/zoe"} {
		t.Run(base, func(t *testing.T) {
			st, err := state.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "zoe.db"), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			a := api.New(nil, api.Config{Store: st, Auth: []api.Authenticator{attackUser{}}})
			t.Cleanup(a.Shutdown)
			pages := web.New(nil, web.Config{API: a, BasePath: base})
			prefix := strings.TrimSuffix(base, "/")
			p, err := proxy.New(hclog.NewNullLogger(), proxy.Config{Prefix: proxyBase(base), Store: attackTargets{strings.TrimPrefix(svc.URL, "http://")},
				Caller: proxyCaller(a), LoginURL: prefix + "/login", Cookies: web.Cookies()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Close() })
			srv := httptest.NewServer(mount(base, a, pages, p))
			t.Cleanup(srv.Close)
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			res, err := c.Get(srv.URL + prefix + "/login")
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(res.Body)
			res.Body.Close()
			m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
			if m == nil {
				t.Fatalf("no csrf field on the login page:\n%s", page)
			}
			res, err = c.PostForm(srv.URL+prefix+"/login", url.Values{"csrf": {string(m[1])}, "username": {"alice"}, "password": {"pw"}})
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusSeeOther {
				t.Fatalf("login: %d", res.StatusCode)
			}
			// The login cookie too, as a browser that opened the login
			// page again would have it.
			u, _ := url.Parse(srv.URL + prefix + "/proxy/7/nb0/8888/")
			jar.SetCookies(u, []*http.Cookie{{Name: "zoe_login", Value: strings.Repeat("L", 43), Path: prefix + "/"}, {Name: "app", Value: "mine", Path: "/"}})
			req, _ := http.NewRequest("GET", u.String(), nil)
			req.Header.Set("Authorization", "token jupyter-own")
			res, err = c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("through the proxy with the session: %d", res.StatusCode)
			}
			seen.Lock()
			cookie, auth := seen.cookie, seen.auth
			seen.Unlock()
			if strings.Contains(cookie, "zoe_") || !strings.Contains(cookie, "app=mine") {
				t.Errorf("the service got the cookies %q", cookie)
			}
			if auth != "token jupyter-own" {
				t.Errorf("the service got Authorization %q, want the app's own", auth)
			}
			for _, sc := range res.Header.Values("Set-Cookie") {
				if strings.HasPrefix(sc, "zoe_") {
					t.Errorf("the service set %q", sc)
				}
			}
		})
	}
}

// TestAttackProxyWebSocketRevoked: the daemon's wiring of the proxy's
// periodic check of open connections, with the real API and store: a
// WebSocket opened with a session stays open while the session lives
// (the check of what the proxy keeps of the request finds the same user),
// and is closed once the session is revoked.
func TestAttackProxyWebSocketRevoked(t *testing.T) {
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, b, err := c.Read(r.Context())
			if err != nil || c.Write(r.Context(), typ, b) != nil {
				return
			}
		}
	}))
	t.Cleanup(svc.Close)
	st, err := state.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "zoe.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := api.New(nil, api.Config{Store: st, Auth: []api.Authenticator{attackUser{}}})
	t.Cleanup(a.Shutdown)
	p, err := proxy.New(hclog.NewNullLogger(), proxy.Config{Prefix: proxyBase("/"), Store: attackTargets{strings.TrimPrefix(svc.URL, "http://")},
		Caller: proxyCaller(a), LoginURL: "/login", Cookies: web.Cookies(), CheckEvery: 10 * time.Millisecond, ReauthEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	srv := httptest.NewServer(mount("/", a, web.New(nil, web.Config{API: a, BasePath: "/"}), p))
	t.Cleanup(srv.Close)

	sess := attackLogin(t, a, "alice")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/proxy/7/nb0/8888/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Cookie": {"zoe_session=" + strconv.FormatInt(sess.TokenInfo.ID, 10) + "." + sess.Token}}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ws.CloseNow() }()
	// Ten checks' time: still open, still alice's.
	time.Sleep(200 * time.Millisecond)
	if err := ws.Write(ctx, websocket.MessageText, []byte("x")); err != nil {
		t.Fatalf("closed while the session lives: %v", err)
	}
	if _, b, err := ws.Read(ctx); err != nil || string(b) != "x" {
		t.Fatalf("closed while the session lives: %q, %v", b, err)
	}
	rec := httptest.NewRecorder()
	del := httptest.NewRequest("DELETE", "/api/v1/tokens/"+strconv.FormatInt(sess.TokenInfo.ID, 10), nil)
	del.Header.Set("Authorization", "Bearer "+sess.Token)
	a.ServeHTTP(rec, del)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
	}
	// Blocks until the proxy closes it (the context bounds a failing test).
	if _, _, err := ws.Read(ctx); err == nil || ctx.Err() != nil {
		t.Errorf("open after the session was revoked: %v", err)
	}
}
