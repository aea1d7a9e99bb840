package state

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

const quotaCols = "name, concurrent_executions, cores, memory, runtime_limit_seconds"

func scanQuota(r row) (Quota, error) {
	var (
		q       Quota
		conc    int64
		seconds int64
	)
	if err := r.Scan(&q.Name, &conc, &q.Cores, &q.Memory, &seconds); err != nil {
		return Quota{}, err
	}
	q.ConcurrentExecutions = int(conc)
	q.RuntimeLimit = time.Duration(seconds) * time.Second
	return q, nil
}

// Bounds of a quota's limits (0 is unlimited): far above any cluster, and
// low enough that sums and conversions of them keep their meaning.
const (
	MaxQuotaExecutions = 1_000_000
	MaxQuotaCores      = 1_000_000.0
	MaxQuotaMemory     = int64(1) << 60 // 1 EiB
	MaxQuotaRuntime    = 100 * 365 * 24 * time.Hour
)

func checkQuota(q Quota) error {
	switch {
	case q.Name == "":
		return invalid("quota without a name")
	case q.ConcurrentExecutions < 0, q.Cores < 0, math.IsNaN(q.Cores), math.IsInf(q.Cores, 0), q.Memory < 0, q.RuntimeLimit < 0:
		return invalid("quota %q: limits must be positive, or 0 for unlimited", q.Name)
	case q.ConcurrentExecutions > MaxQuotaExecutions, q.Cores > MaxQuotaCores, q.Memory > MaxQuotaMemory, q.RuntimeLimit > MaxQuotaRuntime:
		return invalid("quota %q: limits must be at most %d executions, %g cores, %d bytes of memory and %v of run time",
			q.Name, MaxQuotaExecutions, MaxQuotaCores, MaxQuotaMemory, MaxQuotaRuntime)
	case q.RuntimeLimit%time.Second != 0:
		return invalid("quota %q: the run-time limit must be whole seconds, not %v", q.Name, q.RuntimeLimit)
	}
	return nil
}

// roleDefault says whether name is the default quota of a role.
func roleDefault(name string) bool {
	_, err := auth.ParseRole(name)
	return err == nil
}

func getQuota(ctx context.Context, q querier, name string) (Quota, error) {
	qu, err := scanQuota(q.queryRow(ctx, "SELECT "+quotaCols+" FROM quotas WHERE name = $1", name))
	if isNoRows(err) {
		return Quota{}, notFound("quota %q", name)
	}
	return qu, err
}

func (s *store) CreateQuota(ctx context.Context, q Quota) (Quota, error) {
	op := fmt.Sprintf("create quota %q", q.Name)
	if err := checkQuota(q); err != nil {
		return Quota{}, fmt.Errorf("%s: %w", op, err)
	}
	var out Quota
	err := s.db.tx(ctx, func(tx querier) error {
		var err error
		out, err = scanQuota(tx.queryRow(ctx, "INSERT INTO quotas ("+quotaCols+") VALUES ($1, $2, $3, $4, $5) RETURNING "+quotaCols,
			q.Name, int64(q.ConcurrentExecutions), q.Cores, q.Memory, int64(q.RuntimeLimit/time.Second)))
		return err
	})
	if err = s.fail(op, err); errors.Is(err, sdk.ErrAlreadyExists) {
		return Quota{}, sdk.WithCategory(sdk.ErrAlreadyExists, fmt.Sprintf("quota %q already exists", q.Name))
	}
	return out, err
}

func (s *store) GetQuota(ctx context.Context, name string) (Quota, error) {
	q, err := getQuota(ctx, s.db, name)
	return q, s.fail("get quota", err)
}

func (s *store) ListQuotas(ctx context.Context) ([]Quota, error) {
	rs, err := s.db.query(ctx, "SELECT "+quotaCols+" FROM quotas ORDER BY name")
	qs, err := collect(rs, err, scanQuota)
	return qs, s.fail("list quotas", err)
}

func (s *store) UpdateQuota(ctx context.Context, q Quota) (Quota, error) {
	op := fmt.Sprintf("update quota %q", q.Name)
	if err := checkQuota(q); err != nil {
		return Quota{}, fmt.Errorf("%s: %w", op, err)
	}
	var out Quota
	err := s.db.tx(ctx, func(tx querier) error {
		var err error
		out, err = scanQuota(tx.queryRow(ctx, `UPDATE quotas SET concurrent_executions = $2, cores = $3, memory = $4,
			runtime_limit_seconds = $5 WHERE name = $1 RETURNING `+quotaCols,
			q.Name, int64(q.ConcurrentExecutions), q.Cores, q.Memory, int64(q.RuntimeLimit/time.Second)))
		if isNoRows(err) {
			return notFound("quota %q", q.Name)
		}
		return err
	})
	return out, s.fail(op, err)
}

func (s *store) DeleteQuota(ctx context.Context, name string) error {
	op := fmt.Sprintf("delete quota %q", name)
	if roleDefault(name) {
		return fmt.Errorf("%s: %w", op, invalid("it is the default quota of role %s and cannot be deleted", name))
	}
	err := s.db.tx(ctx, func(q querier) error {
		// The users' quota column is ON DELETE SET NULL: they fall back to
		// their role's default.
		n, err := q.exec(ctx, "DELETE FROM quotas WHERE name = $1", name)
		if err == nil && n == 0 {
			return notFound("quota %q", name)
		}
		return err
	})
	return s.fail(op, err)
}

func effectiveQuota(ctx context.Context, q querier, username, lock string) (Quota, bool, error) {
	var (
		qu      Quota
		enabled bool
		conc    int64
		seconds int64
	)
	// Locking the user's row (PostgreSQL; "OF u": not the quota's, shared by
	// many users) serialises the submissions of one user.
	if lock != "" {
		lock += " OF u"
	}
	err := q.queryRow(ctx, `SELECT q.name, q.concurrent_executions, q.cores, q.memory, q.runtime_limit_seconds, u.enabled
		FROM users u JOIN quotas q ON q.name = COALESCE(u.quota, u.role_override, u.auth_role)
		WHERE u.username = $1`+lock, username).Scan(&qu.Name, &conc, &qu.Cores, &qu.Memory, &seconds, &enabled)
	if isNoRows(err) {
		return Quota{}, false, notFound("user %q (users are recorded at their first login)", username)
	}
	qu.ConcurrentExecutions = int(conc)
	qu.RuntimeLimit = time.Duration(seconds) * time.Second
	return qu, enabled, err
}

func (s *store) EffectiveQuota(ctx context.Context, username string) (Quota, error) {
	q, _, err := effectiveQuota(ctx, s.db, username, "")
	return q, s.fail("effective quota", err)
}
