package api_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/config"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/internal/testutil"
)

// TestAnswersFollowWrites: what the API keeps between requests (the
// caller's token and user, encoded pages of executions) follows every
// write, also one made by another process on the same database: a second
// daemon, here a store the test opens on the daemon's SQLite file or
// PostgreSQL database.
func TestAnswersFollowWrites(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		e := newEnv(t, "")
		testAnswersFollowWrites(t, e, config.State{SQLite: filepath.Join(filepath.Dir(e.file), "data", config.DefaultSQLiteFile)})
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		root, err := testutil.ModuleRoot()
		if err != nil {
			t.Fatal(err)
		}
		dsn := testutil.StartPostgres(t)
		e := newEnv(t, fmt.Sprintf(simConfig, filepath.Join(root, "examples", "shop"))+fmt.Sprintf("state {\n  postgres = %q\n}\n", dsn))
		testAnswersFollowWrites(t, e, config.State{Postgres: dsn})
	})
}

func testAnswersFollowWrites(t *testing.T, e *env, db config.State) {
	ctx := t.Context()
	other, err := state.Open(ctx, db, "apitest", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	var s client.Session
	e.must(anonymous, "POST", "/sessions", client.Login{Username: "alice", Password: passwords["alice"], TokenName: "t"}, http.StatusCreated, &s)
	bearer, basic := who{token: s.Token}, e.as("alice")
	ids := func(w who) []int64 {
		t.Helper()
		var l client.ExecutionList
		e.must(w, "GET", "/executions?limit=10", nil, http.StatusOK, &l)
		var out []int64
		for _, ex := range l.Executions {
			out = append(out, ex.ID)
		}
		return out
	}
	ex := e.startApp(basic, "kept", app("hello", nil))
	e.await(basic, ex.ID, "running")
	e.must(basic, "POST", fmt.Sprintf("/executions/%d/terminate", ex.ID), nil, http.StatusAccepted, nil)
	e.await(basic, ex.ID, "terminated")
	for _, w := range []who{bearer, basic, bearer, basic} { // asked again: served as kept
		if got := ids(w); len(got) != 1 || got[0] != ex.ID {
			t.Fatalf("listed %v, want [%d]", got, ex.ID)
		}
	}
	if err := other.DeleteExecution(ctx, ex.ID); err != nil {
		t.Fatal(err)
	}
	for _, w := range []who{bearer, basic} {
		if got := ids(w); len(got) != 0 {
			t.Errorf("listed %v after the other process deleted %d", got, ex.ID)
		}
	}

	if _, err := other.UpdateUser(ctx, "alice", state.UserUpdate{Enabled: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	// Disabling her revoked her token too.
	for w, want := range map[string]int{"bearer": http.StatusUnauthorized, "basic": http.StatusForbidden} {
		c := map[string]who{"bearer": bearer, "basic": basic}[w]
		if r := e.do(c, "GET", "/executions", nil); r.status != want {
			t.Errorf("disabled by the other process, alice lists with %s: %d %s", w, r.status, r.body)
		}
	}
	if _, err := other.UpdateUser(ctx, "alice", state.UserUpdate{Enabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	e.must(anonymous, "POST", "/sessions", client.Login{Username: "alice", Password: passwords["alice"], TokenName: "t2"}, http.StatusCreated, &s)
	bearer = who{token: s.Token}
	e.must(bearer, "GET", "/me", nil, http.StatusOK, nil)
	if err := other.DeleteToken(ctx, "alice", s.TokenInfo.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.do(bearer, "GET", "/me", nil); r.status != http.StatusUnauthorized {
		t.Errorf("a token the other process revoked: %d %s", r.status, r.body)
	}
	e.must(basic, "GET", "/me", nil, http.StatusOK, nil)
}
