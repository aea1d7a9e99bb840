package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/zoe-project/zoe/client"
)

// from is an HTTP client whose connections come from the loopback address
// ip (127.0.0.x): the daemon counts failed logins per client address.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

func (e *env) loginFrom(c *http.Client, user, password string) response {
	e.t.Helper()
	body, _ := json.Marshal(client.Login{Username: user, Password: password})
	resp, err := c.Post(e.base+"/sessions", "application/json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// TestLoginThrottling is the reproduction of issue 12's wrong passwords:
// 60 wrong passwords in a row from one address are refused with 429 and
// Retry-After after the first few, while the user logs in from elsewhere;
// the lock ends, and admins see it.
func TestLoginThrottling(t *testing.T) {
	e := newEnv(t, "")
	attacker, user := from("127.0.0.7"), from("127.0.0.8")
	var unauthorized, throttled int
	start := time.Now()
	var lastFailure time.Time // when the guess that last answered 401 was sent
	for i := range 60 {
		sent := time.Now()
		r := e.loginFrom(attacker, "alice", fmt.Sprintf("guess-%d", i))
		eb := r.apiError(t)
		switch r.status {
		case http.StatusUnauthorized:
			unauthorized++
			lastFailure = sent
		case http.StatusTooManyRequests:
			secs, err := strconv.Atoi(r.header.Get("Retry-After"))
			if err != nil || secs < 1 || secs > 15*60 || eb.Code != client.CodeTooManyRequests {
				t.Fatalf("guess %d: 429 with Retry-After %q, code %s", i, r.header.Get("Retry-After"), eb.Code)
			}
			throttled++
		default:
			t.Fatalf("guess %d: %d %s", i, r.status, r.body)
		}
	}
	// The first lock, after 5 failures, is a second long, and each one
	// after it twice the one before: a lock that ends while the guesses go
	// on (they take more than a second on a loaded machine) lets one more
	// guess through, and locks the pair again for twice as long.
	elapsed := time.Since(start)
	extra := 1
	for d := time.Second; d < elapsed; d *= 2 {
		extra++
	}
	if unauthorized < 5 || unauthorized > 5+extra || throttled < 60-5-extra {
		t.Errorf("60 guesses in %v: %d answered 401, %d 429", elapsed, unauthorized, throttled)
	}
	// The right password is refused from the locked address too: a locked
	// client cannot go on guessing. Asked only while the last lock still
	// holds for certain: it began after its guess was sent.
	lock := time.Second << (unauthorized - 5)
	if time.Now().Before(lastFailure.Add(lock)) {
		if r := e.loginFrom(attacker, "alice", passwords["alice"]); r.status != http.StatusTooManyRequests {
			t.Errorf("the right password from the locked address: %d", r.status)
		}
	} else {
		t.Logf("the last lock (%v) ended before the right password could be tried", lock)
	}
	// alice, from her own address, logs in at once.
	if r := e.loginFrom(user, "alice", passwords["alice"]); r.status != http.StatusCreated {
		t.Errorf("alice from another address: %d %s", r.status, r.body)
	}

	// Admins see the lock (from yet another address: the default client's
	// 127.0.0.1).
	// The lock shows while it holds: only asked of a GET sent before it
	// ends for certain (the requests above take more than its second on a
	// loaded machine; run 5 of a loop saw it ended).
	var logins client.Logins
	asked := time.Now()
	e.must(e.as("root"), "GET", "/logins", nil, http.StatusOK, &logins)
	i := slices.IndexFunc(logins.Failures, func(f client.LoginFailures) bool {
		return f.Kind == "user_address" && f.Username == "alice" && f.Address == "127.0.0.7"
	})
	if i < 0 || logins.Failures[i].Failures != unauthorized {
		t.Errorf("GET /logins: %+v", logins.Failures)
	} else if holds := asked.Before(lastFailure.Add(lock)); holds && logins.Failures[i].LockedUntil == nil {
		t.Errorf("GET /logins while the lock holds: %+v", logins.Failures[i])
	}
	if logins.Connections == nil || logins.Connections.Open < 1 || logins.PasswordChecks.Refused != 0 {
		t.Errorf("GET /logins: connections %+v, checks %+v", logins.Connections, logins.PasswordChecks)
	}

	// The pair's lock ends (it doubles with each failure after it, from
	// one second); then the right password clears it.
	waitFor(t, "the lock to end", func() (bool, string) {
		r := e.loginFrom(attacker, "alice", passwords["alice"])
		return r.status == http.StatusCreated, fmt.Sprint(r.status, " Retry-After ", r.header.Get("Retry-After"))
	})
	if r := e.loginFrom(attacker, "alice", "one more guess"); r.status != http.StatusUnauthorized {
		t.Errorf("a guess after the success: %d", r.status)
	}
}
