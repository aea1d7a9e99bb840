package daemon

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// A back-end that does not pull images (sim with pull_images = false says
// so in its capabilities) gets services only on nodes that have their
// image: an execution whose image no node has waits, saying why, instead
// of being placed and failing to start.
func TestDaemonAsksWhetherTheBackendPulls(t *testing.T) {
	_, _, opts, _ := setup(t, strings.Replace(simConfig, "pull_images = true", "pull_images = false", 1))
	ready := make(chan net.Addr, 1)
	opts.Ready = func(a net.Addr) { ready <- a }
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-errc:
		t.Fatalf("Run returned before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not serve within 30s")
	}
	alice := apiClient{t: t, base: "http://" + addr.String() + "/api/v1", user: "alice", pass: "wonderland"}
	// simApp's image, zoe/test:1, is on no node.
	ex := alice.submit("no image", simApp(t, map[string]any{"name": "main", "essential_count": 1}))
	const want = "image zoe/test:1 is on no ready node"
	waitUntil(t, "the execution to wait for its image", func() (bool, string) {
		got := alice.execution(ex.ID)
		return got.Status == "queued" && strings.Contains(got.WaitingReason, want), got.Status + ": " + got.WaitingReason
	})
}
