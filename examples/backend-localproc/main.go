// Command zoe-plugin-backend-localproc is a Zoe back-end that runs each
// service as a group of processes on this machine, without containers: a
// developer's back-end for a machine without Docker. See README.md for what
// it honours of Zoe's container policy and what it refuses.
//
// The binary has two more roles, which Start uses: "supervise" watches one
// service (its output, its exit code) and outlives the plugin process;
// "exec-service" sets up the service's process (cgroups, capabilities,
// no_new_privs, user) and becomes the service's program.
package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/serve"
)

func main() {
	serve.Serve(func(log *slog.Logger) sdk.Plugin { return New(log, "") },
		serve.Command{Name: "supervise", Usage: "SERVICE-DIR",
			Help: "internal: supervise one service (started by the plugin)",
			Run: func(_ context.Context, args []string) error {
				if len(args) != 1 {
					return fmt.Errorf("supervise needs the service's directory: %w", serve.ErrUsage)
				}
				return supervise(args[0])
			}},
		serve.Command{Name: "exec-service", Usage: "SERVICE-DIR",
			Help: "internal: become one service's program (started by supervise)",
			Run: func(_ context.Context, args []string) error {
				if len(args) != 1 {
					return fmt.Errorf("exec-service needs the service's directory: %w", serve.ErrUsage)
				}
				return execService(args[0])
			}},
	)
}
