// Command backend-docker is Zoe's "docker" back-end plugin: services run as
// containers on one or more Docker engines. See package docker and README.md.
package main

import (
	"log/slog"

	"github.com/zoe-project/zoe/plugins/backend-docker/docker"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/serve"
)

func main() { serve.Serve(func(log *slog.Logger) sdk.Plugin { return docker.New(log) }) }
