// Command workspace-dir is Zoe's "dir" workspace plugin: one directory per
// user under <base_path>/<deployment_path>/<username>.
package main

import (
	"log/slog"

	"github.com/zoe-project/zoe/plugins/workspace-dir/dirws"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/serve"
)

func main() { serve.Serve(func(log *slog.Logger) sdk.Plugin { return dirws.New(log) }) }
