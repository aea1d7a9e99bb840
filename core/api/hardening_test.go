package api_test

// The low-severity items of the security review (issue 12): every answer
// in the JSON error shape, undecodable queries, bodies not sent as JSON or
// not UTF-8, names a terminal would act on, bounds, and messages in words.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/api"
)

// raw sends a request line as it is (Go's client would clean or escape
// the path) and returns the answer.
func (e *env) raw(method, target string) response {
	e.t.Helper()
	u, err := url.Parse(e.base)
	if err != nil {
		e.t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", method, target, u.Host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func TestEveryErrorIsJSON(t *testing.T) {
	e := newEnv(t, "")
	for _, tc := range []struct {
		method, target string
		status         int
		code, says     string
	}{
		{"GET", "//api/v1/info", 404, client.CodeNotFound, "/api/v1/info is"},
		{"GET", "/api/v1/./info", 404, client.CodeNotFound, "not in its plain form"},
		{"GET", "/api/v1/executions/../info", 404, client.CodeNotFound, "/api/v1/info is"},
		{"GET", "/api/v1//executions", 404, client.CodeNotFound, "/api/v1/executions is"},
		{"GET", "/api/v1/info/", 404, client.CodeNotFound, "no such API route"},
		{"GET", "/api/v1/nope", 404, client.CodeNotFound, "no such API route"},
		{"GET", "/api/nope", 404, client.CodeNotFound, "no such API route"},
		{"PUT", "/api/v1/info", 405, client.CodeMethodNotAllowed, "use GET"},
		{"DELETE", "/api/v1/quotas", 405, client.CodeMethodNotAllowed, "use GET, POST"},
		{"GET", "/api/v1/executions?name=%zz", 400, client.CodeInvalidArgument, "invalid query"},
		{"GET", "/api/v1/info?%zz=1", 400, client.CodeInvalidArgument, "invalid query"},
		{"GET", "/api/v1/executions?name=a;b", 400, client.CodeInvalidArgument, "invalid query"},
		{"GET", "/api/v1/shop/a%2Fb", 401, client.CodeUnauthenticated, "log in"},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			r := e.raw(tc.method, tc.target)
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q: %s", ct, r.body)
			}
			eb := r.apiError(t)
			if r.status != tc.status || eb.Code != tc.code || !strings.Contains(eb.Message, tc.says) {
				t.Errorf("%d %+v, want %d %s saying %q", r.status, eb, tc.status, tc.code, tc.says)
			}
			if loc := r.header.Get("Location"); loc != "" {
				t.Errorf("redirected to %s", loc)
			}
		})
	}
	// The parameter that does not decode is named, and nothing is listed.
	r := e.do(e.as("alice"), "GET", "/executions?status=running&name=%zz", nil)
	if eb := r.apiError(t); r.status != 400 || len(eb.Details) != 1 || eb.Details[0].Path != "name" {
		t.Errorf("?name=%%zz: %d %s", r.status, r.body)
	}
	// A request target that is no URL at all is refused by http.Server
	// before any handler: a 400, but not in the JSON shape (README).
	if r := e.raw("GET", "/api/v1/shop/%zz"); r.status != 400 {
		t.Errorf("/api/v1/shop/%%zz: %d %s", r.status, r.body)
	}
}

func TestJSONBodiesOnly(t *testing.T) {
	e := newEnv(t, "")
	login := fmt.Sprintf(`{"username": "alice", "password": %q}`, passwords["alice"])
	for _, tc := range []struct {
		contentType string
		status      int
	}{
		{"application/json", 201},
		{"application/json; charset=utf-8", 201},
		{"Application/JSON; charset=UTF-8", 201},
		{"application/vnd.zoe+json", 201},
		{"", 415},
		{"text/plain", 415},
		{"application/x-www-form-urlencoded", 415}, // curl -d
		{"multipart/form-data; boundary=x", 415},
		{"application/json; charset=latin1", 415},
		{"application/jsonx", 415},
		{"json", 415},
	} {
		t.Run(tc.contentType, func(t *testing.T) {
			r := e.doHeader(anonymous, "POST", "/sessions", login, http.Header{"Content-Type": {tc.contentType}})
			if tc.contentType == "" {
				r = e.doHeader(anonymous, "POST", "/sessions", login, http.Header{"Content-Type": nil})
			}
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status == 415 {
				if eb := r.apiError(t); eb.Code != client.CodeUnsupportedMediaType || !strings.Contains(eb.Message, "application/json") {
					t.Errorf("%+v", eb)
				}
			}
		})
	}
	// Every route that takes a body checks it, after authentication.
	alice := e.as("alice")
	for _, rt := range []struct {
		who          who
		method, path string
	}{
		{alice, "POST", "/executions"}, {e.as("root"), "PATCH", "/users/dora"}, {e.as("root"), "POST", "/quotas"},
		{e.as("root"), "PUT", "/quotas/user"},
	} {
		r := e.doHeader(rt.who, rt.method, rt.path, "{}", http.Header{"Content-Type": {"text/plain"}})
		if r.status != http.StatusUnsupportedMediaType {
			t.Errorf("%s %s as text/plain: %d %s", rt.method, rt.path, r.status, r.body)
		}
	}
}

func TestNamesAndBodiesAreText(t *testing.T) {
	e := newEnv(t, "")
	alice := e.as("alice")
	start := func(name string) string {
		return fmt.Sprintf(`{"name": %s, "description": %s}`, name, mustJSON(t, app("names", nil)))
	}
	for _, tc := range []struct {
		name, body, says string
	}{
		{"escape sequences", start(`"\u001b]0;pwned\u0007\u001b[2J"`), "U+001B"},
		{"DEL", start(`"a\u007f"`), "U+007F"},
		{"C1 CSI", start(`"a\u009b2J"`), "U+009B"},
		{"C1 CSI raw", start("\"a\u009b2J\""), "U+009B"},
		{"right-to-left override", start(`"gpj.\u202eexe"`), "U+202E"},
		{"line separator", start("\"a\u2028b\""), "U+2028"},
		{"paragraph separator", start(`"a\u2029b"`), "U+2029"},
		{"zero width", start(`"a\u200bb"`), "U+200B"},
		{"lone surrogate", start(`"a\ud800b"`), "U+FFFD"},
		{"replacement character", start(`"a\ufffdb"`), "U+FFFD"},
		{"invalid UTF-8", start("\"a\xffb\""), "not valid UTF-8 at byte 11"},
		{"invalid UTF-8 in the description", `{"name": "x", "description": {"name": "a` + "\xc3" + `"}}`, "not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(alice, "POST", "/executions", tc.body)
			eb := r.apiError(t)
			text := eb.Message
			for _, d := range eb.Details {
				text += " " + d.Message
			}
			if r.status != 400 || !strings.Contains(text, tc.says) {
				t.Errorf("%d %+v, want a 400 saying %q", r.status, eb, tc.says)
			}
		})
	}
	// A name in any script is fine.
	e.must(alice, "POST", "/executions", start(`"données ☕ 数据"`), http.StatusCreated, nil)

	// Token names take the same check.
	r := e.do(anonymous, "POST", "/sessions", fmt.Sprintf(`{"username": "alice", "password": %q, "token_name": "a\u202eb"}`, passwords["alice"]))
	if eb := r.apiError(t); r.status != 400 || len(eb.Details) != 1 || eb.Details[0].Path != "token_name" || !strings.Contains(eb.Details[0].Message, "U+202E") {
		t.Errorf("token name: %d %s", r.status, r.body)
	}

	// Only a ZApp's description may be large: a login, which anyone may
	// send and which is read before any password check, takes 64 KiB.
	big := fmt.Sprintf(`{"username": "alice", "password": %q, "token_name": %q}`, passwords["alice"], strings.Repeat("x", 65<<10))
	if r := e.do(anonymous, "POST", "/sessions", big); r.status != 413 || r.apiError(t).Code != client.CodeTooLarge || !strings.Contains(string(r.body), "65536 bytes") {
		t.Errorf("a login of 65 KiB: %d %s", r.status, r.body)
	}

	// Image names are bounded and printable.
	for _, tc := range []struct{ name, image, says string }{
		{"too long", "registry.example.org/" + strings.Repeat("a", 300) + ":1", "at most 255"},
		{"control", "zoe/test:1\x1b[2J", "printable"},
		{"non-ASCII", "zoe/tést:1", "printable"},
	} {
		t.Run("image "+tc.name, func(t *testing.T) {
			z := app("img", nil)
			z["services"].([]any)[0].(map[string]any)["image"] = tc.image
			r := e.do(alice, "POST", "/executions", map[string]any{"name": "img", "description": z})
			eb := r.apiError(t)
			if r.status != 400 || len(eb.Details) != 1 || eb.Details[0].Path != "description.services[0].image" || !strings.Contains(eb.Details[0].Message, tc.says) {
				t.Errorf("%d %+v", r.status, eb)
			}
		})
	}
}

func TestMessagesInWords(t *testing.T) {
	e := newEnv(t, "")
	root := e.as("root")
	e.must(root, "POST", "/quotas", client.Quota{Name: "lab", Cores: 4}, http.StatusCreated, nil)
	r := e.do(root, "POST", "/quotas", client.Quota{Name: "lab", Cores: 2})
	if eb := r.apiError(t); r.status != http.StatusConflict || eb.Code != client.CodeConflict || eb.Message != `quota "lab" already exists` {
		t.Errorf("a quota that exists: %d %+v", r.status, eb)
	}
	// A category's name at the end of a message says nothing more.
	for _, tc := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"DELETE", "/quotas/user", nil, http.StatusBadRequest},
		{"DELETE", "/quotas/nope", nil, http.StatusNotFound},
	} {
		r := e.do(root, tc.method, tc.path, tc.body)
		eb := r.apiError(t)
		if r.status != tc.status {
			t.Errorf("%s %s: %d %+v", tc.method, tc.path, r.status, eb)
		}
		for _, cat := range []string{": invalid argument", ": resource exhausted", ": conflict", ": unavailable", ": permission denied", "constraint"} {
			if strings.Contains(eb.Message, cat) {
				t.Errorf("%s %s: message %q says %q", tc.method, tc.path, eb.Message, cat)
			}
		}
	}

	// Quota limits are bounded.
	for _, tc := range []struct{ field, value string }{
		{"cores", "1e308"}, {"cores", "-1"}, {"cores", "1e-300"}, {"cores", "0.0009"}, {"cores", "1000001"}, {"memory", "1152921504606846977"},
		{"concurrent_executions", "1000001"}, {"runtime_limit", "3153600001"}, {"cores", "1e400"},
	} {
		r := e.do(root, "POST", "/quotas", fmt.Sprintf(`{"name": "big", %q: %s}`, tc.field, tc.value))
		if eb := r.apiError(t); r.status != 400 || len(eb.Details) != 1 || eb.Details[0].Path != tc.field {
			t.Errorf("%s %s: %d %+v", tc.field, tc.value, r.status, eb)
		}
	}
	e.must(root, "POST", "/quotas", `{"name": "top", "cores": 1000000, "memory": 1152921504606846976, "concurrent_executions": 1000000, "runtime_limit": 3153600000}`, http.StatusCreated, nil)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// A user keeps at most api.MaxTokens live tokens: a login at the bound
// replaces the oldest unnamed one (its token stops working), and with only
// named ones left it is refused, saying so.
func TestTokensBounded(t *testing.T) {
	e := newEnv(t, "")
	login := func(name string) response {
		return e.do(anonymous, "POST", "/sessions", client.Login{Username: "alice", Password: passwords["alice"], TokenName: name})
	}
	var first client.Session
	e.must(anonymous, "POST", "/sessions", client.Login{Username: "alice", Password: passwords["alice"]}, http.StatusCreated, &first)
	for i := 1; i < api.MaxTokens; i++ {
		if r := login(fmt.Sprintf("t%d", i)); r.status != http.StatusCreated {
			t.Fatalf("token %d: %d %s", i, r.status, r.body)
		}
	}
	e.must(who{token: first.Token}, "GET", "/tokens", nil, http.StatusOK, nil)
	var second client.Session
	e.must(anonymous, "POST", "/sessions", client.Login{Username: "alice", Password: passwords["alice"]}, http.StatusCreated, &second)
	if r := e.do(who{token: first.Token}, "GET", "/tokens", nil); r.status != http.StatusUnauthorized {
		t.Errorf("the replaced session's token: %d", r.status)
	}
	var l client.TokenList
	e.must(who{token: second.Token}, "GET", "/tokens", nil, http.StatusOK, &l)
	if len(l.Tokens) != api.MaxTokens {
		t.Errorf("%d tokens, want %d", len(l.Tokens), api.MaxTokens)
	}
	if r := login("t0"); r.status != http.StatusCreated {
		t.Fatalf("a named token replacing the unnamed one: %d %s", r.status, r.body)
	}
	r := login("one-more")
	if eb := r.apiError(t); r.status != http.StatusConflict || !strings.Contains(eb.Message, "alice has 100 tokens, the most allowed: revoke one first") {
		t.Errorf("a login with only named tokens: %d %s", r.status, r.body)
	}
	// Another user is not bound by alice's tokens.
	e.must(anonymous, "POST", "/sessions", client.Login{Username: "bob", Password: passwords["bob"]}, http.StatusCreated, nil)
}

// A script of a page on Zoe's origin (a proxied service's page) gets no
// answer from the API, whatever credentials the browser sends with it; a
// navigation, a program and another site's script (refused by the browser
// without CORS) are not refused here. And a 401 never asks the browser for
// a password (no Basic challenge), which such a page could trigger.
func TestScriptsOfZoesOriginRefused(t *testing.T) {
	e := newEnv(t, "")
	alice := e.as("alice")
	for _, tc := range []struct {
		site, mode string
		status     int
	}{
		{"same-origin", "cors", http.StatusForbidden},
		{"same-origin", "same-origin", http.StatusForbidden},
		{"same-origin", "no-cors", http.StatusForbidden},
		{"same-origin", "navigate", http.StatusOK},
		{"none", "navigate", http.StatusOK},
		{"", "", http.StatusOK},
		{"cross-site", "cors", http.StatusOK},
	} {
		h := http.Header{}
		if tc.site != "" {
			h.Set("Sec-Fetch-Site", tc.site)
			h.Set("Sec-Fetch-Mode", tc.mode)
		}
		r := e.doHeader(alice, "GET", "/me", nil, h)
		if r.status != tc.status {
			t.Errorf("Sec-Fetch-Site %q, Sec-Fetch-Mode %q: %d %s, want %d", tc.site, tc.mode, r.status, r.body, tc.status)
		}
		if tc.status == http.StatusForbidden && !strings.Contains(r.apiError(t).Message, "scripts of pages on Zoe's own origin") {
			t.Errorf("refusal: %s", r.body)
		}
	}
	r := e.do(anonymous, "GET", "/me", nil)
	if got := r.header.Get("WWW-Authenticate"); r.status != http.StatusUnauthorized || strings.Contains(strings.ToLower(got), "basic") || got == "" {
		t.Errorf("401 challenge %q (%d)", got, r.status)
	}
}
