package state

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/mail"
	"strings"

	"github.com/zoe-project/zoe/sdk/auth"
)

// effectiveRoleSQL is the user's role: Zoe's override, else the auth
// plugin's.
const effectiveRoleSQL = "COALESCE(role_override, auth_role)"

// effectiveEmailSQL is the user's address: the one an admin set, else the
// auth source's.
const effectiveEmailSQL = "COALESCE(email_override, email)"

const userCols = "username, " + effectiveRoleSQL + ", auth_role, user_groups, uid, gid, " + effectiveEmailSQL +
	", email, enabled, quota, created_at, last_login"

func scanUser(r row) (User, error) {
	var (
		u              User
		role, authRole string
		groups         []byte
		uid, gid       *int64
		quota          *string
	)
	if err := r.Scan(&u.Username, &role, &authRole, &groups, &uid, &gid, &u.Email, &u.AuthEmail, &u.Enabled, &quota,
		timeDst(&u.CreatedAt), timeDst(&u.LastLogin)); err != nil {
		return User{}, err
	}
	u.Role, u.AuthRole = auth.Role(role), auth.Role(authRole)
	if err := json.Unmarshal(groups, &u.Groups); err != nil {
		return User{}, fmt.Errorf("user %q: groups: %w", u.Username, err)
	}
	u.UID, u.GID = uint32Ptr(uid), uint32Ptr(gid)
	if quota != nil {
		u.Quota = *quota
	}
	return u, nil
}

func uint32Ptr(p *int64) *uint32 {
	if p == nil || *p < 0 || *p > math.MaxUint32 {
		return nil
	}
	v := uint32(*p)
	return &v
}

func uint32Arg(p *uint32) any {
	if p == nil {
		return nil
	}
	return int64(*p)
}

// MaxEmailLength bounds an address an admin sets (RFC 5321's limit on a
// path).
const MaxEmailLength = 254

// CheckEmail accepts a bare address such as "ada@example.org": no display
// name, no comments, at most MaxEmailLength bytes.
func CheckEmail(addr string) error {
	if len(addr) > MaxEmailLength {
		return invalid("email: at most %d bytes", MaxEmailLength)
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Name != "" || a.Address != addr {
		return invalid("email %q: not an address such as ada@example.org", addr)
	}
	return nil
}

func checkUsername(name string) error {
	if name == "" || strings.TrimSpace(name) != name {
		return invalid("username %q: must be non-empty, without surrounding spaces", name)
	}
	return nil
}

func (s *store) RecordLogin(ctx context.Context, id auth.Identity) (User, error) {
	if err := checkUsername(id.Username); err != nil {
		return User{}, fmt.Errorf("record login: %w", err)
	}
	if _, err := auth.ParseRole(string(id.Role)); err != nil {
		return User{}, fmt.Errorf("record login of %q: %w", id.Username, err)
	}
	groups := id.Groups
	if groups == nil {
		groups = []string{}
	}
	gj, err := json.Marshal(groups)
	if err != nil {
		return User{}, fmt.Errorf("record login of %q: %w", id.Username, err)
	}
	t := s.ts(now())
	var u User
	err = s.db.tx(ctx, func(q querier) error {
		var err error
		// role_override is Zoe's: an admin's change survives the login
		// until the source's role changes (the latest change wins).
		u, err = scanUser(q.queryRow(ctx, `INSERT INTO users
			(username, auth_role, user_groups, uid, gid, email, enabled, created_at, last_login)
			VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7, $7)
			ON CONFLICT (username) DO UPDATE SET `+syncSetSQL+`, last_login = excluded.last_login
			RETURNING `+userCols,
			id.Username, string(id.Role), string(gj), uint32Arg(id.UID), uint32Arg(id.GID), id.Email, t))
		return err
	})
	return u, s.fail(fmt.Sprintf("record login of %q", id.Username), err)
}

// syncSetSQL takes the source's fields from the row "excluded" and drops
// the role override when the source's role changed.
const syncSetSQL = `role_override = CASE WHEN users.auth_role = excluded.auth_role THEN users.role_override ELSE NULL END,
	auth_role = excluded.auth_role, user_groups = excluded.user_groups,
	uid = excluded.uid, gid = excluded.gid, email = excluded.email`

func (s *store) SyncIdentity(ctx context.Context, id auth.Identity) (User, error) {
	op := fmt.Sprintf("sync identity of %q", id.Username)
	if _, err := auth.ParseRole(string(id.Role)); err != nil {
		return User{}, fmt.Errorf("%s: %w", op, err)
	}
	groups := id.Groups
	if groups == nil {
		groups = []string{}
	}
	gj, err := json.Marshal(groups)
	if err != nil {
		return User{}, fmt.Errorf("%s: %w", op, err)
	}
	var u User
	err = s.db.tx(ctx, func(q querier) error {
		var err error
		// The same statement as a login's update, without the insert and
		// the last login: a user Zoe never saw is not created.
		u, err = scanUser(q.queryRow(ctx, `UPDATE users SET
			role_override = CASE WHEN auth_role = $2 THEN role_override ELSE NULL END,
			auth_role = $2, user_groups = $3, uid = $4, gid = $5, email = $6
			WHERE username = $1 RETURNING `+userCols,
			id.Username, string(id.Role), string(gj), uint32Arg(id.UID), uint32Arg(id.GID), id.Email))
		if isNoRows(err) {
			return notFound("user %q", id.Username)
		}
		return err
	})
	return u, s.fail(op, err)
}

func (s *store) GetUser(ctx context.Context, username string) (User, error) {
	u, err := scanUser(s.db.queryRow(ctx, "SELECT "+userCols+" FROM users WHERE username = $1", username))
	return u, s.fail(fmt.Sprintf("user %q", username), err)
}

func (s *store) ListUsers(ctx context.Context) ([]User, error) {
	rs, err := s.db.query(ctx, "SELECT "+userCols+" FROM users ORDER BY username")
	us, err := collect(rs, err, scanUser)
	return us, s.fail("list users", err)
}

func (s *store) UpdateUser(ctx context.Context, username string, up UserUpdate) (User, error) {
	op := fmt.Sprintf("update user %q", username)
	var a args
	var set []string
	switch {
	case up.ClearRole:
		set = append(set, "role_override = NULL")
	case up.Role != nil:
		if _, err := auth.ParseRole(string(*up.Role)); err != nil {
			return User{}, fmt.Errorf("%s: %w", op, err)
		}
		set = append(set, "role_override = "+a.add(string(*up.Role)))
	}
	if up.Email != nil {
		var e any
		if *up.Email != "" {
			if err := CheckEmail(*up.Email); err != nil {
				return User{}, fmt.Errorf("%s: %w", op, err)
			}
			e = *up.Email
		}
		set = append(set, "email_override = "+a.add(e))
	}
	if up.Enabled != nil {
		set = append(set, "enabled = "+a.add(*up.Enabled))
	}
	if up.Quota != nil {
		var q any
		if *up.Quota != "" {
			q = *up.Quota
		}
		set = append(set, "quota = "+a.add(q))
	}
	if len(set) == 0 {
		return s.GetUser(ctx, username)
	}
	var u User
	err := s.db.tx(ctx, func(q querier) error {
		if up.Quota != nil && *up.Quota != "" {
			if _, err := getQuota(ctx, q, *up.Quota); err != nil {
				return err
			}
		}
		var err error
		u, err = scanUser(q.queryRow(ctx, "UPDATE users SET "+strings.Join(set, ", ")+
			" WHERE username = "+a.add(username)+" RETURNING "+userCols, a...))
		if isNoRows(err) {
			return notFound("user %q", username)
		}
		if err != nil || up.Enabled == nil || *up.Enabled {
			return err
		}
		// A disabled user keeps no token: enabling them again does not
		// bring back what they had handed out.
		_, err = q.exec(ctx, "DELETE FROM tokens WHERE username = $1", username)
		return err
	})
	return u, s.fail(op, err)
}

func (s *store) ForgetUser(ctx context.Context, username string) (Forgotten, error) {
	var f Forgotten
	err := s.db.tx(ctx, func(q querier) error {
		f = Forgotten{} // see backend.tx
		var role, quota, email *string
		err := q.queryRow(ctx, "SELECT role_override, quota, email_override FROM users WHERE username = $1", username).Scan(&role, &quota, &email)
		if isNoRows(err) {
			return notFound("user %q", username)
		}
		if err != nil {
			return err
		}
		if role != nil {
			f.RoleOverride = auth.Role(*role)
		}
		if quota != nil {
			f.Quota = *quota
		}
		if email != nil {
			f.Email = *email
		}
		if f.Tokens, err = q.exec(ctx, "DELETE FROM tokens WHERE username = $1", username); err != nil {
			return err
		}
		if role == nil && quota == nil && email == nil {
			return nil
		}
		_, err = q.exec(ctx, "UPDATE users SET role_override = NULL, quota = NULL, email_override = NULL WHERE username = $1", username)
		return err
	})
	return f, s.fail(fmt.Sprintf("forget user %q", username), err)
}
