package swarm_test

import (
	"testing"

	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk/backend"
)

// TestListWhileRemoved: a service removed between List's listing of the
// services and that of their tasks (an execution cleaned up meanwhile)
// makes the engine refuse the task listing as not found. List lists again
// and answers without it, instead of failing (the core took that failure
// for a back-end it cannot reach).
func TestListWhileRemoved(t *testing.T) {
	t.Parallel()
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	net := testutil.CreateNetwork(t, ctx, p)
	kept := start(t, ctx, p, net, backend.ServiceSpec{Image: testimages.HTTPService})
	gone := start(t, ctx, p, net, backend.ServiceSpec{Image: testimages.HTTPService})
	removed := false
	p.AfterServiceList(func() {
		if !removed {
			removed = true
			if err := p.Remove(ctx, gone.Handle, true); err != nil {
				t.Errorf("Remove: %v", err)
			}
		}
	})
	list, err := p.List(ctx, backend.ListOptions{})
	if err != nil {
		t.Fatalf("List with a service removed during it: %v", err)
	}
	if !removed {
		t.Fatal("the hook did not run")
	}
	var names []string
	for _, s := range list {
		names = append(names, s.Name)
	}
	if len(list) != 1 || list[0].Name != kept.Name {
		t.Errorf("List = %v, want only %s", names, kept.Name)
	}
}
