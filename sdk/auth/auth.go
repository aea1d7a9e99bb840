// Package auth is the contract of authentication plugins: check a username
// and password, and say who that is.
package auth

import (
	"context"
	"fmt"

	"github.com/zoe-project/zoe/sdk"
)

// APIVersion is the version of this contract; the core refuses a plugin that
// does not list it in its Info.
const APIVersion = "v1"

// Authenticator is implemented by authentication plugins.
type Authenticator interface {
	sdk.Plugin
	// Authenticate returns the identity of the user whose credentials these
	// are, or an error wrapping sdk.ErrInvalidCredentials when they are wrong
	// or the user is unknown (the two are not told apart, on purpose).
	Authenticate(ctx context.Context, username, password string) (Identity, error)
}

// Role decides what a user may do in Zoe.
type Role string

const (
	RoleGuest Role = "guest"
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// ParseRole parses guest, user or admin.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleGuest, RoleUser, RoleAdmin:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q, want guest, user or admin: %w", s, sdk.ErrInvalidArgument)
}

// Identity is an authenticated user.
type Identity struct {
	Username string
	Role     Role
	Groups   []string
	// UID and GID are the user's POSIX ids when the source knows them.
	UID         *uint32
	GID         *uint32
	Email       string
	DisplayName string
}
