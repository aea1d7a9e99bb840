// Package authrpc carries the auth contract (package sdk/auth) over gRPC
// with hashicorp/go-plugin: the server side wraps a plugin's implementation,
// the client side gives the core an auth.Authenticator that calls the plugin.
// Plugin authors do not use it: serve.Serve does.
package authrpc

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/internal/wire"
	authv1 "github.com/zoe-project/zoe/sdk/proto/zoe/plugin/auth/v1"
)

// Plugin is the go-plugin glue of the auth kind. Impl is set on the plugin's
// side only.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl auth.Authenticator
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	wire.RegisterBase(s, p.Impl, sdk.KindAuth, auth.APIVersion)
	authv1.RegisterAuthServer(s, &server{impl: p.Impl})
	return nil
}

// GRPCClient returns an Authenticator; it also has Exited() <-chan struct{}.
func (p *Plugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	base, err := wire.NewBaseClient(ctx, c)
	if err != nil {
		return nil, err
	}
	return &client{BaseClient: base, c: authv1.NewAuthClient(c)}, nil
}

type server struct {
	authv1.UnimplementedAuthServer
	impl auth.Authenticator
}

func (s *server) Authenticate(ctx context.Context, req *authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error) {
	id, err := s.impl.Authenticate(ctx, req.GetUsername(), req.GetPassword())
	if err != nil {
		return nil, wire.ToStatus(err)
	}
	return &authv1.AuthenticateResponse{Identity: toWire(id)}, nil
}

func (s *server) Lookup(ctx context.Context, req *authv1.LookupRequest) (*authv1.LookupResponse, error) {
	id, err := s.impl.Lookup(ctx, req.GetUsername())
	if err != nil {
		return nil, wire.ToStatus(err)
	}
	return &authv1.LookupResponse{Identity: toWire(id)}, nil
}

func (s *server) Generation(ctx context.Context, _ *authv1.GenerationRequest) (*authv1.GenerationResponse, error) {
	g, err := s.impl.Generation(ctx)
	if err != nil {
		return nil, wire.ToStatus(err)
	}
	return &authv1.GenerationResponse{Generation: g}, nil
}

func toWire(id auth.Identity) *authv1.Identity {
	return &authv1.Identity{
		Username:    id.Username,
		Role:        string(id.Role),
		Groups:      id.Groups,
		Uid:         id.UID,
		Gid:         id.GID,
		Email:       id.Email,
		DisplayName: id.DisplayName,
	}
}

type client struct {
	*wire.BaseClient
	c authv1.AuthClient
}

var _ auth.Authenticator = (*client)(nil)

func (c *client) Authenticate(ctx context.Context, username, password string) (auth.Identity, error) {
	resp, err := c.c.Authenticate(ctx, &authv1.AuthenticateRequest{Username: username, Password: password})
	if err != nil {
		return auth.Identity{}, wire.FromStatus(err)
	}
	return fromWire(resp.GetIdentity())
}

func (c *client) Lookup(ctx context.Context, username string) (auth.Identity, error) {
	resp, err := c.c.Lookup(ctx, &authv1.LookupRequest{Username: username})
	if err != nil {
		return auth.Identity{}, wire.FromStatus(err)
	}
	return fromWire(resp.GetIdentity())
}

func (c *client) Generation(ctx context.Context) (uint64, error) {
	resp, err := c.c.Generation(ctx, &authv1.GenerationRequest{})
	if err != nil {
		return 0, wire.FromStatus(err)
	}
	return resp.GetGeneration(), nil
}

func fromWire(id *authv1.Identity) (auth.Identity, error) {
	role, err := auth.ParseRole(id.GetRole())
	if err != nil {
		// The plugin's answer is wrong, not the caller's request.
		return auth.Identity{}, fmt.Errorf("auth plugin answered %q: %w", id.GetRole(), sdk.ErrInternal)
	}
	return auth.Identity{
		Username:    id.GetUsername(),
		Role:        role,
		Groups:      id.GetGroups(),
		UID:         id.Uid,
		GID:         id.Gid,
		Email:       id.GetEmail(),
		DisplayName: id.GetDisplayName(),
	}, nil
}
