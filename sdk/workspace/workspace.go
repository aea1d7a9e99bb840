// Package workspace is the contract of workspace plugins: a private,
// persistent directory per user that Zoe mounts into each of their containers.
package workspace

import (
	"context"

	"github.com/zoe-project/zoe/sdk"
)

// APIVersion is the version of this contract.
const APIVersion = "v1"

// MountPoint is where a workspace appears inside containers.
const MountPoint = "/mnt/workspace"

// Provider is implemented by workspace plugins.
type Provider interface {
	sdk.Plugin
	// Prepare creates the user's workspace when it does not exist and says
	// how to mount it. It is idempotent.
	Prepare(ctx context.Context, user User) (Mount, error)
	// Exists tells whether the user's workspace exists, without creating it.
	Exists(ctx context.Context, user User) (bool, error)
	// Size returns the bytes the workspace holds; an error wrapping
	// sdk.ErrUnsupported when the provider cannot tell.
	Size(ctx context.Context, user User) (int64, error)
}

// User is whose workspace it is.
type User struct {
	Username string
	UID      *uint32
	GID      *uint32
}

// Mount says how to mount a workspace: a host path or a named volume.
type Mount struct {
	HostPath   string
	VolumeName string
	MountPoint string
	ReadOnly   bool
}
