package state

import (
	"context"

	"github.com/hashicorp/go-hclog"
)

// MigrateSQLiteTo and MigratePostgresTo bring a database to an earlier
// schema version, for the migration tests.
func MigrateSQLiteTo(ctx context.Context, path string, v int) error {
	s, err := openSQLite(ctx, path, hclog.NewNullLogger(), v)
	if err != nil {
		return err
	}
	return s.Close()
}

func MigratePostgresTo(ctx context.Context, dsn, deployment string, v int) error {
	s, err := openPostgres(ctx, dsn, deployment, hclog.NewNullLogger(), v)
	if err != nil {
		return err
	}
	return s.Close()
}
