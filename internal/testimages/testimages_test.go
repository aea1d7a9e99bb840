package testimages_test

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testimages"
)

// TestBuild builds the images twice: the second time finds them there.
func TestBuild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a hang bound: a new machine compiles every program first
	defer cancel()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatalf("Docker client: %v", err)
	}
	defer cli.Close()
	for i := range 2 {
		if err := testimages.Build(ctx, cli); err != nil {
			t.Fatalf("Build #%d: %v (the tests need a reachable Docker engine)", i+1, err)
		}
	}
	for _, img := range testimages.Images() {
		if _, err := cli.ImageInspect(ctx, img); err != nil {
			t.Errorf("image %s: %v", img, err)
		}
	}
}
