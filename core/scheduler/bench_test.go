package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/zoe-project/zoe/sdk/backend"
)

var benchImages = []string{"spark", "jupyter", "tensorflow", "dask", "r"}

// benchNodes: 1,000 nodes of 32 cores and 128 GiB, 10% with gpu, 10% with
// ssd, every image present (the back-end cannot pull, so images count).
func benchNodes(free func(i int) (float64, int64)) []Node {
	nodes := make([]Node, 1000)
	for i := range nodes {
		n := Node{Name: fmt.Sprintf("node%04d", i), Cores: 32, Memory: 128 * gib, State: backend.NodeReady,
			Images: benchImages}
		switch i % 10 {
		case 3:
			n.Labels = []string{"gpu"}
		case 7:
			n.Labels = []string{"ssd"}
		}
		if free != nil {
			c, m := free(i)
			n.Reserved = Resources{Cores: 32 - c, Memory: 128*gib - m}
		}
		nodes[i] = n
	}
	return nodes
}

// benchQueue: n executions of 3 essential and 1 elastic services of 1–4
// cores and 2–8 GiB; 10% need a gpu for one service, 5% an ssd.
func benchQueue(n int) []Execution {
	r := rand.New(rand.NewPCG(42, 7))
	t0 := time.Unix(0, 0)
	ex := make([]Execution, n)
	for i := range ex {
		e := Execution{ID: int64(i + 1), Size: r.Int64N(1000), SubmittedAt: t0.Add(time.Duration(i) * time.Second)}
		img := benchImages[r.IntN(len(benchImages))]
		e.Services = make([]Service, 4)
		for j := range e.Services {
			e.Services[j] = Service{Name: fmt.Sprintf("s%d", j), Essential: j < 3, Cores: float64(1 + r.IntN(4)),
				Memory: int64(2+r.IntN(7)) * gib, Image: img}
		}
		switch x := r.IntN(100); {
		case x < 10:
			e.Services[0].Labels = []string{"gpu"}
		case x < 15:
			e.Services[1].Labels = []string{"ssd"}
		}
		ex[i] = e
	}
	return ex
}

func runBench(b *testing.B, in *Input) {
	b.ReportAllocs()
	var d *Decision
	for b.Loop() {
		var err error
		if d, err = Schedule(in); err != nil {
			b.Fatal(err)
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(len(d.Starts)), "placed/op")
	b.ReportMetric(float64(len(d.Starts))/sec, "placements/s")
	b.ReportMetric(float64(len(in.Executions))/sec, "executions/s")
}

// BenchmarkSchedule: one pass over 1k, 10k and 100k queued executions on
// 1,000 empty nodes (32,000 cores): about 3,000 executions fit, so the
// larger queues are mostly rejected.
func BenchmarkSchedule(b *testing.B) {
	nodes := benchNodes(nil)
	for _, mode := range []struct {
		name      string
		backfill  bool
		placement Placement
	}{
		{"strict", false, Average},
		{"backfill", true, Average},
		{"backfill-waterfill", true, Waterfill},
		{"backfill-random", true, Random},
	} {
		for _, n := range []int{1000, 10000, 100000} {
			in := &Input{Now: time.Unix(1e6, 0), Policy: FIFO, Placement: mode.placement, Backfill: mode.backfill,
				Seed: 1, Nodes: nodes, Executions: benchQueue(n)}
			b.Run(fmt.Sprintf("%s/%d", mode.name, n), func(b *testing.B) { runBench(b, in) })
		}
	}
}

// BenchmarkScheduleFull: nothing fits, with backfill so that every
// execution is tried. uniform: 0.5 core free everywhere (rejected by the
// maxima); fragmented: half the nodes have cores but no memory, half memory
// but no cores, so only the search (once per request shape) can tell.
func BenchmarkScheduleFull(b *testing.B) {
	for _, c := range []struct {
		name string
		free func(i int) (float64, int64)
	}{
		{"uniform", func(int) (float64, int64) { return 0.5, 64 * gib }},
		{"fragmented", func(i int) (float64, int64) {
			if i%2 == 0 {
				return 8, gib
			}
			return 0.5, 64 * gib
		}},
	} {
		for _, n := range []int{10000, 100000} {
			in := &Input{Policy: Size, Backfill: true, Nodes: benchNodes(c.free), Executions: benchQueue(n)}
			b.Run(fmt.Sprintf("%s/%d", c.name, n), func(b *testing.B) {
				runBench(b, in)
				b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/float64(n), "ns/rejected")
			})
		}
	}
}
