// Command backend-sim is Zoe's "sim" back-end plugin: a simulated cluster
// whose services "run" for a while and exit, for the scheduler's tests, large
// simulations and newcomers without Docker. See package sim and README.md.
package main

import (
	"context"
	"log/slog"

	"github.com/zoe-project/zoe/plugins/backend-sim/sim"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/serve"
)

func main() {
	var p *sim.Plugin
	serve.Serve(func(log *slog.Logger) sdk.Plugin { p = sim.New(log); return p })
	// The core stopped the plugin: end the streams and write what must be
	// written (the CPU profile of a benchmark).
	if p != nil {
		_ = p.Close(context.Background())
	}
}
