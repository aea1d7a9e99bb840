package main

import (
	"context"
	"testing"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/plugintest"
)

// A plugin's own tests run Zoe's conformance suite over real gRPC.
func TestConformance(t *testing.T) {
	plugintest.RunAuthConformance(t, plugintest.AuthSuite{
		New: func(t *testing.T) auth.Authenticator {
			g := &guestbook{}
			cfg := sdk.Config{JSON: []byte(`{"guests":["ann","ben"],"password":"correct horse battery"}`)}
			if err := g.Configure(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			return g
		},
		Accounts: []plugintest.AuthAccount{
			{Username: "ann", Password: "correct horse battery", Want: auth.Identity{Username: "ann", Role: auth.RoleGuest}},
		},
	})
}

func TestShortPasswordIsRefusedAtItsAttribute(t *testing.T) {
	p := plugintest.Auth(t, &guestbook{})
	err := p.Configure(context.Background(), sdk.Config{JSON: []byte(`{"guests":[],"password":"short"}`)})
	d, ok := err.(sdk.Diagnostics)
	if !ok || !d.HasErrors() || d[0].Path[0] != "password" {
		t.Fatalf("Configure = %v, want a diagnostic about password", err)
	}
}
