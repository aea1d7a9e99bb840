package state

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/zoe-project/zoe/sdk"
)

// OpenPostgres connects to the PostgreSQL database of dsn and brings the
// schema zoe_<deployment> up to date, creating it when missing. The DSN may
// hold a password: it never appears in logs or errors.
func OpenPostgres(ctx context.Context, dsn, deployment string, log hclog.Logger) (Store, error) {
	return openPostgres(ctx, dsn, deployment, log, CurrentSchemaVersion)
}

// deploymentRE is what config accepts for deployment_name.
func deploymentRE() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`) }

// SchemaName is the PostgreSQL schema of a deployment.
func SchemaName(deployment string) string { return "zoe_" + deployment }

func openPostgres(ctx context.Context, dsn, deployment string, log hclog.Logger, target int) (*store, error) {
	if !deploymentRE().MatchString(deployment) {
		return nil, invalid("postgres: deployment name %q: want lower-case letters, digits and '-'", deployment)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error quotes the DSN, and its password redaction is only
		// best effort.
		return nil, invalid("postgres: the DSN cannot be parsed (not shown: it may hold a password)")
	}
	schema := SchemaName(deployment)
	// Every connection works in the deployment's schema only, so that
	// deployments sharing a database cannot see each other's tables. Set
	// at connection start-up: no extra round trip.
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		// pgx's connect errors name user, host and database, never the
		// password.
		return nil, fmt.Errorf("postgres: %w: %w", sdk.ErrUnavailable, err)
	}
	db := &pgDB{pool: pool}
	s := &store{db: db, d: postgresDialect(schema), log: named(log)}
	db.commits.alone, db.commits.begin, db.flushEvents = db.tx1, db.beginBatch, s.insertDeferredEvents
	db.commits.overlap = true
	if err := s.migrate(ctx, target); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("postgres schema %s: %w", schema, err)
	}
	s.log.Info("state store opened", "store", "postgres", "database", cfg.ConnConfig.Database,
		"host", cfg.ConnConfig.Host, "schema", schema)
	return s, nil
}

func postgresDialect(schema string) dialect {
	// The advisory lock keys are per schema: deployments sharing a database
	// migrate and record events independently.
	key, eventKey := advisoryKey("zoe-migrations:"+schema), advisoryKey("zoe-events:"+schema)
	return dialect{
		name:           "postgres",
		forUpdate:      " FOR UPDATE",
		forNoKeyUpdate: " FOR NO KEY UPDATE",
		contains:       "strpos(%[1]s, %[2]s) > 0",
		timeType:       "TIMESTAMPTZ",
		encodeTime:     func(t time.Time) any { return t },
		category:       postgresCategory,
		migrationLock: func(ctx context.Context, q querier) error {
			// Released at commit or rollback: a crashed daemon cannot leave
			// it held. Taken before CREATE SCHEMA, which itself races.
			if _, err := q.exec(ctx, "SELECT pg_advisory_xact_lock($1)", key); err != nil {
				return err
			}
			_, err := q.exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize())
			return err
		},
		// Identity values are handed out when a row is inserted, not when
		// it commits: without the lock, a transaction holding id n+1 can
		// commit before the one holding n, and a feed reader sees n+1
		// first. A transaction-level lock is released after the commit is
		// visible.
		eventLock: func(ctx context.Context, q querier) error {
			_, err := q.exec(ctx, "SELECT pg_advisory_xact_lock($1)", eventKey)
			return err
		},
	}
}

func advisoryKey(name string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return int64(h.Sum64())
}

func postgresCategory(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return sdk.ErrAlreadyExists
		case "23503": // foreign_key_violation
			return sdk.ErrNotFound
		case "23502", "23514", "22P02", "22021", "22P05":
			// not_null_violation, check_violation, invalid_text_representation,
			// character_not_in_repertoire (a NUL byte or invalid UTF-8),
			// untranslatable_character
			return sdk.ErrInvalidArgument
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return sdk.ErrConflict
		}
		switch pe.Code[:min(2, len(pe.Code))] {
		case "08", "53", "57": // connection exception, insufficient resources, operator intervention
			return sdk.ErrUnavailable
		}
		return nil
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.Timeout(err) {
		return sdk.ErrUnavailable
	}
	return nil
}

type pgDB struct {
	pool *pgxpool.Pool
	// commits batches the write transactions (group commit): a commit
	// waits for the disk, and the event lock (see dialect.eventLock)
	// makes the transactions that record events commit one at a time.
	commits group
	// flushEvents inserts the events of a batch at its end, under the
	// event lock (store.insertDeferredEvents).
	flushEvents func(ctx context.Context, q querier, evs []Event) error
	// snapshot is the last snapshot generation saw, and gen its number.
	mu       sync.Mutex
	snapshot string
	gen      uint64
}

func (db *pgDB) exec(ctx context.Context, q string, a ...any) (int64, error) {
	return pgQ{db.pool}.exec(ctx, q, a...)
}

func (db *pgDB) query(ctx context.Context, q string, a ...any) (rows, error) {
	return pgQ{db.pool}.query(ctx, q, a...)
}

func (db *pgDB) queryRow(ctx context.Context, q string, a ...any) row {
	return pgQ{db.pool}.queryRow(ctx, q, a...)
}

// tx runs in READ COMMITTED: every statement sees what committed before it,
// and the transactions that must not interleave lock the rows they change
// first (SELECT ... FOR UPDATE).
func (db *pgDB) tx(ctx context.Context, fn func(querier) error) error {
	return db.commits.tx(ctx, fn)
}

// tx1 runs fn in a transaction of its own.
func (db *pgDB) tx1(ctx context.Context, fn func(querier) error) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return fn(pgQ{tx}) })
}

// beginBatch starts the transaction of a batch (see group). Its events
// are inserted at its end, under the event lock: taken by a member, the
// lock would be held while the next members wait for rows that another
// transaction holds, waiting for the lock.
func (db *pgDB) beginBatch(ctx context.Context) (batchQuerier, func(commit bool) error, error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return nil, nil, err
	}
	b := &pgBatch{detached: detached{ctx, pgQ{tx}}}
	end := func(commit bool) error {
		if !commit {
			return tx.Rollback(ctx)
		}
		if len(b.events) > 0 {
			if err := db.flushEvents(ctx, b.detached, b.events); err != nil {
				_ = tx.Rollback(ctx)
				return err
			}
		}
		return tx.Commit(ctx)
	}
	return b, end, nil
}

// pgBatch is the querier of a batch: it keeps the members' events for the
// end (see store.addEvents).
type pgBatch struct {
	detached
	events []Event
	// mark is where the running member's events start.
	mark int
}

func (b *pgBatch) member() { b.mark = len(b.events) }

func (b *pgBatch) done(err error) {
	if err != nil {
		b.events = b.events[:b.mark]
	}
}

func (b *pgBatch) deferEvents(evs []Event) { b.events = append(b.events, evs...) }

// generation numbers the server's current snapshot: the transactions a
// statement sees (pg_current_snapshot: the lowest still running, the next
// to start, those running between). It is the same for two statements
// exactly when they see the same transactions, so the same data; it
// changes when any transaction of the server that writes starts or ends,
// in this deployment or not. Reads take no transaction id and leave it.
func (db *pgDB) generation(ctx context.Context) (uint64, bool) {
	var snap string
	if err := db.pool.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&snap); err != nil {
		return 0, false
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if snap != db.snapshot {
		// A newer number for another snapshot, even an older one read by
		// a slower request: one number never stands for two snapshots.
		db.snapshot = snap
		db.gen++
	}
	return db.gen, true
}

func (db *pgDB) close() error {
	db.pool.Close()
	return nil
}

// pgQ adapts a pool or a transaction.
type pgQ struct {
	q interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
}

func (p pgQ) exec(ctx context.Context, q string, a ...any) (int64, error) {
	tag, err := p.q.Exec(ctx, q, a...)
	return tag.RowsAffected(), err
}

func (p pgQ) query(ctx context.Context, q string, a ...any) (rows, error) {
	return p.q.Query(ctx, q, a...)
}

func (p pgQ) queryRow(ctx context.Context, q string, a ...any) row {
	return p.q.QueryRow(ctx, q, a...)
}
