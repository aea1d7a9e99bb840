package engine

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/scheduler"
	"github.com/zoe-project/zoe/core/state"
)

// TestQueueOrderIsTheScheduler's: on random queues, order gives the
// positions scheduler.Schedule gives (on no nodes, every execution waits
// and Decision.Waiting is in the policy's order).
func TestQueueOrderIsTheSchedulers(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, policy := range []scheduler.Policy{scheduler.FIFO, scheduler.Size, scheduler.DynSize} {
		for round := range 200 {
			n := 1 + r.IntN(30)
			in := &scheduler.Input{Now: now, Policy: policy}
			var q []queued
			for i := range n {
				id := int64(i + 1)
				svcs := make([]scheduler.Service, 1+r.IntN(3))
				for j := range svcs {
					svcs[j] = scheduler.Service{Name: "s", Essential: j == 0, Cores: float64(1 + r.IntN(4)),
						Memory: int64(1+r.IntN(8)) << 30}
				}
				size := int64(r.IntN(4)) // few values: ties
				var d dynState
				if policy == scheduler.DynSize && r.IntN(2) == 0 {
					d = dynState{size: int64(r.IntN(40)) << 30, lastTried: now.Add(-time.Duration(r.IntN(120)) * time.Second)}
				}
				se := scheduler.Execution{ID: id, Size: size, Services: svcs}
				if policy == scheduler.DynSize {
					se.Size, se.LastTried = d.size, d.lastTried
				}
				in.Executions = append(in.Executions, se)
				q = append(q, queued{ex: state.Execution{ID: id, Size: size}, dyn: d, initial: scheduler.InitialSize(svcs)})
			}
			dec, err := scheduler.Schedule(in)
			if err != nil {
				t.Fatal(err)
			}
			var want []int64
			for _, w := range dec.Waiting {
				want = append(want, w.Execution)
			}
			order(policy, q, now)
			var got []int64
			for _, it := range q {
				got = append(got, it.ex.ID)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s round %d: order %v, the scheduler's %v", policy, round, got, want)
			}
		}
	}
}

func TestRoundCores(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{
		{2.0000000000000004, 2},
		{0.30000000000000004, 0.3},
		{1.9999999999999998, 2},
		{0.0005, 0.001},
		{0.0004, 0},
		{16, 16},
		{0, 0},
		{1e13, 1e13},
	} {
		if got := roundCores(tc.in); got != tc.want {
			t.Errorf("roundCores(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := roundCores(math.Inf(1)); !math.IsInf(got, 1) {
		t.Errorf("roundCores(+Inf) = %v", got)
	}
}
