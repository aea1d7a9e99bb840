package proxy_test

import (
	"context"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestAttackCrossOriginWithCookie: the session cookie is ambient: a page
// of another origin of the same site (a service's direct address on
// Zoe's host, http://zoe-host:32768, is same-site with Zoe's pages, so
// SameSite cookies go with its requests) must not open a WebSocket to, or
// POST to, a user's service as that user. The same requests with Zoe's
// own origin, or with a bearer token (which no page of another origin can
// add to a WebSocket or a form), pass.
func TestAttackCrossOriginWithCookie(t *testing.T) {
	t.Parallel()
	// A service that takes WebSockets from any origin, as many do: the
	// proxy is what must refuse.
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusOK)
			return
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		_ = c.CloseNow()
	})
	url := alicesNotebook(t, 1, mux)
	self := url // the proxy's own origin: scheme://host:port
	wsURL := url + prefix + "/1/nb0/8888/ws"
	dial := func(t *testing.T, hdr ...string) (int, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		h := http.Header{}
		for i := 0; i+1 < len(hdr); i += 2 {
			h.Add(hdr[i], hdr[i+1])
		}
		c, res, err := websocket.Dial(ctx, strings.Replace(wsURL, "http://", "ws://", 1), &websocket.DialOptions{HTTPHeader: h})
		if err == nil {
			_ = c.CloseNow()
			return http.StatusSwitchingProtocols, nil
		}
		if res != nil {
			return res.StatusCode, err
		}
		return 0, err
	}
	for _, tc := range []struct {
		name string
		hdr  []string
		want int
	}{
		{"cookie, another origin of the same host", []string{"Cookie", "zoe_session=alice", "Origin", "http://127.0.0.1:1"}, 403},
		{"cookie, origin null", []string{"Cookie", "zoe_session=alice", "Origin", "null"}, 403},
		{"cookie, same-site fetch metadata", []string{"Cookie", "zoe_session=alice", "Origin", self, "Sec-Fetch-Site", "same-site"}, 403},
		{"cookie, cross-site fetch metadata", []string{"Cookie", "zoe_session=alice", "Sec-Fetch-Site", "cross-site"}, 403},
		{"cookie, Zoe's origin", []string{"Cookie", "zoe_session=alice", "Origin", self}, 101},
		{"cookie, same-origin fetch metadata", []string{"Cookie", "zoe_session=alice", "Origin", self, "Sec-Fetch-Site", "same-origin"}, 101},
		{"cookie, no Origin (not a browser)", []string{"Cookie", "zoe_session=alice"}, 101},
		{"bearer token, another origin", []string{"Authorization", "Bearer zoe_alice", "Origin", "http://127.0.0.1:1"}, 101},
	} {
		t.Run("websocket: "+tc.name, func(t *testing.T) {
			got, err := dial(t, tc.hdr...)
			if got != tc.want {
				t.Errorf("status %d (%v), want %d", got, err, tc.want)
			}
		})
	}
	post := func(t *testing.T, hdr ...string) int {
		req, err := http.NewRequest(http.MethodPost, url+prefix+"/1/nb0/8888/upload", strings.NewReader("x=1"))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Add(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		return res.StatusCode
	}
	for _, tc := range []struct {
		name string
		hdr  []string
		want int
	}{
		{"cookie, another origin", []string{"Cookie", "zoe_session=alice", "Origin", "http://127.0.0.1:1"}, 403},
		{"cookie, same-site form", []string{"Cookie", "zoe_session=alice", "Sec-Fetch-Site", "same-site"}, 403},
		{"cookie, Zoe's origin", []string{"Cookie", "zoe_session=alice", "Origin", self}, 200},
		{"cookie, typed by the user", []string{"Cookie", "zoe_session=alice", "Sec-Fetch-Site", "none"}, 200},
		{"bearer token, another origin", []string{"Authorization", "Bearer zoe_alice", "Origin", "http://127.0.0.1:1"}, 200},
	} {
		t.Run("post: "+tc.name, func(t *testing.T) {
			if got := post(t, tc.hdr...); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
}

// TestAttackServiceCookieScope: a service shares Zoe's origin; a cookie it
// sets must stay on its own proxy path, or it is sent to Zoe's pages and
// to every other service (and enough of them, or a big one, make every
// request to Zoe too large: a cookie bomb that locks the user, or an
// admin who opened the service, out of Zoe).
func TestAttackServiceCookieScope(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		for _, c := range []string{
			"wide=1; Path=/",
			"lower=1; path=/; HttpOnly",
			"dom=1; Domain=127.0.0.1; Path=/zoe/proxy/5/nb0/8888/",
			"none=1",
			"sibling=1; Path=/zoe/proxy/5/nb0/88889",
			"mine=1; Path=/zoe/proxy/5/nb0/8888/tree; Secure",
			"other=1; Path=/zoe/proxy/6/nb0/8888/",
			"dots=1; Path=/zoe/proxy/5/nb0/8888/../../../../",
		} {
			w.Header().Add("Set-Cookie", c)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	url := alicesNotebook(t, 5, mux)
	for _, user := range []string{"alice", "admin"} {
		st, body, h := get(t, url+prefix+"/5/nb0/8888/", user)
		if st != http.StatusNoContent {
			t.Fatalf("%s: %d %s", user, st, body)
		}
		got := map[string]string{}
		for _, v := range h.Values("Set-Cookie") {
			c, err := http.ParseSetCookie(v)
			if err != nil {
				t.Fatalf("%s: Set-Cookie %q: %v", user, v, err)
			}
			if strings.Contains(strings.ToLower(v), "domain=") {
				t.Errorf("%s: Set-Cookie %q keeps a Domain", user, v)
			}
			got[c.Name] = c.Path
		}
		want := map[string]string{
			"wide": "/zoe/proxy/5/nb0/8888/", "lower": "/zoe/proxy/5/nb0/8888/", "dom": "/zoe/proxy/5/nb0/8888/",
			"none": "/zoe/proxy/5/nb0/8888/", "sibling": "/zoe/proxy/5/nb0/8888/", "mine": "/zoe/proxy/5/nb0/8888/tree",
			"other": "/zoe/proxy/5/nb0/8888/", "dots": "/zoe/proxy/5/nb0/8888/",
		}
		for name, path := range want {
			if got[name] != path {
				t.Errorf("%s: cookie %s has path %q, want %q (all: %v)", user, name, got[name], path, h.Values("Set-Cookie"))
			}
		}
	}
}

// TestAttackSharedCache: a proxied answer is for the caller only: a
// service's "public" or s-maxage must not let a shared cache in front of
// Zoe (the reverse proxy or API manager Zoe is served behind) answer
// other users with it, past the proxy's checks.
func TestAttackSharedCache(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if cc := r.URL.Query().Get("cc"); cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.WriteHeader(http.StatusOK)
	})
	url := alicesNotebook(t, 5, mux)
	for cc, want := range map[string]string{
		"":                                    "private",
		"public, max-age=3600":                "private, max-age=3600",
		"s-maxage=600, max-age=60":            "private, max-age=60",
		"no-store":                            "no-store",
		"private, max-age=5":                  "private, max-age=5",
		"Public, S-MaxAge=9, must-revalidate": "private, must-revalidate",
	} {
		st, body, h := get(t, url+prefix+"/5/nb0/8888/?cc="+strings.ReplaceAll(cc, " ", "%20"), "alice")
		if st != 200 {
			t.Fatalf("%d %s", st, body)
		}
		if got := h.Get("Cache-Control"); got != want {
			t.Errorf("service's Cache-Control %q: proxied as %q, want %q", cc, got, want)
		}
	}
}

// TestAttackEarlyHints: an informational answer (103 Early Hints) goes
// to the client without the checks of the final answer: a service must
// not set Zoe's cookies, or a cookie for a wider path, through one.
func TestAttackEarlyHints(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "zoe_session=planted; Path=/")
		w.Header().Add("Set-Cookie", "wide=1; Path=/")
		w.Header().Set("Clear-Site-Data", `"cookies"`)
		w.Header().Set("Link", "</zoe/proxy/5/nb0/8888/app.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Set-Cookie")
		w.Header().Del("Clear-Site-Data")
		w.WriteHeader(http.StatusOK)
	})
	url := alicesNotebook(t, 5, mux)
	var hints []textproto.MIMEHeader
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		if code == http.StatusEarlyHints {
			hints = append(hints, h)
		}
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", url+prefix+"/5/nb0/8888/", nil)
	req.AddCookie(&http.Cookie{Name: "zoe_session", Value: "alice"})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != 200 || len(hints) != 1 {
		t.Fatalf("%d, %d early hints", res.StatusCode, len(hints))
	}
	h := http.Header(hints[0])
	for _, sc := range h.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "zoe_session=") || !strings.Contains(sc, "Path=/zoe/proxy/5/nb0/8888/") {
			t.Errorf("an early hint set %q", sc)
		}
	}
	if h.Get("Clear-Site-Data") != "" {
		t.Errorf("an early hint cleared the site's data: %q", h.Get("Clear-Site-Data"))
	}
	if h.Get("Link") == "" {
		t.Error("the early hint's Link was dropped")
	}
}

// TestAttackFraming: a page of another origin of the same site (a
// service's direct address on Zoe's host) gets the user's SameSite
// session cookie sent with the frames it embeds: it must not show a
// user's service in a frame and have the user click in it.
func TestAttackFraming(t *testing.T) {
	t.Parallel()
	s, _ := world(t)
	_, url := newEnv(t, s, nil)
	for _, user := range []string{"alice", "admin"} {
		st, body, h := get(t, url+prefix+"/1/nb0/8888/", user)
		if st != 200 {
			t.Fatalf("%s: %d %s", user, st, body)
		}
		framed := false
		for _, v := range h.Values("Content-Security-Policy") {
			if strings.Contains(v, "frame-ancestors 'self'") {
				framed = true
			}
		}
		if !framed {
			t.Errorf("%s: no frame-ancestors 'self' in %q", user, h.Values("Content-Security-Policy"))
		}
	}
}

// TestAttackNamelessCookie: a browser keeps a cookie without a name
// ("=zoe_session=x", or "zoe_session" alone) and sends it back as its bare
// value: "zoe_session=x" in the Cookie header, first when its path is the
// longer. A service could so plant its owner's session in an admin's
// browser for its own path; the proxy would then take the admin for the
// owner and serve the service's pages unsandboxed, at Zoe's origin, with
// the admin's real session one fetch away. Nameless cookies are dropped.
func TestAttackNamelessCookie(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		for _, c := range []string{
			"=zoe_session=alice; Path=/zoe/proxy/5/nb0/8888/",
			" =zoe_login=x",
			"zoe_session; Path=/zoe/proxy/5/nb0/8888/",
			"=harmless",
			"app=1",
		} {
			w.Header().Add("Set-Cookie", c)
		}
		w.WriteHeader(http.StatusOK)
	})
	url := alicesNotebook(t, 5, mux)
	st, body, h := get(t, url+prefix+"/5/nb0/8888/", "admin")
	if st != 200 {
		t.Fatalf("%d %s", st, body)
	}
	sc := h.Values("Set-Cookie")
	if len(sc) != 1 || !strings.HasPrefix(sc[0], "app=1;") {
		t.Errorf("Set-Cookie %q, want the app's named cookie only", sc)
	}
}

// TestAttackOpenerPolicy: Zoe's pages are isolated from a window that
// opened them (Cross-Origin-Opener-Policy: same-origin), which holds only
// while the opener's policy differs: a service's page, at Zoe's origin,
// may not claim the same policy and keep its handle on a Zoe page it
// opened.
func TestAttackOpenerPolicy(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cross-Origin-Opener-Policy", "same-origin")
		w.WriteHeader(http.StatusOK)
	})
	url := alicesNotebook(t, 5, mux)
	st, body, h := get(t, url+prefix+"/5/nb0/8888/", "alice")
	if st != 200 {
		t.Fatalf("%d %s", st, body)
	}
	if coop := h.Values("Cross-Origin-Opener-Policy"); len(coop) != 0 {
		t.Errorf("Cross-Origin-Opener-Policy %q passed", coop)
	}
}

// TestAttackOriginWideHeaders: headers a browser applies to Zoe's whole
// origin, whatever page they came with (reports of every later request to
// Zoe sent to the service's choice, Zoe's HSTS cleared, its traffic sent
// elsewhere), and a password challenge on Zoe's origin, never come through
// from a service; nor a header larger than the proxy's bound.
func TestAttackOriginWideHeaders(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Report-To", `{"group":"g","max_age":31536000,"endpoints":[{"url":"https://evil.example/r"}]}`)
		h.Set("Reporting-Endpoints", `g="https://evil.example/r"`)
		h.Set("NEL", `{"report_to":"g","max_age":31536000,"success_fraction":1}`)
		h.Set("Strict-Transport-Security", "max-age=0")
		h.Set("Alt-Svc", `h3="evil.example:443"`)
		h.Set("WWW-Authenticate", `Basic realm="zoe"`)
		h.Set("X-Kept", "1")
		if r.URL.Query().Has("huge") {
			h.Set("X-Huge", strings.Repeat("x", 300<<10))
		}
		w.WriteHeader(http.StatusUnauthorized)
	})
	url := alicesNotebook(t, 5, mux)
	st, _, h := get(t, url+prefix+"/5/nb0/8888/", "alice")
	if st != http.StatusUnauthorized || h.Get("X-Kept") != "1" {
		t.Fatalf("%d, X-Kept %q", st, h.Get("X-Kept"))
	}
	for _, k := range []string{"Report-To", "Reporting-Endpoints", "NEL", "Strict-Transport-Security", "Alt-Svc", "WWW-Authenticate"} {
		if v := h.Get(k); v != "" {
			t.Errorf("%s came through: %q", k, v)
		}
	}
	if st, _, h := get(t, url+prefix+"/5/nb0/8888/?huge", "alice"); st != http.StatusBadGateway || h.Get("X-Huge") != "" {
		t.Errorf("a 300 KiB header: %d", st)
	}
}
