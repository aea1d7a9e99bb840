package ldapauth

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/plugintest"
)

// TestConformance runs the SDK's auth suite against the real plugin
// binary, started as the core starts it, on a real slapd.
func TestConformance(t *testing.T) {
	s := testutil.StartSlapd(t, testutil.SlapdOptions{LDIF: directory()})
	bin := t.TempDir()
	if err := testutil.Build(bin, map[string]string{"zoe-plugin-auth-ldap": "plugins/auth-ldap"}); err != nil {
		t.Fatal(err)
	}
	_, cfg, diags := decode(t, t.TempDir(), searchConfig(s.URL))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	binary := filepath.Join(bin, "zoe-plugin-auth-ldap")
	plugintest.RunAuthConformance(t, plugintest.AuthSuite{
		New: func(t *testing.T) auth.Authenticator {
			p, _ := plugintest.LaunchAuth(t, binary, cfg)
			return p
		},
		Accounts: []plugintest.AuthAccount{
			{Username: "alice", Password: "alice-Pa55", Want: auth.Identity{Username: "alice", Role: auth.RoleAdmin, UID: u32(1001), GID: u32(5000), Groups: []string{"staff"}}},
			{Username: "bob", Password: "bob-Pa55", Want: auth.Identity{Username: "bob", Role: auth.RoleUser, UID: u32(1002), GID: u32(5001)}},
			{Username: "carol", Password: "carol-Pa55", Want: auth.Identity{Username: "carol", Role: auth.RoleAdmin, Groups: []string{"zoe-admins"}}},
			{Username: "jörg", Password: "jörg-Pa55", Want: auth.Identity{Username: "jörg", Role: auth.RoleUser}},
		},
	})

	// Through the wire, the directory's absence keeps its category.
	t.Run("unavailable", func(t *testing.T) {
		p, _ := plugintest.LaunchAuth(t, binary, cfg)
		s.Stop(t)
		defer s.Start(t)
		if _, err := p.Authenticate(context.Background(), "alice", "alice-Pa55"); !errors.Is(err, sdk.ErrUnavailable) {
			t.Errorf("directory down: %v, want unavailable", err)
		}
		if _, err := p.Lookup(context.Background(), "alice"); !errors.Is(err, sdk.ErrUnavailable) {
			t.Errorf("directory down, Lookup: %v, want unavailable", err)
		}
	})
}
