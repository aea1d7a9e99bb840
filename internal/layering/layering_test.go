// Package layering checks which packages may link which: the plain contract
// and the core's pure parts must not pull in the plugin wire.
package layering

import (
	"os/exec"
	"strings"
	"testing"
)

// The store compares error categories and the scheduler uses the back-end's
// node types; neither may link go-plugin or gRPC to do so.
func TestPurePackagesLinkNoWire(t *testing.T) {
	pure := []string{
		"github.com/zoe-project/zoe/sdk",
		"github.com/zoe-project/zoe/sdk/backend",
		"github.com/zoe-project/zoe/sdk/auth",
		"github.com/zoe-project/zoe/sdk/workspace",
		"github.com/zoe-project/zoe/core/state",
		"github.com/zoe-project/zoe/core/scheduler",
		"github.com/zoe-project/zoe/core/zapp",
	}
	wire := []string{"github.com/hashicorp/go-plugin", "google.golang.org/grpc", "google.golang.org/protobuf"}
	for _, p := range pure {
		out, err := exec.Command("go", "list", "-deps", p).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", p, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, w := range wire {
				if dep == w || strings.HasPrefix(dep, w+"/") {
					t.Errorf("%s links %s", p, dep)
					break
				}
			}
		}
	}
}
