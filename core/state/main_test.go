package state_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/state/statetest"
	"github.com/zoe-project/zoe/internal/testutil"
)

// pg is the PostgreSQL server of this test binary, started by the first
// test that needs it.
var pg = testutil.NewPostgres()

// The crash test re-runs this binary as the child that gets killed
// (go-plugin's helper-process trick): crashEnv names the store, crashLocEnv
// its database.
const (
	crashEnv    = "ZOE_STATE_CRASH_CHILD"
	crashLocEnv = "ZOE_STATE_CRASH_LOC"
)

func TestMain(m *testing.M) {
	if kind := os.Getenv(crashEnv); kind != "" {
		os.Exit(statetest.CrashChild(harness(kind), os.Getenv(crashLocEnv)))
	}
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

func harness(kind string) statetest.Harness {
	if kind == "postgres" {
		return postgresHarness()
	}
	return sqliteHarness()
}

// crashChild returns the command that runs this binary as Crash's child.
func crashChild(kind string) func(loc string) *exec.Cmd {
	return func(loc string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashEnv+"="+kind, crashLocEnv+"="+loc)
		return cmd
	}
}

func sqliteHarness() statetest.Harness {
	return statetest.Harness{
		New: func(t testing.TB) string { return filepath.Join(t.TempDir(), "zoe.db") },
		Open: func(ctx context.Context, loc string, log hclog.Logger) (state.Store, error) {
			return state.OpenSQLite(ctx, loc, log)
		},
		MigrateTo: state.MigrateSQLiteTo,
		SQL: func(ctx context.Context, loc, query string) (int64, error) {
			db, err := sql.Open("sqlite", loc)
			if err != nil {
				return 0, err
			}
			defer func() { _ = db.Close() }()
			var n int64
			err = db.QueryRowContext(ctx, query).Scan(&n)
			if errors.Is(err, sql.ErrNoRows) {
				err = nil
			}
			return n, err
		},
	}
}

// deployment is the deployment name of the PostgreSQL tests.
const deployment = "test"

func postgresHarness() statetest.Harness {
	return statetest.Harness{
		New:           pg.DSN,
		SharedVersion: true,
		Open: func(ctx context.Context, loc string, log hclog.Logger) (state.Store, error) {
			return state.OpenPostgres(ctx, loc, deployment, log)
		},
		MigrateTo: func(ctx context.Context, loc string, v int) error {
			return state.MigratePostgresTo(ctx, loc, deployment, v)
		},
		SQL: func(ctx context.Context, loc, query string) (int64, error) {
			cfg, err := pgx.ParseConfig(loc)
			if err != nil {
				return 0, err
			}
			cfg.RuntimeParams["search_path"] = state.SchemaName(deployment)
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				return 0, err
			}
			defer func() { _ = conn.Close(ctx) }()
			var n int64
			err = conn.QueryRow(ctx, query).Scan(&n)
			if errors.Is(err, pgx.ErrNoRows) {
				err = nil
			}
			return n, err
		},
	}
}
