// Command zoe-plugin-auth-guestbook is an example third-party auth plugin:
// a list of guests who share one password. Copy it to start a plugin.
package main

import (
	"context"
	"crypto/subtle"
	"fmt"
	"slices"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/serve"
)

type guestbook struct {
	guests   []string
	password string
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
	return nil
}

func (g *guestbook) Authenticate(_ context.Context, user, pw string) (auth.Identity, error) {
	ok := subtle.ConstantTimeCompare([]byte(pw), []byte(g.password)) == 1
	if !ok || !slices.Contains(g.guests, user) {
		return auth.Identity{}, fmt.Errorf("wrong username or password: %w", sdk.ErrInvalidCredentials)
	}
	return auth.Identity{Username: user, Role: auth.RoleGuest}, nil
}

func main() {
	serve.Serve(func(log hclog.Logger) sdk.Plugin { return &guestbook{} })
}
