package engine_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk"
)

// TestSubmitNeverFits: on backend-sim, a ZApp that can never run on the
// configured nodes (a disabled one included) is refused at submission with
// the JSON path and the reason; one that only cannot run now is accepted
// and waits.
func TestSubmitNeverFits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{nodes: map[string]any{
		"node1": map[string]any{"cores": 8, "memory": "16GiB", "labels": []string{"ssd"}},
		"old1":  map[string]any{"cores": 4, "memory": "16GiB", "labels": []string{"gpu"}, "disabled": true},
	}})
	withLabels := func(desc []byte, labels string) []byte {
		return []byte(strings.Replace(string(desc), `"name":"alpha"`, `"labels":`+labels+`,"name":"alpha"`, 1))
	}
	alpha := func(cores float64) []byte {
		return zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, cores: cores, env: forever()})
	}
	for _, tc := range []struct {
		name, want string
		desc       []byte
	}{
		{"a label no node has", "services[0].labels: requires labels [tpu] that no node has (the nodes' labels are gpu, ssd)",
			withLabels(alpha(1), `["tpu"]`)},
		{"more cores than any node", "services[0].resources.cores.min: each instance reserves 9 cores, more than any node has in all (at most 8, on node1)",
			alpha(9)},
		{"essentials over all nodes", "services: the essential instances reserve 14 cores together, more than the 12 of all 2 nodes together",
			zappJSON(t, false, svc{name: "alpha", ess: 2, total: 2, monitor: true, cores: 7, env: forever()})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.eng.Submit(t.Context(), "alice", "never", tc.desc)
			var probs zapp.Problems
			if !errors.Is(err, sdk.ErrInvalidArgument) || !errors.As(err, &probs) || len(probs) != 1 || probs[0].String() != tc.want {
				t.Fatalf("submit: %v; want an invalid argument with the problem %q", err, tc.want)
			}
		})
	}
	// The label of the disabled node counts: it is configured and may be
	// enabled again. It waits meanwhile.
	gpu := e.submit(withLabels(alpha(1), `["gpu"]`))
	e.waitStatus(gpu.ID, state.StatusQueued)
	waitFor(t, "a waiting reason", func() (bool, string) {
		r := e.eng.WaitingReason(gpu.ID)
		return strings.Contains(r, "gpu"), r
	})
	// What fits the platform but not now waits too.
	first := e.submit(alpha(6))
	e.waitStatus(first.ID, state.StatusRunning)
	second := e.submit(alpha(6))
	e.waitStatus(second.ID, state.StatusQueued)
	if _, err := e.eng.Terminate(t.Context(), first.ID, "make room"); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(second.ID, state.StatusRunning)
}
