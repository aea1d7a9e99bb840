// Command closer is a back-end plugin for the plugin host's tests: it runs
// nothing, and its Close writes "closed" to the file its configuration
// names (marker), so that a test sees the host closed it before stopping
// it.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/backend/backendrpc"
	"github.com/zoe-project/zoe/sdk/handshake"
)

type closer struct{ marker string }

var (
	_ backend.Backend = (*closer)(nil)
	_ backend.Closer  = (*closer)(nil)
)

func (*closer) Info() sdk.Info { return sdk.Info{Name: "closer", Version: "0.0.1"} }
func (*closer) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{{Name: "marker", Type: "string", Required: true}}}
}

func (c *closer) Configure(_ context.Context, cfg sdk.Config) error {
	var b struct {
		Marker string `json:"marker"`
	}
	if err := cfg.Decode(&b); err != nil {
		return err
	}
	c.marker = b.Marker
	return nil
}

func (c *closer) Close(context.Context) error { return os.WriteFile(c.marker, []byte("closed"), 0o600) }

func (*closer) Capabilities(context.Context) (backend.Capabilities, error) {
	return backend.Capabilities{}, nil
}

var errNothing = fmt.Errorf("the closer test plugin runs nothing: %w", sdk.ErrUnsupported)

func (*closer) Nodes(context.Context) ([]backend.Node, error) { return nil, nil }
func (*closer) CreateNetwork(context.Context, backend.NetworkSpec) (string, error) {
	return "", errNothing
}
func (*closer) RemoveNetwork(context.Context, string) error { return errNothing }
func (*closer) Start(context.Context, backend.ServiceSpec) (backend.ServiceStatus, error) {
	return backend.ServiceStatus{}, errNothing
}
func (*closer) Stop(context.Context, backend.Handle, time.Duration) error { return errNothing }
func (*closer) Remove(context.Context, backend.Handle, bool) error        { return errNothing }
func (*closer) Inspect(context.Context, backend.Handle) (backend.ServiceStatus, error) {
	return backend.ServiceStatus{}, errNothing
}
func (*closer) Recover(context.Context, backend.Handle) (backend.ServiceStatus, error) {
	return backend.ServiceStatus{}, errNothing
}
func (*closer) List(context.Context, backend.ListOptions) ([]backend.ServiceStatus, error) {
	return nil, nil
}
func (*closer) Events(context.Context) (<-chan backend.Event, error) { return nil, errNothing }
func (*closer) Logs(context.Context, backend.Handle, backend.LogOptions) (<-chan backend.LogEntry, error) {
	return nil, errNothing
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: handshake.Config(),
		VersionedPlugins: map[int]plugin.PluginSet{handshake.ProtocolVersion: {
			string(sdk.KindBackend): &backendrpc.Plugin{Impl: &closer{}}}},
		GRPCServer: plugin.DefaultGRPCServer,
	})
}
