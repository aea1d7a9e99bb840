package web_test

// Attacks on the pages from outside: forged and oversized cookies,
// requests that should change nothing, markup in what users name, streams
// a browser leaves, oversized forms, and the security headers of every
// answer, errors included.

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/api"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/web"
)

func TestAttackPages(t *testing.T) {
	e := newEnv(t, "/zoe")
	alice := e.as("alice")
	ex := alice.startDemo(url.Values{"name": {`<script>alert("n")</script>`},
		"p.ZOE_SIM_LOG": {`<img src=x onerror=alert(1)>|</pre><script>alert(2)</script>`}}).location()
	if !regexp.MustCompile(`^/zoe/executions/\d+$`).MatchString(ex) {
		t.Fatalf("start: to %q", ex)
	}
	svc := regexp.MustCompile(`/zoe/services/\d+/log`).FindString(alice.do("GET", ex, nil).body)
	if svc == "" {
		t.Fatal("no log link on the execution page")
	}

	t.Run("security headers on every answer", func(t *testing.T) {
		e := e.with(t)
		b := e.as("bob")
		for _, tc := range []struct {
			method, path string
			hdr          []string
		}{
			{"GET", "/zoe/login", nil},
			{"GET", "/zoe/", nil},
			{"GET", "/zoe/nothing-here", nil},
			{"GET", "/zoe/executions/abc", nil},
			{"GET", "/zoe/executions/99999999", nil},
			{"POST", "/zoe/executions", nil},
			{"GET", "/zoe/logout", nil},
			{"POST", "/zoe/logout", []string{"Sec-Fetch-Site", "cross-site"}},
			{"POST", "/zoe/login", []string{"Origin", "null"}},
			{"GET", "/zoe/static/nothing.css", nil},
			{"GET", ex + "/events", nil},
			{"GET", svc, nil},
		} {
			req, _ := http.NewRequest(tc.method, e.addr+tc.path, nil)
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				req.Header.Set(tc.hdr[i], tc.hdr[i+1])
			}
			resp, err := b.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Errorf("%s %s: %d", tc.method, tc.path, resp.StatusCode)
			}
			h := resp.Header
			if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") ||
				!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
				h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
				t.Errorf("%s %s (%d): CSP %q, nosniff %q, frame %q", tc.method, tc.path, resp.StatusCode,
					h.Get("Content-Security-Policy"), h.Get("X-Content-Type-Options"), h.Get("X-Frame-Options"))
			}
		}
	})

	t.Run("cross-origin posts refused with a valid token", func(t *testing.T) {
		e := e.with(t)
		b := e.as("bob")
		token := csrf(t, b.get("/").body, "/zoe/logout")
		for _, hdr := range [][]string{
			{"Origin", "null"},
			{"Origin", "http://127.0.0.1:1"},
			{"Sec-Fetch-Site", "same-site"},
			{"Sec-Fetch-Site", "cross-site", "Origin", e.addr},
		} {
			for i := 0; i+1 < len(hdr); i += 2 {
				b.header.Set(hdr[i], hdr[i+1])
			}
			a := b.post("/logout", url.Values{"csrf": {token}})
			b.header = http.Header{}
			if a.status != http.StatusForbidden {
				t.Errorf("logout with %v: %d, want 403", hdr, a.status)
			}
		}
		if home := b.get("/"); home.status != 200 {
			t.Errorf("bob's session after the refused logouts: %d", home.status)
		}
	})

	t.Run("no session fixation", func(t *testing.T) {
		e := e.with(t)
		planted := e.as("bob").sessionCookie()
		b := e.browser()
		u, _ := url.Parse(e.addr + "/zoe/")
		b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "zoe_session", Value: planted.Value, Path: "/zoe"}})
		if a := b.login("alice", passwords["alice"], ""); a.status != http.StatusSeeOther {
			t.Fatalf("login: %d", a.status)
		}
		if got := b.sessionCookie(); got == nil || got.Value == planted.Value {
			t.Fatal("the login kept the session cookie the browser came with")
		}
		if home := b.get("/"); !strings.Contains(home.body, "Welcome, alice") {
			t.Error("after logging in as alice the pages are not alice's")
		}
	})

	t.Run("nothing changes by GET or a method override", func(t *testing.T) {
		e := e.with(t)
		for _, tc := range []struct{ method, path, override string }{
			{"GET", ex + "/terminate", ""},
			{"HEAD", ex + "/terminate", ""},
			{"GET", ex + "/restart", ""},
			{"POST", ex, "DELETE"},
			{"GET", ex, "POST"},
		} {
			req, _ := http.NewRequest(tc.method, e.addr+tc.path+"?csrf=x", nil)
			if tc.override != "" {
				req.Header.Set("X-HTTP-Method-Override", tc.override)
				req.Header.Set("X-Method-Override", tc.override)
			}
			resp, err := alice.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusSeeOther {
				t.Errorf("%s %s (override %q): %d to %q", tc.method, tc.path, tc.override, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		if page := alice.do("GET", ex, nil); !strings.Contains(page.body, "/terminate") {
			t.Error("the execution is no longer active after GETs")
		}
	})

	t.Run("forged, huge and many cookies", func(t *testing.T) {
		e := e.with(t)
		id, tok, _ := strings.Cut(alice.sessionCookie().Value, ".")
		bobID, bobTok, _ := strings.Cut(e.as("bob").sessionCookie().Value, ".")
		for _, tc := range []struct {
			name, cookie string
			want         int    // status of GET /zoe/executions
			who          string // user the page is for, when 200
		}{
			{"no dot", "zoe_session=" + tok, 303, ""},
			{"another id", "zoe_session=" + bobID + "." + tok, 200, "alice"},
			{"bob's token with alice's id", "zoe_session=" + id + "." + bobTok, 200, "bob"},
			{"forged token", "zoe_session=" + id + ".zoe_" + strings.Repeat("A", 43), 303, ""},
			{"negative id", "zoe_session=-1." + tok, 200, "alice"},
			{"huge id", "zoe_session=99999999999999999999." + tok, 303, ""},
			{"empty token", "zoe_session=" + id + ".", 303, ""},
			{"a garbage cookie first", "zoe_session=x.y; zoe_session=" + id + "." + tok, 303, ""},
			// A session a service's script planted at a longer path
			// comes first: neither is used, and the cookies are cleared.
			{"a planted session first", "zoe_session=" + bobID + "." + bobTok + "; zoe_session=" + id + "." + tok, 303, ""},
			{"many cookies", strings.Repeat("zoe_session=1.zoe_x; ", 300) + "zoe_session=" + id + "." + tok, 303, ""},
			{"huge cookie", "zoe_session=" + id + "." + strings.Repeat("A", 2<<20), 431, ""},
		} {
			req, _ := http.NewRequest("GET", e.addr+"/zoe/executions", nil)
			req.Header.Set("Cookie", tc.cookie)
			resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			body := new(strings.Builder)
			_, _ = bufio.NewReader(resp.Body).WriteTo(body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
			}
			if cleared := resp.Header.Get("Clear-Site-Data") == `"cookies"`; cleared != strings.Contains(tc.name, "planted") && tc.name != "many cookies" {
				t.Errorf("%s: Clear-Site-Data %q", tc.name, resp.Header.Get("Clear-Site-Data"))
			}
			if tc.who != "" && !strings.Contains(body.String(), ">"+tc.who+"<") && !strings.Contains(body.String(), tc.who) {
				t.Errorf("%s: the page is not %s's", tc.name, tc.who)
			}
		}
	})

	t.Run("markup users write stays text", func(t *testing.T) {
		e := e.with(t)
		for _, path := range []string{ex, "/zoe/executions", "/zoe/"} {
			a := alice.do("GET", path, nil)
			if a.status != 200 {
				t.Fatalf("GET %s: %d", path, a.status)
			}
			for _, bad := range []string{`<script>alert("n")`, `<img src=x`, `</pre><script>`, `<script>alert(2)`} {
				if strings.Contains(a.body, bad) {
					t.Errorf("GET %s shows %q as markup", path, bad)
				}
			}
		}
		a := alice.do("GET", svc, nil)
		if cd := a.header.Get("Content-Disposition"); !regexp.MustCompile(`^attachment; filename="zoe-\d+-[A-Za-z0-9._-]+\.log"$`).MatchString(cd) {
			t.Errorf("Content-Disposition %q", cd)
		}
		if ct := a.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("log download Content-Type %q: a browser could render it", ct)
		}
		_ = e
	})

	t.Run("streams end when the browser leaves", func(t *testing.T) {
		e := e.with(t)
		// More than the API's 16 streams per user, one after another: a
		// stream the pages kept open after the browser left would hold a
		// place, and the API would refuse the 17th.
		open := func(path string) {
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", e.addr+path, nil)
			resp, err := (&http.Client{Jar: alice.c.Jar}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s: %d", path, resp.StatusCode)
			}
			if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
		open(ex + "/events?after=0")
		open(svc + "/live")
		runtime.GC()
		before := runtime.NumGoroutine()
		for range 20 {
			open(ex + "/events?after=0")
			open(svc + "/live")
		}
		// The handlers end once they see the connection gone: wait for
		// the count to come back, and fail if it never does.
		deadline := time.Now().Add(60 * time.Second)
		for runtime.NumGoroutine() > before+10 {
			if time.Now().After(deadline) {
				t.Fatalf("goroutines: %d before 40 streams were opened and closed, %d after", before, runtime.NumGoroutine())
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("oversized forms", func(t *testing.T) {
		page := alice.get("/upload")
		if page.status != 200 {
			t.Fatalf("upload page: %d", page.status)
		}
		big := strings.Repeat("x", 3<<20)
		for _, tc := range []struct {
			path string
			form url.Values
		}{
			{"/upload", url.Values{"csrf": {csrf(t, page.body, "/zoe/upload")}, "description": {big}}},
			{"/login", url.Values{"username": {big}}},
			{ex + "/terminate", url.Values{"csrf": {big}}},
		} {
			p := tc.path
			if !strings.HasPrefix(p, "/zoe/") {
				p = "/zoe" + p
			}
			a := alice.do("POST", p, tc.form)
			if a.status != http.StatusBadRequest && a.status != http.StatusRequestEntityTooLarge && a.status != http.StatusForbidden {
				t.Errorf("POST %s with 3 MiB: %d\n%.300s", p, a.status, a.body)
			}
		}
	})
}

// TestAttackLoginThrottleForwardedFor: with no trusted proxy, the pages'
// failed logins are throttled by the connection's address, whatever
// X-Forwarded-For the browser sends.
func TestAttackLoginThrottleForwardedFor(t *testing.T) {
	st, err := state.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "zoe.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := api.New(nil, api.Config{Store: st, Auth: []api.Authenticator{oneUser{}}})
	t.Cleanup(a.Shutdown)
	srv := httptest.NewServer(web.New(nil, web.Config{API: a, BasePath: "/z"}))
	t.Cleanup(srv.Close)
	e := &env{t: t, addr: srv.URL, base: "/z"}
	throttled := false
	for i := range 30 {
		b := e.browser()
		b.header.Set("X-Forwarded-For", "198.51.100."+string(rune('0'+i%10))+string(rune('0'+i/10)))
		if b.login("alice", "wrong", "").status == http.StatusTooManyRequests {
			throttled = true
			break
		}
	}
	if !throttled {
		t.Fatal("30 failed logins, each with another X-Forwarded-For, were never throttled")
	}
}

// TestAttackRestartAnothersExecution: "Start again" starts a new
// execution as the one who clicks, with the old one's description. An
// admin doing so on a user's execution would run the user's images and
// commands as the admin, with the admin's workspace and rights: the
// button is the owner's only.
func TestAttackRestartAnothersExecution(t *testing.T) {
	e := newEnv(t, "/zoe")
	alice := e.as("alice")
	ex := alice.startDemo(nil).location()
	root := e.as("root")
	page := root.do("GET", ex, nil)
	if page.status != 200 {
		t.Fatalf("the admin's view of alice's execution: %d", page.status)
	}
	if strings.Contains(page.body, ex+"/restart") {
		t.Error("the admin is offered to start alice's execution again as themselves")
	}
	a := root.do("POST", ex+"/restart", url.Values{"csrf": {csrf(t, page.body, ex+"/terminate")}})
	if a.status != http.StatusForbidden {
		t.Errorf("the admin starting alice's execution again: %d to %q, want 403", a.status, a.location())
	}
	own := alice.do("GET", ex, nil)
	if a := alice.do("POST", ex+"/restart", url.Values{"csrf": {csrf(t, own.body, ex+"/restart")}}); a.status != http.StatusSeeOther {
		t.Errorf("alice starting her execution again: %d %s", a.status, a.body)
	}
}

// TestAttackLiveStreamsPerPage: a browser keeps at most 6 connections
// to a host over HTTP/1.1, and each live stream (EventSource) holds one
// for as long as the page is open. An execution page that followed every
// service's log live would, from 6 services on, leave the browser no
// connection for anything else on Zoe (its Terminate button included),
// and two such tabs would pass the API's streams per user. The page
// follows a few logs live; the others show their stored tail.
func TestAttackLiveStreamsPerPage(t *testing.T) {
	e := newEnv(t, "/zoe")
	alice := e.as("alice")
	_, tok, _ := strings.Cut(alice.sessionCookie().Value, ".")
	desc := strings.Replace(demo, `"essential_count": 1, "total_count": 1`, `"essential_count": 1, "total_count": 8`, 1)
	if desc == demo {
		t.Fatal("the demo description has no total_count to change")
	}
	req, _ := http.NewRequest("POST", e.addr+"/zoe/api/v1/executions", strings.NewReader(`{"name":"wide","description":`+desc+`}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ex struct {
		ID int64 `json:"id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&ex)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("start: %d %v", resp.StatusCode, err)
	}
	page := alice.get("/executions/" + strconv.FormatInt(ex.ID, 10))
	if page.status != 200 {
		t.Fatalf("execution page: %d", page.status)
	}
	if n := strings.Count(page.body, "/log\" download"); n != 8 {
		t.Fatalf("the page shows %d services' logs, want 8", n)
	}
	live := strings.Count(page.body, "data-live=")
	if live+1 > 4 { // the event stream too
		t.Errorf("the page opens %d live streams (%d logs and its events): a browser has 6 connections per host", live+1, live)
	}
	if live == 0 {
		t.Error("no log is followed live")
	}
}

// TestAttackScriptsOfServices: a service's pages come through the proxy
// from Zoe's own origin. A script of theirs (an app's XSS, a page a user
// was sent to) must not read Zoe's pages with fetch — the forms' CSRF
// tokens are in them — nor keep a handle on a Zoe page it opened: the
// pages refuse a browser's script requests (Fetch Metadata: not a
// navigation, destination empty) but for the live streams, and are
// isolated from their opener (Cross-Origin-Opener-Policy).
func TestAttackScriptsOfServices(t *testing.T) {
	e := newEnv(t, "/zoe")
	alice := e.as("alice")
	ex := alice.startDemo(nil).location()
	svc := regexp.MustCompile(`/zoe/services/\d+/log`).FindString(alice.do("GET", ex, nil).body)
	// The service's log exists once it has started.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		a := alice.do("GET", svc, nil)
		if a.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %s", svc, a.status, a.body)
		}
	}
	for _, tc := range []struct {
		path, mode, dest string
		want             int
	}{
		{"/zoe/", "cors", "empty", http.StatusForbidden},
		{"/zoe/", "same-origin", "empty", http.StatusForbidden},
		{ex, "cors", "empty", http.StatusForbidden},
		{"/zoe/login", "cors", "empty", http.StatusForbidden},
		{"/zoe/", "navigate", "document", http.StatusOK},
		{svc, "navigate", "empty", http.StatusOK}, // <a download>
		{"/zoe/static/zoe.js", "no-cors", "script", http.StatusOK},
	} {
		alice.header.Set("Sec-Fetch-Site", "same-origin")
		alice.header.Set("Sec-Fetch-Mode", tc.mode)
		alice.header.Set("Sec-Fetch-Dest", tc.dest)
		a := alice.do("GET", tc.path, nil)
		alice.header = http.Header{}
		if a.status != tc.want {
			t.Errorf("GET %s (mode %s, dest %s): %d, want %d", tc.path, tc.mode, tc.dest, a.status, tc.want)
		}
		if coop := a.header.Get("Cross-Origin-Opener-Policy"); coop != "same-origin" {
			t.Errorf("GET %s: Cross-Origin-Opener-Policy %q", tc.path, coop)
		}
	}
	// The live streams are the page's own EventSources.
	for _, path := range []string{ex + "/events?after=0", svc + "/live"} {
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", e.addr+path, nil)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Sec-Fetch-Mode", "cors")
		req.Header.Set("Sec-Fetch-Dest", "empty")
		resp, err := (&http.Client{Jar: alice.c.Jar}).Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		resp.Body.Close()
		cancel()
		if resp.StatusCode != 200 {
			t.Errorf("EventSource of %s: %d", path, resp.StatusCode)
		}
	}
}
