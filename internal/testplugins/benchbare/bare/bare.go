// Package bare is the go-plugin glue of the benchbare plugin, shared by the
// plugin and the benchmark that calls it.
package bare

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	authv1 "github.com/zoe-project/zoe/sdk/proto/zoe/plugin/auth/v1"
)

// Name of the plugin in the go-plugin set.
const Name = "bare"

// Plugin serves whatever Register registers; its client is a raw
// authv1.AuthClient.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Register func(*grpc.Server)
}

func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	p.Register(s)
	return nil
}

func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return authv1.NewAuthClient(c), nil
}
