package client

import (
	"context"
	"time"
)

// Logins is GET /api/v1/logins (admins): the recent failed logins and the
// locks they hold, the password checks and the API's connections.
type Logins struct {
	// Failures are the recent failures, most first (at most 1000).
	Failures       []LoginFailures `json:"failures"`
	PasswordChecks PasswordChecks  `json:"password_checks"`
	// Connections is null when the server does not count them.
	Connections *Connections `json:"connections,omitempty"`
}

// LoginFailures are the recent failed logins counted under one key.
type LoginFailures struct {
	// Kind is what they are counted under: "address" (any user name from
	// Address), "user_address" (Username from Address) or "user"
	// (Username from anywhere).
	Kind        string    `json:"kind"`
	Username    string    `json:"username,omitempty"`
	Address     string    `json:"address,omitempty"`
	Failures    int       `json:"failures"`
	LastFailure time.Time `json:"last_failure"`
	// LockedUntil is set while logins under this key are refused (429).
	LockedUntil *time.Time `json:"locked_until,omitempty"`
}

// PasswordChecks are the checks of passwords by the auth plugins: those
// running, those waiting (suspect ones wait behind the others) and those
// refused because too many waited.
type PasswordChecks struct {
	Running        int    `json:"running"`
	Waiting        int    `json:"waiting"`
	WaitingSuspect int    `json:"waiting_suspect"`
	Refused        uint64 `json:"refused"`
}

// Connections are the API server's open connections, the client addresses
// they come from, and the connections closed at once because a bound was
// reached since the start.
type Connections struct {
	Open      int    `json:"open"`
	Addresses int    `json:"addresses"`
	Refused   uint64 `json:"refused"`
}

// Logins is GET /logins (admins): the recent failed logins and the locks
// they hold.
func (c *Client) Logins(ctx context.Context) (*Logins, error) {
	var v Logins
	return &v, c.get(ctx, "/logins", nil, &v)
}
