package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/internal/testutil"
)

// attackServer is a Server whose auth plugin holds every check until
// a.gate opens, with one password check at a time.
func attackServer(t *testing.T, th Throttle) (*Server, *recordingAuth) {
	t.Helper()
	st, err := state.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "zoe.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := &recordingAuth{gate: make(chan struct{})}
	return New(nil, Config{Store: st, Auth: []Authenticator{a}, PasswordChecks: 1, Throttle: th}), a
}

// basic sends GET /me with Basic credentials from the address; the status
// comes on the channel.
func basic(t *testing.T, s *Server, user, password, from string) chan int {
	done := make(chan int, 1)
	go func() {
		req := httptest.NewRequestWithContext(t.Context(), "GET", "/api/v1/me", nil)
		req.RemoteAddr = from + ":40000"
		req.SetBasicAuth(user, password)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		done <- w.Code
	}()
	return done
}

// TestLongUserNames: a user name no user can have (too long, or with
// control characters) is refused before it is counted or listed.
func TestLongUserNames(t *testing.T) {
	s, a := attackServer(t, Throttle{})
	close(a.gate)
	long := strings.Repeat("x", maxLoginName+1)
	for _, name := range []string{long, "bob\x1b[2J", "bob\u202e"} {
		body, _ := json.Marshal(client.Login{Username: name, Password: "p"})
		req := httptest.NewRequestWithContext(t.Context(), "POST", "/api/v1/sessions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = "10.0.0.1:40000"
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		var e client.Error
		_ = json.Unmarshal(w.Body.Bytes(), &e)
		if w.Code != http.StatusBadRequest || len(e.Error.Details) != 1 || e.Error.Details[0].Path != "username" {
			t.Errorf("POST /sessions as %.20q: %d %s", name, w.Code, w.Body)
		}
		if code := <-basic(t, s, name, "p", "10.0.0.1"); code != http.StatusUnauthorized {
			t.Errorf("Basic as %.20q: %d", name, code)
		}
	}
	if l := s.throttle.list(maxListedFailures); len(l) != 0 {
		t.Errorf("counted: %d entries", len(l))
	}
	if got := a.users(); len(got) != 0 {
		t.Errorf("the plugin was asked about %d names", len(got))
	}
	// A name of 128 bytes is checked.
	if code := <-basic(t, s, long[1:], "p", "10.0.0.1"); code != http.StatusUnauthorized || len(a.users()) != 1 {
		t.Errorf("a name of %d bytes: %d, checked %d", len(long)-1, code, len(a.users()))
	}
}

// TestListedFailuresBounded: GET /logins lists at most maxListedFailures of
// each kind.
func TestListedFailuresBounded(t *testing.T) {
	th, _ := testThrottle(Throttle{})
	for i := range 3 * maxListedFailures {
		th.failed(fmt.Sprintf("u%d", i), fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	if n := len(th.list(maxListedFailures)); n != 3*maxListedFailures {
		t.Errorf("listed %d, want %d", n, 3*maxListedFailures)
	}
}

// TestConcurrentGuesses: guesses sent at once from one address are not
// all checked: the address has at most two checks in flight, and the
// locks are looked at again when a check's turn comes.
func TestConcurrentGuesses(t *testing.T) {
	rule := ThrottleRule{After: 1, Base: time.Minute, Max: time.Hour, Forget: time.Hour, MaxRemembered: 100}
	s, a := attackServer(t, Throttle{Address: rule, Pair: rule, Name: rule, KnownFor: time.Hour})
	var codes []chan int
	for i := range 6 {
		codes = append(codes, basic(t, s, fmt.Sprintf("u%d", i%3), fmt.Sprintf("guess-%d", i), "10.6.6.6"))
	}
	testutil.WaitFor(t, 5*time.Second, "one check running, one waiting", func() (bool, string) {
		q := s.passwords.stats()
		return len(a.users()) == 1 && q.Running == 1 && q.Waiting[suspect]+q.Waiting[doubtful]+q.Waiting[trusted] == 1,
			fmt.Sprintf("%+v, checked %q", q, a.users())
	})
	close(a.gate)
	count := map[int]int{}
	for _, c := range codes {
		count[<-c]++
	}
	if count[http.StatusUnauthorized] != 1 || count[http.StatusTooManyRequests] != 5 {
		t.Errorf("answers %v, want one 401 and five 429", count)
	}
	if got := a.users(); len(got) != 1 {
		t.Errorf("checked %q: the lock of the first failure must stop the others", got)
	}
}

// TestSuccessKeepsAddressFailures: a user who guesses at others' names
// does not clear the address's failures by logging in himself.
func TestSuccessKeepsAddressFailures(t *testing.T) {
	th, _ := testThrottle(Throttle{})
	for round := range 3 {
		for i := range DefaultThrottle().Address.After - 1 {
			th.failed(fmt.Sprintf("r%d-u%d", round, i), "10.0.0.5")
		}
		th.succeeded("mallory", "10.0.0.5")
	}
	if d := th.wait("anyone", "10.0.0.5"); d <= 0 {
		t.Errorf("after %d failures and logins between: not locked", 3*(DefaultThrottle().Address.After-1))
	}
}

// TestNameLockDoesNotRefuse: an attacker who keeps a name locked from many
// addresses does not keep its user out: her checks go last, and the right
// password gets in from an address she never used.
func TestNameLockDoesNotRefuse(t *testing.T) {
	s, a := attackServer(t, Throttle{})
	close(a.gate)
	for i := range 3 * DefaultThrottle().Name.After {
		s.throttle.failed("carol", fmt.Sprintf("198.51.100.%d", i))
	}
	ctx := context.WithValue(t.Context(), loginKey{}, &login{addr: "203.0.113.9"})
	if p := s.checkPriority(ctx, "carol"); p != suspect {
		t.Errorf("priority of a locked name from a new address: %d, want suspect", p)
	}
	if code := <-basic(t, s, "carol", "carol-secret", "203.0.113.9"); code != http.StatusOK {
		t.Errorf("carol from a new address: %d", code)
	}
	// The pair and the address still refuse.
	for range DefaultThrottle().Pair.After {
		s.throttle.failed("carol", "198.51.100.1")
	}
	if code := <-basic(t, s, "carol", "carol-secret", "198.51.100.1"); code != http.StatusTooManyRequests {
		t.Errorf("carol from the locked pair: %d", code)
	}
}

// TestKnownAddressFirst: the check of a user from an address she logged
// in from lately is served before every other; a name with checks in
// flight from addresses it did not use is doubtful.
func TestKnownAddressFirst(t *testing.T) {
	s, a := attackServer(t, Throttle{})
	ctxFrom := func(addr string) context.Context {
		return context.WithValue(t.Context(), loginKey{}, &login{addr: addr})
	}
	close(a.gate)
	if code := <-basic(t, s, "alice", "alice-secret", "192.0.2.1"); code != http.StatusOK {
		t.Fatalf("alice: %d", code)
	}
	if p := s.checkPriority(ctxFrom("192.0.2.1"), "alice"); p != known {
		t.Errorf("alice from her address: %d, want known", p)
	}
	if p := s.checkPriority(ctxFrom("203.0.113.1"), "alice"); p != trusted {
		t.Errorf("alice from a new address, nothing in flight: %d, want trusted", p)
	}
	leave, err := s.throttle.enter(t.Context(), "alice", "203.0.113.2")
	if err != nil {
		t.Fatal(err)
	}
	if p := s.checkPriority(ctxFrom("203.0.113.1"), "alice"); p != doubtful {
		t.Errorf("alice from a new address while another new one is checked: %d, want doubtful", p)
	}
	if p := s.checkPriority(ctxFrom("192.0.2.1"), "alice"); p != known {
		t.Errorf("alice from her address while another is checked: %d, want known", p)
	}
	leave()

	// The queue serves the known line first.
	q := newPasswordQueue(1, 10)
	rel, _ := q.acquire(t.Context(), trusted)
	order := make(chan priority, 2)
	for _, p := range []priority{trusted, known} {
		go func() {
			r, err := q.acquire(t.Context(), p)
			if err == nil {
				order <- p
				r()
			}
		}()
		testutil.WaitFor(t, 5*time.Second, "waiting", func() (bool, string) {
			return q.stats().Waiting[p] == 1, fmt.Sprint(q.stats())
		})
	}
	rel()
	if first, second := <-order, <-order; first != known || second != trusted {
		t.Errorf("served %d then %d, want known then trusted", first, second)
	}
}
