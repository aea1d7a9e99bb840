// Command backend-swarm is Zoe's "swarm" back-end plugin: services run as
// Docker swarm-mode services. See package swarm and README.md.
package main

import (
	"log/slog"

	"github.com/zoe-project/zoe/plugins/backend-swarm/swarm"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/serve"
)

func main() { serve.Serve(func(log *slog.Logger) sdk.Plugin { return swarm.New(log) }) }
