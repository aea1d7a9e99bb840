package backendrpc

import (
	"context"
	"errors"
	"testing"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/internal/wire"
	backendv1 "github.com/zoe-project/zoe/sdk/proto/zoe/plugin/backend/v1"
)

// legacy serves a back-end as a plugin built before Capabilities and Close
// did: neither call is known to its server.
type legacy struct {
	Plugin
}

type info struct{}

func (info) Info() sdk.Info                              { return sdk.Info{Name: "old", Version: "0.0.1"} }
func (info) Schema() sdk.Schema                          { return sdk.Schema{} }
func (info) Configure(context.Context, sdk.Config) error { return nil }

func (legacy) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	wire.RegisterBase(s, info{}, sdk.KindBackend, backend.APIVersion)
	backendv1.RegisterBackendServer(s, backendv1.UnimplementedBackendServer{})
	return nil
}

// An older plugin is taken as the core took it before: it pulls images and
// updates, and Close is unsupported.
func TestOlderPlugin(t *testing.T) {
	client, server := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{"backend": &legacy{}})
	t.Cleanup(func() {
		server.Stop()
		_ = client.Close()
	})
	raw, err := client.Dispense("backend")
	if err != nil {
		t.Fatal(err)
	}
	b := raw.(backend.Backend)
	caps, err := b.Capabilities(context.Background())
	if err != nil || caps != legacyCapabilities {
		t.Errorf("Capabilities of an older plugin = %+v, %v; want %+v", caps, err, legacyCapabilities)
	}
	if err := b.(backend.Closer).Close(context.Background()); !errors.Is(err, sdk.ErrUnsupported) {
		t.Errorf("Close of an older plugin: %v, want sdk.ErrUnsupported", err)
	}
}
