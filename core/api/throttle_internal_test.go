package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// clock is a settable time for the throttle.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func testThrottle(cfg Throttle) (*throttle, *clock) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	t := newThrottle(cfg, hclog.NewNullLogger())
	t.now = c.now
	return t, c
}

func TestThrottlePair(t *testing.T) {
	th, c := testThrottle(Throttle{})
	for i := 1; i < DefaultThrottle().Pair.After; i++ {
		if d := th.failed("alice", "10.0.0.1"); d != 0 {
			t.Fatalf("failure %d locks for %s", i, d)
		}
	}
	// What the priorities of checks are made of.
	for _, tc := range []struct {
		name, addr string
		want       standing
	}{
		{"alice", "10.0.0.1", standing{addrFailed: true, pairFailed: true, nameFailed: true}},
		{"bob", "10.0.0.1", standing{addrFailed: true}},
		{"alice", "10.0.0.2", standing{nameFailed: true}},
		{"bob", "10.0.0.2", standing{}},
	} {
		if got := th.standing(tc.name, tc.addr); got != tc.want {
			t.Errorf("standing(%s, %s) = %+v, want %+v", tc.name, tc.addr, got, tc.want)
		}
	}
	// The After-th failure locks for Base, each further one twice longer,
	// at most Max.
	want := time.Second
	for range 15 {
		if d := th.failed("alice", "10.0.0.1"); d != want {
			t.Fatalf("lock %s, want %s", d, want)
		}
		if d := th.wait("alice", "10.0.0.1"); d != want {
			t.Fatalf("wait %s, want %s", d, want)
		}
		if d := th.wait("bob", "10.0.0.1"); d != 0 {
			t.Fatalf("another user from the address waits %s", d)
		}
		c.add(want)
		if d := th.wait("alice", "10.0.0.1"); d != 0 {
			t.Fatalf("after the lock: wait %s", d)
		}
		want = min(2*want, DefaultThrottle().Pair.Max)
	}
	// Failures are forgotten after a while.
	c.add(DefaultThrottle().Pair.Forget)
	if d := th.failed("alice", "10.0.0.1"); d != 0 {
		t.Errorf("after Forget: lock %s", d)
	}
	// A success clears the pair, not the address.
	for range 10 {
		th.failed("alice", "10.0.0.1")
	}
	th.succeeded("alice", "10.0.0.1")
	if d, st := th.wait("alice", "10.0.0.1"), th.standing("alice", "10.0.0.1"); d != 0 || st != (standing{known: true, addrFailed: true, nameFailed: true, nameLocked: true}) {
		t.Errorf("after a success: wait %s, %+v", d, st)
	}
}

func TestThrottleAddressAndName(t *testing.T) {
	th, c := testThrottle(Throttle{})
	// One address trying many names is locked as an address.
	for i := range DefaultThrottle().Address.After {
		th.failed(fmt.Sprintf("user%d", i), "10.0.0.9")
	}
	if d := th.wait("someone", "10.0.0.9"); d != time.Second {
		t.Errorf("address lock: %s", d)
	}
	if d := th.wait("someone", "10.0.0.10"); d != 0 {
		t.Errorf("another address: %s", d)
	}

	// Many addresses trying one name lock the name, briefly; the lock
	// refuses nobody, it sends the name's checks last, except from where
	// the user logged in before.
	th.succeeded("carol", "192.0.2.1")
	for i := range 200 {
		th.failed("carol", fmt.Sprintf("198.51.100.%d", i))
		if d := th.wait("carol", "203.0.113.1"); d > DefaultThrottle().Name.Max {
			t.Fatalf("the name's lock %s exceeds its bound", d)
		}
		c.add(time.Second)
	}
	if d, st := th.wait("carol", "203.0.113.1"), th.standing("carol", "203.0.113.1"); d != 0 || !st.nameLocked {
		t.Errorf("a new address: wait %s, %+v; want 0 and the name locked", d, st)
	}
	if d := th.wait("carol", "192.0.2.1"); d != 0 || !th.standing("carol", "192.0.2.1").known {
		t.Errorf("from the address carol logged in from: wait %s, %+v", d, th.standing("carol", "192.0.2.1"))
	}

	list := th.list(10)
	if len(list) != 30 || list[0] != (client.LoginFailures{Kind: "user", Username: "carol", Failures: 200,
		LastFailure: c.t.Add(-time.Second), LockedUntil: list[0].LockedUntil}) || list[0].LockedUntil == nil {
		t.Errorf("list: %+v", list)
	}
	if list[1].Kind != "address" || list[1].Address != "10.0.0.9" || list[1].Failures != DefaultThrottle().Address.After || list[1].LockedUntil != nil {
		t.Errorf("second in the list: %+v", list[1])
	}
}

func TestThrottleMemoryBound(t *testing.T) {
	rule := ThrottleRule{After: 3, Base: time.Second, Max: time.Minute, Forget: time.Hour, MaxRemembered: 50}
	th, _ := testThrottle(Throttle{Address: rule, Pair: rule, Name: rule, KnownFor: time.Hour})
	for i := range 1000 {
		name, addr := fmt.Sprintf("u%d", i), fmt.Sprintf("10.1.%d.%d", i/256, i%256)
		th.failed(name, addr)
		th.succeeded(name, "10.9.9.9")
	}
	for _, n := range []int{len(th.addrs.m), len(th.pairs.m), len(th.names.m), len(th.known)} {
		if n > 50 {
			t.Errorf("tables hold %d, %d, %d and %d entries, want at most 50", len(th.addrs.m), len(th.pairs.m), len(th.names.m), len(th.known))
			break
		}
	}
}

func TestPasswordQueue(t *testing.T) {
	q := newPasswordQueue(1, 3)
	hold, err := q.acquire(t.Context(), trusted)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	start := func(name string, p priority, ctx context.Context) {
		wg.Go(func() {
			release, err := q.acquire(ctx, p)
			mu.Lock()
			if err != nil {
				order = append(order, name+" "+err.Error())
			} else {
				order = append(order, name)
			}
			mu.Unlock()
			if err == nil {
				release()
			}
		})
	}
	waiting := func(want [priorities]int) {
		t.Helper()
		testutil.WaitFor(t, 5*time.Second, fmt.Sprintf("%v waiting", want), func() (bool, string) {
			s := q.stats()
			return s.Waiting == want, fmt.Sprintf("%+v", s)
		})
	}
	start("s1", suspect, t.Context())
	waiting([priorities]int{0, 0, 0, 1})
	start("s2", suspect, t.Context())
	waiting([priorities]int{0, 0, 0, 2})
	gone, cancel := context.WithCancel(t.Context())
	start("t1", trusted, gone)
	waiting([priorities]int{0, 1, 0, 2})
	// Full: a suspect check is refused; one of a higher priority takes the
	// place of the newest of the lowest.
	if _, err := q.acquire(t.Context(), suspect); !errors.Is(err, errQueueFull) {
		t.Errorf("a suspect check in a full queue: %v", err)
	}
	start("t2", trusted, t.Context())
	waiting([priorities]int{0, 2, 0, 1})
	start("u1", doubtful, t.Context())
	waiting([priorities]int{0, 2, 1, 0})
	// A check given up leaves the queue.
	cancel()
	waiting([priorities]int{0, 1, 1, 0})
	hold()
	wg.Wait()
	full := " " + errQueueFull.Error()
	want := []string{"s2" + full, "s1" + full, "t1 context canceled", "t2", "u1"}
	if !slices.Equal(order, want) {
		t.Errorf("order %q, want %q", order, want)
	}
	if s := q.stats(); s.Running != 0 || s.Refused != 3 {
		t.Errorf("stats at the end: %+v", s)
	}
}

// TestPasswordQueueReserve: with more than one place, one is kept for
// trusted checks.
func TestPasswordQueueReserve(t *testing.T) {
	q := newPasswordQueue(2, 10)
	guess, err := q.acquire(t.Context(), doubtful)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := q.acquire(ctx, suspect); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a second guess ran beside the first: %v", err)
	}
	user, err := q.acquire(t.Context(), trusted)
	if err != nil {
		t.Fatal(err)
	}
	if s := q.stats(); s.Running != 2 {
		t.Errorf("stats: %+v", s)
	}
	// A guess waiting gets the place the other guess gives back, not the
	// one the user gives back.
	got := make(chan error, 1)
	go func() {
		release, err := q.acquire(t.Context(), suspect)
		if err == nil {
			release()
		}
		got <- err
	}()
	testutil.WaitFor(t, 5*time.Second, "a guess waiting", func() (bool, string) {
		s := q.stats()
		return s.Waiting[suspect] == 1, fmt.Sprintf("%+v", s)
	})
	user()
	if s := q.stats(); s.Waiting[suspect] != 1 || s.Running != 1 {
		t.Errorf("after the user's check: %+v", s)
	}
	guess()
	if err := <-got; err != nil {
		t.Error(err)
	}
}

// recordingAuth holds every check until its gate opens, and records whom
// it checked.
type recordingAuth struct {
	gate    chan struct{}
	mu      sync.Mutex
	checked []string
}

func (a *recordingAuth) Authenticate(ctx context.Context, user, password string) (auth.Identity, error) {
	if err := ctx.Err(); err != nil {
		return auth.Identity{}, err
	}
	a.mu.Lock()
	a.checked = append(a.checked, user)
	a.mu.Unlock()
	<-a.gate
	if password != user+"-secret" {
		return auth.Identity{}, sdk.ErrInvalidCredentials
	}
	return auth.Identity{Username: user, Role: auth.RoleUser}, nil
}

func (a *recordingAuth) Lookup(_ context.Context, user string) (auth.Identity, error) {
	return auth.Identity{Username: user, Role: auth.RoleUser}, nil
}

func (a *recordingAuth) Generation(context.Context) (uint64, error) { return 0, nil }

func (a *recordingAuth) users() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.checked)
}

// TestPasswordChecksQueued: one check at a time; a check whose clients all
// left is never made; a wrong guess from an address with failures waits
// behind a user with no failures; a locked client gets 429 with
// Retry-After. (The order of known and unknown users: TestPasswordQueue.)
func TestPasswordChecksQueued(t *testing.T) {
	st, err := state.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "zoe.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := &recordingAuth{gate: make(chan struct{})}
	s := New(nil, Config{Store: st, Auth: []Authenticator{a}, PasswordChecks: 1})

	get := func(ctx context.Context, user, password, from string) chan int {
		done := make(chan int, 1)
		go func() {
			req := httptest.NewRequestWithContext(ctx, "GET", "/api/v1/me", nil)
			req.RemoteAddr = from + ":40000"
			req.SetBasicAuth(user, password)
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			done <- w.Code
		}()
		return done
	}
	// The attacker's address has failures already.
	for range 3 {
		s.throttle.failed("mallory", "10.6.6.6")
	}
	first := get(t.Context(), "alice", "alice-secret", "10.0.0.1")
	testutil.WaitFor(t, 5*time.Second, "alice's check to run", func() (bool, string) {
		return len(a.users()) == 1, fmt.Sprint(a.users())
	})
	gone, cancel := context.WithCancel(t.Context())
	abandoned := get(gone, "zed", "x", "10.0.0.2")
	guess := get(t.Context(), "bob", "guess", "10.6.6.6")
	testutil.WaitFor(t, 5*time.Second, "a suspect waiting", func() (bool, string) {
		q := s.passwords.stats()
		return q.Waiting == [priorities]int{0, 0, 1, 1}, fmt.Sprintf("%+v", q)
	})
	right := get(t.Context(), "bob", "bob-secret", "10.0.0.3")
	testutil.WaitFor(t, 5*time.Second, "three waiting", func() (bool, string) {
		q := s.passwords.stats()
		return q.Waiting == [priorities]int{0, 0, 2, 1}, fmt.Sprintf("%+v", q)
	})
	cancel()
	if code := <-abandoned; code != http.StatusServiceUnavailable {
		t.Errorf("abandoned: %d", code)
	}
	close(a.gate)
	for name, c := range map[string]chan int{"alice": first, "bob": right} {
		if code := <-c; code != http.StatusOK {
			t.Errorf("%s: %d", name, code)
		}
	}
	if code := <-guess; code != http.StatusUnauthorized {
		t.Errorf("the guess: %d", code)
	}
	if got, want := a.users(), []string{"alice", "bob", "bob"}; !slices.Equal(got, want) {
		t.Errorf("checked %q, want %q: the abandoned check is never made, the suspect one goes last", got, want)
	}

	// Four more wrong guesses lock bob from the attacker's address (5
	// failures of the pair), not from his own.
	for range 4 {
		if code := <-get(t.Context(), "bob", "guess", "10.6.6.6"); code != http.StatusUnauthorized {
			t.Fatalf("a guess: %d", code)
		}
	}
	if code := <-get(t.Context(), "bob", "bob-secret", "10.6.6.6"); code != http.StatusTooManyRequests {
		t.Errorf("the right password from the locked address: %d", code)
	}
	if code := <-get(t.Context(), "bob", "bob-secret", "10.0.0.3"); code != http.StatusOK {
		t.Errorf("bob from his own address: %d", code)
	}

	// Admins see the failures.
	list := s.throttle.list(10)
	if !slices.ContainsFunc(list, func(f client.LoginFailures) bool {
		return f.Kind == "user_address" && f.Username == "bob" && f.Address == "10.6.6.6" && f.LockedUntil != nil
	}) {
		t.Errorf("failures: %+v", list)
	}
	if strings.Contains(fmt.Sprint(list), "guess") {
		t.Error("a password in the list")
	}
}

func TestClientAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}
	for _, tc := range []struct {
		name, remote string
		xff          []string
		proxies      []netip.Prefix
		want         string
	}{
		{"no proxies configured: the peer", "10.0.0.5:1234", []string{"203.0.113.9"}, nil, "10.0.0.5"},
		{"an untrusted peer's header is ignored", "198.51.100.7:1234", []string{"203.0.113.9"}, proxies, "198.51.100.7"},
		{"through one proxy", "10.0.0.5:1234", []string{"203.0.113.9"}, proxies, "203.0.113.9"},
		{"through two proxies, a forged first hop", "10.0.0.5:1234", []string{"6.6.6.6, 203.0.113.9", "192.0.2.1"}, proxies, "203.0.113.9"},
		{"no header", "10.0.0.5:1234", nil, proxies, "10.0.0.5"},
		{"garbage", "10.0.0.5:1234", []string{"203.0.113.9, nonsense"}, proxies, "10.0.0.5"},
		{"IPv6 client, grouped by /64", "10.0.0.5:1234", []string{"2001:db8:1:2::77"}, proxies, "2001:db8:1:2::/64"},
		{"IPv4-mapped proxy", "[::ffff:10.0.0.5]:1234", []string{"203.0.113.9"}, proxies, "203.0.113.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{cfg: Config{TrustedProxies: tc.proxies}}
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := s.clientAddr(r); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// Variants of a name that an LDAP directory takes for the same user count
// as that user's failures: guesses at alice's password as "Alice",
// " alice" and "ALICE " lock her pair like guesses as "alice".
func TestThrottleNameVariants(t *testing.T) {
	th, _ := testThrottle(Throttle{})
	variants := []string{"alice", "Alice", " alice", "ALICE ", "aLiCe", "alice\t"}
	for i := 0; i < DefaultThrottle().Pair.After-1; i++ {
		if d := th.failed(variants[i%len(variants)], "10.0.0.1"); d != 0 {
			t.Fatalf("failure %d locks for %s", i+1, d)
		}
	}
	if d := th.failed("AlIcE", "10.0.0.1"); d == 0 {
		t.Fatal("the pair's failures as variants of the name did not lock it")
	}
	for _, v := range variants {
		if d := th.wait(v, "10.0.0.1"); d == 0 {
			t.Errorf("%q is not refused", v)
		}
	}
	if d := th.wait("alicea", "10.0.0.1"); d != 0 {
		t.Errorf("another name waits %s", d)
	}
	if st := th.standing("Alice", "10.0.0.2"); !st.nameFailed {
		t.Errorf("the name's failures under another spelling: %+v", st)
	}
}
