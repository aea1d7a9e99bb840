package plugintest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// AuthAccount is a user the plugin under test knows.
type AuthAccount struct {
	Username, Password string
	// Want is the identity expected for these credentials. Groups, UID and
	// GID are compared only when set.
	Want auth.Identity
}

// AuthSuite describes an auth plugin to the conformance suite.
type AuthSuite struct {
	// New returns a configured plugin that knows Accounts.
	New      func(t *testing.T) auth.Authenticator
	Accounts []AuthAccount
	// LookupUnsupported says the plugin cannot look users up: Lookup must
	// then answer sdk.ErrUnsupported (see auth.Authenticator).
	LookupUnsupported bool
}

// RunAuthConformance checks an auth plugin through the wire.
func RunAuthConformance(t *testing.T, s AuthSuite) {
	if len(s.Accounts) == 0 {
		t.Fatal("AuthSuite.Accounts is empty: the suite needs at least one account")
	}
	open := func(t *testing.T) auth.Authenticator { return Auth(t, s.New(t)) }
	ctx := context.Background()

	t.Run("info and schema", func(t *testing.T) {
		checkBase(t, open(t), sdk.KindAuth, auth.APIVersion)
	})
	t.Run("valid credentials", func(t *testing.T) {
		p := open(t)
		for _, a := range s.Accounts {
			id, err := p.Authenticate(ctx, a.Username, a.Password)
			if err != nil {
				t.Errorf("Authenticate(%q): %v", a.Username, err)
				continue
			}
			checkIdentity(t, id, a.Want)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		p := open(t)
		a := s.Accounts[0]
		for _, pw := range []string{a.Password + "x", "", strings.ToUpper(a.Password) + "!", a.Password[:len(a.Password)/2]} {
			_, err := p.Authenticate(ctx, a.Username, pw)
			wantInvalid(t, err, fmt.Sprintf("Authenticate(%q, wrong password)", a.Username))
			if err != nil && pw != "" && strings.Contains(err.Error(), pw) {
				t.Errorf("the error %q shows the password that was tried", err)
			}
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		p := open(t)
		_, err := p.Authenticate(ctx, "no-such-user-"+s.Accounts[0].Username, s.Accounts[0].Password)
		wantInvalid(t, err, "Authenticate(unknown user)")
		_, err = p.Authenticate(ctx, "", "")
		wantInvalid(t, err, "Authenticate(empty username)")
	})
	t.Run("lookup", func(t *testing.T) {
		p := open(t)
		for _, a := range s.Accounts {
			got, err := p.Lookup(ctx, a.Username)
			if s.LookupUnsupported {
				if !errors.Is(err, sdk.ErrUnsupported) {
					t.Errorf("Lookup(%q): %v, want an error wrapping sdk.ErrUnsupported", a.Username, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("Lookup(%q): %v", a.Username, err)
				continue
			}
			// The identity a token keeps must be the one a password
			// login gives: anything else would change with each check.
			want, err := p.Authenticate(ctx, a.Username, a.Password)
			if err != nil {
				t.Errorf("Authenticate(%q): %v", a.Username, err)
				continue
			}
			if !sameIdentity(got, want) {
				t.Errorf("Lookup(%q) = %+v, Authenticate gave %+v", a.Username, got, want)
			}
		}
		if s.LookupUnsupported {
			return
		}
		for _, name := range []string{"no-such-user-" + s.Accounts[0].Username, ""} {
			if _, err := p.Lookup(ctx, name); !errors.Is(err, sdk.ErrNotFound) {
				t.Errorf("Lookup(%q): %v, want an error wrapping sdk.ErrNotFound", name, err)
			}
		}
	})
	t.Run("generation", func(t *testing.T) {
		p := open(t)
		g1, err := p.Generation(ctx)
		if err != nil {
			t.Fatalf("Generation: %v", err)
		}
		// Logins and look-ups change nothing at the source.
		a := s.Accounts[0]
		_, _ = p.Authenticate(ctx, a.Username, a.Password)
		_, _ = p.Lookup(ctx, a.Username)
		g2, err := p.Generation(ctx)
		if err != nil || g2 != g1 {
			t.Errorf("Generation = %d, %v after %d without a change at the source", g2, err, g1)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		p := open(t)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := range 8 {
			wg.Go(func() {
				for j := range 4 {
					a := s.Accounts[(i+j)%len(s.Accounts)]
					id, err := p.Authenticate(ctx, a.Username, a.Password)
					if err == nil && id.Username != a.Want.Username {
						err = fmt.Errorf("got %q for %q", id.Username, a.Username)
					}
					if err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

func wantInvalid(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, sdk.ErrInvalidCredentials) {
		t.Errorf("%s: error %v, want one wrapping sdk.ErrInvalidCredentials", what, err)
	}
}

func checkIdentity(t *testing.T, got, want auth.Identity) {
	t.Helper()
	if got.Username != want.Username || got.Role != want.Role {
		t.Errorf("identity %q role %q, want %q role %q", got.Username, got.Role, want.Username, want.Role)
	}
	if want.Groups != nil && !slices.Equal(got.Groups, want.Groups) {
		t.Errorf("%s: groups %v, want %v", want.Username, got.Groups, want.Groups)
	}
	if want.UID != nil && (got.UID == nil || *got.UID != *want.UID) {
		t.Errorf("%s: uid %v, want %d", want.Username, deref(got.UID), *want.UID)
	}
	if want.GID != nil && (got.GID == nil || *got.GID != *want.GID) {
		t.Errorf("%s: gid %v, want %d", want.Username, deref(got.GID), *want.GID)
	}
}

func sameIdentity(a, b auth.Identity) bool {
	return a.Username == b.Username && a.Role == b.Role && slices.Equal(a.Groups, b.Groups) &&
		equalID(a.UID, b.UID) && equalID(a.GID, b.GID) && a.Email == b.Email && a.DisplayName == b.DisplayName
}

func equalID(a, b *uint32) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func deref(p *uint32) any {
	if p == nil {
		return "none"
	}
	return *p
}
