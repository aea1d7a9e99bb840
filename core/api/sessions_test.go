package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/client"
)

func TestSessionsAndTokens(t *testing.T) {
	e := newEnv(t, "")
	var s client.Session
	e.must(anonymous, "POST", "/sessions", client.Login{Username: "alice", Password: passwords["alice"], TokenName: "laptop"}, http.StatusCreated, &s)
	if len(s.Token) < 40 || s.User.Username != "alice" || s.User.Role != "user" || s.TokenInfo.Name != "laptop" ||
		s.TokenInfo.ExpiresAt == nil || time.Until(*s.TokenInfo.ExpiresAt) < 23*time.Hour {
		t.Fatalf("session: %+v", s)
	}
	tok := who{token: s.Token}
	if r := e.doHeader(anonymous, "GET", "/me", nil, http.Header{"Authorization": {"bearer " + s.Token}}); r.status != http.StatusOK {
		t.Errorf("a lower-case bearer scheme: %d %s", r.status, r.body)
	}
	var me client.User
	e.must(tok, "GET", "/me", nil, http.StatusOK, &me)
	if me.Username != "alice" || me.Quota != "user" || !me.Enabled {
		t.Errorf("me: %+v", me)
	}
	r := e.do(anonymous, "POST", "/sessions", client.Login{Username: "alice", Password: passwords["alice"], TokenName: "laptop"})
	if eb := r.apiError(t); r.status != http.StatusConflict {
		t.Errorf("a second token of the same name: %d %+v", r.status, eb)
	}
	var list client.TokenList
	e.must(tok, "GET", "/tokens", nil, http.StatusOK, &list)
	if len(list.Tokens) != 1 || list.Tokens[0].ID != s.TokenInfo.ID || list.Tokens[0].LastUsed == nil {
		t.Errorf("tokens: %+v", list)
	}
	// bob cannot revoke alice's token; alice can, and then it is refused.
	e.must(e.as("bob"), "DELETE", fmt.Sprintf("/tokens/%d", s.TokenInfo.ID), nil, http.StatusNotFound, nil)
	e.must(tok, "DELETE", fmt.Sprintf("/tokens/%d", s.TokenInfo.ID), nil, http.StatusNoContent, nil)
	if r := e.do(tok, "GET", "/me", nil); r.status != http.StatusUnauthorized || r.apiError(t).Code != client.CodeUnauthenticated {
		t.Errorf("revoked token: %d %s", r.status, r.body)
	}

	// A token expires.
	e.must(anonymous, "POST", "/sessions", client.Login{Username: "alice", Password: passwords["alice"], TTL: 1}, http.StatusCreated, &s)
	e.must(who{token: s.Token}, "GET", "/me", nil, http.StatusOK, nil)
	waitFor(t, "the token to expire", func() (bool, string) {
		r := e.do(who{token: s.Token}, "GET", "/me", nil)
		return r.status == http.StatusUnauthorized, fmt.Sprint(r.status)
	})

	for _, tc := range []struct {
		name   string
		w      who
		body   any
		status int
	}{
		{"wrong password", anonymous, client.Login{Username: "alice", Password: "nope"}, 401},
		{"unknown user", anonymous, client.Login{Username: "zed", Password: "nope"}, 401},
		{"guest", anonymous, client.Login{Username: "gus", Password: passwords["gus"]}, 403},
		{"missing fields", anonymous, client.Login{}, 400},
		{"ttl too long", anonymous, client.Login{Username: "alice", Password: passwords["alice"], TTL: 1 << 40}, 400},
		{"unknown field", anonymous, `{"username": "alice", "pasword": "x"}`, 400},
		{"control character in the token name", anonymous, client.Login{Username: "alice", Password: passwords["alice"], TokenName: "a\nb"}, 400},
		{"garbage token", who{token: "zoe_garbage"}, nil, 401},
		{"foreign token", who{token: "abc"}, nil, 401},
	} {
		path, method := "/sessions", "POST"
		if tc.body == nil {
			path, method = "/me", "GET"
		}
		r := e.do(tc.w, method, path, tc.body)
		r.apiError(t)
		if r.status != tc.status {
			t.Errorf("%s: %d, want %d: %s", tc.name, r.status, tc.status, r.body)
		}
		if r.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
	}
	if r := e.doHeader(anonymous, "GET", "/me", nil, http.Header{"Authorization": {"Digest x"}}); r.status != http.StatusUnauthorized {
		t.Errorf("another scheme: %d", r.status)
	}
}

func TestUsersAndRoles(t *testing.T) {
	e := newEnv(t, "")
	root, dora := e.as("root"), e.as("dora")
	e.must(dora, "GET", "/me", nil, http.StatusOK, nil)
	var u client.User
	// Admin's changes stick across the next login.
	e.must(root, "PATCH", "/users/dora", client.UserUpdate{Role: ptr("admin")}, http.StatusOK, &u)
	if u.Role != "admin" || u.AuthRole != "user" {
		t.Errorf("dora made admin: %+v", u)
	}
	// The next login (a new password check, not the cache) keeps it.
	e.must(anonymous, "POST", "/sessions", client.Login{Username: "dora", Password: passwords["dora"]}, http.StatusCreated, nil)
	e.must(dora, "GET", "/users", nil, http.StatusOK, nil)
	e.must(root, "PATCH", "/users/dora", client.UserUpdate{Enabled: ptr(false)}, http.StatusOK, &u)
	if u.Enabled {
		t.Errorf("dora still enabled: %+v", u)
	}
	if r := e.do(dora, "GET", "/me", nil); r.status != http.StatusForbidden || r.apiError(t).Code != client.CodePermissionDenied {
		t.Errorf("disabled user: %d %s", r.status, r.body)
	}
	if r := e.do(anonymous, "POST", "/sessions", client.Login{Username: "dora", Password: passwords["dora"]}); r.status != http.StatusForbidden {
		t.Errorf("disabled user logs in: %d %s", r.status, r.body)
	}
	e.must(root, "PATCH", "/users/dora", client.UserUpdate{Enabled: ptr(true), Role: ptr("")}, http.StatusOK, &u)
	if u.Role != "user" || u.AuthRole != "user" || !u.Enabled {
		t.Errorf("dora back to the auth plugin's role: %+v", u)
	}
	e.must(dora, "GET", "/users", nil, http.StatusForbidden, nil)
	for _, tc := range []struct {
		name, user string
		body       any
		status     int
	}{
		{"bad role", "dora", client.UserUpdate{Role: ptr("king")}, 400},
		{"unknown quota", "dora", client.UserUpdate{Quota: ptr("nope")}, 400},
		{"unknown user", "zed", client.UserUpdate{Enabled: ptr(true)}, 404},
		{"lock yourself out", "root", client.UserUpdate{Enabled: ptr(false)}, 409},
		{"demote yourself", "root", client.UserUpdate{Role: ptr("user")}, 409},
	} {
		r := e.do(root, "PATCH", "/users/"+tc.user, tc.body)
		r.apiError(t)
		if r.status != tc.status {
			t.Errorf("%s: %d, want %d: %s", tc.name, r.status, tc.status, r.body)
		}
	}
	var users client.UserList
	e.must(root, "GET", "/users", nil, http.StatusOK, &users)
	if len(users.Users) != 2 {
		t.Errorf("users: %+v", users)
	}

	// Quotas.
	var q client.Quota
	e.must(root, "POST", "/quotas", client.Quota{Name: "class", ConcurrentExecutions: 2, Cores: 4, Memory: 8 << 30, RuntimeLimit: 3600}, http.StatusCreated, &q)
	e.must(root, "PUT", "/quotas/class", client.Quota{ConcurrentExecutions: 3}, http.StatusOK, &q)
	if q.ConcurrentExecutions != 3 || q.Cores != 0 || q.Name != "class" {
		t.Errorf("updated quota: %+v", q)
	}
	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
	}{
		{"duplicate", "POST", "/quotas", client.Quota{Name: "class"}, 409},
		{"negative", "POST", "/quotas", client.Quota{Name: "neg", Cores: -1}, 400},
		{"no name", "POST", "/quotas", client.Quota{}, 400},
		{"a name with a slash", "POST", "/quotas", client.Quota{Name: "a/b"}, 400},
		{"a name with a NUL", "POST", "/quotas", client.Quota{Name: "a\x00"}, 400},
		{"a long name", "POST", "/quotas", client.Quota{Name: strings.Repeat("q", 65)}, 400},
		{"rename", "PUT", "/quotas/class", client.Quota{Name: "other"}, 400},
		{"unknown", "GET", "/quotas/nope", nil, 404},
		{"delete a role default", "DELETE", "/quotas/user", nil, 400},
	} {
		r := e.do(root, tc.method, tc.path, tc.body)
		r.apiError(t)
		if r.status != tc.status {
			t.Errorf("%s: %d, want %d: %s", tc.name, r.status, tc.status, r.body)
		}
	}
	e.must(root, "DELETE", "/quotas/class", nil, http.StatusNoContent, nil)

	var plugins client.PluginList
	e.must(root, "GET", "/plugins", nil, http.StatusOK, &plugins)
	if len(plugins.Plugins) != 3 {
		t.Errorf("plugins: %+v", plugins)
	}
	for _, p := range plugins.Plugins {
		if p.State != "ready" || p.PID == 0 {
			t.Errorf("plugin %+v", p)
		}
	}

	// Health: the details for admins only.
	var h client.Health
	e.must(anonymous, "GET", "/health", nil, http.StatusOK, &h)
	if h.Status != "ok" || h.Plugins != nil || h.State != nil {
		t.Errorf("anonymous health: %+v", h)
	}
	h = client.Health{}
	e.must(e.as("alice"), "GET", "/health", nil, http.StatusOK, &h)
	if h.Plugins != nil {
		t.Errorf("a user sees the health details: %+v", h)
	}
	h = client.Health{}
	e.must(root, "GET", "/health", nil, http.StatusOK, &h)
	if len(h.Plugins) != 3 || h.State == nil || h.State.SchemaVersion < 3 {
		t.Errorf("admin health: %+v", h)
	}
	if r := e.do(who{user: "root", password: "wrong"}, "GET", "/health", nil); r.status != http.StatusUnauthorized {
		t.Errorf("a wrong password on an open route: %d", r.status)
	}
}

// TestCrossOriginRequests: a page on another site cannot make the user's
// browser change anything, even with its cached credentials; programs (no
// Origin, no Sec-Fetch-Site) and Zoe's own pages can, and reading is
// always allowed (browsers keep the answer from the other site).
func TestCrossOriginRequests(t *testing.T) {
	e := newEnv(t, "")
	alice := e.as("alice")
	start := map[string]any{"name": "csrf", "description": app("csrf", nil)}
	for _, tc := range []struct {
		name   string
		header http.Header
		want   int
	}{
		{"cross-site fetch", http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
		{"foreign origin", http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
		{"same origin", http.Header{"Sec-Fetch-Site": {"same-origin"}}, http.StatusCreated},
		{"a program", nil, http.StatusCreated},
	} {
		r := e.doHeader(alice, "POST", "/executions", start, tc.header)
		if r.status != tc.want {
			t.Errorf("%s: POST /executions: %d, want %d: %s", tc.name, r.status, tc.want, r.body)
		}
		if r.status == http.StatusForbidden {
			if eb := r.apiError(t); eb.Code != client.CodePermissionDenied {
				t.Errorf("%s: error %+v", tc.name, eb)
			}
		}
	}
	if r := e.doHeader(alice, "GET", "/executions", nil, http.Header{"Sec-Fetch-Site": {"cross-site"}}); r.status != http.StatusOK {
		t.Errorf("cross-site GET: %d", r.status)
	}
}
