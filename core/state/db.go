package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/zoe-project/zoe/sdk"
)

// The two implementations share every query: both dialects accept $n
// placeholders, RETURNING and ON CONFLICT. What differs (connections,
// transactions, row locks, time encoding, error codes) is behind backend and
// dialect.

// querier runs statements, on the pool or inside a transaction.
type querier interface {
	exec(ctx context.Context, query string, args ...any) (int64, error)
	query(ctx context.Context, query string, args ...any) (rows, error)
	queryRow(ctx context.Context, query string, args ...any) row
}

type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

type row interface {
	Scan(dest ...any) error
}

// backend is one database's connection pool.
type backend interface {
	// querier is for reads; every write goes through tx (on SQLite the
	// pool of reads is read-only).
	querier
	// tx runs fn in a write transaction and commits when it returns nil.
	// Write transactions of one database are serialised for the rows they
	// lock: SQLite takes the write lock at BEGIN (IMMEDIATE), PostgreSQL
	// locks the rows read with dialect.forUpdate. Several calls may share
	// one transaction and its commit (group commit), each in a savepoint,
	// and fn may run more than once: it sets what it returns rather than
	// adding to it.
	tx(ctx context.Context, fn func(q querier) error) error
	close() error
	// generation grows whenever a write commits, by this store or any
	// other on the same database (another daemon); ok is false when it
	// cannot be known cheaply, and reads are then not cached.
	generation(ctx context.Context) (gen uint64, ok bool)
}

// dialect is what the shared SQL needs to know about the database.
type dialect struct {
	name string
	// forUpdate is appended to reads of rows a transaction is about to
	// change; "" where BEGIN IMMEDIATE already serialises writers.
	forUpdate string
	// forNoKeyUpdate is forUpdate for a row whose key stays: it lets other
	// transactions insert rows referencing it meanwhile (see eventLock).
	forNoKeyUpdate string
	// contains is the SQL of "%[1]s contains %[2]s", case-sensitive and
	// without LIKE's wildcards.
	contains string
	// timeType is the column type of times.
	timeType string
	// encodeTime turns a UTC time into a query argument.
	encodeTime func(time.Time) any
	// category maps a driver error to an sdk category, nil when none fits.
	category func(error) error
	// migrationLock is run first in the migration transaction.
	migrationLock func(ctx context.Context, q querier) error
	// eventLock is run right before a transaction inserts an event, as its
	// last statement, and held until the commit, so that event ids become
	// visible in the order they are handed out: a reader of the event feed
	// that sees id n sees every id below n that will ever commit, and a
	// client resuming after n misses nothing. SQLite needs nothing: its
	// writers are serialised from BEGIN IMMEDIATE on. On PostgreSQL a
	// transaction holding it waits, at most, for the lock on the event's
	// execution row that the foreign key check takes (KEY SHARE), so a
	// transaction that waits for it must not hold that row FOR UPDATE (see
	// forNoKeyUpdate) or the two deadlock.
	eventLock func(ctx context.Context, q querier) error
}

var _ Store = (*store)(nil)

// store implements Store on a backend.
type store struct {
	db  backend
	d   dialect
	log hclog.Logger
}

// Version grows whenever a write commits (see Store.Version).
func (s *store) Version(ctx context.Context) (uint64, bool) { return s.db.generation(ctx) }

// now is the store's clock: UTC, microseconds (what PostgreSQL keeps), so
// that a time reads back equal to what was written.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func (s *store) ts(t time.Time) any { return s.d.encodeTime(t.UTC().Truncate(time.Microsecond)) }

func (s *store) tsp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return s.ts(*t)
}

// sqliteTime is how SQLite stores times: fixed width, so text order is time
// order.
const sqliteTime = "2006-01-02T15:04:05.000000Z07:00"

// tsDst scans a time column into t (NOT NULL) or p (nullable), in UTC:
// PostgreSQL sends timestamptz, SQLite text.
type tsDst struct {
	t *time.Time
	p **time.Time
}

func timeDst(t *time.Time) *tsDst     { return &tsDst{t: t} }
func timePtrDst(p **time.Time) *tsDst { return &tsDst{p: p} }

func (d *tsDst) set(t time.Time, valid bool) error {
	switch {
	case d.p != nil && !valid:
		*d.p = nil
	case !valid:
		return errors.New("NULL in a NOT NULL time column")
	case d.p != nil:
		t = t.UTC()
		*d.p = &t
	default:
		*d.t = t.UTC()
	}
	return nil
}

// Scan implements sql.Scanner for SQLite.
func (d *tsDst) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		return d.set(time.Time{}, false)
	case time.Time:
		return d.set(v, true)
	case string:
		t, err := time.Parse(sqliteTime, v)
		if err != nil {
			return fmt.Errorf("bad time %q: %w", v, err)
		}
		return d.set(t, true)
	case []byte:
		return d.Scan(string(v))
	}
	return fmt.Errorf("cannot scan %T into a time", src)
}

// ScanTimestamptz implements pgtype.TimestamptzScanner for PostgreSQL.
func (d *tsDst) ScanTimestamptz(v pgtype.Timestamptz) error {
	if v.InfinityModifier != pgtype.Finite {
		return errors.New("infinite time")
	}
	return d.set(v.Time, v.Valid)
}

var _ sql.Scanner = (*tsDst)(nil)
var _ pgtype.TimestamptzScanner = (*tsDst)(nil)

// args collects the arguments of a query built piece by piece; add returns
// the placeholder of the value.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// in returns "(ph1, ph2, ...)" for vs.
func in[T any](a *args, vs []T) string {
	ph := make([]string, len(vs))
	for i, v := range vs {
		ph[i] = a.add(v)
	}
	return "(" + strings.Join(ph, ", ") + ")"
}

// activeSQL selects active executions. It is spelt exactly as in the partial
// index executions_active of the migrations so that the planners use it.
const activeSQL = "status IN ('submitted', 'queued', 'starting', 'running', 'cleaning_up')"

// fail wraps err with what was being done and, when err has none yet, the sdk
// category of the driver error.
func (s *store) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	if sdk.Category(err) != sdk.ErrInternal {
		return fmt.Errorf("%s: %w", op, err)
	}
	var cat error
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// The driver's words add nothing, and reach API clients.
		return fmt.Errorf("%s: %w", op, sdk.ErrNotFound)
	case errors.Is(err, context.DeadlineExceeded):
		cat = sdk.ErrDeadlineExceeded
	default:
		cat = s.d.category(err)
	}
	if cat == nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return &dbError{op: op, cat: cat, err: err}
}

// dbError is a driver's error sorted into an sdk category. Its message
// says what went wrong in words: the database's own text ("UNIQUE
// constraint failed: quotas.name (1555)") reaches API clients otherwise.
// The driver's error stays reachable, for the logs (Cause, Unwrap).
type dbError struct {
	op       string
	cat, err error
}

func (e *dbError) Error() string {
	what := "the database refused it"
	switch e.cat {
	case sdk.ErrAlreadyExists:
		what = "it already exists"
	case sdk.ErrNotFound:
		what = "it refers to something that does not exist"
	case sdk.ErrInvalidArgument:
		what = "the database refuses a value"
	case sdk.ErrConflict:
		what = "it clashed with a concurrent change; try again"
	case sdk.ErrUnavailable:
		what = "the database is unavailable"
	case sdk.ErrDeadlineExceeded:
		what = "the database did not answer in time"
	}
	return e.op + ": " + what
}

func (e *dbError) Unwrap() []error { return []error{e.cat, e.err} }

// Cause is the driver's error, for the logs.
func (e *dbError) Cause() error { return e.err }

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

func notFound(format string, a ...any) error {
	return fmt.Errorf(format+": %w", append(a, sdk.ErrNotFound)...)
}

func invalid(format string, a ...any) error {
	return fmt.Errorf(format+": %w", append(a, sdk.ErrInvalidArgument)...)
}

// jsonText validates a JSON document for a NOT NULL column; empty means {}.
func jsonText(what string, doc json.RawMessage) (string, error) {
	if len(doc) == 0 {
		return "{}", nil
	}
	if !json.Valid(doc) {
		return "", invalid("%s is not valid JSON", what)
	}
	return string(doc), nil
}

// collect reads all rows with scan.
func collect[T any](rs rows, err error, scan func(row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []T
	for rs.Next() {
		v, err := scan(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rs.Err()
}

func intPtr(p *int64) *int {
	if p == nil {
		return nil
	}
	v := int(*p)
	return &v
}
