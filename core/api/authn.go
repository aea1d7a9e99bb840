package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/internal/safetext"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// Token lifetimes.
const (
	DefaultTokenTTL = 24 * time.Hour
	MaxTokenTTL     = 30 * 24 * time.Hour
	// MaxTokens bounds a user's live tokens: each is a row of the store
	// and a line of their token list. At the bound a login replaces the
	// oldest unnamed one (sessionPrefix); with only named ones left, it
	// is refused until the user revokes one.
	MaxTokens     = 100
	sessionPrefix = "session-"
	// tokenPrefix makes Zoe's tokens recognisable, e.g. by secret scanners.
	tokenPrefix = "zoe_"
	// touchEvery bounds the writes that record a token's last use.
	touchEvery = time.Minute
	// credentialTTL is how long a password the auth plugins accepted is
	// trusted without asking them again: a Basic client sends it with every
	// call, and bcrypt costs tens of milliseconds.
	credentialTTL = time.Minute
	// credentialRenew is how long before its expiry a cached answer is
	// checked again.
	credentialRenew = 15 * time.Second
)

type failure struct {
	status        int
	code, message string
}

// authenticate finds who sent r: a bearer token, HTTP Basic credentials,
// or nobody (a nil user, no failure).
func (s *Server) authenticate(r *http.Request) (*caller, *failure) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return &caller{}, nil
	}
	var ver storeVersion
	ver.v, ver.ok = s.cfg.Store.Version(r.Context())
	// The scheme is case-insensitive (RFC 9110 §11.1).
	if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		u, f := s.byToken(r.Context(), ver, strings.TrimSpace(tok))
		if f != nil {
			return nil, f
		}
		return &caller{user: &u, ver: ver, web: viaWebPages(r.Context())}, nil
	}
	name, password, ok := r.BasicAuth()
	if !ok {
		return nil, &failure{http.StatusUnauthorized, client.CodeUnauthenticated,
			"the Authorization header must be Bearer <token> or Basic credentials"}
	}
	u, f := s.byPassword(r.Context(), ver, name, password)
	if f != nil {
		return nil, f
	}
	return &caller{user: &u, ver: ver, web: viaWebPages(r.Context())}, nil
}

func (s *Server) byToken(ctx context.Context, ver storeVersion, tok string) (state.User, *failure) {
	invalid := &failure{http.StatusUnauthorized, client.CodeUnauthenticated, "the token is invalid, expired or revoked; log in again"}
	if !strings.HasPrefix(tok, tokenPrefix) {
		return state.User{}, invalid
	}
	sum := sha256.Sum256([]byte(tok))
	tr, err := s.readToken(ctx, ver, sum[:])
	if errors.Is(err, sdk.ErrNotFound) {
		return state.User{}, invalid
	}
	if err != nil {
		return state.User{}, s.storeFailure(err)
	}
	now := time.Now()
	if tr.token.Expired(now) {
		return state.User{}, invalid
	}
	// The token's user as the auth source has them now.
	u, f := s.current(ctx, tr.user)
	if f != nil {
		return state.User{}, f
	}
	if t := tr.token; (t.LastUsed == nil || now.Sub(*t.LastUsed) > touchEvery) && s.touches.claim(t.ID, now) {
		// A write: the store's version changes, and the cached token
		// with the old last use is read again.
		if err := s.cfg.Store.TouchToken(ctx, t.ID); err != nil {
			s.touches.release(t.ID) // the next request tries again
			s.log.Debug("cannot record a token's use", "token", t.ID, "error", err)
		}
	}
	return u, nil
}

// touches remembers when this daemon last recorded each token's use:
// the concurrent requests of a busy client all see the same old last use,
// and one write is enough.
type touches struct {
	mu sync.Mutex
	m  map[int64]time.Time
}

// claim says whether the caller should record token id's use now.
func (t *touches) claim(id int64, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.m[id]; ok && now.Sub(last) < touchEvery {
		return false
	}
	if t.m == nil || len(t.m) >= maxCachedCredentials {
		t.m = map[int64]time.Time{}
	}
	t.m[id] = now
	return true
}

// release forgets a claim whose write failed.
func (t *touches) release(id int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, id)
}

// tokenRead is a token with its user, as read at one store version. The
// cached values are shared by the requests that read them: read-only.
type tokenRead struct {
	token state.Token
	user  state.User
}

func (s *Server) readToken(ctx context.Context, ver storeVersion, hash []byte) (tokenRead, error) {
	load := func(ctx context.Context) (tokenRead, error) {
		t, err := s.cfg.Store.TokenByHash(ctx, hash)
		if err != nil {
			return tokenRead{}, err
		}
		u, err := s.cfg.Store.GetUser(ctx, t.Username)
		return tokenRead{token: t, user: u}, err
	}
	if !ver.ok {
		return load(ctx)
	}
	return s.reads.tokens.Load(ctx, ver.v, string(hash), load)
}

// readUser is GetUser through the cache (the value is shared: read-only).
func (s *Server) readUser(ctx context.Context, ver storeVersion, name string) (state.User, error) {
	if !ver.ok {
		return s.cfg.Store.GetUser(ctx, name)
	}
	return s.reads.users.Load(ctx, ver.v, name, func(ctx context.Context) (state.User, error) {
		return s.cfg.Store.GetUser(ctx, name)
	})
}

// byPassword asks the auth plugins (or the cache of their recent answers)
// and records the login. Failed logins lock the client's address, the
// name from it and the name for a while (throttle.go); a locked login is
// refused before the cache is read, lest a locked client guess on against
// it.
func (s *Server) byPassword(ctx context.Context, ver storeVersion, name, password string) (state.User, *failure) {
	if loginNameProblem(name) != "" {
		// No user has such a name: refused before it is counted, cached
		// or logged (a name of megabytes would fill them).
		return state.User{}, &failure{http.StatusUnauthorized, client.CodeUnauthenticated, "invalid username or password"}
	}
	if f := s.throttled(ctx, name); f != nil {
		return state.User{}, f
	}
	if id, ok, renew := s.creds.get(name, password); ok {
		if renew {
			// Checked again in the background while the cached answer
			// still serves: a busy client never waits for the hashing.
			s.checkShared(ctx, name, password)
		}
		u, err := s.readUser(ctx, ver, id.Username)
		if err == nil {
			return u, nil
		}
		if !errors.Is(err, sdk.ErrNotFound) {
			return state.User{}, s.storeFailure(err)
		}
	}
	c, leave := s.checkShared(ctx, name, password)
	defer leave()
	select {
	case <-c.done:
		if f := c.res.fail; f != nil && f.status == http.StatusTooManyRequests {
			// Locked while the check waited: Retry-After for this client.
			l := loginOf(ctx)
			l.retryAfter = max(l.retryAfter, s.throttle.wait(name, l.addr))
		}
		return c.res.user, c.res.fail
	case <-ctx.Done():
		// The client left; the check goes on for the others, if any.
		return state.User{}, &failure{http.StatusServiceUnavailable, client.CodeUnavailable, "the request ended before its credentials were checked"}
	}
}

// checkShared starts a check of the credentials, or joins the one in
// progress (passwordqueue.go). The caller calls leave once it stops
// waiting; a caller that never does keeps the check going.
func (s *Server) checkShared(ctx context.Context, name, password string) (*sharedCheck, func()) {
	k := s.creds.sum(name, password)
	p := s.checkPriority(ctx, name)
	return s.checks.join(ctx, string(k[:]), func(ctx context.Context) checked {
		return s.passwordCheck(ctx, p, name, password)
	})
}

// passwordCheckTimeout bounds one check of a username and password.
const passwordCheckTimeout = 30 * time.Second

type checked struct {
	user state.User
	fail *failure
}

// checkPassword asks the auth plugins in order and records the login.
func (s *Server) checkPassword(ctx context.Context, name, password string) (state.User, *failure) {
	var (
		id      auth.Identity
		found   bool
		lastErr error
	)
	for i, a := range s.cfg.Auth {
		got, err := a.Authenticate(ctx, name, password)
		if err == nil {
			if owner := s.earlierOwner(ctx, i, name); owner >= 0 {
				// Look-ups ask the first source that knows a name: an
				// identity given by a later one would turn, at the next
				// look-up, into the earlier one's (a local robot "bob"
				// into the directory's admin "bob").
				s.log.Warn("login refused: the name belongs to an earlier auth block, whose identity every look-up would give; give the later block's user another name",
					"user", logName(name), "accepted_by_block", i+1, "known_to_block", owner+1)
				return state.User{}, &failure{http.StatusUnauthorized, client.CodeUnauthenticated, "invalid username or password"}
			}
			id, found = got, true
			break
		}
		if !errors.Is(err, sdk.ErrInvalidCredentials) && !errors.Is(err, sdk.ErrNotFound) {
			lastErr = err
		}
	}
	if !found {
		if lastErr != nil {
			s.log.Warn("authentication failed", "user", logName(name), "error", lastErr)
			return state.User{}, &failure{http.StatusServiceUnavailable, client.CodeUnavailable, "authentication is unavailable; try again"}
		}
		return state.User{}, &failure{http.StatusUnauthorized, client.CodeUnauthenticated, "invalid username or password"}
	}
	u, err := s.cfg.Store.RecordLogin(ctx, id)
	if err != nil {
		return state.User{}, s.storeFailure(err)
	}
	s.creds.put(name, password, id)
	s.idents.confirmed(u.Username)
	return u, nil
}

// earlierOwner returns the index of the first auth block before block i
// that knows name, or -1. A block that cannot answer (unavailable, or
// unable to look users up) does not own it: a local account then works
// while the directory before it is down.
func (s *Server) earlierOwner(ctx context.Context, i int, name string) int {
	for j, a := range s.cfg.Auth[:i] {
		if _, err := a.Lookup(ctx, name); err == nil {
			return j
		}
	}
	return -1
}

func (s *Server) storeFailure(err error) *failure {
	// context.Canceled: the client left, nothing went wrong.
	if errors.Is(err, sdk.ErrUnavailable) || errors.Is(err, context.Canceled) {
		return &failure{http.StatusServiceUnavailable, client.CodeUnavailable, "the state store is unavailable; try again"}
	}
	s.log.Error("authentication: state store", "error", err)
	return &failure{http.StatusInternalServerError, client.CodeInternal, "internal error"}
}

// credentialCache remembers, for credentialTTL, the credentials the auth
// plugins accepted. Keys are an HMAC of username and password under a key
// that lives in memory only, so the passwords are not kept.
type credentialCache struct {
	key []byte
	mu  sync.Mutex
	m   map[[sha256.Size]byte]cachedIdentity
}

type cachedIdentity struct {
	id    auth.Identity
	until time.Time
}

const maxCachedCredentials = 10000

func newCredentialCache() *credentialCache {
	return &credentialCache{key: []byte(rand.Text()), m: map[[sha256.Size]byte]cachedIdentity{}}
}

func (c *credentialCache) sum(name, password string) [sha256.Size]byte {
	h := hmac.New(sha256.New, c.key)
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var k [sha256.Size]byte
	copy(k[:], h.Sum(nil))
	return k
}

// get returns the identity cached for the credentials; renew is true when
// the entry is about to expire and should be checked again.
func (c *credentialCache) get(name, password string) (id auth.Identity, ok, renew bool) {
	k := c.sum(name, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	now := time.Now()
	if !ok || now.After(e.until) {
		return auth.Identity{}, false, false
	}
	return e.id, true, e.until.Sub(now) < credentialRenew
}

// forget drops the answer cached for the credentials.
func (c *credentialCache) forget(name, password string) {
	k := c.sum(name, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}

// clear drops every cached answer (the auth source changed).
func (c *credentialCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}

func (c *credentialCache) put(name, password string, id auth.Identity) {
	k := c.sum(name, password)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedCredentials {
		for k, e := range c.m {
			if now.After(e.until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCachedCredentials {
			clear(c.m)
		}
	}
	c.m[k] = cachedIdentity{id: id, until: now.Add(credentialTTL)}
}

// login is POST /sessions: the password is checked by the auth plugins and
// a new token returned, shown this once.
func (s *Server) login(w http.ResponseWriter, r *http.Request, _ *caller) {
	var in client.Login
	if !s.decode(w, r, &in) {
		return
	}
	var details []client.Detail
	if in.Username == "" {
		details = append(details, client.Detail{Path: "username", Message: "required"})
	} else if msg := loginNameProblem(in.Username); msg != "" {
		details = append(details, client.Detail{Path: "username", Message: msg})
	}
	if in.Password == "" {
		details = append(details, client.Detail{Path: "password", Message: "required"})
	}
	if in.TTL < 0 || in.TTL > int64(MaxTokenTTL/time.Second) {
		details = append(details, client.Detail{Path: "ttl", Message: fmt.Sprintf("must be from 0 (the default, %s) to %d seconds", DefaultTokenTTL, int64(MaxTokenTTL/time.Second))})
	}
	if len(in.TokenName) > 100 {
		details = append(details, client.Detail{Path: "token_name", Message: "at most 100 characters"})
	} else if msg := safetext.NameProblem(in.TokenName); msg != "" {
		details = append(details, client.Detail{Path: "token_name", Message: msg})
	}
	if len(details) > 0 {
		s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, "invalid login request", details...)
		return
	}
	// A long-lived token comes from a live check by the auth plugins,
	// never from the cache of recent answers: a user just removed at the
	// source must not get one.
	s.creds.forget(in.Username, in.Password)
	u, f := s.byPassword(r.Context(), storeVersion{}, in.Username, in.Password)
	if f != nil {
		s.refuse(w, r, f)
		return
	}
	// Guests log in through the web pages only (ViaWebPages).
	if status, code, msg := allowed(SignedIn, true, &caller{user: &u, web: viaWebPages(r.Context())}); status != 0 {
		s.error(w, status, code, msg)
		return
	}
	ttl := DefaultTokenTTL
	if in.TTL > 0 {
		ttl = time.Duration(in.TTL) * time.Second
	}
	name := in.TokenName
	if name == "" {
		name = sessionPrefix + time.Now().UTC().Format("20060102T150405Z") + "-" + rand.Text()[:6]
	}
	tok := tokenPrefix + base64.RawURLEncoding.EncodeToString(randomBytes(32))
	sum := sha256.Sum256([]byte(tok))
	expires := time.Now().Add(ttl)
	t, err := s.cfg.Store.CreateToken(r.Context(), state.NewToken{Username: u.Username, Name: name, Hash: sum[:], ExpiresAt: &expires,
		Max: MaxTokens, Evictable: sessionPrefix})
	if errors.Is(err, sdk.ErrAlreadyExists) {
		s.error(w, http.StatusConflict, client.CodeConflict, "you already have a token named "+strconv.Quote(name), client.Detail{Path: "token_name", Message: "already used"})
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	s.write(w, http.StatusCreated, client.Session{Token: tok, TokenInfo: tokenJSON(t), User: s.userJSON(u)})
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}

func tokenJSON(t state.Token) client.TokenInfo {
	return client.TokenInfo{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsed: t.LastUsed}
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, c *caller) {
	s.writeTokens(w, r, c.name())
}

// writeTokens answers with the user's tokens.
func (s *Server) writeTokens(w http.ResponseWriter, r *http.Request, username string) {
	ts, err := s.cfg.Store.ListTokens(r.Context(), username)
	if err != nil {
		s.fail(w, err)
		return
	}
	out := client.TokenList{Tokens: []client.TokenInfo{}}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, tokenJSON(t))
	}
	s.write(w, http.StatusOK, out)
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, c *caller) {
	id, ok := s.pathID(w, r, "token")
	if !ok {
		return
	}
	if err := s.cfg.Store.DeleteToken(r.Context(), c.name(), id); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) me(w http.ResponseWriter, _ *http.Request, c *caller) {
	s.write(w, http.StatusOK, s.userJSON(*c.user))
}
