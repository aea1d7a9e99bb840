package statetest

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

func testUsers(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()

	before := time.Now()
	u := must(st.RecordLogin(ctx, auth.Identity{Username: "alice", Role: auth.RoleUser,
		Groups: []string{"b", "a"}, UID: ptr(uint32(1000)), GID: ptr(uint32(4294967295)), Email: "a@x"}))(t)
	after := time.Now()
	if u.Username != "alice" || u.Role != auth.RoleUser || !slices.Equal(u.Groups, []string{"b", "a"}) ||
		*u.UID != 1000 || *u.GID != 4294967295 || u.Email != "a@x" || !u.Enabled || u.Quota != "" {
		t.Fatalf("first login: %+v", u)
	}
	inUTC(t, "created", u.CreatedAt, before, after)
	if !u.LastLogin.Equal(u.CreatedAt) {
		t.Errorf("last login %v != created %v", u.LastLogin, u.CreatedAt)
	}
	// Text no user can have (a NUL byte, invalid UTF-8, as a URL may carry)
	// is not found or invalid, never an internal error.
	for _, name := range []string{"a\x00b", "\xff"} {
		_, err := st.GetUser(ctx, name)
		_, qerr := st.GetQuota(ctx, name)
		_, _, lerr := st.ListExecutions(ctx, state.Filter{Owner: name, Name: name})
		for _, e := range []error{err, qerr, lerr} {
			if e != nil && !errors.Is(e, sdk.ErrNotFound) && !errors.Is(e, sdk.ErrInvalidArgument) {
				t.Errorf("%q: %v", name, e)
			}
		}
	}

	// Zoe's own fields survive the next login; the auth plugin's are
	// replaced.
	must(st.UpdateUser(ctx, "alice", state.UserUpdate{Enabled: ptr(false), Quota: ptr("admin")}))(t)
	time.Sleep(2 * time.Millisecond)
	u2 := must(st.RecordLogin(ctx, auth.Identity{Username: "alice", Role: auth.RoleAdmin, Email: "b@x"}))(t)
	if u2.Role != auth.RoleAdmin || len(u2.Groups) != 0 || u2.UID != nil || u2.GID != nil || u2.Email != "b@x" ||
		u2.Enabled || u2.Quota != "admin" || !u2.CreatedAt.Equal(u.CreatedAt) || !u2.LastLogin.After(u.LastLogin) {
		t.Fatalf("second login: %+v (first %+v)", u2, u)
	}
	if got := must(st.GetUser(ctx, "alice"))(t); !equalUser(got, u2) {
		t.Fatalf("GetUser = %+v, want %+v", got, u2)
	}

	login(t, st, "carol", auth.RoleGuest)
	login(t, st, "bob", auth.RoleGuest)
	var names []string
	for _, u := range must(st.ListUsers(ctx))(t) {
		names = append(names, u.Username)
	}
	if !slices.Equal(names, []string{"alice", "bob", "carol"}) {
		t.Fatalf("ListUsers = %v", names)
	}

	updates := []struct {
		name string
		user string
		up   state.UserUpdate
		want func(state.User) bool
		err  error
	}{
		{"role", "bob", state.UserUpdate{Role: ptr(auth.RoleUser)}, func(u state.User) bool { return u.Role == auth.RoleUser }, nil},
		{"enable", "bob", state.UserUpdate{Enabled: ptr(false)}, func(u state.User) bool { return !u.Enabled }, nil},
		{"quota", "bob", state.UserUpdate{Quota: ptr("admin")}, func(u state.User) bool { return u.Quota == "admin" }, nil},
		{"back to role default", "bob", state.UserUpdate{Quota: ptr("")}, func(u state.User) bool { return u.Quota == "" }, nil},
		{"nothing", "bob", state.UserUpdate{}, func(u state.User) bool { return u.Username == "bob" }, nil},
		{"unknown quota", "bob", state.UserUpdate{Quota: ptr("nope")}, nil, sdk.ErrNotFound},
		{"unknown role", "bob", state.UserUpdate{Role: ptr(auth.Role("root"))}, nil, sdk.ErrInvalidArgument},
		{"unknown user", "dave", state.UserUpdate{Enabled: ptr(true)}, nil, sdk.ErrNotFound},
	}
	for _, tc := range updates {
		t.Run("update "+tc.name, func(t *testing.T) {
			got, err := st.UpdateUser(ctx, tc.user, tc.up)
			if tc.err != nil {
				wantErr(t, err, tc.err)
				return
			}
			if err != nil || !tc.want(got) {
				t.Fatalf("UpdateUser(%+v) = %+v, %v", tc.up, got, err)
			}
		})
	}

	bad := []struct {
		name string
		id   auth.Identity
	}{
		{"empty username", auth.Identity{Role: auth.RoleUser}},
		{"spaces", auth.Identity{Username: " x", Role: auth.RoleUser}},
		{"unknown role", auth.Identity{Username: "x", Role: "root"}},
	}
	for _, tc := range bad {
		t.Run("login "+tc.name, func(t *testing.T) {
			_, err := st.RecordLogin(ctx, tc.id)
			wantErr(t, err, sdk.ErrInvalidArgument)
		})
	}
	_, err := st.GetUser(ctx, "nobody")
	wantErr(t, err, sdk.ErrNotFound, "nobody")
}

// testRoleOverride: the role an admin sets in Zoe survives logins, which
// change only the auth plugin's role, until it is cleared; the effective
// role decides the default quota.
func testRoleOverride(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	steps := []struct {
		name  string
		login auth.Role         // "": no login in this step
		up    *state.UserUpdate // nil: no update
		// want: the effective role, the auth role and the effective
		// quota's name.
		role, authRole auth.Role
		quota          string
	}{
		{"first login", auth.RoleUser, nil, auth.RoleUser, auth.RoleUser, "user"},
		{"promoted", "", &state.UserUpdate{Role: ptr(auth.RoleAdmin)}, auth.RoleAdmin, auth.RoleUser, "admin"},
		{"kept by a login", auth.RoleUser, nil, auth.RoleAdmin, auth.RoleUser, "admin"},
		// The latest change wins: a new role at the source drops the
		// override.
		{"dropped when the auth role changes", auth.RoleGuest, nil, auth.RoleGuest, auth.RoleGuest, "guest"},
		{"promoted again", "", &state.UserUpdate{Role: ptr(auth.RoleAdmin)}, auth.RoleAdmin, auth.RoleGuest, "admin"},
		{"other fields leave it", "", &state.UserUpdate{Enabled: ptr(true)}, auth.RoleAdmin, auth.RoleGuest, "admin"},
		{"cleared", "", &state.UserUpdate{ClearRole: true}, auth.RoleGuest, auth.RoleGuest, "guest"},
		{"auth role again after clearing", auth.RoleUser, nil, auth.RoleUser, auth.RoleUser, "user"},
		// An override equal to the auth role is still an override.
		{"pinned to the auth role", "", &state.UserUpdate{Role: ptr(auth.RoleUser)}, auth.RoleUser, auth.RoleUser, "user"},
		{"pinned survives a login with the same role", auth.RoleUser, nil, auth.RoleUser, auth.RoleUser, "user"},
		{"pinned dropped by an auth change", auth.RoleAdmin, nil, auth.RoleAdmin, auth.RoleAdmin, "admin"},
		{"clearing wins over a role", "", &state.UserUpdate{Role: ptr(auth.RoleGuest), ClearRole: true},
			auth.RoleAdmin, auth.RoleAdmin, "admin"},
		{"demoted", "", &state.UserUpdate{Role: ptr(auth.RoleGuest)}, auth.RoleGuest, auth.RoleAdmin, "guest"},
		// The user's own quota wins over the role's default, whatever the
		// role.
		{"own quota", "", &state.UserUpdate{Quota: ptr("user")}, auth.RoleGuest, auth.RoleAdmin, "user"},
		{"own quota kept by a login", auth.RoleGuest, nil, auth.RoleGuest, auth.RoleGuest, "user"},
		{"demoted by the source over an override", "", &state.UserUpdate{Role: ptr(auth.RoleAdmin)}, auth.RoleAdmin, auth.RoleGuest, "user"},
		{"sync: same auth role keeps it", "sync:" + auth.RoleGuest, nil, auth.RoleAdmin, auth.RoleGuest, "user"},
		{"sync: new auth role drops it", "sync:" + auth.RoleUser, nil, auth.RoleUser, auth.RoleUser, "user"},
		{"guest by override", "", &state.UserUpdate{Role: ptr(auth.RoleGuest)}, auth.RoleGuest, auth.RoleUser, "user"},
	}
	for _, step := range steps {
		var got state.User
		if r, ok := strings.CutPrefix(string(step.login), "sync:"); ok {
			// A look-up at the source: the same rule as a login.
			before := must(st.GetUser(ctx, "alice"))(t)
			got = must(st.SyncIdentity(ctx, auth.Identity{Username: "alice", Role: auth.Role(r)}))(t)
			if !got.LastLogin.Equal(before.LastLogin) {
				t.Fatalf("%s: SyncIdentity moved the last login", step.name)
			}
		} else if step.login != "" {
			got = login(t, st, "alice", step.login)
		}
		if step.up != nil {
			got = must(st.UpdateUser(ctx, "alice", *step.up))(t)
		}
		if got.Role != step.role || got.AuthRole != step.authRole {
			t.Fatalf("%s: role %q, auth role %q; want %q and %q", step.name, got.Role, got.AuthRole, step.role, step.authRole)
		}
		if u := must(st.GetUser(ctx, "alice"))(t); !equalUser(u, got) {
			t.Fatalf("%s: GetUser = %+v, want %+v", step.name, u, got)
		}
		if us := must(st.ListUsers(ctx))(t); len(us) != 1 || !equalUser(us[0], got) {
			t.Fatalf("%s: ListUsers = %+v, want [%+v]", step.name, us, got)
		}
		if q := must(st.EffectiveQuota(ctx, "alice"))(t); q.Name != step.quota {
			t.Fatalf("%s: effective quota %q, want %q", step.name, q.Name, step.quota)
		}
	}
	// The quota check of a submission follows the effective role too: a
	// guest by override runs one execution at a time.
	must(st.UpdateUser(ctx, "alice", state.UserUpdate{Quota: ptr("")}))(t)
	submit(t, st, "alice", "one", 0)
	_, err := st.CreateExecution(ctx, newExecution("alice", "two", 0))
	wantErr(t, err, sdk.ErrResourceExhausted, `quota "guest"`)

	_, err = st.UpdateUser(ctx, "nobody", state.UserUpdate{ClearRole: true})
	wantErr(t, err, sdk.ErrNotFound)
}

// testSyncIdentity: a look-up updates the source's fields of a known user
// only, and leaves Zoe's own.
func testSyncIdentity(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	u := login(t, st, "alice", auth.RoleUser)
	must(st.UpdateUser(ctx, "alice", state.UserUpdate{Quota: ptr("admin")}))(t)
	got := must(st.SyncIdentity(ctx, auth.Identity{Username: "alice", Role: auth.RoleUser, Groups: []string{"g"},
		UID: ptr(uint32(7)), GID: ptr(uint32(8)), Email: "new@x"}))(t)
	if got.Role != auth.RoleUser || !slices.Equal(got.Groups, []string{"g"}) || *got.UID != 7 || *got.GID != 8 ||
		got.Email != "new@x" || got.Quota != "admin" || !got.Enabled || !got.LastLogin.Equal(u.LastLogin) {
		t.Fatalf("SyncIdentity = %+v", got)
	}
	if g := must(st.GetUser(ctx, "alice"))(t); !equalUser(g, got) {
		t.Fatalf("GetUser = %+v, want %+v", g, got)
	}
	_, err := st.SyncIdentity(ctx, auth.Identity{Username: "nobody", Role: auth.RoleUser})
	wantErr(t, err, sdk.ErrNotFound, "nobody")
	if _, err := st.GetUser(ctx, "nobody"); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("SyncIdentity created a user: %v", err)
	}
	_, err = st.SyncIdentity(ctx, auth.Identity{Username: "alice", Role: "root"})
	wantErr(t, err, sdk.ErrInvalidArgument)
}

// testForgetUser: a user the source no longer knows loses their tokens
// and Zoe's overrides; a new account of the same name inherits neither,
// while a disabled name stays disabled. Other users keep theirs.
func testForgetUser(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	login(t, st, "dave", auth.RoleUser)
	login(t, st, "erin", auth.RoleUser)
	must(st.UpdateUser(ctx, "dave", state.UserUpdate{Role: ptr(auth.RoleAdmin), Quota: ptr("admin")}))(t)
	must(st.UpdateUser(ctx, "erin", state.UserUpdate{Role: ptr(auth.RoleAdmin), Quota: ptr("admin")}))(t)
	must(st.CreateToken(ctx, state.NewToken{Username: "dave", Name: "a", Hash: []byte{1}}))(t)
	must(st.CreateToken(ctx, state.NewToken{Username: "dave", Name: "b", Hash: []byte{2}}))(t)
	must(st.CreateToken(ctx, state.NewToken{Username: "erin", Name: "a", Hash: []byte{3}}))(t)
	if got := must(st.TokenHolders(ctx))(t); !slices.Equal(got, []string{"dave", "erin"}) {
		t.Fatalf("TokenHolders = %v", got)
	}

	f := must(st.ForgetUser(ctx, "dave"))(t)
	if f != (state.Forgotten{Tokens: 2, RoleOverride: auth.RoleAdmin, Quota: "admin"}) {
		t.Fatalf("ForgetUser = %+v", f)
	}
	u := must(st.GetUser(ctx, "dave"))(t)
	if u.Role != auth.RoleUser || u.AuthRole != auth.RoleUser || u.Quota != "" || !u.Enabled {
		t.Fatalf("after ForgetUser: %+v", u)
	}
	if ts := must(st.ListTokens(ctx, "dave"))(t); len(ts) != 0 {
		t.Fatalf("dave keeps tokens %v", ts)
	}
	// A new dave with the same role at the source gets no override.
	if u := login(t, st, "dave", auth.RoleUser); u.Role != auth.RoleUser || u.Quota != "" {
		t.Fatalf("the new dave: %+v", u)
	}
	if got := must(st.TokenHolders(ctx))(t); !slices.Equal(got, []string{"erin"}) {
		t.Fatalf("TokenHolders = %v", got)
	}
	if u := must(st.GetUser(ctx, "erin"))(t); u.Role != auth.RoleAdmin || u.Quota != "admin" {
		t.Fatalf("erin was touched: %+v", u)
	}

	// Nothing to forget: nothing changes, no error; a disabled name stays
	// disabled.
	must(st.UpdateUser(ctx, "dave", state.UserUpdate{Enabled: ptr(false)}))(t)
	if f := must(st.ForgetUser(ctx, "dave"))(t); f != (state.Forgotten{}) {
		t.Fatalf("ForgetUser again = %+v", f)
	}
	if u := must(st.GetUser(ctx, "dave"))(t); u.Enabled {
		t.Fatalf("ForgetUser enabled dave: %+v", u)
	}
	_, err := st.ForgetUser(ctx, "nobody")
	wantErr(t, err, sdk.ErrNotFound, "nobody")
}

// testEmailOverride: an admin's address wins over the auth source's, logins
// leave it alone, "" drops it, a bad one is refused, ForgetUser clears it.
func testEmailOverride(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	id := auth.Identity{Username: "fay", Role: auth.RoleUser, Email: "fay@source.example"}
	if u := must(st.RecordLogin(ctx, id))(t); u.Email != "fay@source.example" || u.AuthEmail != u.Email {
		t.Fatalf("after login: %+v", u)
	}
	u := must(st.UpdateUser(ctx, "fay", state.UserUpdate{Email: ptr("fay@admin.example")}))(t)
	if u.Email != "fay@admin.example" || u.AuthEmail != "fay@source.example" {
		t.Fatalf("after the override: %+v", u)
	}
	id.Email = "fay@moved.example"
	if u := must(st.RecordLogin(ctx, id))(t); u.Email != "fay@admin.example" || u.AuthEmail != "fay@moved.example" {
		t.Fatalf("a login changed the override: %+v", u)
	}
	if u := must(st.SyncIdentity(ctx, id))(t); u.Email != "fay@admin.example" {
		t.Fatalf("a sync changed the override: %+v", u)
	}
	for _, bad := range []string{"not an address", "Fay <fay@x.example>", "fay@x.example\r\nBcc: eve@x.example",
		strings.Repeat("a", state.MaxEmailLength) + "@x.example"} {
		_, err := st.UpdateUser(ctx, "fay", state.UserUpdate{Email: ptr(bad)})
		wantErr(t, err, sdk.ErrInvalidArgument, "email")
	}
	if u := must(st.GetUser(ctx, "fay"))(t); u.Email != "fay@admin.example" {
		t.Fatalf("a refused update changed the address: %+v", u)
	}
	if u := must(st.UpdateUser(ctx, "fay", state.UserUpdate{Email: ptr("")}))(t); u.Email != "fay@moved.example" {
		t.Fatalf("after dropping the override: %+v", u)
	}
	must(st.UpdateUser(ctx, "fay", state.UserUpdate{Email: ptr("fay@admin.example")}))(t)
	if f := must(st.ForgetUser(ctx, "fay"))(t); f.Email != "fay@admin.example" {
		t.Fatalf("ForgetUser = %+v", f)
	}
	if u := must(st.GetUser(ctx, "fay"))(t); u.Email != "fay@moved.example" {
		t.Fatalf("after ForgetUser: %+v", u)
	}
}

// testFeedCursor: absent at first, recorded, only ever moves forward, one
// per name.
func testFeedCursor(t *testing.T, h Harness) {
	st, loc := open(t, h)
	ctx := t.Context()
	if _, ok, err := st.FeedCursor(ctx, "mail"); err != nil || ok {
		t.Fatalf("a new store's cursor: ok %v, err %v", ok, err)
	}
	noErr(t, st.SetFeedCursor(ctx, "mail", 7))
	noErr(t, st.SetFeedCursor(ctx, "mail", 3)) // behind: ignored
	noErr(t, st.SetFeedCursor(ctx, "other", 1))
	if id, ok, err := st.FeedCursor(ctx, "mail"); err != nil || !ok || id != 7 {
		t.Fatalf("cursor = %d, %v, %v; want 7", id, ok, err)
	}
	noErr(t, st.SetFeedCursor(ctx, "mail", 9))
	if id, ok, err := reopen(t, h, loc).FeedCursor(ctx, "mail"); err != nil || !ok || id != 9 {
		t.Fatalf("after reopening: %d, %v, %v; want 9", id, ok, err)
	}
	wantErr(t, st.SetFeedCursor(ctx, "", 1), sdk.ErrInvalidArgument)
	wantErr(t, st.SetFeedCursor(ctx, "mail", -1), sdk.ErrInvalidArgument)
}

func equalUser(a, b state.User) bool {
	return a.Username == b.Username && a.Role == b.Role && a.AuthRole == b.AuthRole && slices.Equal(a.Groups, b.Groups) &&
		equalPtr(a.UID, b.UID) && equalPtr(a.GID, b.GID) && a.Email == b.Email && a.AuthEmail == b.AuthEmail && a.Enabled == b.Enabled &&
		a.Quota == b.Quota && a.CreatedAt.Equal(b.CreatedAt) && a.LastLogin.Equal(b.LastLogin)
}

func equalPtr[T comparable](a, b *T) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func testQuotas(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()

	// The seed: guests one execution at a time.
	defaults := map[string]int{"guest": 1, "user": 5, "admin": 0}
	qs := must(st.ListQuotas(ctx))(t)
	if len(qs) != 3 {
		t.Fatalf("seeded quotas: %+v", qs)
	}
	for _, q := range qs {
		if n, ok := defaults[q.Name]; !ok || q.ConcurrentExecutions != n || q.Cores != 0 || q.Memory != 0 || q.RuntimeLimit != 0 {
			t.Errorf("seeded quota %+v", q)
		}
	}
	for _, r := range []auth.Role{auth.RoleGuest, auth.RoleUser, auth.RoleAdmin} {
		login(t, st, "u-"+string(r), r)
		if q := must(st.EffectiveQuota(ctx, "u-"+string(r)))(t); q.Name != state.DefaultQuotaName(r) {
			t.Errorf("effective quota of a %s: %+v", r, q)
		}
	}

	big := state.Quota{Name: "big", ConcurrentExecutions: 10, Cores: 12.5, Memory: 64 << 30, RuntimeLimit: 36 * time.Hour}
	if got := must(st.CreateQuota(ctx, big))(t); got != big {
		t.Fatalf("CreateQuota = %+v", got)
	}
	if got := must(st.GetQuota(ctx, "big"))(t); got != big {
		t.Fatalf("GetQuota = %+v", got)
	}
	big.Cores, big.RuntimeLimit = 0.5, 0
	if got := must(st.UpdateQuota(ctx, big))(t); got != big {
		t.Fatalf("UpdateQuota = %+v", got)
	}
	// The role defaults can be changed.
	must(st.UpdateQuota(ctx, state.Quota{Name: "guest", ConcurrentExecutions: 2}))(t)

	must(st.UpdateUser(ctx, "u-user", state.UserUpdate{Quota: ptr("big")}))(t)
	if q := must(st.EffectiveQuota(ctx, "u-user"))(t); q != big {
		t.Fatalf("effective quota with an own quota: %+v", q)
	}
	// Deleting a quota returns its users to their role's default.
	if err := st.DeleteQuota(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	if u := must(st.GetUser(ctx, "u-user"))(t); u.Quota != "" {
		t.Fatalf("user keeps deleted quota %q", u.Quota)
	}
	if q := must(st.EffectiveQuota(ctx, "u-user"))(t); q.Name != "user" {
		t.Fatalf("effective quota after delete: %+v", q)
	}
	// The role decides when the user has no quota of their own.
	must(st.UpdateUser(ctx, "u-user", state.UserUpdate{Role: ptr(auth.RoleGuest)}))(t)
	if q := must(st.EffectiveQuota(ctx, "u-user"))(t); q.Name != "guest" || q.ConcurrentExecutions != 2 {
		t.Fatalf("effective quota after a role change: %+v", q)
	}

	errs := []struct {
		name string
		err  error
		cat  error
	}{
		{"create duplicate", second(st.CreateQuota(ctx, state.Quota{Name: "user"})), sdk.ErrAlreadyExists},
		{"create unnamed", second(st.CreateQuota(ctx, state.Quota{})), sdk.ErrInvalidArgument},
		{"create negative", second(st.CreateQuota(ctx, state.Quota{Name: "n", Memory: -1})), sdk.ErrInvalidArgument},
		{"create negative executions", second(st.CreateQuota(ctx, state.Quota{Name: "n", ConcurrentExecutions: -1})), sdk.ErrInvalidArgument},
		{"create fractional seconds", second(st.CreateQuota(ctx, state.Quota{Name: "n", RuntimeLimit: 1500 * time.Millisecond})), sdk.ErrInvalidArgument},
		{"create too many executions", second(st.CreateQuota(ctx, state.Quota{Name: "n", ConcurrentExecutions: state.MaxQuotaExecutions + 1})), sdk.ErrInvalidArgument},
		{"create 1e308 cores", second(st.CreateQuota(ctx, state.Quota{Name: "n", Cores: 1e308})), sdk.ErrInvalidArgument},
		{"create NaN cores", second(st.CreateQuota(ctx, state.Quota{Name: "n", Cores: math.NaN()})), sdk.ErrInvalidArgument},
		{"create infinite cores", second(st.CreateQuota(ctx, state.Quota{Name: "n", Cores: math.Inf(1)})), sdk.ErrInvalidArgument},
		{"create too much memory", second(st.CreateQuota(ctx, state.Quota{Name: "n", Memory: state.MaxQuotaMemory + 1})), sdk.ErrInvalidArgument},
		{"create too long a run time", second(st.CreateQuota(ctx, state.Quota{Name: "n", RuntimeLimit: state.MaxQuotaRuntime + time.Second})), sdk.ErrInvalidArgument},
		{"update unknown", second(st.UpdateQuota(ctx, state.Quota{Name: "nope"})), sdk.ErrNotFound},
		{"update negative", second(st.UpdateQuota(ctx, state.Quota{Name: "user", Cores: -2})), sdk.ErrInvalidArgument},
		{"get unknown", second(st.GetQuota(ctx, "nope")), sdk.ErrNotFound},
		{"delete unknown", st.DeleteQuota(ctx, "nope"), sdk.ErrNotFound},
		{"delete role default", st.DeleteQuota(ctx, "guest"), sdk.ErrInvalidArgument},
		{"effective of unknown user", second(st.EffectiveQuota(ctx, "nobody")), sdk.ErrNotFound},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.err, tc.cat) })
	}
	if n := len(must(st.ListQuotas(ctx))(t)); n != 3 {
		t.Fatalf("%d quotas after the failed calls, want 3", n)
	}
	// The message reaches API clients: words, not the database's.
	_, err := st.CreateQuota(ctx, state.Quota{Name: "user"})
	wantErr(t, err, sdk.ErrAlreadyExists)
	if msg := err.Error(); msg != `quota "user" already exists` {
		t.Errorf("creating a quota that exists: %q, want quota \"user\" already exists", msg)
	}
	// The limits at the bounds are accepted.
	top := state.Quota{Name: "top", ConcurrentExecutions: state.MaxQuotaExecutions, Cores: state.MaxQuotaCores,
		Memory: state.MaxQuotaMemory, RuntimeLimit: state.MaxQuotaRuntime}
	if got := must(st.CreateQuota(ctx, top))(t); got != top {
		t.Errorf("CreateQuota at the bounds = %+v", got)
	}
	if err := st.DeleteQuota(ctx, "top"); err != nil {
		t.Fatal(err)
	}
}

// noDatabaseText fails when a driver's error sorted into a category (a
// unique or foreign key violation, ...) shows the database's text: the
// message reaches API clients.
func noDatabaseText(t testing.TB, err error) {
	t.Helper()
	msg := strings.ToLower(err.Error())
	for _, w := range []string{"constraint", "unique", "duplicate key", "sqlstate", "violates", "(1555)", "(2067)", "(787)"} {
		if strings.Contains(msg, w) {
			t.Errorf("message %q has the database's words (%q)", err, w)
		}
	}
}

func second[T any](_ T, err error) error { return err }
