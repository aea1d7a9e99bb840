package daemon

import (
	"strings"
	"testing"
)

// A back-end that does not pull images (sim with pull_images = false says
// so in its capabilities) gets services only on nodes that have their
// image: an execution whose image no node has waits, saying why, instead
// of being placed and failing to start.
func TestDaemonAsksWhetherTheBackendPulls(t *testing.T) {
	t.Parallel()
	_, opts, _ := setup(t, strings.Replace(simConfig, "pull_images = true", "pull_images = false", 1))
	addr := serveDaemon(t, opts)
	alice := apiClient{t: t, base: "http://" + addr.String() + "/api/v1", user: "alice", pass: "wonderland"}
	// simApp's image, zoe/test:1, is on no node.
	ex := alice.submit("no image", simApp(t, map[string]any{"name": "main", "essential_count": 1}))
	const want = "image zoe/test:1 is on no ready node"
	waitUntil(t, "the execution to wait for its image", func() (bool, string) {
		got := alice.execution(ex.ID)
		return got.Status == "queued" && strings.Contains(got.WaitingReason, want), got.Status + ": " + got.WaitingReason
	})
}
