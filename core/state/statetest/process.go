package statetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// testConcurrentSubmissions: many goroutines, on two stores sharing the
// database (two daemons), submit against a quota; exactly the quota's worth
// get in.
func testConcurrentSubmissions(t *testing.T, h Harness) {
	st, loc := open(t, h)
	other := reopen(t, h, loc)
	ctx := t.Context()
	must(st.CreateQuota(ctx, state.Quota{Name: "ten-cores", Cores: 10}))(t)
	must(st.CreateQuota(ctx, state.Quota{Name: "memory", Memory: 7 << 30}))(t)
	cases := []struct {
		user   string
		quota  string // "" for the user role's default: 5 executions
		cores  float64
		memory int64
		want   int
	}{
		{"executions", "", 0, 0, 5},
		{"cores", "ten-cores", 0.5, 0, 20},
		{"memory", "memory", 0, 1 << 30, 7},
	}
	for _, tc := range cases {
		t.Run(tc.user, func(t *testing.T) {
			login(t, st, tc.user, auth.RoleUser)
			if tc.quota != "" {
				must(st.UpdateUser(ctx, tc.user, state.UserUpdate{Quota: ptr(tc.quota)}))(t)
			}
			var (
				wg               sync.WaitGroup
				mu               sync.Mutex
				created, refused int
			)
			for i := range 50 {
				s := []state.Store{st, other}[i%2]
				wg.Go(func() {
					ne := newExecution(tc.user, fmt.Sprint("job", i), 2)
					ne.Cores, ne.Memory = tc.cores, tc.memory
					_, err := s.CreateExecution(ctx, ne)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						created++
					case errors.Is(err, sdk.ErrResourceExhausted):
						refused++
					default:
						t.Errorf("submission %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			if created != tc.want || refused != 50-tc.want {
				t.Fatalf("%d created, %d refused; want %d and %d", created, refused, tc.want, 50-tc.want)
			}
			es, _, err := st.ListExecutions(ctx, state.Filter{Owner: tc.user, Limit: 100})
			if err != nil || len(es) != tc.want {
				t.Fatalf("%d executions stored, want %d (%v)", len(es), tc.want, err)
			}
		})
	}
}

func testMigrations(t *testing.T, h Harness) {
	ctx := t.Context()
	smoke := func(t *testing.T, st state.Store) {
		t.Helper()
		if v := must(st.SchemaVersion(ctx))(t); v != state.CurrentSchemaVersion {
			t.Fatalf("schema version %d, want %d", v, state.CurrentSchemaVersion)
		}
		login(t, st, "alice", auth.RoleGuest)
		submit(t, st, "alice", "x", 2)
		if n := len(must(st.ListQuotas(ctx))(t)); n != 3 {
			t.Fatalf("%d quotas, want the 3 role defaults", n)
		}
	}
	t.Run("from empty", func(t *testing.T) {
		st, loc := open(t, h)
		smoke(t, st)
		// Opening again applies nothing.
		st2 := reopen(t, h, loc)
		if n := must(h.SQL(ctx, loc, "SELECT COUNT(*) FROM schema_migrations"))(t); n != state.CurrentSchemaVersion {
			t.Fatalf("%d migrations recorded, want %d", n, state.CurrentSchemaVersion)
		}
		if n := len(must(st2.ListQuotas(ctx))(t)); n != 3 {
			t.Fatalf("%d quotas after reopening, want 3", n)
		}
	})
	// Every earlier version a database may be at (0: a bare
	// schema_migrations table).
	for v := range state.CurrentSchemaVersion {
		t.Run(fmt.Sprintf("from version %d", v), func(t *testing.T) {
			loc := h.New(t)
			if err := h.MigrateTo(ctx, loc, v); err != nil {
				t.Fatal(err)
			}
			if n := must(h.SQL(ctx, loc, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))(t); n != int64(v) {
				t.Fatalf("MigrateTo(%d) left version %d", v, n)
			}
			// From version 1 on there are users and executions to keep,
			// written with the version 1 schema, bypassing the store: an
			// admin (the role is the auth plugin's), one execution without
			// a network, one whose network id version 1 kept in the reason
			// of its queued→starting event, and a finished one with the
			// newest event.
			var id, placed, done int64
			var eventIDs []int64
			if v >= 1 {
				const at = "'2030-01-02T03:04:05.000000Z'"
				// Version 3 renamed the auth plugin's role.
				roleCol := "role"
				if v >= 3 {
					roleCol = "auth_role"
				}
				must(h.SQL(ctx, loc, "INSERT INTO users (username, "+roleCol+", created_at, last_login) VALUES "+
					"('bob', 'admin', "+at+", "+at+") RETURNING 1"))(t)
				id = must(h.SQL(ctx, loc, "INSERT INTO executions (owner, name, description, status, cores, "+
					"submitted_at) VALUES ('bob', 'old', '{\"k\": 1}', 'running', 2, "+at+") RETURNING id"))(t)
				// Version 2 records the network id in its column as well.
				netCol, netVal := "", ""
				if v >= 2 {
					netCol, netVal = ", network_id", ", 'net-old'"
				}
				placed = must(h.SQL(ctx, loc, "INSERT INTO executions (owner, name, description, status, "+
					"submitted_at"+netCol+") VALUES ('bob', 'placed', '{}', 'starting', "+at+netVal+") RETURNING id"))(t)
				done = must(h.SQL(ctx, loc, "INSERT INTO executions (owner, name, description, status, "+
					"submitted_at) VALUES ('bob', 'done', '{}', 'terminated', "+at+") RETURNING id"))(t)
				for _, ev := range []string{
					fmt.Sprintf("%d, '', 'queued', 'starting', 'placed a0@node1 (network id net-old)'", placed),
					fmt.Sprintf("%d, '', 'starting', 'starting', 'not (network id net-service)'", placed), // a later event, not the placement
					fmt.Sprintf("%d, '', 'starting', 'running', 'its 1 essential services run'", placed),
					fmt.Sprintf("%d, 'a0', 'created', 'starting', '(network id net-svc)'", id),
					fmt.Sprintf("%d, '', 'running', 'terminated', 'finished'", done),
				} {
					eventIDs = append(eventIDs, must(h.SQL(ctx, loc, "INSERT INTO events (execution_id, "+
						"service_name, from_status, to_status, reason, at) VALUES ("+ev+", "+at+") RETURNING id"))(t))
				}
			}
			st := reopen(t, h, loc)
			if v >= 1 {
				// The user, with the role as the auth plugin's, which a
				// login changes.
				if u := must(st.GetUser(ctx, "bob"))(t); u.Role != auth.RoleAdmin || u.AuthRole != auth.RoleAdmin ||
					!u.Enabled || !u.LastLogin.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
					t.Fatalf("the user of version %d became %+v", v, u)
				}
				if q := must(st.EffectiveQuota(ctx, "bob"))(t); q.Name != "admin" {
					t.Fatalf("effective quota %q, want admin", q.Name)
				}
				if u := login(t, st, "bob", auth.RoleUser); u.Role != auth.RoleUser || u.AuthRole != auth.RoleUser {
					t.Fatalf("after a login as a user: %+v", u)
				}
				// The events, with their ids and owner.
				evs := must(st.EventsAfter(ctx, 0, state.EventFilter{}))(t)
				var got []int64
				for _, ev := range evs {
					got = append(got, ev.ID)
					if ev.Owner != "bob" {
						t.Fatalf("event %+v has owner %q, want bob", ev, ev.Owner)
					}
				}
				if !slices.Equal(got, eventIDs) {
					t.Fatalf("event ids %v after migrating, want %v", got, eventIDs)
				}
				if evs[4].ExecutionID != done || evs[4].Reason != "finished" ||
					!evs[4].Time.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
					t.Fatalf("event %+v", evs[4])
				}
				// The newest event's id is not handed out again once it is
				// deleted.
				last := must(st.LastEventID(ctx))(t)
				noErr(t, st.DeleteExecution(ctx, done))
				e := submit(t, st, "bob", "new", 0)
				if evs := must(st.EventsAfter(ctx, last, state.EventFilter{}))(t); len(evs) != 1 || evs[0].ExecutionID != e.ID {
					t.Fatalf("events after %d: %+v, want the submission of %d", last, evs, e.ID)
				}
			}
			smoke(t, st)
			if v >= 1 {
				old := must(st.GetExecution(ctx, id))(t)
				if old.Owner != "bob" || old.Name != "old" || old.Status != state.StatusRunning || old.Cores != 2 ||
					string(old.Description) != `{"k": 1}` || old.NetworkID != "" ||
					!old.SubmittedAt.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
					t.Fatalf("the execution of version %d became %+v", v, old)
				}
				if got := must(st.GetExecution(ctx, placed))(t); got.NetworkID != "net-old" ||
					got.Status != state.StatusStarting {
					t.Fatalf("the placed execution of version %d became %+v, want network net-old", v, got)
				}
				noErr(t, st.SetNetwork(ctx, id, "net-new"))
				if got := must(st.GetExecution(ctx, id))(t); got.NetworkID != "net-new" {
					t.Fatalf("network %q after SetNetwork", got.NetworkID)
				}
			}
		})
	}
	t.Run("newer refused", func(t *testing.T) {
		st, loc := open(t, h)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		newer := state.CurrentSchemaVersion + 6
		if _, err := h.SQL(ctx, loc, fmt.Sprintf("INSERT INTO schema_migrations (version, name, applied_at) "+
			"VALUES (%d, 'future', '2030-01-02T03:04:05.000000Z')", newer)); err != nil {
			t.Fatal(err)
		}
		st, err := h.Open(ctx, loc, hclog.NewNullLogger())
		if err == nil {
			_ = st.Close()
		}
		wantErr(t, err, sdk.ErrUnsupported, fmt.Sprintf("database schema version %d is newer than this zoe (%d); upgrade zoe",
			newer, state.CurrentSchemaVersion))
	})
	t.Run("concurrent opens", func(t *testing.T) {
		loc := h.New(t)
		var wg sync.WaitGroup
		stores := make([]state.Store, 4)
		errs := make([]error, len(stores))
		for i := range stores {
			wg.Go(func() { stores[i], errs[i] = h.Open(ctx, loc, hclog.NewNullLogger()) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("open %d: %v", i, err)
			}
			t.Cleanup(func() { _ = stores[i].Close() })
		}
		if n := must(h.SQL(ctx, loc, "SELECT COUNT(*) FROM schema_migrations"))(t); n != state.CurrentSchemaVersion {
			t.Fatalf("%d migrations recorded, want %d", n, state.CurrentSchemaVersion)
		}
		smoke(t, stores[3])
	})
}

// Crash starts a child process (child(loc) returns its command; the child
// runs CrashChild) that submits executions in a loop, kills it with SIGKILL
// in the middle of its writes, and checks the database opens and holds every
// execution the child reported committed.
func Crash(t *testing.T, h Harness, child func(loc string) *exec.Cmd) {
	ctx := t.Context()
	st, loc := open(t, h)
	login(t, st, "crash", auth.RoleAdmin)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := child(loc)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()

	killAt := 200 + rand.IntN(200)
	var ids []int64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		id, err := strconv.ParseInt(sc.Text(), 10, 64)
		if err != nil {
			t.Fatalf("child said %q", sc.Text())
		}
		ids = append(ids, id)
		if len(ids) == killAt {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
		}
	}
	// What the child wrote before dying is still read to the end above.
	err = cmd.Wait()
	if len(ids) < killAt {
		t.Fatalf("the child stopped after %d executions: %v\n%s", len(ids), err, stderr.String())
	}
	t.Logf("killed the child after %d committed executions (%v)", len(ids), err)

	st = reopen(t, h, loc)
	for _, id := range ids {
		e, err := st.GetExecution(ctx, id)
		if err != nil {
			t.Fatalf("committed execution %d: %v", id, err)
		}
		if n := len(must(st.Services(ctx, e.ID))(t)); n != 4 {
			t.Fatalf("execution %d has %d services, want 4", id, n)
		}
	}
	// Nothing half-written: every execution has its services.
	n := must(h.SQL(ctx, loc, "SELECT COUNT(*) FROM executions e WHERE (SELECT COUNT(*) FROM services s WHERE s.execution_id = e.id) <> 4"))(t)
	if n != 0 {
		t.Fatalf("%d executions without their 4 services", n)
	}
	submit(t, st, "crash", "after", 1)
}

// CrashChild is the child process of Crash: it opens the store at loc,
// submits executions from a few goroutines until it is killed, and prints
// the id of each one committed on its own line. It returns an exit code
// when something fails.
func CrashChild(h Harness, loc string) int {
	ctx := context.Background()
	st, err := h.Open(ctx, loc, hclog.NewNullLogger())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var mu sync.Mutex
	errc := make(chan error, 4)
	for w := range 4 {
		go func() {
			for i := 0; ; i++ {
				e, err := st.CreateExecution(ctx, newExecution("crash", fmt.Sprintf("w%d-%d", w, i), 4))
				if err != nil {
					errc <- err
					return
				}
				// Unbuffered: once written, the parent reads it even if this
				// process dies right after.
				mu.Lock()
				_, err = fmt.Fprintln(os.Stdout, e.ID)
				mu.Unlock()
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	fmt.Fprintln(os.Stderr, <-errc)
	return 1
}
