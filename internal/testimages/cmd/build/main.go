// Command build builds Zoe's test images (zoe-test/httpservice:1,
// zoe-test/job:1, zoe-test/worker:1, zoe-test/oom:1, zoe-test/probe:1,
// zoe-test/pause:1) in the local Docker engine (DOCKER_HOST or the unix
// socket), without a registry:
//
//	go run ./internal/testimages/cmd/build
//
// The ZApps of examples/docker run on them (the shop's run the analytics
// images of images/, make images).
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testimages"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cli, err := client.New(client.FromEnv)
	if err == nil {
		err = testimages.Build(ctx, cli)
		_ = cli.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	for _, img := range testimages.Images() {
		fmt.Println(img)
	}
}
