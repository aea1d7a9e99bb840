package api

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk/auth"
)

// filterStore records the filters the event stream reads with.
type filterStore struct {
	state.Store
	mu      sync.Mutex
	filters []state.EventFilter
}

func (s *filterStore) EventsAfter(ctx context.Context, after int64, f state.EventFilter) ([]state.Event, error) {
	s.mu.Lock()
	s.filters = append(s.filters, f)
	s.mu.Unlock()
	return s.Store.EventsAfter(ctx, after, f)
}

// TestEventStreamAsksForOwnEvents: a user's stream has the store select
// their events, up to the last id it read before; an admin's, everyone's.
// A stream that read every user's events and dropped the others' kept the
// store sending it the whole table, page after page, when a user resumed
// from an old Last-Event-ID.
func TestEventStreamAsksForOwnEvents(t *testing.T) {
	ctx := t.Context()
	st, err := state.OpenSQLite(ctx, filepath.Join(t.TempDir(), "zoe.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	users := map[string]*state.User{}
	for _, id := range []auth.Identity{{Username: "alice", Role: auth.RoleUser}, {Username: "bob", Role: auth.RoleUser}, {Username: "root", Role: auth.RoleAdmin}} {
		u, err := st.RecordLogin(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		users[id.Username] = &u
	}
	for _, owner := range []string{"bob", "alice", "bob"} {
		if _, err := st.CreateExecution(ctx, state.NewExecution{Owner: owner, Name: "x", Cores: 1, Memory: 1 << 20,
			Services: []state.NewService{{Name: "web0", Group: "web", Essential: true}}}); err != nil {
			t.Fatal(err)
		}
	}
	last, err := st.LastEventID(ctx)
	if err != nil || last == 0 {
		t.Fatalf("last event id %d, %v", last, err)
	}
	for _, tc := range []struct{ who, owner string }{{"alice", "alice"}, {"root", ""}} {
		t.Run(tc.who, func(t *testing.T) {
			store := &filterStore{Store: st}
			s := New(nil, Config{Store: store, EventPoll: 10 * time.Millisecond})
			t.Cleanup(s.Shutdown)
			ctx, cancel := context.WithTimeout(ctx, time.Second) // a hundred polls, or one on a loaded machine
			defer cancel()
			r := httptest.NewRequestWithContext(ctx, "GET", "/api/v1/events", nil)
			r.Header.Set("Last-Event-ID", "0")
			w := httptest.NewRecorder()
			s.events(w, r, &caller{user: users[tc.who]})
			store.mu.Lock()
			defer store.mu.Unlock()
			if len(store.filters) == 0 {
				t.Fatal("the stream read no events")
			}
			for _, f := range store.filters {
				if f.Owner != tc.owner || f.Through != last {
					t.Errorf("%s's stream read events with %+v, want owner %q through %d", tc.who, f, tc.owner, last)
				}
			}
			body := w.Body.String()
			if !strings.Contains(body, `"owner":"alice"`) || strings.Contains(body, `"owner":"bob"`) != (tc.who == "root") {
				t.Errorf("%s's stream sent:\n%s", tc.who, body)
			}
			if !strings.Contains(body, "id: "+strconv.FormatInt(last, 10)+"\n") {
				t.Errorf("%s's stream did not move its cursor to %d:\n%s", tc.who, last, body)
			}
		})
	}
}
