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
// user name and address, and per user name. The stronger locks are on the
// address and the pair, which only hurt whoever sends from it; the lock on
// a name alone, which an attacker anywhere could renew, is short and does
// not apply from an address the user logged in from recently.
type Throttle struct {
	Address, Pair, Name ThrottleRule
	// KnownFor is how long an address a user logged in from is exempt from
	// the lock of the user's name.
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
}

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
		addrs: strikeTable{rule: cfg.Address, kind: "address", m: map[string]*strikes{}},
		pairs: strikeTable{rule: cfg.Pair, kind: "user_address", m: map[string]*strikes{}},
		names: strikeTable{rule: cfg.Name, kind: "user", m: map[string]*strikes{}}}
}

func pairKey(name, addr string) string { return name + "\x00" + addr }

// wait is how long logins of name from addr are refused still (0: not).
func (t *throttle) wait(name, addr string) time.Duration {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	locks := []*strikes{t.addrs.m[addr], t.pairs.m[pairKey(name, addr)]}
	if !t.isKnown(name, addr, now) {
		locks = append(locks, t.names.m[name])
	}
	var until time.Time
	for _, s := range locks {
		if s != nil && s.until.After(until) {
			until = s.until
		}
	}
	return max(0, until.Sub(now))
}

// standing is what the throttle knows of a login of name from addr:
// whether the user logged in from there lately, and the recent failures
// from the address, of the pair, and for the name.
type standing struct{ known, addrFailed, pairFailed, nameFailed bool }

func (t *throttle) standing(name, addr string) standing {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	return standing{known: t.isKnown(name, addr, now), addrFailed: t.addrs.recent(addr, now),
		pairFailed: t.pairs.recent(pairKey(name, addr), now), nameFailed: t.names.recent(name, now)}
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
				"user", name, "address", addr, "failures", c.st.m[c.key].failures, "locked_for", d.String())
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

// succeeded clears the address's and the pair's failures and remembers
// the pair as known.
func (t *throttle) succeeded(name, addr string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.addrs.m, addr)
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

// list returns the recent failures, most first, at most n.
func (t *throttle) list(n int) []client.LoginFailures {
	now := t.now()
	t.mu.Lock()
	var out []client.LoginFailures
	for _, st := range []*strikeTable{&t.addrs, &t.pairs, &t.names} {
		for _, s := range st.m {
			if now.Sub(s.last) >= st.rule.Forget {
				continue
			}
			f := client.LoginFailures{Kind: st.kind, Username: s.name, Address: s.addr, Failures: s.failures, LastFailure: s.last.UTC()}
			if s.until.After(now) {
				until := s.until.UTC()
				f.LockedUntil = &until
			}
			out = append(out, f)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b client.LoginFailures) int {
		return cmp.Or(cmp.Compare(b.Failures, a.Failures), b.LastFailure.Compare(a.LastFailure),
			cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Username, b.Username), cmp.Compare(a.Address, b.Address))
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
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
		s.log.Info("login failed", "user", name, "address", addr)
		s.throttle.failed(name, addr)
	}
	return f
}

// passwordCheck runs a check of name's password through the queue of
// password checks, and counts its outcome for the client that started it.
func (s *Server) passwordCheck(ctx context.Context, p priority, name, password string) checked {
	release, err := s.passwords.acquire(ctx, p)
	if err == errQueueFull || errors.Is(err, context.DeadlineExceeded) {
		return checked{fail: &failure{http.StatusServiceUnavailable, client.CodeUnavailable, "too many logins are being checked; try again"}}
	}
	if err != nil {
		return checked{fail: &failure{http.StatusServiceUnavailable, client.CodeUnavailable, "the request ended before its credentials were checked"}}
	}
	defer release()
	u, f := s.checkPassword(ctx, name, password)
	return checked{u, s.judged(ctx, name, f)}
}

// checkPriority is the priority of a check of name's password for ctx's
// client. Suspect: after recent failures of the pair, or from the address
// unless the user logged in from it lately. Trusted: the user logged in
// from the address lately, or the store knows the name and nobody failed
// to log in as it. Doubtful otherwise: a name the store does not know, or
// one others guess at, from an address without failures — so a user
// whose name is attacked waits behind the first guess of each new address
// at worst, never behind the second.
func (s *Server) checkPriority(ctx context.Context, name string) priority {
	st := s.throttle.standing(name, clientAddress(ctx))
	switch {
	case st.pairFailed || (st.addrFailed && !st.known):
		return suspect
	case st.known:
		return trusted
	case st.nameFailed:
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
		Running: q.Running, Waiting: q.Waiting[trusted] + q.Waiting[doubtful], WaitingSuspect: q.Waiting[suspect], Refused: q.Refused}}
	if out.Failures == nil {
		out.Failures = []client.LoginFailures{}
	}
	if s.cfg.Connections != nil {
		c := s.cfg.Connections.Stats()
		out.Connections = &client.Connections{Open: c.Open, Addresses: c.Addresses, Refused: c.Refused}
	}
	s.write(w, http.StatusOK, out)
}

const maxListedFailures = 1000
