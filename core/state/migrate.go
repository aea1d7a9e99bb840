package state

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"

	"github.com/zoe-project/zoe/sdk"
)

// CurrentSchemaVersion is the newest schema this zoe knows: the number of
// migrations of each dialect.
const CurrentSchemaVersion = 5

// identityVersion is the schema version that has the store_meta table,
// which holds the store's identity.
const identityVersion = 4

// migrationFiles holds migrations/<dialect>/NNNN_name.sql; migration N
// brings the schema from version N-1 to N.
//
//go:embed migrations
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the dialect's migrations in order, checking they are
// numbered 1..CurrentSchemaVersion without gaps.
func migrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	re := regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)
	var out []migration
	for _, e := range entries {
		m := re.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migrations: unexpected file %s/%s", dir, e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v != len(out)+1 {
			return nil, fmt.Errorf("migrations: %s/%s out of sequence, want version %d", dir, e.Name(), len(out)+1)
		}
		text, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("migrations: %w", err)
		}
		out = append(out, migration{version: v, name: m[2], sql: string(text)})
	}
	if len(out) != CurrentSchemaVersion {
		return nil, fmt.Errorf("migrations: %s has %d, CurrentSchemaVersion is %d", dir, len(out), CurrentSchemaVersion)
	}
	return out, nil
}

// migrate brings the schema to version target in one transaction, under a
// lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so that
// daemons starting together apply each migration once. A database newer
// than this zoe is refused: its schema may mean things this code does not
// know.
func (s *store) migrate(ctx context.Context, target int) error {
	ms, err := migrations(s.d.name)
	if err != nil {
		return err
	}
	err = s.db.tx(ctx, func(q querier) error {
		if err := s.d.migrationLock(ctx, q); err != nil {
			return err
		}
		if _, err := q.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at `+s.d.timeType+` NOT NULL)`); err != nil {
			return err
		}
		cur, err := schemaVersion(ctx, q)
		if err != nil {
			return err
		}
		if cur > CurrentSchemaVersion {
			return fmt.Errorf("database schema version %d is newer than this zoe (%d); upgrade zoe: %w",
				cur, CurrentSchemaVersion, sdk.ErrUnsupported)
		}
		for _, m := range ms {
			if m.version <= cur || m.version > target {
				continue
			}
			if _, err := q.exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
			}
			if _, err := q.exec(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
				m.version, m.name, s.ts(now())); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
			}
			s.log.Info("applied schema migration", "version", m.version, "name", m.name)
		}
		if max(cur, target) >= identityVersion {
			// Once, under the migration lock: a store opened again, or by
			// another process, keeps the identity it was given first.
			id, err := newIdentity()
			if err != nil {
				return err
			}
			if _, err := q.exec(ctx, "INSERT INTO store_meta (key, value) VALUES ('identity', $1) ON CONFLICT (key) DO NOTHING",
				id); err != nil {
				return fmt.Errorf("store identity: %w", err)
			}
		}
		return nil
	})
	return s.fail("migrate", err)
}

// newIdentity is a store identity: 128 random bits in hex, so that two
// stores never share one by chance.
func newIdentity() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("store identity: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Identity is the store's identity (see Store.Identity).
func (s *store) Identity(ctx context.Context) (string, error) {
	var id string
	err := s.db.queryRow(ctx, "SELECT value FROM store_meta WHERE key = 'identity'").Scan(&id)
	return id, s.fail("store identity", err)
}

func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v int64
	err := q.queryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v)
	return int(v), err
}

func (s *store) SchemaVersion(ctx context.Context) (int, error) {
	v, err := schemaVersion(ctx, s.db)
	return v, s.fail("schema version", err)
}

func (s *store) Close() error { return s.db.close() }
