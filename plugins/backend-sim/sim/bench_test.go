package sim_test

import (
	"fmt"
	"testing"

	"github.com/zoe-project/zoe/sdk/backend"
)

// BenchmarkStart measures a Start on a platform that already runs n
// services: a change appends a line to the state file, whatever the
// platform's size, and the file is rewritten whole only now and then.
func BenchmarkStart(b *testing.B) {
	for _, n := range []int{0, 1000, 10000} {
		b.Run(fmt.Sprint(n, "_services"), func(b *testing.B) {
			nodes := map[string]any{}
			for i := range 100 {
				nodes[fmt.Sprintf("node%03d", i)] = map[string]any{"cores": 1e6, "memory": "1000TiB"}
			}
			p := open(b, stateFile(b), map[string]any{"node": nodes})
			s := spec("", "RUN=forever")
			s.Resources = backend.Resources{Cores: 1, MemoryReservation: 1 << 30}
			for i := range n {
				s.Name = fmt.Sprint("pre-", i)
				start(b, p, s)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				s.Name = fmt.Sprint("svc-", i)
				start(b, p, s)
			}
		})
	}
}
