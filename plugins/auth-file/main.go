// Command auth-file is Zoe's `file` auth plugin: users from a text file.
// The core starts it; it is not meant to be run by hand.
package main

import (
	"log/slog"

	"github.com/zoe-project/zoe/plugins/auth-file/authfile"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/serve"
)

func main() {
	serve.Serve(func(log *slog.Logger) sdk.Plugin { return authfile.New(log) })
}
