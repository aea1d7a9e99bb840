package dirws_test

import (
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/zoe-project/zoe/plugins/workspace-dir/dirws"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/plugintest"
	"github.com/zoe-project/zoe/sdk/workspace"
)

func TestConformance(t *testing.T) {
	plugintest.RunWorkspaceConformance(t, plugintest.WorkspaceSuite{
		New: func(t *testing.T) workspace.Provider {
			block, err := json.Marshal(map[string]any{"base_path": t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			p := dirws.New(slog.New(slog.DiscardHandler))
			if err := p.Configure(t.Context(), sdk.Config{JSON: block, Deployment: "conformance"}); err != nil {
				t.Fatalf("Configure: %v", err)
			}
			return p
		},
	})
}
