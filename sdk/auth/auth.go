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
//
// The core asks Authenticate at a password login, and Lookup at least once a
// minute for every user who calls with a token, so that a user removed,
// disabled or given another role at the source loses what the token gave
// within that minute. It calls Generation every few seconds, and drops what
// it cached of the plugin's answers (passwords, identities) when the value
// changes.
type Authenticator interface {
	sdk.Plugin
	// Authenticate returns the identity of the user whose credentials these
	// are, or an error wrapping sdk.ErrInvalidCredentials when they are wrong
	// or the user is unknown (the two are not told apart, on purpose).
	Authenticate(ctx context.Context, username, password string) (Identity, error)
	// Lookup returns the user's current identity, as Authenticate would
	// with the right password, without checking one. Errors wrap:
	//   - sdk.ErrNotFound when the user no longer exists or is disabled at
	//     the source: the core then revokes every token of the user;
	//   - sdk.ErrUnavailable when the source cannot answer now: the core
	//     keeps serving from an answer younger than its bound, then refuses
	//     the user's requests (503) until the source answers;
	//   - sdk.ErrUnsupported when the plugin cannot look users up at all
	//     (a source that only checks passwords): the core then accepts the
	//     user's tokens only while the identity of their last password
	//     login is younger than its bound, and asks them to log in with a
	//     password again after that.
	// Lookup must be cheap (no password hashing): it runs on the requests'
	// path.
	Lookup(ctx context.Context, username string) (Identity, error)
	// Generation returns a counter that changes whenever the source's users
	// may have changed (e.g. the users file was read again). It must be
	// cheap: the core calls it every few seconds. A plugin whose source
	// cannot tell may return a constant; the core's periodic Lookup still
	// bounds how long a change goes unseen.
	Generation(ctx context.Context) (uint64, error)
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
