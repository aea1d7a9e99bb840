// Command benchbare is the floor the plugin benchmark compares Zoe's plugin
// path with: the auth service served with go-plugin and the generated gRPC
// code alone, none of the SDK's adapters, answering the same payload as the
// file plugin.
package main

import (
	"context"

	"github.com/zoe-project/zoe/sdk/handshake"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/zoe-project/zoe/internal/testplugins/benchbare/bare"
	authv1 "github.com/zoe-project/zoe/sdk/proto/zoe/plugin/auth/v1"
)

type server struct {
	authv1.UnimplementedAuthServer
}

func (server) Authenticate(_ context.Context, req *authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error) {
	return &authv1.AuthenticateResponse{Identity: &authv1.Identity{Username: req.GetUsername(), Role: "user"}}, nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: handshake.Config(),
		VersionedPlugins: map[int]plugin.PluginSet{handshake.ProtocolVersion: {
			bare.Name: &bare.Plugin{Register: func(s *grpc.Server) { authv1.RegisterAuthServer(s, server{}) }},
		}},
		GRPCServer: plugin.DefaultGRPCServer,
	})
}
