// Package statetest is the test suite every state.Store implementation
// passes: the same tests run against SQLite and PostgreSQL, so that the two
// behave the same.
package statetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk/auth"
)

// Harness is how the suite reaches one implementation. A location is what
// names a database: a file path or a DSN.
type Harness struct {
	// New returns the location of a new, empty database.
	New func(t testing.TB) string
	// Open opens the store at loc, bringing its schema up to date.
	Open func(ctx context.Context, loc string, log hclog.Logger) (state.Store, error)
	// MigrateTo brings the schema at loc to version v only, and closes.
	MigrateTo func(ctx context.Context, loc string, v int) error
	// SQL runs query at loc in the store's schema, without the store, and
	// returns the first column of the first row (0 when there is none).
	SQL func(ctx context.Context, loc, query string) (int64, error)
	// SharedVersion is true when Version also grows with writes to other
	// databases (PostgreSQL: the server's, which other tests share).
	SharedVersion bool
}

// Run runs the whole suite.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"Users", testUsers},
		{"RoleOverride", testRoleOverride},
		{"SyncIdentity", testSyncIdentity},
		{"ForgetUser", testForgetUser},
		{"EmailOverride", testEmailOverride},
		{"FeedCursor", testFeedCursor},
		{"Quotas", testQuotas},
		{"CreateExecution", testCreateExecution},
		{"QuotaRefusals", testQuotaRefusals},
		{"Transition", testTransition},
		{"SetNetwork", testSetNetwork},
		{"TransitionRace", testTransitionRace},
		{"Services", testServices},
		{"Endpoints", testEndpoints},
		{"ActiveServices", testActiveServices},
		{"PlaceServices", testPlaceServices},
		{"RecordStarted", testRecordStarted},
		{"RecordStartedMany", testRecordStartedMany},
		{"StartRace", testStartRace},
		{"DeleteExecution", testDeleteExecution},
		{"EventsAfter", testEventsAfter},
		{"EventLimits", testEventLimits},
		{"EventFeedConcurrent", testEventFeedConcurrent},
		{"ListExecutions", testListExecutions},
		{"ListingsFollowWrites", testListingsFollowWrites},
		{"Version", testVersion},
		{"ActiveExecutions", testActiveExecutions},
		{"Tokens", testTokens},
		{"TokenPurge", testTokenPurge},
		{"TokenBound", testTokenBound},
		{"ConcurrentSubmissions", testConcurrentSubmissions},
		{"Migrations", testMigrations},
		{"Identity", testIdentity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, h)
		})
	}
}

// open returns a store on a new database, closed at the end of the test.
func open(t testing.TB, h Harness) (state.Store, string) {
	t.Helper()
	loc := h.New(t)
	st := reopen(t, h, loc)
	return st, loc
}

func reopen(t testing.TB, h Harness, loc string) state.Store {
	t.Helper()
	st, err := h.Open(t.Context(), loc, testutil.Logger(t))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return st
}

// must(f())(t) fails t when f returns an error, else returns f's value.
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr checks err belongs to category cat and its text has every part.
func wantErr(t testing.TB, err, cat error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", cat)
	}
	if !errors.Is(err, cat) {
		t.Fatalf("error %q is not %v", err, cat)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not say %q", err, p)
		}
	}
	noDatabaseText(t, err)
}

func login(t testing.TB, st state.Store, name string, role auth.Role) state.User {
	t.Helper()
	return must(st.RecordLogin(t.Context(), auth.Identity{Username: name, Role: role}))(t)
}

func submit(t testing.TB, st state.Store, owner, name string, services int) state.Execution {
	t.Helper()
	e, err := st.CreateExecution(t.Context(), newExecution(owner, name, services))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newExecution(owner, name string, services int) state.NewExecution {
	ne := state.NewExecution{Owner: owner, Name: name, Description: []byte(`{"name":"` + name + `"}`), Size: 1}
	for i := range services {
		ne.Services = append(ne.Services, state.NewService{
			Name: "svc" + string(rune('a'+i)), Group: "svc", Essential: i == 0, StartupOrder: i,
			Description: []byte(`{"i":` + string(rune('0'+i%10)) + `}`),
		})
	}
	return ne
}

// inUTC checks t is in UTC and within [from, to] (to the microsecond the
// stores keep).
func inUTC(t testing.TB, what string, tm time.Time, from, to time.Time) {
	t.Helper()
	if tm.Location() != time.UTC {
		t.Errorf("%s %v is not in UTC", what, tm)
	}
	if tm.Before(from.Truncate(time.Microsecond)) || tm.After(to) {
		t.Errorf("%s %v not within [%v, %v]", what, tm, from, to)
	}
}

func ptr[T any](v T) *T { return &v }
