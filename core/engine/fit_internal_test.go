package engine

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk/backend"
)

// fitService is one service of a ZApp of TestFitProblems.
type fitService struct {
	name       string
	ess, total int
	cores      float64
	memory     int64
	labels     []string
}

func fitApp(t *testing.T, svcs ...fitService) (*zapp.App, []zapp.Instance) {
	t.Helper()
	var list []map[string]any
	for i, s := range svcs {
		m := map[string]any{
			"name": s.name, "image": "zoe/test:1", "monitor": i == 0, "startup_order": 0,
			"essential_count": s.ess, "total_count": s.total,
			"resources": map[string]any{"memory": map[string]any{"min": s.memory, "max": nil},
				"cores": map[string]any{"min": s.cores, "max": nil}},
			"ports": []any{}, "environment": []any{}, "volumes": []any{}, "command": nil,
		}
		if s.labels != nil {
			m["labels"] = s.labels
		}
		list = append(list, m)
	}
	desc, err := json.Marshal(map[string]any{"name": "fit", "version": 3, "will_end": false, "size": 1, "services": list})
	if err != nil {
		t.Fatal(err)
	}
	limits := zapp.Limits{MaxCores: 1000, MaxMemory: 1 << 50}
	app, err := zapp.Load(desc, limits)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := zapp.Instances(app, limits, nil)
	if err != nil {
		t.Fatal(err)
	}
	return app, ins
}

// TestFitProblems: what can never fit the nodes as configured is refused
// with the JSON path and the reason; what may fit some day is not.
func TestFitProblems(t *testing.T) {
	const gib = int64(1) << 30
	node := func(name string, cores float64, memGiB int64, state backend.NodeState, labels ...string) backend.Node {
		return backend.Node{Name: name, Cores: cores, MemoryBytes: memGiB * gib, State: state, Labels: labels}
	}
	ready, disabled, unreachable := backend.NodeReady, backend.NodeDisabled, backend.NodeUnreachable
	platform := []backend.Node{
		node("n1", 8, 16, ready, "ssd"),
		node("n2", 8, 16, ready, "ssd"),
		node("gpu1", 32, 128, ready, "gpu"),
		node("old1", 64, 256, disabled, "big"),
	}
	small := fitService{name: "alpha", ess: 1, total: 1, cores: 1, memory: gib}
	for _, tc := range []struct {
		name  string
		svcs  []fitService
		nodes []backend.Node
		want  []string // "path: part of the message"; nil: accepted
	}{
		{name: "fits", svcs: []fitService{small}, nodes: platform},
		{name: "no nodes known", svcs: []fitService{{name: "alpha", ess: 1, total: 1, cores: 500, memory: gib, labels: []string{"tpu"}}}},
		{name: "a label some node has", svcs: []fitService{{name: "alpha", ess: 1, total: 1, cores: 1, memory: gib, labels: []string{"gpu"}}}, nodes: platform},
		{name: "a label only a disabled node has", svcs: []fitService{{name: "alpha", ess: 1, total: 1, cores: 1, memory: gib, labels: []string{"big"}}}, nodes: platform},
		{name: "a label no node has", nodes: platform,
			svcs: []fitService{small, {name: "beta", ess: 1, total: 2, cores: 1, memory: gib, labels: []string{"gpu", "tpu"}}},
			want: []string{"services[1].labels: requires labels [tpu] that no node has (the nodes' labels are big, gpu, ssd)"}},
		{name: "labels no node has together", nodes: platform,
			svcs: []fitService{{name: "alpha", ess: 1, total: 1, cores: 1, memory: gib, labels: []string{"gpu", "ssd"}}},
			want: []string{"services[0].labels: requires labels [gpu ssd] that no node has together"}},
		{name: "more cores than any node", nodes: platform,
			svcs: []fitService{small, {name: "beta", ess: 1, total: 3, cores: 65, memory: gib}},
			want: []string{"services[1].resources.cores.min: each instance reserves 65 cores, more than any node has in all (at most 64, on old1)"}},
		{name: "more cores than any node with the labels", nodes: platform,
			svcs: []fitService{{name: "alpha", ess: 1, total: 1, cores: 9, memory: gib, labels: []string{"ssd"}}},
			want: []string{"services[0].resources.cores.min: each instance reserves 9 cores, more than any node with labels [ssd] has in all (at most 8, on n1)"}},
		{name: "more memory than any node", nodes: platform,
			svcs: []fitService{{name: "alpha", ess: 1, total: 1, cores: 1, memory: 257 * gib}},
			want: []string{"services[0].resources.memory.min: each instance reserves 275951648768 bytes of memory, more than any node has in all"}},
		{name: "essentials over all nodes together", nodes: platform[:2],
			svcs: []fitService{{name: "alpha", ess: 3, total: 3, cores: 6, memory: 11 * gib}},
			want: []string{"services: the essential instances reserve 18 cores together, more than the 16 of all 2 nodes together",
				"services: the essential instances reserve 35433480192 bytes of memory together, more than the 34359738368 of all 2 nodes together"}},
		{name: "elastic instances over all nodes together", nodes: platform[:2],
			svcs: []fitService{{name: "alpha", ess: 1, total: 10, cores: 6, memory: gib}}},
		{name: "an unreachable node of unknown size may hold anything", nodes: append(platform[:2:2], node("far", 0, 0, unreachable)),
			svcs: []fitService{{name: "alpha", ess: 3, total: 3, cores: 100, memory: gib}}},
		{name: "an unreachable node keeps its labels", nodes: []backend.Node{node("far", 0, 0, unreachable, "gpu")},
			svcs: []fitService{{name: "alpha", ess: 1, total: 1, cores: 1, memory: gib, labels: []string{"ssd"}}},
			want: []string{"services[0].labels: requires labels [ssd] that no node has (the nodes' labels are gpu)"}},
		{name: "no labels at all", nodes: []backend.Node{node("local", 2, 8, ready)},
			svcs: []fitService{{name: "alpha", ess: 1, total: 1, cores: 1, memory: gib, labels: []string{"spark"}}},
			want: []string{"services[0].labels: requires labels [spark] that no node has (no node has any label)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, ins := fitApp(t, tc.svcs...)
			probs := fitProblems(app, ins, tc.nodes)
			if len(probs) != len(tc.want) {
				t.Fatalf("problems %q, want %d: %q", probs, len(tc.want), tc.want)
			}
			for i, p := range probs {
				if !strings.HasPrefix(p.String(), tc.want[i]) {
					t.Errorf("problem %d: %q, want it to start with %q", i, p, tc.want[i])
				}
			}
		})
	}
}
