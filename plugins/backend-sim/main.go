// Command backend-sim is Zoe's "sim" back-end plugin: a simulated cluster
// whose services "run" for a while and exit, for the scheduler's tests, large
// simulations and newcomers without Docker. See package sim and README.md.
package main

import (
	"log/slog"

	"github.com/zoe-project/zoe/plugins/backend-sim/sim"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/serve"
)

func main() { serve.Serve(func(log *slog.Logger) sdk.Plugin { return sim.New(log) }) }
