package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/engine"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// slowAuth looks nobody up: its users are checked with their passwords only.
func (a *slowAuth) Lookup(context.Context, string) (auth.Identity, error) {
	return auth.Identity{}, fmt.Errorf("lookup: %w", sdk.ErrUnsupported)
}

func (a *slowAuth) Generation(context.Context) (uint64, error) { return 0, nil }

// memSource is an auth source held in memory that a test changes.
type memSource struct {
	mu      sync.Mutex
	users   map[string]auth.Identity // password: name + "-pw"
	err     error                    // when set, Lookup fails with it
	gen     uint64
	lookups atomic.Int32
	// gate, when set, holds every Lookup until it is closed.
	gate chan struct{}
}

func (m *memSource) Authenticate(_ context.Context, user, pw string) (auth.Identity, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.users[user]
	if !ok || pw != user+"-pw" {
		return auth.Identity{}, fmt.Errorf("wrong username or password: %w", sdk.ErrInvalidCredentials)
	}
	return id, nil
}

func (m *memSource) Lookup(_ context.Context, user string) (auth.Identity, error) {
	m.lookups.Add(1)
	m.mu.Lock()
	gate := m.gate
	m.mu.Unlock()
	if gate != nil {
		<-gate
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return auth.Identity{}, m.err
	}
	id, ok := m.users[user]
	if !ok {
		return auth.Identity{}, fmt.Errorf("no user %q: %w", user, sdk.ErrNotFound)
	}
	return id, nil
}

func (m *memSource) Generation(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen, nil
}

// change edits the source, and bumps its generation when bump.
func (m *memSource) change(bump bool, f func(users map[string]auth.Identity)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m.users)
	if bump {
		m.gen++
	}
}

func (m *memSource) fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.err = err
}

type identityEnv struct {
	t   *testing.T
	st  state.Store
	src *memSource
	s   *Server
	url string
}

func newIdentityEnv(t *testing.T, ttl time.Duration, auths ...Authenticator) *identityEnv {
	t.Helper()
	st, err := state.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "zoe.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	src := &memSource{users: map[string]auth.Identity{
		"alice": {Username: "alice", Role: auth.RoleAdmin},
		"bob":   {Username: "bob", Role: auth.RoleUser},
	}}
	if len(auths) == 0 {
		auths = []Authenticator{src}
	}
	s := New(testutil.Logger(t), Config{Store: st, Auth: auths, IdentityTTL: ttl,
		GenerationPoll: 20 * time.Millisecond, StreamRecheck: 20 * time.Millisecond})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &identityEnv{t: t, st: st, src: src, s: s, url: srv.URL + "/api/v1"}
}

// call sends a request with the bearer token (or Basic credentials user:
// user-pw when tok starts with "basic:") and returns the status and body.
func (e *identityEnv) call(method, path, tok string, body any) (int, []byte) {
	e.t.Helper()
	var rd *strings.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	} else {
		rd = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if user, ok := strings.CutPrefix(tok, "basic:"); ok {
		req.SetBasicAuth(user, user+"-pw")
	} else if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (e *identityEnv) login(user string) string {
	e.t.Helper()
	code, body := e.call("POST", "/sessions", "", client.Login{Username: user, Password: user + "-pw"})
	if code != http.StatusCreated {
		e.t.Fatalf("login of %s: %d %s", user, code, body)
	}
	var s client.Session
	if err := json.Unmarshal(body, &s); err != nil {
		e.t.Fatal(err)
	}
	return s.Token
}

// age makes the user's last confirmation older by d.
func (e *identityEnv) age(user string, d time.Duration) {
	e.s.idents.mu.Lock()
	defer e.s.idents.mu.Unlock()
	if at, ok := e.s.idents.m[user]; ok {
		e.s.idents.m[user] = at.Add(-d)
	}
}

func (e *identityEnv) me(tok string) (int, client.User) {
	e.t.Helper()
	code, body := e.call("GET", "/me", tok, nil)
	var u client.User
	if code == http.StatusOK {
		_ = json.Unmarshal(body, &u)
	}
	return code, u
}

// TestTokenFollowsItsSource: a token's user is looked up again once the
// last answer is half the bound old; a demotion applies at once, a removed
// user loses every token, and an unreachable source is trusted for the
// bound only.
func TestTokenFollowsItsSource(t *testing.T) {
	const ttl = time.Hour // the test ages the answers itself
	e := newIdentityEnv(t, ttl)
	alice, bob := e.login("alice"), e.login("bob")
	bob2 := e.login("bob")
	base := e.src.lookups.Load()

	// A login confirms the identity: no look-up for a while.
	if code, u := e.me(alice); code != http.StatusOK || u.Role != "admin" {
		t.Fatalf("GET /me: %d %+v", code, u)
	}
	if n := e.src.lookups.Load() - base; n != 0 {
		t.Fatalf("%d look-ups right after a login", n)
	}

	// Demoted at the source: seen at the next check.
	e.src.change(false, func(us map[string]auth.Identity) {
		us["alice"] = auth.Identity{Username: "alice", Role: auth.RoleUser, Email: "a@x"}
	})
	if code, u := e.me(alice); code != http.StatusOK || u.Role != "admin" {
		t.Fatalf("before the check is due: %d %+v", code, u)
	}
	e.age("alice", ttl/2)
	if code, u := e.me(alice); code != http.StatusOK || u.Role != "user" || u.Email != "a@x" {
		t.Fatalf("after her demotion: %d %+v", code, u)
	}
	if code, _ := e.call("GET", "/users", alice, nil); code != http.StatusForbidden {
		t.Fatalf("a demoted admin lists users: %d", code)
	}

	// Unreachable source: the last answer serves until the bound, then
	// the user is refused (503) until it answers.
	e.src.fail(fmt.Errorf("ldap down: %w", sdk.ErrUnavailable))
	e.age("alice", ttl/2+time.Minute)
	if code, _ := e.me(alice); code != http.StatusOK {
		t.Fatalf("source down, answer within the bound: %d", code)
	}
	e.age("alice", ttl)
	if code, body := e.me(alice); code != http.StatusServiceUnavailable {
		t.Fatalf("source down, answer beyond the bound: %d %+v", code, body)
	}
	e.src.fail(nil)
	if code, _ := e.me(alice); code != http.StatusOK {
		t.Fatalf("source back: %d", code)
	}

	// Removed at the source: every token of the user is revoked.
	e.src.change(false, func(us map[string]auth.Identity) { delete(us, "bob") })
	e.age("bob", ttl)
	code, body := e.call("GET", "/me", bob, nil)
	if code != http.StatusUnauthorized || !strings.Contains(string(body), "no longer exists") {
		t.Fatalf("removed user: %d %s", code, body)
	}
	if code, _ := e.me(bob2); code != http.StatusUnauthorized {
		t.Fatalf("removed user's other token: %d", code)
	}
	if ts, err := e.st.ListTokens(t.Context(), "bob"); err != nil || len(ts) != 0 {
		t.Fatalf("bob keeps tokens %v, %v", ts, err)
	}
	// Nor can he log in again, or use his password.
	if code, _ := e.call("POST", "/sessions", "", client.Login{Username: "bob", Password: "bob-pw"}); code != http.StatusUnauthorized {
		t.Fatalf("removed user logs in: %d", code)
	}
}

// TestLookupsShared: the concurrent requests of one user share one look-up.
func TestLookupsShared(t *testing.T) {
	e := newIdentityEnv(t, time.Hour)
	tok := e.login("alice")
	e.age("alice", time.Hour)
	gate := make(chan struct{})
	e.src.mu.Lock()
	e.src.gate = gate
	e.src.mu.Unlock()
	base := e.src.lookups.Load()
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Go(func() { codes[i], _ = e.me(tok) })
	}
	testutil.WaitFor(t, 10*time.Second, "the first look-up", func() (bool, string) {
		n := e.src.lookups.Load() - base
		return n >= 1, fmt.Sprint(n)
	})
	close(gate)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d: %d", i, c)
		}
	}
	// The requests that arrived after the first look-up ended find it.
	if n := e.src.lookups.Load() - base; n != 1 {
		t.Errorf("%d look-ups for 20 concurrent requests, want 1", n)
	}
}

// TestLookupJustEnded: a request that found the answer old just before
// another request's look-up of the same user ended does not look the user
// up again (the cause of TestLookupsShared's rare second look-up: the
// second request joined no flight, the first having just ended).
func TestLookupJustEnded(t *testing.T) {
	e := newIdentityEnv(t, time.Hour)
	e.login("alice")
	e.age("alice", time.Hour)
	u, err := e.st.GetUser(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	e.src.mu.Lock()
	e.src.gate = gate
	e.src.mu.Unlock()
	base := e.src.lookups.Load()
	first := make(chan *failure, 1)
	go func() {
		_, f := e.s.current(context.Background(), u)
		first <- f
	}()
	testutil.WaitFor(t, 10*time.Second, "the first look-up", func() (bool, string) {
		n := e.src.lookups.Load() - base
		return n >= 1, fmt.Sprint(n)
	})
	// The first request is in its look-up: the hook is the second's alone,
	// which lets the first end before it goes on.
	e.s.idents.afterOld = func() {
		close(gate)
		if f := <-first; f != nil {
			t.Errorf("first request: %+v", f)
		}
	}
	if _, f := e.s.current(t.Context(), u); f != nil {
		t.Errorf("second request: %+v", f)
	}
	if n := e.src.lookups.Load() - base; n != 1 {
		t.Errorf("%d look-ups for 2 requests, the second after the first's ended; want 1", n)
	}
}

// TestGenerationDropsCaches: when a source's generation changes, cached
// passwords and identities are dropped at once: a removed user's Basic
// credentials and token stop working without waiting for the bound.
func TestGenerationDropsCaches(t *testing.T) {
	e := newIdentityEnv(t, time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); e.s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	tok := e.login("bob")
	if code, _ := e.me("basic:bob"); code != http.StatusOK {
		t.Fatalf("Basic: %d", code)
	}
	if _, ok, _ := e.s.creds.get("bob", "bob-pw"); !ok {
		t.Fatal("the password is not cached")
	}
	e.src.change(true, func(us map[string]auth.Identity) { delete(us, "bob") })
	testutil.WaitFor(t, 10*time.Second, "the token refused", func() (bool, string) {
		code, _ := e.me(tok)
		return code == http.StatusUnauthorized, fmt.Sprint(code)
	})
	if code, _ := e.me("basic:bob"); code != http.StatusUnauthorized {
		t.Fatalf("Basic after the source changed: %d", code)
	}
}

// TestLoginNeverFromCache: POST /sessions asks the source even when the
// password was accepted a moment ago.
func TestLoginNeverFromCache(t *testing.T) {
	e := newIdentityEnv(t, time.Hour)
	if code, _ := e.me("basic:bob"); code != http.StatusOK {
		t.Fatalf("Basic: %d", code)
	}
	// Removed without a generation change: only a live check sees it.
	e.src.change(false, func(us map[string]auth.Identity) { delete(us, "bob") })
	if code, body := e.call("POST", "/sessions", "", client.Login{Username: "bob", Password: "bob-pw"}); code != http.StatusUnauthorized {
		t.Fatalf("login of a removed user: %d %s", code, body)
	}
}

// TestLookupUnsupported: with a source that cannot look users up, a token
// serves for the bound after its user's password login, then asks for the
// password again.
func TestLookupUnsupported(t *testing.T) {
	e := newIdentityEnv(t, 3*time.Second, &slowAuth{})
	code, body := e.call("POST", "/sessions", "", client.Login{Username: "alice", Password: "secret"})
	if code != http.StatusCreated {
		t.Fatalf("login: %d %s", code, body)
	}
	var s client.Session
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.me(s.Token); code != http.StatusOK {
		t.Fatalf("within the bound: %d", code)
	}
	testutil.WaitFor(t, 20*time.Second, "the token refused after the bound", func() (bool, string) {
		code, body := e.call("GET", "/me", s.Token, nil)
		return code == http.StatusUnauthorized && strings.Contains(string(body), "log in with your password"), fmt.Sprint(code, string(body))
	})
}

// TestSlowSourceWithinBound: a source that hangs delays a request whose
// last answer is within the bound by lookupPatience only.
func TestSlowSourceWithinBound(t *testing.T) {
	e := newIdentityEnv(t, time.Hour)
	tok := e.login("alice")
	e.age("alice", 40*time.Minute)
	gate := make(chan struct{})
	e.src.mu.Lock()
	e.src.gate = gate
	e.src.mu.Unlock()
	defer close(gate)
	start := time.Now()
	if code, _ := e.me(tok); code != http.StatusOK {
		t.Fatalf("with a hanging source, within the bound: %d", code)
	}
	if d := time.Since(start); d < lookupPatience {
		t.Errorf("served after %v, before the look-up had its chance", d)
	}
}

// endings is an engine that records whose executions were ended.
type endings struct {
	Engine
	mu        sync.Mutex
	ended     []string
	rechecked []string
}

func (e *endings) EndOwner(_ context.Context, owner, reason string) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ended = append(e.ended, owner+": "+reason)
	return 1, nil
}

func (e *endings) Recheck(_ context.Context, owner string, role auth.Role) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rechecked = append(e.rechecked, owner+": "+string(role))
	return 0, nil
}

func (e *endings) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.ended...)
}

// TestCurrent: the engine gets an owner as the source has them now,
// through the same cache and bound as requests: a demotion applies, a
// removed user is not found (and forgotten, his executions ended), a
// source that cannot answer beyond the bound is unavailable, and a source
// that cannot look users up leaves the last login's row.
func TestCurrent(t *testing.T) {
	const ttl = time.Hour
	e := newIdentityEnv(t, ttl)
	eng := &endings{}
	e.s.cfg.Engine = eng
	e.login("alice")
	bob := e.login("bob")
	ctx := t.Context()

	e.src.change(false, func(us map[string]auth.Identity) {
		uid := uint32(1234)
		us["alice"] = auth.Identity{Username: "alice", Role: auth.RoleUser, UID: &uid}
	})
	if u, err := e.s.Current(ctx, "alice"); err != nil || u.Role != auth.RoleAdmin {
		t.Fatalf("confirmed a moment ago: %+v %v", u, err)
	}
	e.age("alice", ttl/2)
	if u, err := e.s.Current(ctx, "alice"); err != nil || u.Role != auth.RoleUser || u.UID == nil || *u.UID != 1234 {
		t.Fatalf("demoted: %+v %v", u, err)
	}
	// Her running executions are checked against her new role.
	eng.mu.Lock()
	rechecked := slices.Clone(eng.rechecked)
	eng.mu.Unlock()
	if !slices.Equal(rechecked, []string{"alice: user"}) {
		t.Errorf("rechecked %v, want alice as a user", rechecked)
	}

	e.src.fail(fmt.Errorf("ldap down: %w", sdk.ErrUnavailable))
	e.age("alice", ttl)
	if _, err := e.s.Current(ctx, "alice"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("source down beyond the bound: %v", err)
	}
	e.src.fail(nil)

	if _, err := e.st.UpdateUser(ctx, "bob", state.UserUpdate{Role: ref(auth.RoleAdmin)}); err != nil {
		t.Fatal(err)
	}
	e.src.change(false, func(us map[string]auth.Identity) { delete(us, "bob") })
	e.age("bob", ttl)
	if _, err := e.s.Current(ctx, "bob"); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("removed: %v", err)
	}
	if got := eng.list(); len(got) != 1 || got[0] != "bob: "+engine.OwnerGone {
		t.Errorf("executions ended: %v", got)
	}
	if u, err := e.st.GetUser(ctx, "bob"); err != nil || u.Role != auth.RoleUser {
		t.Errorf("the removed user keeps his override: %+v %v", u, err)
	}
	if code, _ := e.me(bob); code != http.StatusUnauthorized {
		t.Errorf("the removed user's token: %d", code)
	}
	if _, err := e.s.Current(ctx, "nobody"); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}

	// A source that cannot look users up: the row of the last login.
	e2 := newIdentityEnv(t, ttl, &slowAuth{})
	if code, body := e2.call("POST", "/sessions", "", client.Login{Username: "alice", Password: "secret"}); code != http.StatusCreated {
		t.Fatalf("login: %d %s", code, body)
	}
	e2.age("alice", ttl)
	if _, err := e2.st.UpdateUser(ctx, "alice", state.UserUpdate{Quota: ref("")}); err != nil {
		t.Fatal(err)
	}
	if u, err := e2.s.Current(ctx, "alice"); err != nil || u.Username != "alice" {
		t.Errorf("without look-ups: %+v %v", u, err)
	}
}

// TestSweepWithoutGeneration: with a source whose generation never
// changes, the periodic sweep still forgets a removed user who sends no
// request, once his last answer is half the bound old; users who hold
// nothing are not looked up.
func TestSweepWithoutGeneration(t *testing.T) {
	const ttl = time.Hour
	e := newIdentityEnv(t, ttl)
	e.s.cfg.IdentitySweep = 20 * time.Millisecond
	bob := e.login("bob")
	if _, err := e.st.UpdateUser(t.Context(), "bob", state.UserUpdate{Quota: ref("admin")}); err != nil {
		t.Fatal(err)
	}
	e.login("alice")
	if _, err := e.st.DeleteTokens(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	e.src.change(false, func(us map[string]auth.Identity) { delete(us, "bob"); delete(us, "alice") })
	e.age("bob", ttl/2)
	e.age("alice", ttl/2)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); e.s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	testutil.WaitFor(t, 10*time.Second, "bob's tokens revoked", func() (bool, string) {
		ts, err := e.st.ListTokens(t.Context(), "bob")
		return err == nil && len(ts) == 0, fmt.Sprint(len(ts), err)
	})
	if u, err := e.st.GetUser(t.Context(), "bob"); err != nil || u.Quota != "" {
		t.Errorf("bob keeps his quota: %+v %v", u, err)
	}
	if code, _ := e.me(bob); code != http.StatusUnauthorized {
		t.Errorf("bob's token: %d", code)
	}
	// alice holds nothing: she was not looked up, so not confirmed.
	e.s.idents.mu.Lock()
	at := e.s.idents.m["alice"]
	e.s.idents.mu.Unlock()
	if time.Since(at) < ttl/2 {
		t.Errorf("alice, who holds nothing, was looked up")
	}
}

func ref[T any](v T) *T { return &v }

// TestRoleChangeLogged: the log says which role an admin gave whom, so an
// audit finds what a demoted admin did within the bound.
func TestRoleChangeLogged(t *testing.T) {
	e := newIdentityEnv(t, time.Hour)
	var buf testutil.SyncBuffer
	e.s.log = hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Info})
	e.login("bob")
	alice := e.login("alice")
	if code, body := e.call("PATCH", "/users/bob", alice, client.UserUpdate{Role: ref("admin")}); code != http.StatusOK {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	if log := buf.String(); !strings.Contains(log, "user changed: user=bob by=alice role=admin") {
		t.Errorf("log %q does not say the role set", log)
	}
}

// localSource is a memSource whose passwords are name + "-local".
type localSource struct{ *memSource }

func (l localSource) Authenticate(ctx context.Context, user, pw string) (auth.Identity, error) {
	if p, ok := strings.CutSuffix(pw, "-local"); ok && p == user {
		pw = user + "-pw"
	} else {
		pw = ""
	}
	return l.memSource.Authenticate(ctx, user, pw)
}

// TestNameOfTwoSources: a name that an earlier auth block knows cannot log
// in through a later one, since every look-up would give it the earlier
// block's identity (a local robot "bob" would become the directory's admin
// "bob"); it can while the earlier block cannot answer, and names that only
// the later block knows log in through it.
func TestNameOfTwoSources(t *testing.T) {
	directory := &memSource{users: map[string]auth.Identity{
		"bob": {Username: "bob", Role: auth.RoleAdmin},
	}}
	local := localSource{&memSource{users: map[string]auth.Identity{
		"bob":   {Username: "bob", Role: auth.RoleUser},
		"robot": {Username: "robot", Role: auth.RoleUser},
	}}}
	e := newIdentityEnv(t, time.Hour, directory, local)
	login := func(user, pw string) int {
		t.Helper()
		code, _ := e.call("POST", "/sessions", "", client.Login{Username: user, Password: pw})
		return code
	}
	if code := login("bob", "bob-local"); code != http.StatusUnauthorized {
		t.Errorf("bob through the local block while the directory knows bob: %d, want 401", code)
	}
	if code := login("robot", "robot-local"); code != http.StatusCreated {
		t.Errorf("robot, known to the local block only: %d, want 201", code)
	}
	if code := login("bob", "bob-pw"); code != http.StatusCreated {
		t.Errorf("bob through the directory: %d, want 201", code)
	}
	directory.fail(fmt.Errorf("directory down: %w", sdk.ErrUnavailable))
	if code := login("bob", "bob-local"); code != http.StatusCreated {
		t.Errorf("bob through the local block while the directory is down: %d, want 201", code)
	}
}
