package engine_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/zoe-project/zoe/core/engine"
	"github.com/zoe-project/zoe/core/policy"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// source is what the auth source says of the owners now.
type source struct {
	mu    sync.Mutex
	users map[string]state.User
	err   error // when set, Current fails with it
	calls int
}

func (s *source) Current(_ context.Context, name string) (state.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return state.User{}, s.err
	}
	u, ok := s.users[name]
	if !ok {
		return state.User{}, fmt.Errorf("user %q: %w", name, sdk.ErrNotFound)
	}
	return u, nil
}

func (s *source) set(f func(*source)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *source) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// newSourceEnv is an engine (not running) whose owners come from src;
// alice is an admin in the store.
func newSourceEnv(t *testing.T, p policy.Policy, src *source) (*env, *specs) {
	t.Helper()
	var rec *specs
	e := newEnv(t, options{noEngine: true, wrap: func(b engine.Backend) engine.Backend {
		rec = &specs{Backend: b}
		return rec
	}})
	if _, err := e.store.RecordLogin(t.Context(), auth.Identity{Username: "alice", Role: auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	e.cfg.Containers, e.cfg.Identities = p, src
	var err error
	if e.eng, err = engine.New(testutil.Logger(t).Named("engine"), e.cfg); err != nil {
		t.Fatal(err)
	}
	return e, rec
}

// TestStartFollowsSource: a queued execution starts with its owner as the
// auth source has them at the start, not as the store recorded them: a
// demoted admin's admin-only host path is refused, a removed owner's
// execution ends in error, new ids apply, and a source that cannot answer
// makes the start wait.
func TestStartFollowsSource(t *testing.T) {
	t.Parallel()
	t.Run("demoted", func(t *testing.T) {
		data := t.TempDir()
		src := &source{users: map[string]state.User{"alice": {Username: "alice", Role: auth.RoleUser, AuthRole: auth.RoleUser, Enabled: true}}}
		e, rec := newSourceEnv(t, policy.Policy{HostPaths: []policy.HostPath{{Path: data, Roles: []auth.Role{auth.RoleAdmin}}}}, src)
		// Accepted while the store still has her as an admin.
		ex := e.submit(withVolumes(t, zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}),
			zapp.Volume{Name: "data", Path: data}))
		e.run()
		got := e.waitStatus(ex.ID, state.StatusError)
		if want := "which the administrator allows only for the roles admin"; !strings.Contains(got.ErrorMessage, want) {
			t.Errorf("error %q, want %q", got.ErrorMessage, want)
		}
		if n := len(rec.started()); n != 0 {
			t.Errorf("%d services started", n)
		}
	})
	t.Run("removed", func(t *testing.T) {
		src := &source{users: map[string]state.User{}}
		e, rec := newSourceEnv(t, policy.Policy{}, src)
		ex := e.submit(zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}))
		e.run()
		got := e.waitStatus(ex.ID, state.StatusError)
		if got.ErrorMessage != engine.OwnerGone {
			t.Errorf("error %q, want %q", got.ErrorMessage, engine.OwnerGone)
		}
		if n := len(rec.started()); n != 0 {
			t.Errorf("%d services started", n)
		}
	})
	t.Run("new ids", func(t *testing.T) {
		uid, gid := uint32(1000), uint32(1001)
		src := &source{users: map[string]state.User{"alice": {Username: "alice", Role: auth.RoleUser, AuthRole: auth.RoleUser,
			Enabled: true, UID: &uid, GID: &gid}}}
		e, rec := newSourceEnv(t, policy.Policy{RunAs: &policy.IDs{UID: 4000, GID: 4001}}, src)
		e.run()
		ex := e.submit(zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}))
		e.waitStatus(ex.ID, state.StatusRunning)
		if list := rec.started(); len(list) != 1 || list[0].User != "1000:1001" {
			t.Fatalf("started %+v, want user 1000:1001", list)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		src := &source{users: map[string]state.User{"alice": {Username: "alice", Role: auth.RoleUser, AuthRole: auth.RoleUser}}}
		e, rec := newSourceEnv(t, policy.Policy{}, src)
		ex := e.submit(zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}))
		e.run()
		got := e.waitStatus(ex.ID, state.StatusError)
		if got.ErrorMessage != engine.OwnerDisabled {
			t.Errorf("error %q, want %q", got.ErrorMessage, engine.OwnerDisabled)
		}
		if n := len(rec.started()); n != 0 {
			t.Errorf("%d services started", n)
		}
	})
	t.Run("source unavailable", func(t *testing.T) {
		src := &source{users: map[string]state.User{"alice": {Username: "alice", Role: auth.RoleUser, AuthRole: auth.RoleUser, Enabled: true}},
			err: fmt.Errorf("ldap down: %w", sdk.ErrUnavailable)}
		e, rec := newSourceEnv(t, policy.Policy{}, src)
		ex := e.submit(zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}))
		e.run()
		waitFor(t, "three tries", func() (bool, string) { n := src.count(); return n >= 3, fmt.Sprint(n) })
		if got, err := e.store.GetExecution(t.Context(), ex.ID); err != nil || got.Status != state.StatusQueued {
			t.Fatalf("while the source cannot answer: %+v %v", got, err)
		}
		if n := len(rec.started()); n != 0 {
			t.Fatalf("%d services started", n)
		}
		src.set(func(s *source) { s.err = nil })
		e.waitStatus(ex.ID, state.StatusRunning)
	})
}

// TestEndOwner: the active executions of a user the source no longer
// knows end in error with the reason; the others' go on.
func TestEndOwner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	if _, err := e.store.RecordLogin(t.Context(), auth.Identity{Username: "bob", Role: auth.RoleUser}); err != nil {
		t.Fatal(err)
	}
	app := zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()})
	mine := e.submit(app)
	bobs, err := e.eng.Submit(t.Context(), "bob", "his", app)
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus(mine.ID, state.StatusRunning)
	e.waitStatus(bobs.ID, state.StatusRunning)
	n, err := e.eng.EndOwner(t.Context(), "alice", engine.OwnerGone)
	if err != nil || n != 1 {
		t.Fatalf("EndOwner = %d, %v", n, err)
	}
	got := e.waitStatus(mine.ID, state.StatusError)
	if got.ErrorMessage != engine.OwnerGone {
		t.Errorf("error %q", got.ErrorMessage)
	}
	if got, err := e.store.GetExecution(t.Context(), bobs.ID); err != nil || got.Status != state.StatusRunning {
		t.Errorf("bob's execution: %+v %v", got, err)
	}
	// Nothing left to end.
	if n, err := e.eng.EndOwner(t.Context(), "alice", engine.OwnerGone); err != nil || n != 0 {
		t.Errorf("EndOwner again = %d, %v", n, err)
	}
}

// TestRecheck: an admin's running execution that mounts an admin-only host
// path ends in error when their role becomes user; one the policy still
// allows goes on.
func TestRecheck(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	src := &source{users: map[string]state.User{"alice": {Username: "alice", Role: auth.RoleAdmin, AuthRole: auth.RoleAdmin, Enabled: true}}}
	e, _ := newSourceEnv(t, policy.Policy{HostPaths: []policy.HostPath{{Path: data, Roles: []auth.Role{auth.RoleAdmin}}}}, src)
	e.run()
	mounted := e.submit(withVolumes(t, zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}),
		zapp.Volume{Name: "data", Path: data}))
	plain := e.submit(zappJSON(t, false, svc{name: "beta", ess: 1, total: 1, monitor: true, env: forever()}))
	e.waitStatus(mounted.ID, state.StatusRunning)
	e.waitStatus(plain.ID, state.StatusRunning)

	if n, err := e.eng.Recheck(t.Context(), "alice", auth.RoleAdmin); err != nil || n != 0 {
		t.Fatalf("Recheck as admin = %d, %v; want nothing ended", n, err)
	}
	if n, err := e.eng.Recheck(t.Context(), "alice", auth.RoleUser); err != nil || n != 1 {
		t.Fatalf("Recheck as user = %d, %v; want 1 ended", n, err)
	}
	got := e.waitStatus(mounted.ID, state.StatusError)
	if want := "the owner's role is now user: "; !strings.HasPrefix(got.ErrorMessage, want) ||
		!strings.Contains(got.ErrorMessage, "allows only for the roles admin") {
		t.Errorf("error %q, want %q and the rule", got.ErrorMessage, want)
	}
	if got, err := e.store.GetExecution(t.Context(), plain.ID); err != nil || got.Status != state.StatusRunning {
		t.Errorf("the other execution: %+v %v, want running", got.Status, err)
	}
}
