package pluginhost

import (
	"context"
	"fmt"
	"time"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/workspace"
)

// current returns the plugin's current instance as a T.
func current[T any](p *Plugin) (T, error) {
	var zero T
	impl, err := p.Impl()
	if err != nil {
		return zero, err
	}
	t, ok := impl.(T)
	if !ok {
		return zero, fmt.Errorf("%s plugin %q is a %T: %w", p.spec.Kind, p.spec.Name, impl, sdk.ErrInternal)
	}
	return t, nil
}

// Auth calls a supervised auth plugin, whichever process serves it now.
type Auth struct{ *Plugin }

func (a Auth) Authenticate(ctx context.Context, username, password string) (auth.Identity, error) {
	impl, err := current[auth.Authenticator](a.Plugin)
	if err != nil {
		return auth.Identity{}, err
	}
	return impl.Authenticate(ctx, username, password)
}

func (a Auth) Lookup(ctx context.Context, username string) (auth.Identity, error) {
	impl, err := current[auth.Authenticator](a.Plugin)
	if err != nil {
		return auth.Identity{}, err
	}
	return impl.Lookup(ctx, username)
}

func (a Auth) Generation(ctx context.Context) (uint64, error) {
	impl, err := current[auth.Authenticator](a.Plugin)
	if err != nil {
		return 0, err
	}
	return impl.Generation(ctx)
}

// Workspace calls a supervised workspace plugin.
type Workspace struct{ *Plugin }

func (w Workspace) Prepare(ctx context.Context, u workspace.User) (workspace.Mount, error) {
	impl, err := current[workspace.Provider](w.Plugin)
	if err != nil {
		return workspace.Mount{}, err
	}
	return impl.Prepare(ctx, u)
}

func (w Workspace) Exists(ctx context.Context, u workspace.User) (bool, error) {
	impl, err := current[workspace.Provider](w.Plugin)
	if err != nil {
		return false, err
	}
	return impl.Exists(ctx, u)
}

func (w Workspace) Size(ctx context.Context, u workspace.User) (int64, error) {
	impl, err := current[workspace.Provider](w.Plugin)
	if err != nil {
		return 0, err
	}
	return impl.Size(ctx, u)
}

// Backend calls a supervised back-end plugin, whichever process serves it
// now. A stream (Events, Logs) belongs to the process that opened it: when
// that process dies the channel is closed, and the caller subscribes again.
type Backend struct{ *Plugin }

func (b Backend) Nodes(ctx context.Context) ([]backend.Node, error) {
	impl, err := current[backend.Backend](b.Plugin)
	if err != nil {
		return nil, err
	}
	return impl.Nodes(ctx)
}

func (b Backend) CreateNetwork(ctx context.Context, spec backend.NetworkSpec) (string, error) {
	impl, err := current[backend.Backend](b.Plugin)
	if err != nil {
		return "", err
	}
	return impl.CreateNetwork(ctx, spec)
}

func (b Backend) RemoveNetwork(ctx context.Context, id string) error {
	impl, err := current[backend.Backend](b.Plugin)
	if err != nil {
		return err
	}
	return impl.RemoveNetwork(ctx, id)
}

func (b Backend) Start(ctx context.Context, spec backend.ServiceSpec) (backend.ServiceStatus, error) {
	impl, err := current[backend.Backend](b.Plugin)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	return impl.Start(ctx, spec)
}

func (b Backend) Stop(ctx context.Context, h backend.Handle, grace time.Duration) error {
	impl, err := current[backend.Backend](b.Plugin)
	if err != nil {
		return err
	}
	return impl.Stop(ctx, h, grace)
}

func (b Backend) Remove(ctx context.Context, h backend.Handle, force bool) error {
	impl, err := current[backend.Backend](b.Plugin)
	if err != nil {
		return err
	}
	return impl.Remove(ctx, h, force)
}

func (b Backend) Inspect(ctx context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	impl, err := current[backend.Backend](b.Plugin)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	return impl.Inspect(ctx, h)
}

func (b Backend) Recover(ctx context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	impl, err := current[backend.Backend](b.Plugin)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	return impl.Recover(ctx, h)
}

func (b Backend) List(ctx context.Context, opts backend.ListOptions) ([]backend.ServiceStatus, error) {
	impl, err := current[backend.Backend](b.Plugin)
	if err != nil {
		return nil, err
	}
	return impl.List(ctx, opts)
}

// Capabilities are the current process's; the plugin's answer says which
// optional interfaces it has.
func (b Backend) Capabilities(ctx context.Context) (backend.Capabilities, error) {
	impl, err := current[backend.Backend](b.Plugin)
	if err != nil {
		return backend.Capabilities{}, err
	}
	return impl.Capabilities(ctx)
}

// Update is sdk.ErrUnsupported for a plugin without backend.Updater.
func (b Backend) Update(ctx context.Context, h backend.Handle, r backend.Resources) error {
	impl, err := current[backend.Updater](b.Plugin)
	if err != nil {
		return err
	}
	return impl.Update(ctx, h, r)
}

func (b Backend) Events(ctx context.Context) (<-chan backend.Event, error) {
	impl, err := current[backend.Backend](b.Plugin)
	if err != nil {
		return nil, err
	}
	return impl.Events(ctx)
}

func (b Backend) Logs(ctx context.Context, h backend.Handle, opts backend.LogOptions) (<-chan backend.LogEntry, error) {
	impl, err := current[backend.Backend](b.Plugin)
	if err != nil {
		return nil, err
	}
	return impl.Logs(ctx, h, opts)
}
