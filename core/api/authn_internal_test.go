package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// slowAuth is an auth plugin whose password check takes a while, as a
// bcrypt hash does; it counts its calls. In-process: what is counted is the
// API's use of it, not the plugin wire.
type slowAuth struct {
	right, wrong atomic.Int32
	// gate, when set, holds every check until it is closed.
	gate atomic.Pointer[chan struct{}]
}

func (a *slowAuth) Authenticate(ctx context.Context, user, password string) (auth.Identity, error) {
	if password == "secret" {
		a.right.Add(1)
	} else {
		a.wrong.Add(1)
	}
	if g := a.gate.Load(); g != nil {
		<-*g
	}
	time.Sleep(200 * time.Millisecond)
	if user != "alice" || password != "secret" {
		return auth.Identity{}, sdk.ErrInvalidCredentials
	}
	return auth.Identity{Username: user, Role: auth.RoleUser}, nil
}

// TestConcurrentLoginsShareOneCheck: many requests arriving together with
// the same credentials, none cached yet, cost one password check (those
// arriving after it find its answer cached); wrong credentials are checked
// apart from right ones.
func TestConcurrentLoginsShareOneCheck(t *testing.T) {
	st, err := state.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "zoe.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := &slowAuth{}
	srv := httptest.NewServer(New(nil, Config{Store: st, Auth: []Authenticator{a}}))
	t.Cleanup(srv.Close)

	statuses := make([]int, 30)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", srv.URL+"/api/v1/me", nil)
			if i%3 == 2 {
				req.SetBasicAuth("alice", "wrong")
			} else {
				req.SetBasicAuth("alice", "secret")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, code := range statuses {
		want := http.StatusOK
		if i%3 == 2 {
			want = http.StatusUnauthorized
		}
		if code != want {
			t.Errorf("request %d: %d, want %d", i, code, want)
		}
	}
	if n := a.right.Load(); n != 1 {
		t.Errorf("%d checks of the right password for 20 concurrent requests, want 1", n)
	}
	if n := a.wrong.Load(); n < 1 || n > 10 {
		t.Errorf("%d checks of the wrong password for 10 requests", n)
	}

	// An answer about to expire is checked again in the background: the
	// request does not wait for the check (held here until the end).
	s := srv.Config.Handler.(*Server)
	s.creds.mu.Lock()
	for k, e := range s.creds.m {
		e.until = time.Now().Add(credentialRenew / 2)
		s.creds.m[k] = e
	}
	s.creds.mu.Unlock()
	gate := make(chan struct{})
	a.gate.Store(&gate)
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/me", nil)
	req.SetBasicAuth("alice", "secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("with an answer about to expire: %d", resp.StatusCode)
	}
	close(gate)
	testutil.WaitFor(t, 10*time.Second, "2 checks of the right password after the renewal", func() (bool, string) {
		n := a.right.Load()
		return n == 2, fmt.Sprint(n)
	})
	testutil.WaitFor(t, 10*time.Second, "the cached answer renewed", func() (bool, string) {
		_, ok, renew := s.creds.get("alice", "secret")
		return ok && !renew, fmt.Sprintf("cached %v, to renew %v", ok, renew)
	})
}
