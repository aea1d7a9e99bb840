package statetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

func testServices(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleAdmin)
	e := submit(t, st, "alice", "x", 2)
	sv := must(st.Services(ctx, e.ID))(t)[1]

	sv = must(st.TransitionService(ctx, sv.ID, []state.ServiceStatus{state.ServiceCreated}, state.ServiceStarting,
		state.ServiceChange{Reason: "placed on node1"}))(t)
	// Opaque handles keep every byte.
	handle := state.Handle{Version: 4294967295, ID: "c0ffee", Data: []byte{0, 1, 0xff, 0xfe, '\n', '"', '{'}}
	sv = must(st.UpdateService(ctx, sv.ID, state.ServiceUpdate{Handle: &handle, Node: ptr("node1"),
		IP: ptr("10.0.0.7"), BackendStatus: ptr("created")}))(t)
	sv = must(st.TransitionService(ctx, sv.ID, []state.ServiceStatus{state.ServiceStarting}, state.ServiceRunning,
		state.ServiceChange{Reason: "spawned", BackendStatus: ptr("started")}))(t)
	got := must(st.GetService(ctx, sv.ID))(t)
	if got.Status != state.ServiceRunning || got.BackendStatus != "started" || got.Node != "node1" ||
		got.IP != "10.0.0.7" || got.Handle.Version != handle.Version || got.Handle.ID != handle.ID ||
		!bytes.Equal(got.Handle.Data, handle.Data) || got.ExitCode != nil {
		t.Fatalf("service %+v", got)
	}

	_, err := st.TransitionService(ctx, sv.ID, []state.ServiceStatus{state.ServiceCreated, state.ServiceStarting},
		state.ServiceError, state.ServiceChange{})
	wantErr(t, err, sdk.ErrConflict, "is running")

	sv = must(st.TransitionService(ctx, sv.ID, []state.ServiceStatus{state.ServiceRunning}, state.ServiceStopped,
		state.ServiceChange{Reason: "died", ExitCode: ptr(1), ErrorMessage: ptr("oom"), BackendStatus: ptr("dead")}))(t)
	if *sv.ExitCode != 1 || sv.ErrorMessage != "oom" || sv.BackendStatus != "dead" {
		t.Fatalf("stopped %+v", sv)
	}

	updates := []struct {
		name string
		up   state.ServiceUpdate
		want func(state.Service) bool
	}{
		{"restart count", state.ServiceUpdate{RestartCount: ptr(3)}, func(s state.Service) bool { return s.RestartCount == 3 }},
		{"exit code", state.ServiceUpdate{ExitCode: ptr(-9)}, func(s state.Service) bool { return s.ExitCode != nil && *s.ExitCode == -9 }},
		{"clear exit code", state.ServiceUpdate{ClearExitCode: true, ExitCode: ptr(2)}, func(s state.Service) bool { return s.ExitCode == nil }},
		{"error", state.ServiceUpdate{ErrorMessage: ptr("")}, func(s state.Service) bool { return s.ErrorMessage == "" }},
		{"no handle data", state.ServiceUpdate{Handle: &state.Handle{}}, func(s state.Service) bool {
			return s.Handle.Version == 0 && s.Handle.ID == "" && len(s.Handle.Data) == 0
		}},
		{"nothing", state.ServiceUpdate{}, func(s state.Service) bool { return s.RestartCount == 3 && s.Node == "node1" }},
	}
	for _, tc := range updates {
		t.Run("update "+tc.name, func(t *testing.T) {
			got, err := st.UpdateService(ctx, sv.ID, tc.up)
			if err != nil || !tc.want(got) {
				t.Fatalf("UpdateService(%+v) = %+v, %v", tc.up, got, err)
			}
			// The status is not UpdateService's business.
			if got.Status != state.ServiceStopped {
				t.Fatalf("status %s", got.Status)
			}
		})
	}

	var steps []string
	for _, ev := range must(st.Events(ctx, e.ID))(t) {
		steps = append(steps, ev.ServiceName+":"+ev.From+">"+ev.To+":"+ev.Reason)
	}
	want := []string{":>submitted:submitted by alice", "svcb:created>starting:placed on node1",
		"svcb:starting>running:spawned", "svcb:running>stopped:died"}
	if !slices.Equal(steps, want) {
		t.Fatalf("events\n%q\nwant\n%q", steps, want)
	}

	errs := []struct {
		name string
		err  error
		cat  error
	}{
		{"get unknown", second(st.GetService(ctx, 1<<40)), sdk.ErrNotFound},
		{"update unknown", second(st.UpdateService(ctx, 1<<40, state.ServiceUpdate{Node: ptr("n")})), sdk.ErrNotFound},
		{"update negative restarts", second(st.UpdateService(ctx, sv.ID, state.ServiceUpdate{RestartCount: ptr(-1)})), sdk.ErrInvalidArgument},
		{"transition unknown", second(st.TransitionService(ctx, 1<<40, []state.ServiceStatus{state.ServiceCreated},
			state.ServiceStarting, state.ServiceChange{})), sdk.ErrNotFound},
		{"transition to unknown", second(st.TransitionService(ctx, sv.ID, []state.ServiceStatus{state.ServiceStopped},
			"active", state.ServiceChange{})), sdk.ErrInvalidArgument},
		{"transition from nothing", second(st.TransitionService(ctx, sv.ID, nil, state.ServiceStopped,
			state.ServiceChange{})), sdk.ErrInvalidArgument},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.err, tc.cat) })
	}
	if n := len(must(st.Services(ctx, 1<<40))(t)); n != 0 {
		t.Fatalf("%d services of an unknown execution", n)
	}
}

func testEndpoints(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleAdmin)
	e := submit(t, st, "alice", "x", 2)
	other := submit(t, st, "alice", "y", 1)
	svs := must(st.Services(ctx, e.ID))(t)
	noErr(t, st.SetEndpoints(ctx, must(st.Services(ctx, other.ID))(t)[0].ID,
		[]state.Endpoint{{Name: "other", Port: 1, Protocol: "tcp"}}))

	first := []state.Endpoint{
		{Name: "ui", Port: 4040, Protocol: "tcp", ExternalAddress: "192.0.2.1", ExternalPort: 31000, URL: "http://192.0.2.1:31000/"},
		{Name: "dns", Port: 53, Protocol: "udp"},
	}
	if err := st.SetEndpoints(ctx, svs[1].ID, first); err != nil {
		t.Fatal(err)
	}
	if err := st.SetEndpoints(ctx, svs[0].ID, []state.Endpoint{{Name: "api", Port: 8080, Protocol: "tcp"}}); err != nil {
		t.Fatal(err)
	}
	got := must(st.Endpoints(ctx, e.ID))(t)
	want := []state.Endpoint{
		{ServiceID: svs[0].ID, ServiceName: svs[0].Name, Name: "api", Port: 8080, Protocol: "tcp"},
		{ServiceID: svs[1].ID, ServiceName: svs[1].Name, Name: "dns", Port: 53, Protocol: "udp"},
		{ServiceID: svs[1].ID, ServiceName: svs[1].Name, Name: "ui", Port: 4040, Protocol: "tcp", ExternalAddress: "192.0.2.1",
			ExternalPort: 31000, URL: "http://192.0.2.1:31000/"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("endpoints\n%+v\nwant\n%+v", got, want)
	}

	// Replacing, and clearing (a dead service loses its addresses).
	noErr(t, st.SetEndpoints(ctx, svs[1].ID, []state.Endpoint{{Name: "ui", Port: 4041, Protocol: "tcp"}}))
	noErr(t, st.SetEndpoints(ctx, svs[0].ID, nil))
	got = must(st.Endpoints(ctx, e.ID))(t)
	if len(got) != 1 || got[0].Port != 4041 || got[0].ExternalPort != 0 {
		t.Fatalf("after replacing: %+v", got)
	}
	if n := len(must(st.Endpoints(ctx, other.ID))(t)); n != 1 {
		t.Fatalf("the other execution has %d endpoints", n)
	}

	bad := []struct {
		name string
		id   int64
		eps  []state.Endpoint
		cat  error
	}{
		{"unknown service", 1 << 40, nil, sdk.ErrNotFound},
		{"no name", svs[0].ID, []state.Endpoint{{Port: 1, Protocol: "tcp"}}, sdk.ErrInvalidArgument},
		{"duplicate", svs[0].ID, []state.Endpoint{{Name: "a", Port: 1, Protocol: "tcp"}, {Name: "a", Port: 2, Protocol: "tcp"}}, sdk.ErrInvalidArgument},
		{"port 0", svs[0].ID, []state.Endpoint{{Name: "a", Protocol: "tcp"}}, sdk.ErrInvalidArgument},
		{"port too big", svs[0].ID, []state.Endpoint{{Name: "a", Port: 70000, Protocol: "tcp"}}, sdk.ErrInvalidArgument},
		{"protocol", svs[0].ID, []state.Endpoint{{Name: "a", Port: 1, Protocol: "sctp"}}, sdk.ErrInvalidArgument},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, st.SetEndpoints(ctx, tc.id, tc.eps), tc.cat) })
	}
	if n := len(must(st.Endpoints(ctx, e.ID))(t)); n != 1 {
		t.Fatalf("refused changes changed endpoints: %d", n)
	}
}

func testTokens(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleUser)
	login(t, st, "bob", auth.RoleUser)

	// A time with nanoseconds and a zone: stored to the microsecond, in
	// UTC.
	exp := time.Date(2031, 2, 3, 4, 5, 6, 789123456, time.FixedZone("CET", 3600))
	before := time.Now()
	a := must(st.CreateToken(ctx, state.NewToken{Username: "alice", Name: "ci", Hash: []byte{1, 2, 3}, ExpiresAt: &exp}))(t)
	b := must(st.CreateToken(ctx, state.NewToken{Username: "alice", Name: "laptop", Hash: []byte{0, 0xff}}))(t)
	must(st.CreateToken(ctx, state.NewToken{Username: "bob", Name: "ci", Hash: []byte{9}}))(t)
	inUTC(t, "created", a.CreatedAt, before, time.Now())
	if a.ExpiresAt == nil || !a.ExpiresAt.Equal(exp.Truncate(time.Microsecond)) || a.ExpiresAt.Location() != time.UTC ||
		a.LastUsed != nil || b.ExpiresAt != nil {
		t.Fatalf("tokens %+v %+v", a, b)
	}
	if a.Expired(exp.Add(-time.Second)) || !a.Expired(exp) || b.Expired(time.Now().AddDate(100, 0, 0)) {
		t.Fatal("Expired is wrong")
	}

	got := must(st.TokenByHash(ctx, []byte{1, 2, 3}))(t)
	if got.ID != a.ID || got.Username != "alice" || got.Name != "ci" || !got.ExpiresAt.Equal(*a.ExpiresAt) {
		t.Fatalf("TokenByHash = %+v", got)
	}
	before = time.Now()
	if err := st.TouchToken(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	got = must(st.TokenByHash(ctx, []byte{1, 2, 3}))(t)
	if got.LastUsed == nil {
		t.Fatal("no last use")
	}
	inUTC(t, "last used", *got.LastUsed, before, time.Now())

	var names []string
	for _, tk := range must(st.ListTokens(ctx, "alice"))(t) {
		names = append(names, tk.Name)
	}
	if !slices.Equal(names, []string{"ci", "laptop"}) {
		t.Fatalf("ListTokens = %v", names)
	}

	errs := []struct {
		name string
		err  error
		cat  error
	}{
		{"duplicate name", second(st.CreateToken(ctx, state.NewToken{Username: "alice", Name: "ci", Hash: []byte{7}})), sdk.ErrAlreadyExists},
		{"duplicate hash", second(st.CreateToken(ctx, state.NewToken{Username: "bob", Name: "x", Hash: []byte{1, 2, 3}})), sdk.ErrAlreadyExists},
		{"unknown user", second(st.CreateToken(ctx, state.NewToken{Username: "nobody", Name: "x", Hash: []byte{8}})), sdk.ErrNotFound},
		{"no hash", second(st.CreateToken(ctx, state.NewToken{Username: "bob", Name: "y"})), sdk.ErrInvalidArgument},
		{"no name", second(st.CreateToken(ctx, state.NewToken{Username: "bob", Hash: []byte{5}})), sdk.ErrInvalidArgument},
		{"unknown hash", second(st.TokenByHash(ctx, []byte{4})), sdk.ErrNotFound},
		{"touch unknown", st.TouchToken(ctx, 1<<40), sdk.ErrNotFound},
		{"delete another's", st.DeleteToken(ctx, "bob", a.ID), sdk.ErrNotFound},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.err, tc.cat) })
	}
	// Said in words, without the category's name after them.
	if err := st.DeleteToken(ctx, "bob", a.ID); err == nil || strings.HasSuffix(err.Error(), sdk.ErrNotFound.Error()) ||
		!strings.Contains(err.Error(), fmt.Sprintf(`user "bob" has no token %d`, a.ID)) {
		t.Errorf("DeleteToken of another's token: %v", err)
	}
	if err := st.DeleteToken(ctx, "alice", a.ID); err != nil {
		t.Fatal(err)
	}
	_, err := st.TokenByHash(ctx, []byte{1, 2, 3})
	wantErr(t, err, sdk.ErrNotFound)
	if n := len(must(st.ListTokens(ctx, "bob"))(t)); n != 1 {
		t.Fatalf("bob has %d tokens", n)
	}
}

// testTokenPurge: expired tokens are purged and free their names; a user
// loses every token at once when revoked in bulk or disabled.
func testTokenPurge(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleUser)
	login(t, st, "bob", auth.RoleUser)
	past, future := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	old := must(st.CreateToken(ctx, state.NewToken{Username: "alice", Name: "ci", Hash: []byte{1}, ExpiresAt: &past}))(t)
	must(st.CreateToken(ctx, state.NewToken{Username: "alice", Name: "old", Hash: []byte{2}, ExpiresAt: &past}))(t)
	must(st.CreateToken(ctx, state.NewToken{Username: "alice", Name: "live", Hash: []byte{3}, ExpiresAt: &future}))(t)
	must(st.CreateToken(ctx, state.NewToken{Username: "bob", Name: "forever", Hash: []byte{4}}))(t)
	must(st.CreateToken(ctx, state.NewToken{Username: "bob", Name: "old", Hash: []byte{5}, ExpiresAt: &past}))(t)

	// The name of an expired token can be taken again; a live one's not.
	renewed := must(st.CreateToken(ctx, state.NewToken{Username: "alice", Name: "ci", Hash: []byte{6}, ExpiresAt: &future}))(t)
	if renewed.ID == old.ID {
		t.Fatal("the expired token was reused")
	}
	if _, err := st.TokenByHash(ctx, []byte{1}); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("the expired token that held the name: %v", err)
	}
	_, err := st.CreateToken(ctx, state.NewToken{Username: "alice", Name: "live", Hash: []byte{7}})
	wantErr(t, err, sdk.ErrAlreadyExists)

	if n := must(st.PurgeExpiredTokens(ctx))(t); n != 2 {
		t.Fatalf("purged %d tokens, want 2 (alice's and bob's old)", n)
	}
	if n := must(st.PurgeExpiredTokens(ctx))(t); n != 0 {
		t.Fatalf("purged %d tokens again", n)
	}
	names := func(user string) []string {
		var out []string
		for _, tk := range must(st.ListTokens(ctx, user))(t) {
			out = append(out, tk.Name)
		}
		return out
	}
	if got := names("alice"); !slices.Equal(got, []string{"live", "ci"}) {
		t.Fatalf("alice's tokens after the purge: %v", got)
	}
	if got := names("bob"); !slices.Equal(got, []string{"forever"}) {
		t.Fatalf("bob's tokens after the purge: %v", got)
	}

	if n := must(st.DeleteTokens(ctx, "alice"))(t); n != 2 {
		t.Fatalf("DeleteTokens(alice) = %d, want 2", n)
	}
	if got := names("alice"); len(got) != 0 {
		t.Fatalf("alice keeps %v", got)
	}
	if n := must(st.DeleteTokens(ctx, "nobody"))(t); n != 0 {
		t.Fatalf("DeleteTokens(nobody) = %d", n)
	}
	// Disabling bob deletes his tokens; enabling him does not bring them
	// back, and changing other fields keeps them.
	must(st.CreateToken(ctx, state.NewToken{Username: "bob", Name: "b2", Hash: []byte{8}}))(t)
	must(st.UpdateUser(ctx, "bob", state.UserUpdate{Enabled: ptr(true), Quota: ptr("admin")}))(t)
	if got := names("bob"); len(got) != 2 {
		t.Fatalf("bob's tokens after enabling him: %v", got)
	}
	must(st.UpdateUser(ctx, "bob", state.UserUpdate{Enabled: ptr(false)}))(t)
	must(st.UpdateUser(ctx, "bob", state.UserUpdate{Enabled: ptr(true)}))(t)
	if got := names("bob"); len(got) != 0 {
		t.Fatalf("bob keeps %v after being disabled", got)
	}
}

// testTokenBound: with NewToken.Max, a user keeps at most that many
// unexpired tokens; the oldest evictable ones make room for a new one, and
// without one to evict the new one is refused.
func testTokenBound(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	login(t, st, "alice", auth.RoleUser)
	login(t, st, "bob", auth.RoleUser)
	past := time.Now().Add(-time.Minute)
	hash := byte(0)
	create := func(user, name string, expires *time.Time) error {
		hash++
		_, err := st.CreateToken(ctx, state.NewToken{Username: user, Name: name, Hash: []byte{hash}, ExpiresAt: expires, Max: 3, Evictable: "session-"})
		return err
	}
	names := func(user string) string {
		var out []string
		for _, tk := range must(st.ListTokens(ctx, user))(t) {
			out = append(out, tk.Name)
		}
		return strings.Join(out, " ")
	}
	for _, name := range []string{"session-1", "ci", "session-2"} {
		if err := create("alice", name, nil); err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateToken(ctx, state.NewToken{Username: "bob", Name: "session-b", Hash: []byte{200}}))(t)
	steps := []struct {
		name    string
		expires *time.Time
		want    string
		err     error
	}{
		{"session-3", nil, "ci session-2 session-3", nil}, // the oldest evictable one goes
		{"laptop", nil, "ci session-3 laptop", nil},
		{"desk", nil, "ci laptop desk", nil},
		{"phone", nil, "ci laptop desk", sdk.ErrResourceExhausted}, // nothing evictable: refused
		{"session-4", nil, "ci laptop desk", sdk.ErrResourceExhausted},
	}
	for _, s := range steps {
		err := create("alice", s.name, s.expires)
		if s.err == nil && err != nil || s.err != nil && !errors.Is(err, s.err) {
			t.Fatalf("token %s: %v, want %v", s.name, err, s.err)
		}
		if got := names("alice"); got != s.want {
			t.Fatalf("after token %s: %q, want %q", s.name, got, s.want)
		}
	}
	if err := create("alice", "x", nil); err == nil || !strings.Contains(err.Error(), "alice has 3 tokens, the most allowed") {
		t.Fatalf("refusal: %v", err)
	}
	// Expired tokens do not count; other users' are untouched.
	must(st.DeleteTokens(ctx, "alice"))(t)
	for _, name := range []string{"a", "b", "c"} {
		if err := create("alice", name, &past); err != nil {
			t.Fatal(err)
		}
	}
	if err := create("alice", "d", nil); err != nil {
		t.Fatalf("with only expired tokens: %v", err)
	}
	if got := names("alice"); got != "d" {
		t.Fatalf("alice's tokens: %q", got)
	}
	if got := names("bob"); got != "session-b" {
		t.Fatalf("bob's tokens: %q", got)
	}
}
