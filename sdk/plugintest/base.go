package plugintest

import (
	"slices"
	"testing"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/hclschema"
)

// checkBase checks what every plugin must get right: its info and a schema
// the core can decode HCL with.
func checkBase(t *testing.T, p sdk.Plugin, kind sdk.Kind, apiVersion string) {
	t.Helper()
	info := p.Info()
	if info.Kind != kind {
		t.Errorf("Info().Kind = %q, want %q", info.Kind, kind)
	}
	if info.Name == "" {
		t.Error("Info().Name is empty")
	}
	if info.Version == "" {
		t.Error("Info().Version is empty")
	}
	if !slices.Contains(info.APIVersions, apiVersion) {
		t.Errorf("Info().APIVersions = %v, want it to hold %q", info.APIVersions, apiVersion)
	}
	if _, err := hclschema.Spec(p.Schema()); err != nil {
		t.Errorf("the core cannot use the plugin's schema: %v", err)
	}
}
