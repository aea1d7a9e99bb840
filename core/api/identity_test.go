package api_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/api"
	"github.com/zoe-project/zoe/core/engine"
	"github.com/zoe-project/zoe/internal/testutil"
)

// newTunedEnv is newEnv with the API's timings adjusted.
func newTunedEnv(t *testing.T, tune func(*api.Config)) *env {
	t.Helper()
	e := newEnv(t, "")
	e.stop()
	e.opts.API = tune
	e.start()
	return e
}

// writeUsers replaces the users file of the test daemon; the roles are
// by user (absent: removed).
func (e *env) writeUsers(roles map[string]string) {
	e.t.Helper()
	var users []testutil.User
	for name, role := range roles {
		users = append(users, testutil.User{Name: name, Password: passwords[name], Role: role})
	}
	testutil.WriteUsersFile(e.t, filepath.Join(filepath.Dir(e.file), "users.csv"), users...)
}

// token logs in and returns a caller with the new bearer token.
func (e *env) token(user string, name string) (who, client.Session) {
	e.t.Helper()
	var s client.Session
	e.must(anonymous, "POST", "/sessions", client.Login{Username: user, Password: passwords[user], TokenName: name}, http.StatusCreated, &s)
	return who{user: user, token: s.Token}, s
}

// tokenStream opens the event stream with a token; the channel is closed
// when the daemon ends the stream.
func (e *env) tokenStream(w who) <-chan struct{} {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.base+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+w.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		e.t.Fatalf("events as %s: %d", w.user, resp.StatusCode)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer resp.Body.Close()
		rd := bufio.NewReader(resp.Body)
		for {
			if _, err := rd.ReadString('\n'); err != nil {
				return
			}
		}
	}()
	e.t.Cleanup(func() { cancel(); <-done })
	return done
}

func ended(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

var allUsers = map[string]string{"root": "admin", "alice": "user", "bob": "user", "dora": "user", "gus": "guest"}

// TestIdentityFollowsUsersFile: with the real auth-file plugin, an admin
// demoted, a user removed from the users file and a user disabled by an
// admin each lose what their live token and event stream gave within the
// bound (IdentityTTL, shortened here; the generation poll is off so that
// the bound alone is tested), and a removed user cannot log in right after
// the file changed even with a password Zoe accepted a moment before.
func TestIdentityFollowsUsersFile(t *testing.T) {
	const ttl = 2 * time.Second
	e := newTunedEnv(t, func(c *api.Config) {
		c.IdentityTTL, c.GenerationPoll, c.StreamRecheck = ttl, time.Hour, 100*time.Millisecond
	})
	root, _ := e.token("root", "root-laptop")
	bob, _ := e.token("bob", "bob-laptop")
	bob2, _ := e.token("bob", "bob-ci")
	dora, _ := e.token("dora", "dora-laptop")
	e.must(root, "GET", "/users", nil, http.StatusOK, nil)
	e.must(bob, "GET", "/me", nil, http.StatusOK, nil)
	e.must(e.as("bob"), "GET", "/me", nil, http.StatusOK, nil) // his password is now cached
	rootStream, bobStream, doraStream := e.tokenStream(root), e.tokenStream(bob), e.tokenStream(dora)

	// root demoted, alice promoted, bob removed.
	roles := map[string]string{"root": "user", "alice": "admin", "dora": "user", "gus": "guest"}
	e.writeUsers(roles)
	changed := time.Now()
	if r := e.do(anonymous, "POST", "/sessions", client.Login{Username: "bob", Password: passwords["bob"]}); r.status != http.StatusUnauthorized {
		t.Fatalf("a removed user logs in right after the change: %d %s", r.status, r.body)
	}
	// An admin disables dora in Zoe: her tokens go at once.
	e.must(e.as("alice"), "PATCH", "/users/dora", client.UserUpdate{Enabled: ptr(false)}, http.StatusOK, nil)
	if r := e.do(dora, "GET", "/me", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("a disabled user's token: %d %s", r.status, r.body)
	}
	var l client.TokenList
	e.must(e.as("alice"), "GET", "/users/dora/tokens", nil, http.StatusOK, &l)
	if len(l.Tokens) != 0 {
		t.Fatalf("a disabled user keeps tokens %+v", l.Tokens)
	}

	// Each loses their rights within the bound (with room for the
	// stream's re-check and a loaded machine).
	within := func(what string, cond func() (bool, string)) {
		t.Helper()
		testutil.WaitFor(t, 30*time.Second, what, cond)
		if d := time.Since(changed); d > ttl+8*time.Second { // room for a loaded machine
			t.Errorf("%s took %v, beyond the bound %v", what, d, ttl)
		}
	}
	within("the demoted admin refused", func() (bool, string) {
		r := e.do(root, "GET", "/users", nil)
		return r.status == http.StatusForbidden, fmt.Sprint(r.status)
	})
	within("the removed user's token refused", func() (bool, string) {
		r := e.do(bob, "GET", "/me", nil)
		return r.status == http.StatusUnauthorized, fmt.Sprint(r.status)
	})
	within("the streams ended", func() (bool, string) {
		return ended(rootStream) && ended(bobStream) && ended(doraStream),
			fmt.Sprintf("root's %v, bob's %v, dora's %v", ended(rootStream), ended(bobStream), ended(doraStream))
	})
	// The demoted admin is a user now, who sees himself as such.
	var me client.User
	e.must(root, "GET", "/me", nil, http.StatusOK, &me)
	if me.Role != "user" || me.AuthRole != "user" {
		t.Errorf("the demoted admin: %+v", me)
	}
	// Every token of the removed user is gone, not only the one used.
	if r := e.do(bob2, "GET", "/me", nil); r.status != http.StatusUnauthorized {
		t.Errorf("the removed user's other token: %d", r.status)
	}
	e.must(e.as("alice"), "GET", "/users/bob/tokens", nil, http.StatusOK, &l)
	if len(l.Tokens) != 0 {
		t.Errorf("the removed user keeps tokens %+v", l.Tokens)
	}
	if r := e.do(e.as("bob"), "GET", "/me", nil); r.status != http.StatusUnauthorized {
		t.Errorf("the removed user's password: %d", r.status)
	}
}

// TestIdentitySourceChangeSeenAtOnce: with a long bound, a change of the
// users file is still seen within the generation poll: the cached
// passwords and identities are dropped.
func TestIdentitySourceChangeSeenAtOnce(t *testing.T) {
	e := newTunedEnv(t, func(c *api.Config) {
		c.IdentityTTL, c.GenerationPoll = time.Hour, 100*time.Millisecond
	})
	bob, _ := e.token("bob", "")
	e.must(e.as("bob"), "GET", "/me", nil, http.StatusOK, nil)
	roles := map[string]string{}
	for k, v := range allUsers {
		if k != "bob" {
			roles[k] = v
		}
	}
	e.writeUsers(roles)
	testutil.WaitFor(t, 10*time.Second, "the removed user's token refused", func() (bool, string) {
		r := e.do(bob, "GET", "/me", nil)
		return r.status == http.StatusUnauthorized, fmt.Sprint(r.status)
	})
	if r := e.do(e.as("bob"), "GET", "/me", nil); r.status != http.StatusUnauthorized {
		t.Errorf("the removed user's cached password: %d", r.status)
	}
}

// TestAdminManagesTokens: an admin lists and revokes another user's
// tokens; a user cannot; expired tokens are purged and free their names.
func TestAdminManagesTokens(t *testing.T) {
	e := newTunedEnv(t, func(c *api.Config) { c.TokenPurge = 100 * time.Millisecond })
	root, alice := e.as("root"), e.as("alice")
	tok, s := e.token("alice", "laptop")
	_, s2 := e.token("alice", "ci")

	var l client.TokenList
	e.must(root, "GET", "/users/alice/tokens", nil, http.StatusOK, &l)
	if len(l.Tokens) != 2 || l.Tokens[0].Name != "laptop" || l.Tokens[1].Name != "ci" {
		t.Fatalf("alice's tokens as seen by an admin: %+v", l.Tokens)
	}
	for _, r := range []struct{ method, path string }{
		{"GET", "/users/alice/tokens"}, {"GET", "/users/root/tokens"},
		{"DELETE", fmt.Sprintf("/users/alice/tokens/%d", s.TokenInfo.ID)},
	} {
		if got := e.do(e.as("bob"), r.method, r.path, nil); got.status != http.StatusForbidden {
			t.Errorf("%s %s as another user: %d", r.method, r.path, got.status)
		}
	}
	e.must(root, "DELETE", fmt.Sprintf("/users/alice/tokens/%d", s.TokenInfo.ID), nil, http.StatusNoContent, nil)
	if r := e.do(tok, "GET", "/me", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("a token an admin revoked: %d", r.status)
	}
	// Another user's token is not found under the wrong name.
	if r := e.do(root, "DELETE", fmt.Sprintf("/users/bob/tokens/%d", s2.TokenInfo.ID), nil); r.status != http.StatusNotFound {
		t.Errorf("alice's token revoked as bob's: %d", r.status)
	} else if msg := r.apiError(t).Message; msg != fmt.Sprintf(`delete token: user "bob" has no token %d`, s2.TokenInfo.ID) {
		t.Errorf("alice's token revoked as bob's: %q", msg)
	}
	if r := e.do(alice, "DELETE", "/tokens/999999", nil); r.status != http.StatusNotFound {
		t.Errorf("an unknown token revoked: %d", r.status)
	} else if msg := r.apiError(t).Message; msg != `delete token: user "alice" has no token 999999` {
		t.Errorf("an unknown token revoked: %q", msg)
	}
	if r := e.do(root, "GET", "/users/nobody/tokens", nil); r.status != http.StatusNotFound {
		t.Errorf("tokens of an unknown user: %d", r.status)
	}

	// A token that expires is purged, and its name can be used again.
	e.must(anonymous, "POST", "/sessions", client.Login{Username: "alice", Password: passwords["alice"], TokenName: "short", TTL: 1}, http.StatusCreated, nil)
	testutil.WaitFor(t, 20*time.Second, "the expired token purged", func() (bool, string) {
		var l client.TokenList
		e.must(alice, "GET", "/tokens", nil, http.StatusOK, &l)
		for _, tk := range l.Tokens {
			if tk.Name == "short" {
				return false, "still listed"
			}
		}
		return true, ""
	})
	e.must(anonymous, "POST", "/sessions", client.Login{Username: "alice", Password: passwords["alice"], TokenName: "short"}, http.StatusCreated, nil)
}

// TestRemovedUserForgotten: a user removed from the users file who sends
// no request is still forgotten, once the file's generation changes: his
// tokens are revoked, his running execution ends in error, and Zoe's
// overrides of him are cleared, so that a new account of the same name
// inherits neither his tokens nor his admin role.
func TestRemovedUserForgotten(t *testing.T) {
	e := newTunedEnv(t, func(c *api.Config) {
		c.IdentityTTL, c.GenerationPoll = time.Hour, 100*time.Millisecond
	})
	root := e.as("root")
	alice, _ := e.token("alice", "laptop")
	e.must(root, "PATCH", "/users/alice", client.UserUpdate{Role: ptr("admin"), Quota: ptr("admin")}, http.StatusOK, nil)
	ex := e.startApp(alice, "mine", app("mine", nil))
	e.await(root, ex.ID, "running")

	without := map[string]string{}
	for k, v := range allUsers {
		if k != "alice" {
			without[k] = v
		}
	}
	e.writeUsers(without)
	got := e.await(root, ex.ID, "error")
	if got.ErrorMessage != engine.OwnerGone {
		t.Errorf("her execution's error: %q, want %q", got.ErrorMessage, engine.OwnerGone)
	}
	var l client.TokenList
	e.must(root, "GET", "/users/alice/tokens", nil, http.StatusOK, &l)
	if len(l.Tokens) != 0 {
		t.Errorf("the removed user keeps tokens %+v", l.Tokens)
	}
	var u client.User
	e.must(root, "GET", "/users/alice", nil, http.StatusOK, &u)
	if u.Role != "user" || u.Quota != "user" {
		t.Errorf("the removed user keeps Zoe's overrides: %+v", u)
	}

	// A new alice, a user at the source: no admin, no old token.
	e.writeUsers(allUsers)
	var s client.Session
	testutil.WaitFor(t, 10*time.Second, "the new alice logs in", func() (bool, string) {
		r := e.do(anonymous, "POST", "/sessions", client.Login{Username: "alice", Password: passwords["alice"]})
		if r.status == http.StatusCreated {
			r.json(t, &s)
		}
		return r.status == http.StatusCreated, fmt.Sprint(r.status)
	})
	var me client.User
	e.must(who{user: "alice", token: s.Token}, "GET", "/me", nil, http.StatusOK, &me)
	if me.Role != "user" || me.Quota != "user" {
		t.Errorf("the new alice: %+v", me)
	}
	if r := e.do(alice, "GET", "/me", nil); r.status != http.StatusUnauthorized {
		t.Errorf("the old alice's token: %d", r.status)
	}
}

// TestQueuedStartAsksSource: the daemon's engine asks the auth source
// (through the API's look-ups) before a start: a user removed from the
// users file while his execution waits does not get it started, even
// when nothing else noticed (no generation poll, no sweep, no request).
func TestQueuedStartAsksSource(t *testing.T) {
	e := newTunedEnv(t, func(c *api.Config) {
		// Every look-up is due at once; nothing else looks him up.
		c.IdentityTTL, c.GenerationPoll, c.IdentitySweep = 10*time.Millisecond, time.Hour, time.Hour
	})
	root, alice := e.as("root"), e.as("alice")
	big := app("big", nil)
	big["services"].([]any)[0].(map[string]any)["resources"].(map[string]any)["cores"] = map[string]any{"min": 16, "max": nil}
	full := e.startApp(root, "full", big)
	e.await(root, full.ID, "running")
	mine := e.startApp(alice, "mine", app("mine", nil))
	e.await(root, mine.ID, "queued")

	without := map[string]string{}
	for k, v := range allUsers {
		if k != "alice" {
			without[k] = v
		}
	}
	e.writeUsers(without)
	e.must(root, "POST", fmt.Sprintf("/executions/%d/terminate", full.ID), nil, http.StatusAccepted, nil)
	got := e.await(root, mine.ID, "error", "running")
	if got.Status != "error" || got.ErrorMessage != engine.OwnerGone {
		t.Errorf("the removed user's queued execution: %s %q", got.Status, got.ErrorMessage)
	}
}
