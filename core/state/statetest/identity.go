package statetest

import (
	"regexp"
	"sync"
	"testing"

	"github.com/zoe-project/zoe/internal/testutil"
)

// testIdentity: a store has an identity of 32 hex digits, the same for every
// process that opens it and across reopening, another for another database;
// a database migrated from an earlier version gets one too, and stores
// opening a new database together agree on it.
func testIdentity(t *testing.T, h Harness) {
	ctx := t.Context()
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	st, loc := open(t, h)
	id := must(st.Identity(ctx))(t)
	if !hexID.MatchString(id) {
		t.Fatalf("identity %q, want 32 hex digits", id)
	}
	if again := must(reopen(t, h, loc).Identity(ctx))(t); again != id {
		t.Fatalf("reopened store has identity %s, want %s", again, id)
	}
	other, _ := open(t, h)
	if oid := must(other.Identity(ctx))(t); oid == id {
		t.Fatalf("two databases share identity %s", id)
	}

	t.Run("from version 3", func(t *testing.T) {
		loc := h.New(t)
		noErr(t, h.MigrateTo(ctx, loc, 3))
		id := must(reopen(t, h, loc).Identity(ctx))(t)
		if !hexID.MatchString(id) {
			t.Fatalf("identity %q after migration, want 32 hex digits", id)
		}
		if n := must(h.SQL(ctx, loc, "SELECT COUNT(*) FROM store_meta"))(t); n != 1 {
			t.Fatalf("%d rows in store_meta, want 1", n)
		}
	})

	t.Run("opened together", func(t *testing.T) {
		loc := h.New(t)
		const n = 4
		ids := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				st, err := h.Open(ctx, loc, testutil.Logger(t))
				if err != nil {
					t.Errorf("open: %v", err)
					return
				}
				defer st.Close()
				if ids[i], err = st.Identity(ctx); err != nil {
					t.Errorf("identity: %v", err)
				}
			})
		}
		wg.Wait()
		for i := range ids {
			if ids[i] != ids[0] {
				t.Fatalf("stores opened together have identities %q", ids)
			}
		}
	})
}
