package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/httplimit"
	"github.com/zoe-project/zoe/internal/safetext"
)

// ThrottleRule says when failed logins lock what they are counted under:
// from the After-th failure on, each failure locks for Base, doubled at
// each further failure, at most Max. Failures older than Forget are
// forgotten. Attempts refused while locked do not count.
type ThrottleRule struct {
	After         int
	Base, Max     time.Duration
	Forget        time.Duration
	MaxRemembered int
}

// Throttle is how failed logins are throttled: per client address, per
// user name and address, and per user name. The locks on the address and
// the pair refuse, which only hurts whoever sends from it; the lock on a
// name alone, which an attacker anywhere could renew, never refuses: it
// sends the checks of the name to the last line of the password queue
// (suspect), except from an address the user logged in from recently.
type Throttle struct {
	Address, Pair, Name ThrottleRule
	// KnownFor is how long an address a user logged in from is exempt from
	// the lock of the user's name, and its checks served first.
	KnownFor time.Duration
}

// DefaultThrottle is the throttling when Config.Throttle is zero.
func DefaultThrottle() Throttle {
	return Throttle{
		Address:  ThrottleRule{After: 30, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour, MaxRemembered: 10000},
		Pair:     ThrottleRule{After: 5, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour, MaxRemembered: 10000},
		Name:     ThrottleRule{After: 10, Base: time.Second, Max: 30 * time.Second, Forget: 15 * time.Minute, MaxRemembered: 10000},
		KnownFor: 7 * 24 * time.Hour,
	}
}

// throttle counts failed logins.
type throttle struct {
	cfg Throttle
	log hclog.Logger
	now func() time.Time

	mu                  sync.Mutex
	addrs, pairs, names strikeTable
	// known are the pairs that logged in, with the time.
	known map[string]time.Time
	// inflight counts the password checks in flight by address
	// ("a\x00"+addr), by pair ("p\x00"+pairKey) and, from addresses the
	// name did not log in from lately, by name ("n\x00"+name); wake is
	// closed and replaced whenever one ends.
	inflight map[string]int
	wake     chan struct{}
}

// Bounds of the password checks in flight (waiting in the queue or
// running): without them, guesses sent at once are all checked before the
// first failure locks anything.
const (
	maxChecksPerAddress = 2
	maxChecksPerPair    = 1
)

type strikeTable struct {
	rule ThrottleRule
	kind string
	m    map[string]*strikes
}

type strikes struct {
	name, addr string
	failures   int
	last       time.Time // of the last failure
	until      time.Time // locked until
}

func newThrottle(cfg Throttle, log hclog.Logger) *throttle {
	if cfg == (Throttle{}) {
		cfg = DefaultThrottle()
	}
	return &throttle{cfg: cfg, log: log, now: time.Now, known: map[string]time.Time{},
		inflight: map[string]int{}, wake: make(chan struct{}),
		addrs: strikeTable{rule: cfg.Address, kind: "address", m: map[string]*strikes{}},
		pairs: strikeTable{rule: cfg.Pair, kind: "user_address", m: map[string]*strikes{}},
		names: strikeTable{rule: cfg.Name, kind: "user", m: map[string]*strikes{}}}
}

func pairKey(name, addr string) string { return name + "\x00" + addr }

// nameKey is the name a login is counted under: an LDAP directory matches
// uid ignoring case and surrounding or repeated spaces, so "Alice" and
// " alice" are guesses at alice's password, not a name of their own with
// failures of its own. Lower-case and spaces folded for every auth source:
// at worst two users whose names differ only so share their counts.
func nameKey(name string) string { return strings.ToLower(strings.Join(strings.Fields(name), " ")) }

// enter waits until a password check of name from addr may start: at most
// maxChecksPerAddress from an address and maxChecksPerPair of a pair are
// in flight; the others wait here, outside the password queue. leave
// ends the check.
func (t *throttle) enter(ctx context.Context, name, addr string) (leave func(), err error) {
	name = nameKey(name)
	keys := []string{"a\x00" + addr, "p\x00" + pairKey(name, addr)}
	for {
		t.mu.Lock()
		if t.inflight[keys[0]] < maxChecksPerAddress && t.inflight[keys[1]] < maxChecksPerPair {
			if !t.isKnown(name, addr, t.now()) {
				keys = append(keys, "n\x00"+name)
			}
			for _, k := range keys {
				t.inflight[k]++
			}
			t.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { t.leave(keys) }) }, nil
		}
		wake := t.wake
		t.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (t *throttle) leave(keys []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if t.inflight[k]--; t.inflight[k] <= 0 {
			delete(t.inflight, k)
		}
	}
	close(t.wake)
	t.wake = make(chan struct{})
}

// wait is how long logins of name from addr are refused still (0: not).
// The name's own lock does not refuse (checkPriority).
func (t *throttle) wait(name, addr string) time.Duration {
	name = nameKey(name)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	locks := []*strikes{t.addrs.m[addr], t.pairs.m[pairKey(name, addr)]}
	var until time.Time
	for _, s := range locks {
		if s != nil && s.until.After(until) {
			until = s.until
		}
	}
	return max(0, until.Sub(now))
}

// standing is what the throttle knows of a login of name from addr:
// whether the user logged in from there lately, the recent failures from
// the address, of the pair, and for the name, whether the name is locked,
// and whether checks of the name from addresses it did not log in from
// are in flight.
type standing struct{ known, addrFailed, pairFailed, nameFailed, nameLocked, nameBusy bool }

func (t *throttle) standing(name, addr string) standing {
	name = nameKey(name)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.names.m[name]
	return standing{known: t.isKnown(name, addr, now), addrFailed: t.addrs.recent(addr, now),
		pairFailed: t.pairs.recent(pairKey(name, addr), now), nameFailed: t.names.recent(name, now),
		nameLocked: n != nil && n.until.After(now), nameBusy: t.inflight["n\x00"+name] > 0}
}

func (t *throttle) isKnown(name, addr string, now time.Time) bool {
	at, ok := t.known[pairKey(name, addr)]
	return ok && now.Sub(at) < t.cfg.KnownFor
}

func (st *strikeTable) recent(key string, now time.Time) bool {
	s := st.m[key]
	return s != nil && now.Sub(s.last) < st.rule.Forget
}

// failed counts a failed login; it returns how long the next ones are
// refused (0: not).
func (t *throttle) failed(name, addr string) time.Duration {
	name = nameKey(name)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var lock time.Duration
	for _, c := range []struct {
		st  *strikeTable
		key string
	}{{&t.addrs, addr}, {&t.pairs, pairKey(name, addr)}, {&t.names, name}} {
		if d := c.st.fail(c.key, name, addr, now); d > 0 {
			t.log.Warn("failed logins: further logins refused for a while", "kind", c.st.kind,
				"user", logName(name), "address", addr, "failures", c.st.m[c.key].failures, "locked_for", d.String())
			lock = max(lock, d)
		}
	}
	return lock
}

func (st *strikeTable) fail(key, name, addr string, now time.Time) time.Duration {
	s := st.m[key]
	if s == nil {
		st.makeRoom(now)
		switch st.kind {
		case "address":
			s = &strikes{addr: addr}
		case "user":
			s = &strikes{name: name}
		default:
			s = &strikes{name: name, addr: addr}
		}
		st.m[key] = s
	}
	if now.Sub(s.last) >= st.rule.Forget {
		s.failures = 0
	}
	s.failures++
	s.last = now
	if s.failures < st.rule.After {
		return 0
	}
	d := st.rule.Base << min(s.failures-st.rule.After, 30)
	if d <= 0 || d > st.rule.Max {
		d = st.rule.Max
	}
	s.until = now.Add(d)
	return d
}

// makeRoom bounds the table: an attacker with many addresses or names
// would otherwise fill the memory. Forgotten entries go first; then, when
// each entry still counts, any unlocked one, and last any at all.
func (st *strikeTable) makeRoom(now time.Time) {
	if len(st.m) < st.rule.MaxRemembered {
		return
	}
	for k, s := range st.m {
		if now.Sub(s.last) >= st.rule.Forget && !s.until.After(now) {
			delete(st.m, k)
		}
	}
	for _, locked := range []bool{false, true} {
		for k, s := range st.m {
			if len(st.m) < st.rule.MaxRemembered {
				return
			}
			if locked || !s.until.After(now) {
				delete(st.m, k)
			}
		}
	}
}

// succeeded clears the pair's failures and remembers the pair as known.
// The address's failures stay until forgotten: a user who guesses at
// others' names would otherwise clear them with a login of his own.
func (t *throttle) succeeded(name, addr string) {
	name = nameKey(name)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pairs.m, pairKey(name, addr))
	if len(t.known) >= t.cfg.Pair.MaxRemembered {
		for k, at := range t.known {
			if now.Sub(at) >= t.cfg.KnownFor || len(t.known) >= t.cfg.Pair.MaxRemembered {
				delete(t.known, k)
			}
		}
	}
	t.known[pairKey(name, addr)] = now
}

// list returns the recent failures, most first, at most n of each kind.
func (t *throttle) list(n int) []client.LoginFailures {
	now := t.now()
	t.mu.Lock()
	var out []client.LoginFailures
	for _, st := range []*strikeTable{&t.addrs, &t.pairs, &t.names} {
		var kind []client.LoginFailures
		for _, s := range st.m {
			if now.Sub(s.last) >= st.rule.Forget {
				continue
			}
			f := client.LoginFailures{Kind: st.kind, Username: s.name, Address: s.addr, Failures: s.failures, LastFailure: s.last.UTC()}
			if s.until.After(now) {
				until := s.until.UTC()
				f.LockedUntil = &until
			}
			kind = append(kind, f)
		}
		sortFailures(kind)
		out = append(out, kind[:min(n, len(kind))]...)
	}
	t.mu.Unlock()
	sortFailures(out)
	return out
}

func sortFailures(fs []client.LoginFailures) {
	slices.SortFunc(fs, func(a, b client.LoginFailures) int {
		return cmp.Or(cmp.Compare(b.Failures, a.Failures), b.LastFailure.Compare(a.LastFailure),
			cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Username, b.Username), cmp.Compare(a.Address, b.Address))
	})
}

// maxLoginName bounds the user names a login may give, in bytes: longer
// ones are refused before they are counted, cached or logged.
const maxLoginName = 128

// loginNameProblem says what is wrong with a user name given to log in
// ("" when nothing).
func loginNameProblem(name string) string {
	if len(name) > maxLoginName {
		return fmt.Sprintf("at most %d bytes", maxLoginName)
	}
	return safetext.NameProblem(name)
}

// logName is a user name as logged: quoted, and cut short.
func logName(name string) string {
	if len(name) > 64 {
		return strconv.Quote(name[:64]) + "..."
	}
	return strconv.Quote(name)
}

// login is what a request's credentials met: its client's address (the
// TCP peer) and, once refused by the throttling, for how long.
type login struct {
	addr       string
	retryAfter time.Duration
}

type loginKey struct{}

// withClientAddress records the client's address in the request's context,
// for the throttling of its credentials.
func (s *Server) withClientAddress(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), loginKey{}, &login{addr: s.clientAddr(r)}))
}

// clientAddr is the address of r's client: the TCP peer, or behind
// trusted proxies the last address of X-Forwarded-For that is not one of
// them (those before it may be forged by the client).
func (s *Server) clientAddr(r *http.Request) string {
	peer := httplimit.HostKey(r.RemoteAddr)
	if len(s.cfg.TrustedProxies) == 0 {
		return peer
	}
	trusted := func(a netip.Addr) bool {
		return slices.ContainsFunc(s.cfg.TrustedProxies, func(p netip.Prefix) bool { return p.Contains(a.Unmap()) })
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !trusted(ap.Addr()) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // not an address: the chain cannot be followed further
		}
		if !trusted(a) {
			return httplimit.HostKey(a.Unmap().String())
		}
	}
	return peer
}

func loginOf(ctx context.Context) *login {
	if l, ok := ctx.Value(loginKey{}).(*login); ok {
		return l
	}
	return &login{}
}

func clientAddress(ctx context.Context) string { return loginOf(ctx).addr }

// throttled refuses a login of name from ctx's client while locked.
func (s *Server) throttled(ctx context.Context, name string) *failure {
	l := loginOf(ctx)
	d := s.throttle.wait(name, l.addr)
	if d <= 0 {
		return nil
	}
	l.retryAfter = d
	return &failure{http.StatusTooManyRequests, client.CodeTooManyRequests,
		fmt.Sprintf("too many failed logins; try again in %s s", retrySeconds(d))}
}

// retrySeconds is d in whole seconds, at least 1, for Retry-After.
func retrySeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// judged counts the outcome of a password check of name for ctx's client:
// one check, shared by concurrent requests with the same credentials, is
// one guess.
func (s *Server) judged(ctx context.Context, name string, f *failure) *failure {
	addr := clientAddress(ctx)
	switch {
	case f == nil:
		s.throttle.succeeded(name, addr)
	case f.status == http.StatusUnauthorized:
		s.log.Info("login failed", "user", logName(name), "address", addr)
		s.throttle.failed(name, addr)
	}
	return f
}

// passwordCheck runs a check of name's password through the queue of
// password checks, and counts its outcome for the client that started it.
// The locks are looked at again once its turn comes: failures counted
// while it waited may have locked it.
func (s *Server) passwordCheck(ctx context.Context, p priority, name, password string) checked {
	unavailable := func(err error) checked {
		if err == errQueueFull || errors.Is(err, context.DeadlineExceeded) {
			return checked{fail: &failure{http.StatusServiceUnavailable, client.CodeUnavailable, "too many logins are being checked; try again"}}
		}
		return checked{fail: &failure{http.StatusServiceUnavailable, client.CodeUnavailable, "the request ended before its credentials were checked"}}
	}
	leave, err := s.throttle.enter(ctx, name, clientAddress(ctx))
	if err != nil {
		return unavailable(err)
	}
	defer leave()
	if f := s.throttled(ctx, name); f != nil {
		return checked{fail: f}
	}
	release, err := s.passwords.acquire(ctx, p)
	if err == errQueueFull || errors.Is(err, context.DeadlineExceeded) {
		return checked{fail: &failure{http.StatusServiceUnavailable, client.CodeUnavailable, "too many logins are being checked; try again"}}
	}
	if err != nil {
		return checked{fail: &failure{http.StatusServiceUnavailable, client.CodeUnavailable, "the request ended before its credentials were checked"}}
	}
	defer release()
	if f := s.throttled(ctx, name); f != nil {
		return checked{fail: f}
	}
	u, f := s.checkPassword(ctx, name, password)
	return checked{u, s.judged(ctx, name, f)}
}

// checkPriority is the priority of a check of name's password for ctx's
// client. Suspect: after recent failures of the pair, or from the address
// or of a locked name unless the user logged in from the address lately.
// Known: the user logged in from the address lately. Trusted: the store
// knows the name, nobody failed to log in as it, and no check of it from
// an address it did not log in from is in flight. Doubtful otherwise: a
// name the store does not know, or one others guess at, from an address
// without failures — so a user whose name is attacked waits behind the
// first guess of each new address at worst, never behind the second, and
// from an address she used, behind none.
func (s *Server) checkPriority(ctx context.Context, name string) priority {
	st := s.throttle.standing(name, clientAddress(ctx))
	switch {
	case st.pairFailed || (!st.known && (st.addrFailed || st.nameLocked)):
		return suspect
	case st.known:
		return known
	case st.nameFailed || st.nameBusy:
		return doubtful
	}
	if _, err := s.cfg.Store.GetUser(ctx, name); err != nil {
		return doubtful
	}
	return trusted
}

// refuse sends an authentication failure: a 429 with Retry-After the time
// the lock has left, a 503 with a second.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, f *failure) {
	switch f.status {
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", retrySeconds(loginOf(r.Context()).retryAfter))
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	s.error(w, f.status, f.code, f.message)
}

// getLogins is GET /logins: the recent login failures and what they
// lock, the password checks and the connections.
func (s *Server) getLogins(w http.ResponseWriter, _ *http.Request, _ *caller) {
	q := s.passwords.stats()
	out := client.Logins{Failures: s.throttle.list(maxListedFailures), PasswordChecks: client.PasswordChecks{
		Running: q.Running, Waiting: q.Waiting[known] + q.Waiting[trusted] + q.Waiting[doubtful], WaitingSuspect: q.Waiting[suspect], Refused: q.Refused}}
	if out.Failures == nil {
		out.Failures = []client.LoginFailures{}
	}
	if s.cfg.Connections != nil {
		c := s.cfg.Connections.Stats()
		out.Connections = &client.Connections{Open: c.Open, Addresses: c.Addresses, Refused: c.Refused}
	}
	s.write(w, http.StatusOK, out)
}

// maxListedFailures bounds the failures GET /logins lists, of each kind.
const maxListedFailures = 100
