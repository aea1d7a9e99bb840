package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/zoe-project/zoe/client"
)

// TestWaitThroughTransientErrors: --wait keeps waiting while the daemon
// answers 503 (a plugin restarting), and stops at once on a real error.
func TestWaitThroughTransientErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fail    int // status of the first two answers
		wantErr bool
	}{
		{"unavailable", http.StatusServiceUnavailable, false},
		{"not found", http.StatusNotFound, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if calls.Add(1) <= 2 {
					w.WriteHeader(tc.fail)
					_, _ = w.Write([]byte(`{"error":{"code":"x","message":"not now"}}`))
					return
				}
				_, _ = w.Write([]byte(`{"id":7,"name":"x","owner":"a","status":"running"}`))
			}))
			defer srv.Close()
			cl, err := client.New(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := &cobra.Command{}
			cmd.SetContext(ctx)
			cmd.SetErr(&bytes.Buffer{})
			cmd.SetOut(&bytes.Buffer{})
			ex, err := waitExecution(cmd, newCLI(), cl, 7, 0, untilRunning)
			if tc.wantErr {
				if err == nil || calls.Load() != 1 {
					t.Errorf("after a %d: %v, %d calls; want an error at once", tc.fail, err, calls.Load())
				}
				return
			}
			if err != nil || ex == nil || ex.Status != "running" {
				t.Errorf("after two %d: %+v %v", tc.fail, ex, err)
			}
		})
	}
}

// TestWaitSaysWhy: while the execution waits, --wait shows why and where
// it stands in the queue (GET /stats), says that a wait without --timeout
// has no end, and a wait that times out says why it was still waiting.
func TestWaitSaysWhy(t *testing.T) {
	const reason = "requires labels [spark] that no ready node has"
	newServer := func(queuedPolls int32) *httptest.Server {
		var polls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if strings.HasSuffix(r.URL.Path, "/stats") {
				_, _ = w.Write([]byte(`{"queue": [{"position": 1, "execution_id": 3, "status": "queued"},
					{"position": 2, "execution_id": 7, "status": "queued", "reason": "` + reason + `"},
					{"position": 3, "execution_id": 9, "status": "queued"}]}`))
				return
			}
			if polls.Add(1) <= queuedPolls {
				_, _ = w.Write([]byte(`{"id":7,"name":"spark","owner":"a","status":"queued","waiting_reason":"` + reason + `"}`))
				return
			}
			_, _ = w.Write([]byte(`{"id":7,"name":"spark","owner":"a","status":"running"}`))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	run := func(srv *httptest.Server, timeout time.Duration) (string, *client.Execution, error) {
		cl, err := client.New(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := &cobra.Command{}
		cmd.SetContext(ctx)
		var stderr bytes.Buffer
		cmd.SetErr(&stderr)
		cmd.SetOut(&bytes.Buffer{})
		ex, err := waitExecution(cmd, newCLI(), cl, 7, timeout, untilRunning)
		return stderr.String(), ex, err
	}

	t.Run("no timeout", func(t *testing.T) {
		out, ex, err := run(newServer(2), 0)
		if err != nil || ex == nil || ex.Status != "running" {
			t.Fatalf("wait: %+v %v", ex, err)
		}
		for _, want := range []string{
			"execution 7 spark: queued, position 2 of 3 in the queue (" + reason + ")\n",
			"waiting with no time limit (--timeout sets one); Ctrl-C stops the wait, not the execution\n",
			"execution 7 spark: running\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("standard error lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("timeout", func(t *testing.T) {
		out, _, err := run(newServer(1<<30), time.Second)
		want := "execution 7 is still queued after 1s (position 2 of 3 in the queue): " + reason
		if err == nil || err.Error() != want {
			t.Errorf("error %v, want %q", err, want)
		}
		if strings.Contains(out, "no time limit") {
			t.Errorf("a wait with a timeout says it has none:\n%s", out)
		}
	})
}
