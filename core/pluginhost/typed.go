package pluginhost

import (
	"context"
	"fmt"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
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
