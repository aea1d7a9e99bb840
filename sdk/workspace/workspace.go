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

// Provider is implemented by workspace plugins. Every method refuses a
// username that cannot name a directory safely ("", ".", "..", anything
// with "/", "\\" or NUL) with sdk.ErrInvalidArgument.
//
// The core calls Prepare before it starts an execution's services, for its
// owner, and mounts the answer as the first volume of every service (see
// sdk/backend: ServiceSpec.Volumes). Calls come concurrently, for several
// users and for the same one. Exists and Size are for tools; the core does
// not call them yet.
type Provider interface {
	sdk.Plugin
	// Prepare creates the user's workspace when it does not exist and says
	// how to mount it. It is idempotent: the same user gets the same Mount.
	// Errors the core retries later: sdk.ErrUnavailable,
	// sdk.ErrResourceExhausted, sdk.ErrDeadlineExceeded; any other ends the
	// execution in error.
	Prepare(ctx context.Context, user User) (Mount, error)
	// Exists tells whether the user's workspace exists, without creating it.
	Exists(ctx context.Context, user User) (bool, error)
	// Size returns the bytes the workspace holds; sdk.ErrNotFound when it
	// does not exist, sdk.ErrUnsupported when the provider cannot tell.
	Size(ctx context.Context, user User) (int64, error)
}

// User is whose workspace it is.
type User struct {
	Username string
	// UID and GID are the ids the user's services run as, when known: a
	// workspace the provider creates belongs to them, so that the services
	// can write in it.
	UID *uint32
	GID *uint32
}

// Mount says how to mount a workspace: a host path or a named volume,
// exactly one of them.
type Mount struct {
	// HostPath is an absolute path on the platform's nodes; back-ends
	// refuse a relative one.
	HostPath string
	// VolumeName is a volume the back-end's platform manages.
	VolumeName string
	// MountPoint is always MountPoint (/mnt/workspace).
	MountPoint string
	ReadOnly   bool
}
