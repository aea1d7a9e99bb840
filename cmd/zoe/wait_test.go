package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
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
