// Package backendrpc carries the backend contract (package sdk/backend) over gRPC
// with hashicorp/go-plugin: the server side wraps a plugin's implementation,
// the client side gives the core a backend.Backend that calls the plugin.
// Plugin authors do not use it: serve.Serve does.
package backendrpc

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/internal/wire"
	backendv1 "github.com/zoe-project/zoe/sdk/proto/zoe/plugin/backend/v1"
)

// Plugin is the go-plugin glue of the backend kind. Impl is set on the
// plugin's side only.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl backend.Backend
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	wire.RegisterBase(s, p.Impl, sdk.KindBackend, backend.APIVersion)
	backendv1.RegisterBackendServer(s, &server{impl: p.Impl})
	return nil
}

// GRPCClient returns a Backend that also implements every optional
// interface (backend.Updater, backend.Closer): the plugin's own answer says
// whether it has them, sdk.ErrUnsupported when not. It also has
// Exited() <-chan struct{}.
func (p *Plugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	base, err := wire.NewBaseClient(ctx, c)
	if err != nil {
		return nil, err
	}
	return &client{BaseClient: base, c: backendv1.NewBackendClient(c)}, nil
}

type server struct {
	backendv1.UnimplementedBackendServer
	impl backend.Backend
}

func (s *server) Capabilities(ctx context.Context, _ *backendv1.CapabilitiesRequest) (*backendv1.CapabilitiesResponse, error) {
	c, err := s.impl.Capabilities(ctx)
	if err != nil {
		return nil, wire.ToStatus(err)
	}
	// What the implementation is, not what it says it is.
	_, updater := s.impl.(backend.Updater)
	_, closer := s.impl.(backend.Closer)
	return &backendv1.CapabilitiesResponse{PullsImages: c.PullsImages, Updater: updater, Closer: closer}, nil
}

func (s *server) Nodes(ctx context.Context, _ *backendv1.NodesRequest) (*backendv1.NodesResponse, error) {
	nodes, err := s.impl.Nodes(ctx)
	if err != nil {
		return nil, wire.ToStatus(err)
	}
	out := &backendv1.NodesResponse{}
	for _, n := range nodes {
		out.Nodes = append(out.Nodes, nodeToProto(n))
	}
	return out, nil
}

func (s *server) CreateNetwork(ctx context.Context, req *backendv1.CreateNetworkRequest) (*backendv1.CreateNetworkResponse, error) {
	id, err := s.impl.CreateNetwork(ctx, backend.NetworkSpec{Name: req.GetName(), Labels: req.GetLabels()})
	if err != nil {
		return nil, wire.ToStatus(err)
	}
	return &backendv1.CreateNetworkResponse{Id: id}, nil
}

func (s *server) RemoveNetwork(ctx context.Context, req *backendv1.RemoveNetworkRequest) (*backendv1.RemoveNetworkResponse, error) {
	return &backendv1.RemoveNetworkResponse{}, wire.ToStatus(s.impl.RemoveNetwork(ctx, req.GetId()))
}

func (s *server) Start(ctx context.Context, req *backendv1.StartRequest) (*backendv1.StartResponse, error) {
	st, err := s.impl.Start(ctx, specFromProto(req.GetSpec()))
	if err != nil {
		return nil, wire.ToStatus(err)
	}
	return &backendv1.StartResponse{Status: statusToProto(st)}, nil
}

func (s *server) Stop(ctx context.Context, req *backendv1.StopRequest) (*backendv1.StopResponse, error) {
	err := s.impl.Stop(ctx, handleFromProto(req.GetHandle()), time.Duration(req.GetGracePeriodNanos()))
	return &backendv1.StopResponse{}, wire.ToStatus(err)
}

func (s *server) Remove(ctx context.Context, req *backendv1.RemoveRequest) (*backendv1.RemoveResponse, error) {
	return &backendv1.RemoveResponse{}, wire.ToStatus(s.impl.Remove(ctx, handleFromProto(req.GetHandle()), req.GetForce()))
}

func (s *server) Inspect(ctx context.Context, req *backendv1.InspectRequest) (*backendv1.InspectResponse, error) {
	st, err := s.impl.Inspect(ctx, handleFromProto(req.GetHandle()))
	if err != nil {
		return nil, wire.ToStatus(err)
	}
	return &backendv1.InspectResponse{Status: statusToProto(st)}, nil
}

func (s *server) Recover(ctx context.Context, req *backendv1.RecoverRequest) (*backendv1.RecoverResponse, error) {
	st, err := s.impl.Recover(ctx, handleFromProto(req.GetHandle()))
	if err != nil {
		return nil, wire.ToStatus(err)
	}
	return &backendv1.RecoverResponse{Status: statusToProto(st)}, nil
}

func (s *server) List(ctx context.Context, req *backendv1.ListRequest) (*backendv1.ListResponse, error) {
	list, err := s.impl.List(ctx, backend.ListOptions{Labels: req.GetLabels()})
	if err != nil {
		return nil, wire.ToStatus(err)
	}
	out := &backendv1.ListResponse{}
	for _, st := range list {
		out.Services = append(out.Services, statusToProto(st))
	}
	return out, nil
}

func (s *server) Update(ctx context.Context, req *backendv1.UpdateRequest) (*backendv1.UpdateResponse, error) {
	u, ok := s.impl.(backend.Updater)
	if !ok {
		return nil, wire.ToStatus(fmt.Errorf("back-end %q cannot update services: %w", s.impl.Info().Name, sdk.ErrUnsupported))
	}
	err := u.Update(ctx, handleFromProto(req.GetHandle()), resourcesFromProto(req.GetResources()))
	return &backendv1.UpdateResponse{}, wire.ToStatus(err)
}

func (s *server) Close(ctx context.Context, _ *backendv1.CloseRequest) (*backendv1.CloseResponse, error) {
	c, ok := s.impl.(backend.Closer)
	if !ok {
		return nil, wire.ToStatus(fmt.Errorf("back-end %q has nothing to close: %w", s.impl.Info().Name, sdk.ErrUnsupported))
	}
	return &backendv1.CloseResponse{}, wire.ToStatus(c.Close(ctx))
}

func (s *server) Events(_ *backendv1.EventsRequest, stream grpc.ServerStreamingServer[backendv1.Event]) error {
	ch, err := s.impl.Events(stream.Context())
	if err != nil {
		return wire.ToStatus(err)
	}
	if err := wire.StreamOpened(stream); err != nil {
		return err
	}
	return wire.Forward(stream.Context(), ch, func(e backend.Event) error { return stream.Send(eventToProto(e)) })
}

func (s *server) Logs(req *backendv1.LogsRequest, stream grpc.ServerStreamingServer[backendv1.LogEntry]) error {
	ch, err := s.impl.Logs(stream.Context(), handleFromProto(req.GetHandle()), backend.LogOptions{
		Follow: req.GetFollow(), Tail: int(req.GetTail()), Since: fromUnixNano(req.GetSinceUnixNano())})
	if err != nil {
		return wire.ToStatus(err)
	}
	if err := wire.StreamOpened(stream); err != nil {
		return err
	}
	return wire.Forward(stream.Context(), ch, func(l backend.LogEntry) error { return stream.Send(logToProto(l)) })
}

type client struct {
	*wire.BaseClient
	c backendv1.BackendClient
}

var (
	_ backend.Backend = (*client)(nil)
	_ backend.Updater = (*client)(nil)
	_ backend.Closer  = (*client)(nil)
)

// legacyCapabilities are those of a plugin built before the Capabilities
// call: every v1 plugin had Update, none had Close, and the core took them
// all to pull images.
var legacyCapabilities = backend.Capabilities{PullsImages: true, Updater: true}

func (c *client) Capabilities(ctx context.Context) (backend.Capabilities, error) {
	resp, err := c.c.Capabilities(ctx, &backendv1.CapabilitiesRequest{})
	if status.Code(err) == codes.Unimplemented {
		return legacyCapabilities, nil
	}
	if err != nil {
		return backend.Capabilities{}, wire.FromStatus(err)
	}
	return backend.Capabilities{PullsImages: resp.GetPullsImages(), Updater: resp.GetUpdater(), Closer: resp.GetCloser()}, nil
}

func (c *client) Nodes(ctx context.Context) ([]backend.Node, error) {
	resp, err := c.c.Nodes(ctx, &backendv1.NodesRequest{})
	if err != nil {
		return nil, wire.FromStatus(err)
	}
	out := make([]backend.Node, 0, len(resp.GetNodes()))
	for _, n := range resp.GetNodes() {
		out = append(out, nodeFromProto(n))
	}
	return out, nil
}

func (c *client) CreateNetwork(ctx context.Context, spec backend.NetworkSpec) (string, error) {
	resp, err := c.c.CreateNetwork(ctx, &backendv1.CreateNetworkRequest{Name: spec.Name, Labels: spec.Labels})
	if err != nil {
		return "", wire.FromStatus(err)
	}
	return resp.GetId(), nil
}

func (c *client) RemoveNetwork(ctx context.Context, id string) error {
	_, err := c.c.RemoveNetwork(ctx, &backendv1.RemoveNetworkRequest{Id: id})
	return wire.FromStatus(err)
}

func (c *client) Start(ctx context.Context, spec backend.ServiceSpec) (backend.ServiceStatus, error) {
	resp, err := c.c.Start(ctx, &backendv1.StartRequest{Spec: specToProto(spec)})
	if err != nil {
		return backend.ServiceStatus{}, wire.FromStatus(err)
	}
	return statusFromProto(resp.GetStatus()), nil
}

func (c *client) Stop(ctx context.Context, h backend.Handle, grace time.Duration) error {
	_, err := c.c.Stop(ctx, &backendv1.StopRequest{Handle: handleToProto(h), GracePeriodNanos: int64(grace)})
	return wire.FromStatus(err)
}

func (c *client) Remove(ctx context.Context, h backend.Handle, force bool) error {
	_, err := c.c.Remove(ctx, &backendv1.RemoveRequest{Handle: handleToProto(h), Force: force})
	return wire.FromStatus(err)
}

func (c *client) Inspect(ctx context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	resp, err := c.c.Inspect(ctx, &backendv1.InspectRequest{Handle: handleToProto(h)})
	if err != nil {
		return backend.ServiceStatus{}, wire.FromStatus(err)
	}
	return statusFromProto(resp.GetStatus()), nil
}

func (c *client) Recover(ctx context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	resp, err := c.c.Recover(ctx, &backendv1.RecoverRequest{Handle: handleToProto(h)})
	if err != nil {
		return backend.ServiceStatus{}, wire.FromStatus(err)
	}
	return statusFromProto(resp.GetStatus()), nil
}

func (c *client) List(ctx context.Context, opts backend.ListOptions) ([]backend.ServiceStatus, error) {
	resp, err := c.c.List(ctx, &backendv1.ListRequest{Labels: opts.Labels})
	if err != nil {
		return nil, wire.FromStatus(err)
	}
	out := make([]backend.ServiceStatus, 0, len(resp.GetServices()))
	for _, s := range resp.GetServices() {
		out = append(out, statusFromProto(s))
	}
	return out, nil
}

func (c *client) Update(ctx context.Context, h backend.Handle, r backend.Resources) error {
	_, err := c.c.Update(ctx, &backendv1.UpdateRequest{Handle: handleToProto(h), Resources: resourcesToProto(r)})
	return wire.FromStatus(err)
}

// Close asks the plugin to release what it holds; sdk.ErrUnsupported when
// it has no backend.Closer (or was built before Close existed).
func (c *client) Close(ctx context.Context) error {
	_, err := c.c.Close(ctx, &backendv1.CloseRequest{})
	return wire.FromStatus(err)
}

func (c *client) Events(ctx context.Context) (<-chan backend.Event, error) {
	stream, err := c.c.Events(ctx, &backendv1.EventsRequest{})
	if err != nil {
		return nil, wire.FromStatus(err)
	}
	return wire.Receive(ctx, stream, stream.Recv, eventFromProto)
}

func (c *client) Logs(ctx context.Context, h backend.Handle, opts backend.LogOptions) (<-chan backend.LogEntry, error) {
	stream, err := c.c.Logs(ctx, &backendv1.LogsRequest{
		Handle: handleToProto(h), Follow: opts.Follow, Tail: int32(opts.Tail), SinceUnixNano: unixNano(opts.Since)})
	if err != nil {
		return nil, wire.FromStatus(err)
	}
	return wire.Receive(ctx, stream, stream.Recv, logFromProto)
}
