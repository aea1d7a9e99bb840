package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/engine"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// Identities follow their source: a request with a token re-checks its
// user with the auth plugins (Lookup) once the last check is older than
// half of Config.IdentityTTL, and is refused once it is older than
// IdentityTTL without a new answer. Run polls the plugins' Generation and
// drops every cached answer, passwords included, when a source changed.
//
// A user no source knows any more is forgotten (gone): their tokens are
// revoked, Zoe's overrides of them cleared (a new account of the same
// name inherits neither) and their active executions ended. Requests find
// it out, so do the engine's starts (Current), and so does a sweep of the
// users who hold something (sweep): at Run's start, when a generation
// changes, and every IdentitySweep for the sources without one.

// Defaults of the identity timings.
const (
	DefaultIdentityTTL    = time.Minute
	DefaultGenerationPoll = 5 * time.Second
	DefaultTokenPurge     = time.Hour
	DefaultIdentitySweep  = 10 * time.Minute
	// sweepParallel bounds the look-ups of a sweep that run at once.
	sweepParallel = 4
	// lookupTimeout bounds one look-up of a user with the auth plugins.
	lookupTimeout = 10 * time.Second
	// lookupPatience is how long a request waits for a look-up when the
	// last answer is still within the bound.
	lookupPatience = time.Second
)

// identities remembers when each user's identity was last confirmed by
// the auth plugins. Concurrent requests of one user share one look-up.
type identities struct {
	mu sync.Mutex
	m  map[string]time.Time
	// epoch grows at each drop: a look-up that started before a drop does
	// not store its (possibly outdated) answer.
	epoch   uint64
	flights singleflight.Group
	// afterOld, when set (by a test), runs when a request has found a
	// user's answer too old, before it joins or starts a look-up.
	afterOld func()
}

func (c *identities) get(name string) (time.Time, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.m[name]
	return at, c.epoch, ok
}

// put records that name was confirmed at at, unless the cache was dropped
// since epoch.
func (c *identities) put(name string, at time.Time, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return
	}
	if c.m == nil || len(c.m) >= maxCachedCredentials {
		c.m = map[string]time.Time{}
	}
	c.m[name] = at
}

// confirmed records a live answer of the auth plugins now (a password
// check).
func (c *identities) confirmed(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedCredentials {
		c.m = map[string]time.Time{}
	}
	c.m[name] = time.Now()
}

func (c *identities) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, name)
}

func (c *identities) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
	c.epoch++
}

// lookupResult is what the auth plugins said of a user.
type lookupResult struct {
	user state.User
	fail *failure
}

// current returns u as its auth source has it now, asking the plugins when
// the last answer is too old; a failure when the user is gone (their
// tokens are then revoked) or cannot be confirmed within the bound.
func (s *Server) current(ctx context.Context, u state.User) (state.User, *failure) {
	at, epoch, ok := s.idents.get(u.Username)
	age := time.Since(at)
	if ok && age < s.cfg.IdentityTTL/2 {
		return u, nil
	}
	if s.idents.afterOld != nil {
		s.idents.afterOld()
	}
	ch := s.idents.flights.DoChan(u.Username, func() (any, error) {
		// A request that found the answer old just before the previous
		// look-up of this user ended comes here after it: the answer is
		// young by now, and a second look-up would ask the same again.
		if at, _, ok := s.idents.get(u.Username); ok && time.Since(at) < s.cfg.IdentityTTL/2 {
			return lookupResult{user: u}, nil
		}
		// Not cancelled with the first request: the others wait for it.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		return s.lookup(lctx, u, epoch), nil
	})
	// While the last answer is within the bound, a slow source delays
	// the request a little only: the look-up goes on for the next ones.
	var patience <-chan time.Time
	if ok && age < s.cfg.IdentityTTL {
		t := time.NewTimer(lookupPatience)
		defer t.Stop()
		patience = t.C
	}
	var res lookupResult
	select {
	case r := <-ch:
		res = r.Val.(lookupResult)
	case <-patience:
		return u, nil
	case <-ctx.Done():
		return state.User{}, &failure{http.StatusServiceUnavailable, client.CodeUnavailable, "the request ended before its user was checked"}
	}
	if res.fail != nil && res.fail.status == http.StatusServiceUnavailable && ok && age < s.cfg.IdentityTTL {
		// The source cannot answer now; the last answer is still young
		// enough.
		return u, nil
	}
	return res.user, res.fail
}

// lookup asks the auth plugins in order for u's identity, the first that
// knows the user answering, and applies the answer: a changed identity is
// recorded, a user no source knows loses every token.
func (s *Server) lookup(ctx context.Context, u state.User, epoch uint64) lookupResult {
	var unavailable, unsupported, notFound bool
	for _, a := range s.cfg.Auth {
		id, err := a.Lookup(ctx, u.Username)
		switch {
		case err == nil:
			return s.apply(ctx, u, id, epoch)
		case errors.Is(err, sdk.ErrNotFound):
			notFound = true
		case errors.Is(err, sdk.ErrUnsupported):
			unsupported = true
		default:
			unavailable = true
			s.log.Warn("cannot look a user up", "user", u.Username, "error", err)
		}
	}
	switch {
	case unavailable:
		return lookupResult{fail: unconfirmed()}
	case unsupported:
		// No source can look the user up: the identity of the last
		// password login serves for the bound, no longer.
		if time.Since(u.LastLogin) < s.cfg.IdentityTTL {
			s.idents.put(u.Username, u.LastLogin, epoch)
			return lookupResult{user: u}
		}
		return lookupResult{fail: &failure{http.StatusUnauthorized, client.CodeUnauthenticated, identityUnsupported}}
	case !notFound: // no auth plugin at all
		return lookupResult{fail: unconfirmed()}
	}
	if err := s.gone(ctx, u.Username); err != nil {
		return lookupResult{fail: s.storeFailure(err)}
	}
	return lookupResult{fail: &failure{http.StatusUnauthorized, client.CodeUnauthenticated, identityGone}}
}

// Messages of current's failures that Current tells apart.
const (
	identityGone        = "your account no longer exists at the authentication source; your tokens are revoked"
	identityUnsupported = "the authentication source cannot confirm tokens; log in with your password again"
)

// recheck ends the executions of u that the container policy no longer
// allows for their role now: a demoted admin keeps no admin-only host path
// mounted.
func (s *Server) recheck(ctx context.Context, u state.User) {
	if s.cfg.Engine == nil {
		return
	}
	if _, err := s.cfg.Engine.Recheck(ctx, u.Username, u.Role); err != nil {
		s.log.Warn("cannot check a user's executions against their new role", "user", u.Username, "error", err)
	}
}

// gone forgets a user no source knows any more: tokens revoked, Zoe's
// overrides cleared (state.Store.ForgetUser), active executions ended.
// The user's row stays, disabled or not, and so does their workspace.
func (s *Server) gone(ctx context.Context, name string) error {
	f, err := s.cfg.Store.ForgetUser(ctx, name)
	if err != nil && !errors.Is(err, sdk.ErrNotFound) {
		return err
	}
	s.idents.forget(name)
	n := 0
	if s.cfg.Engine != nil {
		if n, err = s.cfg.Engine.EndOwner(ctx, name, engine.OwnerGone); err != nil {
			s.log.Warn("cannot end the executions of a user who no longer exists", "user", name, "error", err)
		}
	}
	if f != (state.Forgotten{}) || n > 0 {
		s.log.Warn("user no longer exists at the authentication source: tokens revoked, overrides cleared, executions ended",
			"user", name, "tokens", f.Tokens, "role_override", string(f.RoleOverride), "quota", f.Quota, "email_override", f.Email, "executions", n)
	}
	return nil
}

// Current is the user as the auth source has them now (engine.Identities):
// the same look-up, cache and bound as a request's. It wraps
// sdk.ErrNotFound when no source knows the user any more (forgotten, see
// gone) and sdk.ErrUnavailable when none confirms them within the bound.
// With sources that cannot look users up, the row of the last login
// serves: nothing fresher can be had.
func (s *Server) Current(ctx context.Context, username string) (state.User, error) {
	u, err := s.cfg.Store.GetUser(ctx, username)
	if err != nil {
		return state.User{}, err
	}
	cu, f := s.current(ctx, u)
	switch {
	case f == nil:
		return cu, nil
	case f.message == identityGone:
		return state.User{}, fmt.Errorf("user %q no longer exists at the authentication source: %w", username, sdk.ErrNotFound)
	case f.message == identityUnsupported:
		return u, nil
	}
	return state.User{}, fmt.Errorf("user %q: %s: %w", username, f.message, sdk.ErrUnavailable)
}

// identityUnconfirmed is the message of unconfirmed(): an open stream
// ends on it, while other 503s (a store that hiccups) leave it open.
const identityUnconfirmed = "the authentication source cannot confirm your account now; try again"

// unconfirmed is the failure of a user whose identity no source could
// confirm within the bound: refused (fail closed) until one answers.
func unconfirmed() *failure {
	return &failure{http.StatusServiceUnavailable, client.CodeUnavailable, identityUnconfirmed}
}

// apply records the identity a plugin gave when it differs from u's.
func (s *Server) apply(ctx context.Context, u state.User, id auth.Identity, epoch uint64) lookupResult {
	if id.Username != u.Username {
		// Lookup must answer for the name it was asked.
		s.log.Error("auth plugin answered a look-up with another user", "asked", u.Username, "got", id.Username)
		return lookupResult{fail: unconfirmed()}
	}
	now := time.Now()
	if sameSource(u, id) {
		s.idents.put(u.Username, now, epoch)
		return lookupResult{user: u}
	}
	nu, err := s.cfg.Store.SyncIdentity(ctx, id)
	if err != nil {
		return lookupResult{fail: s.storeFailure(err)}
	}
	if nu.AuthRole != u.AuthRole {
		s.log.Info("role changed at the authentication source", "user", u.Username,
			"auth_role", string(nu.AuthRole), "was", string(u.AuthRole), "role", string(nu.Role),
			"override_dropped", u.Role != u.AuthRole && nu.Role == nu.AuthRole)
	} else {
		s.log.Info("identity changed at the authentication source", "user", u.Username)
	}
	if nu.Role != u.Role {
		s.recheck(ctx, nu)
	}
	s.idents.put(u.Username, now, epoch)
	return lookupResult{user: nu}
}

// sameSource says whether u already has the fields id gives.
func sameSource(u state.User, id auth.Identity) bool {
	groups := id.Groups
	if groups == nil {
		groups = []string{}
	}
	ug := u.Groups
	if ug == nil {
		ug = []string{}
	}
	return u.AuthRole == id.Role && slices.Equal(ug, groups) && sameID(u.UID, id.UID) && sameID(u.GID, id.GID) &&
		u.Email == id.Email
}

func sameID(a, b *uint32) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// Run does the API's background work until ctx ends: it polls the auth
// plugins' generations, dropping what was cached of their answers when one
// changes, and purges expired tokens.
func (s *Server) Run(ctx context.Context) {
	poll := time.NewTicker(s.cfg.GenerationPoll)
	defer poll.Stop()
	purge := time.NewTicker(s.cfg.TokenPurge)
	defer purge.Stop()
	sweep := time.NewTicker(s.cfg.IdentitySweep)
	defer sweep.Stop()
	// One sweep at a time, in its own goroutine so that polls go on; one
	// asked for meanwhile runs after it.
	sweepAsked := make(chan struct{}, 1)
	askSweep := func() {
		select {
		case sweepAsked <- struct{}{}:
		default:
		}
	}
	var sweeper sync.WaitGroup
	defer sweeper.Wait()
	sweeper.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-sweepAsked:
				s.sweep(ctx)
			}
		}
	})
	gens := make([]uint64, len(s.cfg.Auth))
	known := make([]bool, len(s.cfg.Auth))
	s.pollGenerations(ctx, gens, known)
	s.purgeTokens(ctx)
	// Users removed while the daemon was down.
	askSweep()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			if s.pollGenerations(ctx, gens, known) {
				askSweep()
			}
		case <-sweep.C:
			askSweep()
		case <-purge.C:
			s.purgeTokens(ctx)
		}
	}
}

// sweep looks up, sweepParallel at a time, the users who hold something a
// removed user must not keep (tokens, an override of Zoe's, active
// executions), unless confirmed within half the bound, and applies the
// answers: a changed identity is recorded, a user no source knows is
// forgotten (gone). Users who hold nothing are left alone: there is
// nothing to take from them.
func (s *Server) sweep(ctx context.Context) {
	users, err := s.sweepable(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("cannot list the users to confirm with the authentication sources", "error", err)
		}
		return
	}
	sem := make(chan struct{}, sweepParallel)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, u := range users {
		at, epoch, ok := s.idents.get(u.Username)
		if ok && time.Since(at) < s.cfg.IdentityTTL/2 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case sem <- struct{}{}:
		}
		wg.Go(func() {
			defer func() { <-sem }()
			// Shared with the user's requests, like theirs.
			_, _, _ = s.idents.flights.Do(u.Username, func() (any, error) {
				lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
				defer cancel()
				return s.lookup(lctx, u, epoch), nil
			})
		})
	}
}

// sweepable lists the users a sweep looks up.
func (s *Server) sweepable(ctx context.Context) ([]state.User, error) {
	holders, err := s.cfg.Store.TokenHolders(ctx)
	if err != nil {
		return nil, err
	}
	active, err := s.cfg.Store.ActiveExecutions(ctx)
	if err != nil {
		return nil, err
	}
	users, err := s.cfg.Store.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	holds := make(map[string]bool, len(holders)+len(active))
	for _, n := range holders {
		holds[n] = true
	}
	for _, ex := range active {
		holds[ex.Owner] = true
	}
	out := users[:0]
	for _, u := range users {
		if holds[u.Username] || u.Role != u.AuthRole || u.Quota != "" {
			out = append(out, u)
		}
	}
	return out, nil
}

// pollGenerations drops the cached passwords and identities when the
// generation of an auth plugin changed since the last poll, and says
// whether it did.
func (s *Server) pollGenerations(ctx context.Context, gens []uint64, known []bool) bool {
	changed := false
	for i, a := range s.cfg.Auth {
		gctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		g, err := a.Generation(gctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, sdk.ErrUnsupported) {
				s.log.Debug("cannot read an auth plugin's generation", "plugin", i, "error", err)
			}
			continue
		}
		if known[i] && g != gens[i] {
			changed = true
		}
		gens[i], known[i] = g, true
	}
	if changed {
		s.creds.clear()
		s.idents.drop()
		s.log.Info("an authentication source changed: cached passwords and identities dropped")
	}
	return changed
}

func (s *Server) purgeTokens(ctx context.Context) {
	n, err := s.cfg.Store.PurgeExpiredTokens(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("cannot purge expired tokens", "error", err)
	case n > 0:
		s.log.Info("purged expired tokens", "tokens", n)
	}
}

// listUserTokens is GET /users/{name}/tokens (admins).
func (s *Server) listUserTokens(w http.ResponseWriter, r *http.Request, _ *caller) {
	name := r.PathValue("name")
	if _, err := s.cfg.Store.GetUser(r.Context(), name); err != nil {
		s.fail(w, err)
		return
	}
	s.writeTokens(w, r, name)
}

// revokeUserToken is DELETE /users/{name}/tokens/{id} (admins).
func (s *Server) revokeUserToken(w http.ResponseWriter, r *http.Request, c *caller) {
	id, ok := s.pathID(w, r, "token")
	if !ok {
		return
	}
	name := r.PathValue("name")
	if err := s.cfg.Store.DeleteToken(r.Context(), name, id); err != nil {
		s.fail(w, err)
		return
	}
	s.log.Info("token revoked", "user", name, "token", id, "by", c.name())
	w.WriteHeader(http.StatusNoContent)
}
