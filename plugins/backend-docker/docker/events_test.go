package docker_test

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk/backend"
)

// TestVanished: a container removed behind Zoe's back is vanished; one the
// plugin removed itself is not.
func TestVanished(t *testing.T) {
	t.Parallel()
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	events, err := p.Events(ctx)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	net := testutil.CreateNetwork(t, ctx, p)
	ours := testutil.StartService(t, ctx, p, net, backend.ServiceSpec{Image: testimages.HTTPService})
	theirs := testutil.StartService(t, ctx, p, net, backend.ServiceSpec{Image: testimages.HTTPService})
	if err := p.Remove(ctx, ours.Handle, true); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := dockerClient(t).ContainerRemove(ctx, theirs.Handle.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatalf("docker rm: %v", err)
	}
	testutil.WaitEvent(t, ctx, events, theirs.Name, backend.EventVanished)
	// Events arrive in order: ours was destroyed before theirs.
	for {
		select {
		case e := <-events:
			if e.ServiceName == ours.Name && e.Kind == backend.EventVanished {
				t.Errorf("vanished event for a container the plugin removed: %+v", e)
			}
		case <-time.After(200 * time.Millisecond):
			return
		}
	}
}

// TestUpdate changes a running container's resources.
func TestUpdate(t *testing.T) {
	t.Parallel()
	p := open(t, exclusiveDeployment(t), nil) // a core reserved
	ctx := ctxFor(t)
	net := testutil.CreateNetwork(t, ctx, p)
	st := testutil.StartService(t, ctx, p, net, backend.ServiceSpec{Image: testimages.HTTPService,
		Resources: backend.Resources{Cores: 1, MemoryLimit: 64 << 20, MemoryReservation: 32 << 20}})
	want := backend.Resources{Cores: 0.5, CoresLimit: 0.5, MemoryLimit: 128 << 20, MemoryReservation: 48 << 20}
	if err := p.Update(ctx, st.Handle, want); err != nil {
		t.Fatalf("Update: %v", err)
	}
	res, err := dockerClient(t).ContainerInspect(context.WithoutCancel(ctx), st.Handle.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	r := res.Container.HostConfig.Resources
	if r.NanoCPUs != 5e8 || r.CPUShares != 512 || r.Memory != want.MemoryLimit || r.MemoryReservation != want.MemoryReservation {
		t.Errorf("resources after Update: cpus %d shares %d memory %d reservation %d; want %+v", r.NanoCPUs, r.CPUShares, r.Memory, r.MemoryReservation, want)
	}
}
