// Command zoe-plugin-auth-guestbook is an example third-party auth plugin:
// a list of guests who share one password. Copy it to start a plugin.
package main

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"slices"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/serve"
)

type guestbook struct {
	guests   []string
	password string
	// gen counts the configurations: the guest list changes only then.
	gen uint64
}

func (g *guestbook) Info() sdk.Info { return sdk.Info{Name: "guestbook", Version: "1.0.0"} }

func (g *guestbook) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "guests", Type: "list(string)", Required: true, Help: "who may log in"},
		{Name: "password", Type: "string", Required: true, Sensitive: true, Help: "the password they share"},
	}}
}

func (g *guestbook) Configure(_ context.Context, cfg sdk.Config) error {
	var c struct {
		Guests   []string `json:"guests"`
		Password string   `json:"password"`
	}
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	if len(c.Password) < 12 {
		return sdk.Diagnostics{sdk.AttributeError("password", "Password too short", "Use 12 characters or more.")}
	}
	g.guests, g.password = c.Guests, c.Password
	g.gen++
	return nil
}

func (g *guestbook) Authenticate(_ context.Context, user, pw string) (auth.Identity, error) {
	ok := subtle.ConstantTimeCompare([]byte(pw), []byte(g.password)) == 1
	if !ok || !slices.Contains(g.guests, user) {
		return auth.Identity{}, fmt.Errorf("wrong username or password: %w", sdk.ErrInvalidCredentials)
	}
	return auth.Identity{Username: user, Role: auth.RoleGuest}, nil
}

// Lookup tells Zoe whether a guest is still on the list (checked at least
// once a minute for users who call with a token).
func (g *guestbook) Lookup(_ context.Context, user string) (auth.Identity, error) {
	if !slices.Contains(g.guests, user) {
		return auth.Identity{}, fmt.Errorf("%q is not a guest: %w", user, sdk.ErrNotFound)
	}
	return auth.Identity{Username: user, Role: auth.RoleGuest}, nil
}

// Generation changes when the list may have changed: Zoe then drops what it
// cached.
func (g *guestbook) Generation(context.Context) (uint64, error) { return g.gen, nil }

func main() {
	serve.Serve(func(log *slog.Logger) sdk.Plugin { return &guestbook{} })
}
