package state_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/zoe-project/zoe/core/config"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/state/statetest"
	"github.com/zoe-project/zoe/internal/testutil"
)

func TestSQLite(t *testing.T) {
	t.Parallel()
	statetest.Run(t, sqliteHarness())
}

func TestSQLiteCrash(t *testing.T) {
	t.Parallel()
	statetest.Crash(t, sqliteHarness(), crashChild("sqlite"))
}

func BenchmarkSQLite(b *testing.B) {
	statetest.Bench(b, sqliteHarness())
}

// TestSQLiteFile: Open creates the directory and a private file, in WAL
// mode.
func TestSQLiteFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "data", "zoe.db")
	st, err := state.Open(t.Context(), config.State{SQLite: path}, "prod", testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600: the file holds token hashes", fi.Mode().Perm())
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("no write-ahead log: %v", err)
	}
}

func BenchmarkSQLiteStart(b *testing.B) {
	statetest.BenchStart(b, sqliteHarness())
}
