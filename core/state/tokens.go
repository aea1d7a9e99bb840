package state

import (
	"context"
	"fmt"

	"github.com/zoe-project/zoe/sdk"
)

const tokenCols = "id, username, name, hash, created_at, expires_at, last_used"

func scanToken(r row) (Token, error) {
	var t Token
	err := r.Scan(&t.ID, &t.Username, &t.Name, &t.Hash, timeDst(&t.CreatedAt), timePtrDst(&t.ExpiresAt),
		timePtrDst(&t.LastUsed))
	return t, err
}

func (s *store) CreateToken(ctx context.Context, nt NewToken) (Token, error) {
	op := fmt.Sprintf("create token %q of %q", nt.Name, nt.Username)
	switch {
	case nt.Name == "":
		return Token{}, fmt.Errorf("%s: %w", op, invalid("a token without a name"))
	case len(nt.Hash) == 0:
		return Token{}, fmt.Errorf("%s: %w", op, invalid("a token without a hash"))
	}
	var out Token
	err := s.db.tx(ctx, func(q querier) error {
		var n int64
		if err := q.queryRow(ctx, "SELECT COUNT(*) FROM users WHERE username = $1", nt.Username).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return notFound("user %q", nt.Username)
		}
		// An expired token no longer holds its name.
		if _, err := q.exec(ctx, "DELETE FROM tokens WHERE username = $1 AND name = $2 AND expires_at <= $3",
			nt.Username, nt.Name, s.ts(now())); err != nil {
			return err
		}
		if nt.Max > 0 {
			if err := makeRoom(ctx, q, s.ts(now()), nt); err != nil {
				return err
			}
		}
		var err error
		out, err = scanToken(q.queryRow(ctx, `INSERT INTO tokens (username, name, hash, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5) RETURNING `+tokenCols,
			nt.Username, nt.Name, nt.Hash, s.ts(now()), s.tsp(nt.ExpiresAt)))
		return err
	})
	// The hash stays out of the error: it is as good as the token to
	// whoever can read the logs of a look-up by hash.
	return out, s.fail(op, err)
}

// makeRoom removes the user's expired tokens, then as many of the oldest
// evictable ones as the new token needs under nt.Max.
func makeRoom(ctx context.Context, q querier, now any, nt NewToken) error {
	if _, err := q.exec(ctx, "DELETE FROM tokens WHERE username = $1 AND expires_at <= $2", nt.Username, now); err != nil {
		return err
	}
	var n int64
	if err := q.queryRow(ctx, "SELECT COUNT(*) FROM tokens WHERE username = $1", nt.Username).Scan(&n); err != nil {
		return err
	}
	over := n - int64(nt.Max) + 1
	if over <= 0 {
		return nil
	}
	if nt.Evictable != "" {
		removed, err := q.exec(ctx, `DELETE FROM tokens WHERE id IN (SELECT id FROM tokens
			WHERE username = $1 AND substr(name, 1, $2) = $3 ORDER BY id LIMIT $4)`,
			nt.Username, int64(len(nt.Evictable)), nt.Evictable, over)
		if err != nil {
			return err
		}
		over -= removed
	}
	if over > 0 {
		return sdk.WithCategory(sdk.ErrResourceExhausted, fmt.Sprintf("%s has %d tokens, the most allowed: revoke one first", nt.Username, n))
	}
	return nil
}

func (s *store) TokenByHash(ctx context.Context, hash []byte) (Token, error) {
	t, err := scanToken(s.db.queryRow(ctx, "SELECT "+tokenCols+" FROM tokens WHERE hash = $1", hash))
	if isNoRows(err) {
		err = notFound("no such token")
	}
	return t, s.fail("token by hash", err)
}

func (s *store) ListTokens(ctx context.Context, username string) ([]Token, error) {
	rs, err := s.db.query(ctx, "SELECT "+tokenCols+" FROM tokens WHERE username = $1 ORDER BY id", username)
	ts, err := collect(rs, err, scanToken)
	return ts, s.fail(fmt.Sprintf("tokens of %q", username), err)
}

func (s *store) DeleteToken(ctx context.Context, username string, id int64) error {
	err := s.db.tx(ctx, func(q querier) error {
		n, err := q.exec(ctx, "DELETE FROM tokens WHERE username = $1 AND id = $2", username, id)
		if err == nil && n == 0 {
			// In words: "...: not found" would repeat what it says.
			return sdk.WithCategory(sdk.ErrNotFound, fmt.Sprintf("user %q has no token %d", username, id))
		}
		return err
	})
	return s.fail("delete token", err)
}

func (s *store) TouchToken(ctx context.Context, id int64) error {
	err := s.db.tx(ctx, func(q querier) error {
		n, err := q.exec(ctx, "UPDATE tokens SET last_used = $1 WHERE id = $2", s.ts(now()), id)
		if err == nil && n == 0 {
			return notFound("token %d", id)
		}
		return err
	})
	return s.fail("touch token", err)
}

func (s *store) DeleteTokens(ctx context.Context, username string) (int64, error) {
	var n int64
	err := s.db.tx(ctx, func(q querier) error {
		var err error
		n, err = q.exec(ctx, "DELETE FROM tokens WHERE username = $1", username)
		return err
	})
	return n, s.fail(fmt.Sprintf("delete the tokens of %q", username), err)
}

func (s *store) PurgeExpiredTokens(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.tx(ctx, func(q querier) error {
		var err error
		n, err = q.exec(ctx, "DELETE FROM tokens WHERE expires_at <= $1", s.ts(now()))
		return err
	})
	return n, s.fail("purge expired tokens", err)
}

func (s *store) TokenHolders(ctx context.Context) ([]string, error) {
	rs, err := s.db.query(ctx, "SELECT DISTINCT username FROM tokens ORDER BY username")
	names, err := collect(rs, err, func(r row) (string, error) {
		var n string
		return n, r.Scan(&n)
	})
	return names, s.fail("token holders", err)
}
