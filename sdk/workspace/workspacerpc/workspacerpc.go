// Package workspacerpc carries the workspace contract (package sdk/workspace) over gRPC
// with hashicorp/go-plugin: the server side wraps a plugin's implementation,
// the client side gives the core a workspace.Provider that calls the plugin.
// Plugin authors do not use it: serve.Serve does.
package workspacerpc

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/internal/wire"
	workspacev1 "github.com/zoe-project/zoe/sdk/proto/zoe/plugin/workspace/v1"
	"github.com/zoe-project/zoe/sdk/workspace"
)

// Plugin is the go-plugin glue of the workspace kind. Impl is set on the
// plugin's side only.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl workspace.Provider
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	wire.RegisterBase(s, p.Impl, sdk.KindWorkspace, workspace.APIVersion)
	workspacev1.RegisterWorkspaceServer(s, &server{impl: p.Impl})
	return nil
}

// GRPCClient returns a Provider; it also has Exited() <-chan struct{}.
func (p *Plugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	base, err := wire.NewBaseClient(ctx, c)
	if err != nil {
		return nil, err
	}
	return &client{BaseClient: base, c: workspacev1.NewWorkspaceClient(c)}, nil
}

func userToProto(u workspace.User) *workspacev1.User {
	return &workspacev1.User{Username: u.Username, Uid: u.UID, Gid: u.GID}
}

func userFromProto(u *workspacev1.User) workspace.User {
	return workspace.User{Username: u.GetUsername(), UID: u.Uid, GID: u.Gid}
}

type server struct {
	workspacev1.UnimplementedWorkspaceServer
	impl workspace.Provider
}

func (s *server) Prepare(ctx context.Context, req *workspacev1.PrepareRequest) (*workspacev1.PrepareResponse, error) {
	m, err := s.impl.Prepare(ctx, userFromProto(req.GetUser()))
	if err != nil {
		return nil, wire.ToStatus(err)
	}
	return &workspacev1.PrepareResponse{Mount: &workspacev1.Mount{
		HostPath: m.HostPath, VolumeName: m.VolumeName, MountPoint: m.MountPoint, ReadOnly: m.ReadOnly,
	}}, nil
}

func (s *server) Exists(ctx context.Context, req *workspacev1.ExistsRequest) (*workspacev1.ExistsResponse, error) {
	ok, err := s.impl.Exists(ctx, userFromProto(req.GetUser()))
	if err != nil {
		return nil, wire.ToStatus(err)
	}
	return &workspacev1.ExistsResponse{Exists: ok}, nil
}

func (s *server) Size(ctx context.Context, req *workspacev1.SizeRequest) (*workspacev1.SizeResponse, error) {
	n, err := s.impl.Size(ctx, userFromProto(req.GetUser()))
	if err != nil {
		return nil, wire.ToStatus(err)
	}
	return &workspacev1.SizeResponse{Bytes: n}, nil
}

type client struct {
	*wire.BaseClient
	c workspacev1.WorkspaceClient
}

var _ workspace.Provider = (*client)(nil)

func (c *client) Prepare(ctx context.Context, u workspace.User) (workspace.Mount, error) {
	resp, err := c.c.Prepare(ctx, &workspacev1.PrepareRequest{User: userToProto(u)})
	if err != nil {
		return workspace.Mount{}, wire.FromStatus(err)
	}
	m := resp.GetMount()
	return workspace.Mount{HostPath: m.GetHostPath(), VolumeName: m.GetVolumeName(), MountPoint: m.GetMountPoint(), ReadOnly: m.GetReadOnly()}, nil
}

func (c *client) Exists(ctx context.Context, u workspace.User) (bool, error) {
	resp, err := c.c.Exists(ctx, &workspacev1.ExistsRequest{User: userToProto(u)})
	if err != nil {
		return false, wire.FromStatus(err)
	}
	return resp.GetExists(), nil
}

func (c *client) Size(ctx context.Context, u workspace.User) (int64, error) {
	resp, err := c.c.Size(ctx, &workspacev1.SizeRequest{User: userToProto(u)})
	if err != nil {
		return 0, wire.FromStatus(err)
	}
	return resp.GetBytes(), nil
}
