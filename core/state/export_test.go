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

// HoldWrites makes the store's next writes queue behind one that waits
// for release: released, they run as one batch (group commit). queued says
// how many wait.
func HoldWrites(st Store) (queued func() int, release func()) {
	var g *group
	switch db := st.(*store).db.(type) {
	case *sqliteDB:
		g = &db.commits
	case *pgDB:
		g = &db.commits
	}
	started, rel, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		_ = g.tx(context.Background(), func(querier) error {
			close(started)
			<-rel
			return nil
		})
	}()
	<-started
	queued = func() int {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.queue)
	}
	return queued, func() {
		close(rel)
		<-done
	}
}
