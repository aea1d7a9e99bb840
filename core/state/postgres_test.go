package state_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/core/config"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/state/statetest"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	statetest.Run(t, postgresHarness())
}

func TestPostgresCrash(t *testing.T) {
	t.Parallel()
	statetest.Crash(t, postgresHarness(), crashChild("postgres"))
}

func BenchmarkPostgres(b *testing.B) {
	statetest.Bench(b, postgresHarness())
}

// BenchmarkPostgresStart runs on a server of its own that waits for the
// disk, as a production one does: the tests' server does not.
func BenchmarkPostgresStart(b *testing.B) {
	durable := testutil.NewDurablePostgres()
	b.Cleanup(durable.Stop)
	h := postgresHarness()
	h.New = durable.DSN
	statetest.BenchStart(b, h)
}

// TestPostgresDeployments: deployments sharing a database live in their own
// schemas and do not see each other.
func TestPostgresDeployments(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := pg.DSN(t)
	open := func(dep string) state.Store {
		st, err := state.Open(ctx, config.State{Postgres: dsn}, dep, testutil.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	prod, dev := open("prod"), open("dev-2")
	if _, err := prod.RecordLogin(ctx, auth.Identity{Username: "alice", Role: auth.RoleUser}); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.GetUser(ctx, "alice"); !strings.Contains(errString(err), "not found") {
		t.Fatalf("dev sees prod's user: %v", err)
	}
	if _, err := dev.RecordLogin(ctx, auth.Identity{Username: "alice", Role: auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	if u, err := prod.GetUser(ctx, "alice"); err != nil || u.Role != auth.RoleUser {
		t.Fatalf("prod's alice: %+v, %v", u, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestPostgresOpenErrors: bad configurations are refused with the right
// category, and a DSN's password never shows in the error.
func TestPostgresOpenErrors(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-pw"
	good, err := url.Parse(pg.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	unreachable := *good
	unreachable.Host = "127.0.0.1:1"
	unreachable.User = url.UserPassword("postgres", secret)
	cases := []struct {
		name, dsn, deployment string
		cat                   error
	}{
		{"bad deployment", good.String(), "Prod_1", sdk.ErrInvalidArgument},
		{"unparsable DSN", "postgres://postgres:" + secret + "@127.0.0.1:bad/x", "prod", sdk.ErrInvalidArgument},
		{"unparsable key-value DSN", "host=127.0.0.1 password=" + secret + " port=x", "prod", sdk.ErrInvalidArgument},
		{"unreachable", unreachable.String() + "&connect_timeout=2", "prod", sdk.ErrUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, err := state.OpenPostgres(context.Background(), tc.dsn, tc.deployment, testutil.Logger(t))
			if err == nil {
				_ = st.Close()
				t.Fatal("opened")
			}
			if sdk.Category(err) != tc.cat {
				t.Fatalf("error %q is %v, want %v", err, sdk.Category(err), tc.cat)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}
