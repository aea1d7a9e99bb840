package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/zoe-project/zoe/sdk"
)

// OpenSQLite opens the SQLite database file at path, creating it (mode 0600:
// it holds token hashes) and its directory when missing, and brings its
// schema up to date.
func OpenSQLite(ctx context.Context, path string, log hclog.Logger) (Store, error) {
	return openSQLite(ctx, path, log, CurrentSchemaVersion)
}

// openSQLite migrates to version target; only tests ask for less than
// CurrentSchemaVersion.
func openSQLite(ctx context.Context, path string, log hclog.Logger, target int) (*store, error) {
	if path == "" {
		return nil, invalid("sqlite: no database file")
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// SQLite would create the file with the umask's mode; its -wal and -shm
	// files copy the mode of the database file.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
	case !errors.Is(err, os.ErrExist):
		return nil, fmt.Errorf("sqlite: %w", err)
	}

	// One writer at a time: the store's transactions run one after the
	// other (group), so they queue instead of spinning on SQLITE_BUSY, and
	// every transaction is BEGIN IMMEDIATE, holding the write lock from the
	// start (other processes wait on the busy timeout). Two connections:
	// database/sql prepares a statement on a free one before it prepares
	// it again on the transaction's (sqliteTx). Readers have their own
	// pool and never block the writer in WAL mode.
	w, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	w.SetMaxOpenConns(2)
	w.SetMaxIdleConns(2)
	r, err := sql.Open("sqlite", sqliteDSN(path, true))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)

	db := &sqliteDB{w: w, r: r}
	db.commits.alone, db.commits.begin = db.tx1, db.beginBatch
	s := &store{db: db, d: sqliteDialect(), log: named(log)}
	if err := migrateRetrying(ctx, s, target); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	s.log.Info("state store opened", "store", "sqlite", "path", path)
	return s, nil
}

// migrateRetrying migrates, retrying while the database is busy: turning a
// new file to WAL mode takes an exclusive lock for which SQLite does not
// wait on the busy timeout, so daemons opening one new file together can
// be told "database is locked" once.
func migrateRetrying(ctx context.Context, s *store, target int) error {
	for delay := 10 * time.Millisecond; ; delay *= 2 {
		err := s.migrate(ctx, target)
		if err == nil || !errors.Is(err, sdk.ErrUnavailable) || delay > 2*time.Second {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

// sqliteDSN: WAL (readers do not block the writer), synchronous=FULL (a
// commit survives a power cut, not only a crash: Zoe must never lose an
// execution), foreign keys (cascades), a busy timeout for other processes.
func sqliteDSN(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_busy_timeout", "10000")
	q.Add("_foreign_keys", "1")
	q.Add("_journal_mode", "WAL")
	q.Add("_synchronous", "FULL")
	q.Add("_txlock", "immediate")
	if readOnly {
		q.Add("_query_only", "1")
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

func sqliteDialect() dialect {
	return dialect{
		name:           "sqlite",
		forUpdate:      "",
		forNoKeyUpdate: "",
		contains:       "instr(%[1]s, %[2]s) > 0",
		timeType:       "TEXT",
		encodeTime:     func(t time.Time) any { return t.Format(sqliteTime) },
		category:       sqliteCategory,
		// BEGIN IMMEDIATE already excludes every other writer.
		migrationLock: func(context.Context, querier) error { return nil },
		eventLock:     func(context.Context, querier) error { return nil },
	}
}

func sqliteCategory(err error) error {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return nil
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return sdk.ErrAlreadyExists
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return sdk.ErrNotFound
	case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL:
		return sdk.ErrInvalidArgument
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL:
		return sdk.ErrUnavailable
	}
	return nil
}

type sqliteDB struct {
	w, r *sql.DB
	// version is a connection of its own asking PRAGMA data_version,
	// which changes whenever another connection (this store's writer, or
	// another daemon's) commits a write.
	versionMu sync.Mutex
	version   *sql.Conn
	// data_version grows on one connection; a new one starts again from
	// 1, so its values are added to the last one given (generations only
	// grow).
	versionBase, versionLast uint64
	// reads and writes keep the statements prepared: parsing a query
	// costs about as much as running a small one.
	reads, writes stmtCache
	// commits batches the write transactions (group commit): with
	// synchronous=FULL every commit waits for the disk.
	commits group
}

// stmtCache holds prepared statements by query text. The queries are the
// store's own, a few dozen shapes; the bound is a safety net.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

const maxCachedStatements = 256

// stmt returns q prepared on db, or nil when it cannot be (it is then run
// unprepared, and fails there if it is wrong).
func (c *stmtCache) stmt(ctx context.Context, db *sql.DB, q string) *sql.Stmt {
	c.mu.Lock()
	st := c.m[q]
	full := len(c.m) >= maxCachedStatements
	c.mu.Unlock()
	if st != nil || full {
		return st
	}
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	if old := c.m[q]; old != nil {
		_ = st.Close()
		return old
	}
	c.m[q] = st
	return st
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, st := range c.m {
		errs = append(errs, st.Close())
	}
	c.m = nil
	return errors.Join(errs...)
}

func (db *sqliteDB) exec(ctx context.Context, q string, a ...any) (int64, error) {
	return sqlQ{db.w}.exec(ctx, q, a...)
}

func (db *sqliteDB) generation(ctx context.Context) (uint64, bool) {
	db.versionMu.Lock()
	defer db.versionMu.Unlock()
	if db.version == nil {
		c, err := db.r.Conn(ctx)
		if err != nil {
			return 0, false
		}
		db.version, db.versionBase = c, db.versionLast
	}
	var v uint64
	if err := db.version.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		_ = db.version.Close()
		db.version = nil
		return 0, false
	}
	db.versionLast = db.versionBase + v
	return db.versionLast, true
}

func (db *sqliteDB) query(ctx context.Context, q string, a ...any) (rows, error) {
	if st := db.reads.stmt(ctx, db.r, q); st != nil {
		rs, err := st.QueryContext(ctx, a...)
		if err != nil {
			return nil, err
		}
		return sqlRows{rs}, nil
	}
	return sqlQ{db.r}.query(ctx, q, a...)
}

func (db *sqliteDB) queryRow(ctx context.Context, q string, a ...any) row {
	if st := db.reads.stmt(ctx, db.r, q); st != nil {
		return st.QueryRowContext(ctx, a...)
	}
	return sqlQ{db.r}.queryRow(ctx, q, a...)
}

func (db *sqliteDB) tx(ctx context.Context, fn func(querier) error) error {
	return db.commits.tx(ctx, fn)
}

// tx1 runs fn in a transaction of its own.
func (db *sqliteDB) tx1(ctx context.Context, fn func(querier) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer rollbackOnPanic(tx)
	if err := fn(sqliteTx{tx: tx, db: db}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// rollbackOnPanic ends the transaction of a write that panics: it would
// hold the writer's one connection for good.
func rollbackOnPanic(tx *sql.Tx) {
	if r := recover(); r != nil {
		_ = tx.Rollback()
		panic(r)
	}
}

// beginBatch starts the transaction of a batch (see group).
func (db *sqliteDB) beginBatch(ctx context.Context) (batchQuerier, func(commit bool) error, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	end := func(commit bool) error {
		if commit {
			return tx.Commit()
		}
		return tx.Rollback()
	}
	return plainBatch{detached{ctx, sqliteTx{tx: tx, db: db}}}, end, nil
}

func (db *sqliteDB) close() error {
	db.versionMu.Lock()
	var verr error
	if db.version != nil {
		verr = db.version.Close()
		db.version = nil
	}
	db.versionMu.Unlock()
	return errors.Join(verr, db.reads.close(), db.writes.close(), db.r.Close(), db.w.Close())
}

// sqliteTx runs a transaction's statements prepared (db.writes).
type sqliteTx struct {
	tx *sql.Tx
	db *sqliteDB
}

// stmt returns q prepared in the transaction, or nil.
func (t sqliteTx) stmt(ctx context.Context, q string) *sql.Stmt {
	st := t.db.writes.stmt(ctx, t.db.w, q)
	if st == nil {
		return nil
	}
	// Prepared on this transaction's connection once, then reused.
	return t.tx.StmtContext(ctx, st)
}

func (t sqliteTx) exec(ctx context.Context, q string, a ...any) (int64, error) {
	st := t.stmt(ctx, q)
	if st == nil {
		return sqlQ{t.tx}.exec(ctx, q, a...)
	}
	res, err := st.ExecContext(ctx, a...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t sqliteTx) query(ctx context.Context, q string, a ...any) (rows, error) {
	st := t.stmt(ctx, q)
	if st == nil {
		return sqlQ{t.tx}.query(ctx, q, a...)
	}
	rs, err := st.QueryContext(ctx, a...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

func (t sqliteTx) queryRow(ctx context.Context, q string, a ...any) row {
	st := t.stmt(ctx, q)
	if st == nil {
		return sqlQ{t.tx}.queryRow(ctx, q, a...)
	}
	return st.QueryRowContext(ctx, a...)
}

// sqlQ adapts a *sql.DB or *sql.Tx.
type sqlQ struct {
	q interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
}

func (s sqlQ) exec(ctx context.Context, q string, a ...any) (int64, error) {
	res, err := s.q.ExecContext(ctx, q, a...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s sqlQ) query(ctx context.Context, q string, a ...any) (rows, error) {
	rs, err := s.q.QueryContext(ctx, q, a...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

func (s sqlQ) queryRow(ctx context.Context, q string, a ...any) row {
	return s.q.QueryRowContext(ctx, q, a...)
}

type sqlRows struct{ *sql.Rows }

// Close drops the error: it only repeats what Err reports.
func (r sqlRows) Close() { _ = r.Rows.Close() }
