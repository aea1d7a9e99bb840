package docker_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk/backend"
)

// TestListInspectsOnlyChanges: List inspects a container only when its
// state changed since the last List, forgets the containers that are
// gone, and says what Inspect says.
func TestListInspectsOnlyChanges(t *testing.T) {
	t.Parallel()
	const n = 4
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	net := testutil.CreateNetwork(t, ctx, p)
	var svcs []backend.ServiceStatus
	for range n {
		svcs = append(svcs, testutil.StartService(t, ctx, p, net, backend.ServiceSpec{Image: testimages.HTTPService,
			Ports: []backend.Port{{Port: 8080, Protocol: "tcp"}}, Labels: map[string]string{"zoe.execution": "7"}}))
	}
	inspects := func() int { i, _, _ := p.CacheCounts(); return i }
	// list lists and checks the listing against Inspect, without counting
	// Inspect's own inspects (which are not List's).
	list := func(t *testing.T, opts backend.ListOptions, want int) {
		t.Helper()
		got, err := p.List(ctx, opts)
		if err != nil || len(got) != want {
			t.Fatalf("List = %d services, %v; want %d", len(got), err, want)
		}
		for _, st := range got {
			ins, err := p.Inspect(ctx, st.Handle)
			if err != nil {
				t.Fatalf("Inspect %s: %v", st.Name, err)
			}
			if !reflect.DeepEqual(st, ins) {
				t.Errorf("List says\n%+v\nInspect says\n%+v", st, ins)
			}
		}
	}
	steps := []struct {
		name         string
		change       func(t *testing.T)
		opts         backend.ListOptions
		listed       int
		wantInspects int
		wantKept     int
	}{
		{"the first List inspects every container", nil, backend.ListOptions{}, n, n, n},
		{"nothing changed: none", nil, backend.ListOptions{}, n, 0, n},
		{"one stopped: that one", func(t *testing.T) {
			if err := p.Stop(ctx, svcs[0].Handle, 5*time.Second); err != nil {
				t.Fatalf("Stop: %v", err)
			}
		}, backend.ListOptions{}, n, 1, n},
		{"one removed: none, and it is forgotten", func(t *testing.T) {
			if err := p.Remove(ctx, svcs[1].Handle, true); err != nil {
				t.Fatalf("Remove: %v", err)
			}
		}, backend.ListOptions{}, n - 1, 0, n - 1},
		{"a listing by label: none", nil, backend.ListOptions{Labels: map[string]string{"zoe.execution": "7"}}, n - 1, 0, n - 1},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.change != nil {
				s.change(t)
			}
			before := inspects()
			got, err := p.List(ctx, s.opts)
			if err != nil || len(got) != s.listed {
				t.Fatalf("List = %d services, %v; want %d", len(got), err, s.listed)
			}
			if i := inspects() - before; i != s.wantInspects {
				t.Errorf("List made %d inspects, want %d", i, s.wantInspects)
			}
			if _, kept, _ := p.CacheCounts(); kept != s.wantKept {
				t.Errorf("%d containers kept, want %d", kept, s.wantKept)
			}
			list(t, s.opts, s.listed)
		})
	}
	if got, err := p.List(ctx, backend.ListOptions{}); err == nil {
		for _, st := range got {
			if st.Handle.ID == svcs[0].Handle.ID && (st.State != backend.ServiceExited || st.FinishedAt.IsZero()) {
				t.Errorf("the stopped service is listed %s, finished %v; want exited with its time", st.State, st.FinishedAt)
			}
		}
	}
}
