package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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

func streamServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	st, err := state.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "zoe.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := &recordingAuth{gate: make(chan struct{})}
	close(a.gate)
	cfg.Store, cfg.Auth = st, []Authenticator{a}
	s := New(nil, cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL + "/api/v1"
}

// openEvents opens an event stream as user; the answer's status and body,
// and a function that closes the stream.
func openEvents(t *testing.T, base, user string) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/events", nil)
	req.SetBasicAuth(user, user+"-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, cancel
}

// TestStreamsPerUser: a user has at most MaxStreamsPerUser streams open;
// one more is a 429 that says why, another user is not affected, and a
// closed stream gives its place back.
func TestStreamsPerUser(t *testing.T) {
	s, base := streamServer(t, Config{MaxStreamsPerUser: 2})
	var closers []context.CancelFunc
	for range 2 {
		resp, cancel := openEvents(t, base, "bob")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("bob's stream: %d", resp.StatusCode)
		}
		closers = append(closers, cancel)
	}
	resp, cancel := openEvents(t, base, "bob")
	defer cancel()
	body, _ := io.ReadAll(resp.Body)
	var e client.Error
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode != http.StatusTooManyRequests || e.Error.Code != client.CodeTooManyRequests || !strings.Contains(e.Error.Message, "streams open") {
		t.Errorf("bob's third stream: %d %s", resp.StatusCode, body)
	}
	if resp, _ := openEvents(t, base, "alice"); resp.StatusCode != http.StatusOK {
		t.Errorf("alice's stream: %d", resp.StatusCode)
	}
	closers[0]()
	testutil.WaitFor(t, 10*time.Second, "bob's closed stream to end", func() (bool, string) {
		n := s.openStreams("bob")
		return n == 1, fmt.Sprintf("%d open", n)
	})
	if resp, _ := openEvents(t, base, "bob"); resp.StatusCode != http.StatusOK {
		t.Errorf("bob's stream after closing one: %d", resp.StatusCode)
	}
}

// TestEventStreamLife: an event stream ends after EventStreamLife, even
// for a client that never reads; its place is given back.
func TestEventStreamLife(t *testing.T) {
	s, base := streamServer(t, Config{EventStreamLife: 50 * time.Millisecond})
	resp, _ := openEvents(t, base, "bob")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	got := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("the stream ended with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the stream did not end")
	}
	testutil.WaitFor(t, 10*time.Second, "the stream's place back", func() (bool, string) {
		return s.openStreams("bob") == 0, fmt.Sprint(s.openStreams("bob"))
	})
}
