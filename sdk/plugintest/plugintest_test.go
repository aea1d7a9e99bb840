package plugintest

// These tests run the conformance suites against small in-memory plugins
// written here. They are test doubles on purpose: what is under test is the
// SDK — the gRPC adapters, streams, error categories and the suites
// themselves — not a platform. Zoe's real plugins run the same suites
// against real files, directories and container engines from their own
// packages.

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

type memAuth struct{ users map[string]auth.Identity }

func (memAuth) Info() sdk.Info { return sdk.Info{Name: "mem", Version: "0.0.1"} }
func (memAuth) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{{Name: "realm", Type: "string", Default: "test"}}}
}
func (memAuth) Configure(context.Context, sdk.Config) error { return nil }
func (m memAuth) Authenticate(_ context.Context, user, pw string) (auth.Identity, error) {
	id, ok := m.users[user]
	if !ok || pw != user+"-pw" {
		return auth.Identity{}, fmt.Errorf("wrong username or password: %w", sdk.ErrInvalidCredentials)
	}
	return id, nil
}

func (m memAuth) Lookup(_ context.Context, user string) (auth.Identity, error) {
	id, ok := m.users[user]
	if !ok {
		return auth.Identity{}, fmt.Errorf("no user %q: %w", user, sdk.ErrNotFound)
	}
	return id, nil
}

func (memAuth) Generation(context.Context) (uint64, error) { return 1, nil }

func TestAuthConformanceOfMemoryPlugin(t *testing.T) {
	uid := uint32(1001)
	alice := auth.Identity{Username: "alice", Role: auth.RoleAdmin, Groups: []string{"staff"}, UID: &uid, GID: &uid}
	RunAuthConformance(t, AuthSuite{
		New: func(*testing.T) auth.Authenticator {
			return memAuth{users: map[string]auth.Identity{"alice": alice, "bob": {Username: "bob", Role: auth.RoleGuest}}}
		},
		Accounts: []AuthAccount{
			{Username: "alice", Password: "alice-pw", Want: alice},
			{Username: "bob", Password: "bob-pw", Want: auth.Identity{Username: "bob", Role: auth.RoleGuest}},
		},
	})
}

// Error categories survive the wire; errors without one arrive as internal.
func TestErrorCategoriesSurviveTheWire(t *testing.T) {
	for _, cat := range sdk.Categories() {
		t.Run(strings.ReplaceAll(cat.Error(), " ", "_"), func(t *testing.T) {
			p := Auth(t, failingAuth{err: fmt.Errorf("boom for %s: %w", "x", cat)})
			_, err := p.Authenticate(context.Background(), "u", "p")
			if sdk.Category(err) != cat {
				t.Errorf("category of %v = %v, want %v", err, sdk.Category(err), cat)
			}
			if !strings.Contains(err.Error(), "boom for x") {
				t.Errorf("message %q lost the plugin's text", err)
			}
		})
	}
	p := Auth(t, failingAuth{err: fmt.Errorf("plain")})
	if _, err := p.Authenticate(context.Background(), "u", "p"); sdk.Category(err) != sdk.ErrInternal {
		t.Errorf("uncategorised error arrived as %v", err)
	}
}

type failingAuth struct {
	memAuth
	err error
}

func (f failingAuth) Authenticate(context.Context, string, string) (auth.Identity, error) {
	return auth.Identity{}, f.err
}

// Diagnostics returned by Configure cross the wire with their paths.
func TestConfigureDiagnostics(t *testing.T) {
	p := Auth(t, diagAuth{})
	err := p.Configure(context.Background(), sdk.Config{JSON: []byte(`{}`)})
	d, ok := err.(sdk.Diagnostics)
	if !ok || len(d) != 2 || !d.HasErrors() || d[0].Path[0] != "users_file" || d[1].Severity != sdk.SeverityWarning {
		t.Fatalf("Configure = %#v", err)
	}
}

type diagAuth struct{ memAuth }

func (diagAuth) Configure(context.Context, sdk.Config) error {
	return sdk.Diagnostics{
		sdk.AttributeError("users_file", "Cannot read users file", "no such file"),
		{Severity: sdk.SeverityWarning, Summary: "old format"},
	}
}

// Diagnostics wrapped in another error still cross as diagnostics.
func TestConfigureWrappedDiagnostics(t *testing.T) {
	p := Auth(t, wrappedDiagAuth{})
	err := p.Configure(context.Background(), sdk.Config{JSON: []byte(`{}`)})
	d, ok := err.(sdk.Diagnostics)
	if !ok || len(d) != 1 || d[0].Path[0] != "users_file" {
		t.Fatalf("Configure = %#v, want the wrapped diagnostics", err)
	}
}

type wrappedDiagAuth struct{ memAuth }

func (wrappedDiagAuth) Configure(context.Context, sdk.Config) error {
	return fmt.Errorf("configure: %w", sdk.Diagnostics{sdk.AttributeError("users_file", "Unreadable", "")})
}
