package docker_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/plugins/backend-docker/docker"
	"github.com/zoe-project/zoe/sdk/backend"
)

// BenchmarkList lists a deployment of 200 containers, as every engine pass
// does: "warm" is a pass in which nothing changed, "cold" the first pass of
// a plugin (just configured or restarted). The containers are created, not
// started, so that the host runs nothing: a listing and an inspect cost
// the engine the same in either state.
func BenchmarkList(b *testing.B) {
	const n = 200
	dep := deployment(b)
	cli := dockerClient(b)
	ctx := ctxFor(b)
	for i := range n {
		cfg := &container.Config{Image: testimages.HTTPService, Labels: map[string]string{docker.LabelDeployment: dep}}
		if _, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: fmt.Sprintf("%s-%d", dep, i), Config: cfg}); err != nil {
			b.Fatal(err)
		}
	}
	list := func(b *testing.B, p *docker.Plugin) {
		got, err := p.List(context.Background(), backend.ListOptions{})
		if err != nil || len(got) != n {
			b.Fatalf("List = %d services, %v; want %d", len(got), err, n)
		}
	}
	b.Run("warm", func(b *testing.B) {
		p := open(b, dep, nil)
		list(b, p)
		for b.Loop() {
			list(b, p)
		}
	})
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			p := open(b, dep, nil)
			b.StartTimer()
			list(b, p)
		}
	})
}
