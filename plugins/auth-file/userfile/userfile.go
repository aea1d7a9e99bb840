// Package userfile reads Zoe's users file: a text file with one user a line.
//
// Format:
//
//	# comment
//	username,password,role[,uid[,gid]]
//
// Blank lines and lines whose first non-space character is '#' are ignored,
// and spaces around each field are trimmed. A field may be quoted as in CSV
// ("pa,ss" or "say ""hi""") to hold commas, quotes or leading and trailing
// spaces; a quoted field ends on its line.
//
//   - username: 1 to 64 ASCII letters, digits, '.', '_', '-' or '@', not
//     starting with '.' or '-' (it names the user's workspace directory).
//   - password: plain text, or a bcrypt hash ($2a$, $2b$ or $2y$) as printed
//     by HashPassword or `htpasswd -nbB`. Plain text is accepted for the
//     original Zoe's files but should be replaced by hashes. A password
//     that starts with '!' marks a disabled user, as in /etc/shadow: the
//     rest (possibly empty) is the password kept for when the user is
//     enabled again, and the user can neither log in nor be looked up.
//     A plain-text password of an older file that starts with '!' thus
//     disables its user: it fails closed, and `zoe users-file ls` shows it.
//   - role: guest, user or admin.
//   - uid, gid: optional POSIX user and group ids (0 to 4294967295); an empty
//     field means the id is not known.
//
// Every problem is reported as FILE:LINE: message, all of them at once.
// Messages never quote a field other than an already valid username, so a
// password written in the wrong column does not end up in logs.
package userfile

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/zoe-project/zoe/sdk/auth"
)

const (
	// HashCost is the bcrypt cost of HashPassword.
	HashCost = 12
	// MaxUsernameLen is the longest username accepted.
	MaxUsernameLen = 64
	// maxLineLen bounds a line so that a wrong file (a binary, a log) fails
	// quickly instead of being read into memory.
	maxLineLen = 64 * 1024
	// bcryptHashLen is the length of a bcrypt hash: "$2b$" + cost "12" + "$"
	// + 22 characters of salt + 31 of hash.
	bcryptHashLen = 60
)

// Entry is one user of a users file. It holds no secret.
type Entry struct {
	Username string
	Role     auth.Role
	// UID and GID are nil when the line does not give them.
	UID *uint32
	GID *uint32
	// Line is the line of the file that defines the user.
	Line int
	// Hashed tells whether the password is a bcrypt hash (false: plain
	// text, or none).
	Hashed bool
	// Disabled tells whether the password field starts with '!': the user
	// can neither log in nor be looked up.
	Disabled bool
	// NoPassword tells whether the line has no password at all (a disabled
	// user whose field is only '!').
	NoPassword bool
}

// Identity returns the entry as the identity of an authenticated user.
func (e Entry) Identity() auth.Identity {
	return auth.Identity{Username: e.Username, Role: e.Role, UID: copyID(e.UID), GID: copyID(e.GID)}
}

// entry is an Entry with its secret: the bcrypt hash, or the SHA-256 digest
// of the plain password (kept as a digest so that comparing it takes the
// same time whatever the lengths).
type entry struct {
	Entry
	hash   []byte
	digest [sha256.Size]byte
	cost   int
}

// Users is a parsed users file. It is immutable and safe for concurrent use.
type Users struct {
	byName map[string]*entry
	order  []*entry
	// dummy is the hash of highest cost in the file (nil when there is none):
	// checks that have no hash of their own are run against it, so that an
	// unknown user or a plain password costs as much time as a hashed one
	// and usernames cannot be told apart by timing.
	dummy []byte
	// maxCost is the cost of dummy.
	maxCost int
	// compare is bcrypt.CompareHashAndPassword; tests see through it which
	// hashes a check compares against.
	compare func(hash, password []byte) error
}

// LineError is one problem at one line of a users file.
type LineError struct {
	File string
	Line int
	Msg  string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Parse reads a users file; name is the file name used in errors. When the
// file has problems, the error lists every one of them as a *LineError
// joined with errors.Join, one a line.
func Parse(name string, r io.Reader) (*Users, error) {
	u := &Users{byName: make(map[string]*entry), compare: bcrypt.CompareHashAndPassword}
	// seen holds the first line of every valid username, including those of
	// lines with other problems, so that duplicates are reported too.
	seen := make(map[string]int)
	var errs []error
	fail := func(line int, format string, args ...any) {
		errs = append(errs, &LineError{File: name, Line: line, Msg: fmt.Sprintf(format, args...)})
	}

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		e, msgs := parseLine(line)
		for _, m := range msgs {
			fail(n, "%s", m)
		}
		if e == nil || checkUsername(e.Username) != "" {
			continue
		}
		if prev, ok := seen[e.Username]; ok {
			fail(n, "duplicate user %q (first defined on line %d)", e.Username, prev)
			continue
		}
		seen[e.Username] = n
		if len(msgs) > 0 {
			continue
		}
		e.Line = n
		u.byName[e.Username] = e
		u.order = append(u.order, e)
		if e.Hashed && e.cost > u.maxCost {
			u.dummy, u.maxCost = e.hash, e.cost
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			fail(n+1, "line longer than %d bytes; is this a users file?", maxLineLen)
		} else {
			errs = append(errs, fmt.Errorf("read %s: %w", name, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return u, nil
}

// parseLine parses one non-blank, non-comment line. It returns the entry and
// the problems of the line (several when several columns are wrong); the
// entry is nil when the line could not be split into columns, and is not to
// be used when there are problems.
func parseLine(line string) (*entry, []string) {
	fields, err := splitLine(line)
	if err != nil {
		return nil, []string{err.Error()}
	}
	if len(fields) < 3 || len(fields) > 5 {
		return nil, []string{fmt.Sprintf("want 3 to 5 columns (username,password,role[,uid[,gid]]), got %d", len(fields))}
	}
	var msgs []string
	e := &entry{}

	if msg := checkUsername(fields[0]); msg != "" {
		msgs = append(msgs, msg)
	}
	e.Username = fields[0]

	pw := fields[1]
	if strings.HasPrefix(pw, "!") {
		e.Disabled = true
		pw = strings.TrimLeft(pw, "!")
	}
	switch {
	case pw == "" && e.Disabled:
		e.NoPassword = true
	case pw == "":
		msgs = append(msgs, "empty password")
	case isBcrypt(pw):
		cost, msg := checkBcrypt(pw)
		if msg != "" {
			msgs = append(msgs, msg)
		}
		e.Hashed, e.hash, e.cost = true, []byte(pw), cost
	case unsupportedHash(pw):
		msgs = append(msgs, "password looks like a crypt(3) hash other than bcrypt; only bcrypt hashes ($2a$, $2b$, $2y$) and plain text are supported")
	default:
		e.digest = sha256.Sum256([]byte(pw))
	}

	if fields[2] == "" {
		msgs = append(msgs, "empty role (valid roles: guest, user, admin)")
	} else if role, err := auth.ParseRole(fields[2]); err != nil {
		msgs = append(msgs, "unknown role in column 3 (valid roles: guest, user, admin)")
	} else {
		e.Role = role
	}

	for i, dst := range []**uint32{&e.UID, &e.GID} {
		col := 3 + i
		if col >= len(fields) || fields[col] == "" {
			continue
		}
		id, err := strconv.ParseUint(fields[col], 10, 32)
		if err != nil {
			msgs = append(msgs, fmt.Sprintf("invalid %s in column %d: want an integer from 0 to 4294967295", [2]string{"uid", "gid"}[i], col+1))
			continue
		}
		v := uint32(id)
		*dst = &v
	}

	return e, msgs
}

// splitLine splits a line into fields. A bare field has its surrounding
// spaces trimmed; a quoted field keeps its content as is, with "" standing
// for a quote, so that a password can hold a comma or edge spaces.
func splitLine(line string) ([]string, error) {
	var fields []string
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		col := len(fields) + 1
		if i < len(line) && line[i] == '"' {
			var b strings.Builder
			i++
			for {
				if i >= len(line) {
					return nil, fmt.Errorf("column %d: quoted field is not closed on its line", col)
				}
				if line[i] == '"' {
					if i+1 < len(line) && line[i+1] == '"' {
						b.WriteByte('"')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(line[i])
				i++
			}
			for i < len(line) && isSpace(line[i]) {
				i++
			}
			fields = append(fields, b.String())
			if i == len(line) {
				return fields, nil
			}
			if line[i] != ',' {
				return nil, fmt.Errorf("column %d: text after the closing quote", col)
			}
			i++
			continue
		}
		f, rest, more := strings.Cut(line[i:], ",")
		f = strings.TrimRight(f, " \t")
		if strings.Contains(f, `"`) {
			return nil, fmt.Errorf(`column %d: a field holding a " must be quoted, with "" for each "`, col)
		}
		fields = append(fields, f)
		if !more {
			return fields, nil
		}
		i = len(line) - len(rest)
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

// checkUsername returns why name is not a valid username, or "". It does not
// quote name: a line with its columns swapped would put a password there.
func checkUsername(name string) string {
	if name == "" {
		return "empty username"
	}
	if len(name) > MaxUsernameLen {
		return fmt.Sprintf("username longer than %d characters", MaxUsernameLen)
	}
	// As the workspace plugin requires: the name becomes a directory name.
	if name[0] == '.' || name[0] == '-' {
		return "username starts with '.' or '-'"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-' || c == '@'
		if !ok {
			return fmt.Sprintf("username: character %d is not allowed (use letters, digits, '.', '_', '-', '@')", i+1)
		}
	}
	return ""
}

func isBcrypt(pw string) bool {
	return strings.HasPrefix(pw, "$2a$") || strings.HasPrefix(pw, "$2b$") || strings.HasPrefix(pw, "$2y$")
}

// unsupportedHash tells whether pw looks like a crypt(3) hash Zoe cannot
// check (MD5, SHA-crypt, yescrypt, Argon2); taking it as plain text would
// fail every login without saying why.
func unsupportedHash(pw string) bool {
	for _, p := range []string{"$1$", "$5$", "$6$", "$y$", "$7$", "$argon2"} {
		if strings.HasPrefix(pw, p) {
			return true
		}
	}
	return false
}

// checkBcrypt checks the form of a bcrypt hash strictly: the bcrypt package
// accepts some malformed hashes and then fails fast, which would make such a
// user both unable to log in and recognizable by timing.
func checkBcrypt(h string) (int, string) {
	const bad = "malformed bcrypt hash (want $2b$CC$ and 53 characters of salt and hash, 60 in all)"
	if len(h) != bcryptHashLen || h[6] != '$' {
		return 0, bad
	}
	for i := 7; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '/') {
			return 0, bad
		}
	}
	if h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' {
		return 0, bad
	}
	cost, err := bcrypt.Cost([]byte(h))
	if err != nil {
		return 0, fmt.Sprintf("bcrypt hash with a cost outside %d..%d", bcrypt.MinCost, bcrypt.MaxCost)
	}
	return cost, ""
}

// Len returns the number of users.
func (u *Users) Len() int { return len(u.order) }

// Entries returns the users in the order of the file.
func (u *Users) Entries() []Entry {
	out := make([]Entry, len(u.order))
	for i, e := range u.order {
		out[i] = e.public()
	}
	return out
}

// Lookup returns the user named username, disabled or not (see
// Entry.Disabled). It checks no password and is not timing-safe; use Check
// to authenticate.
func (u *Users) Lookup(username string) (Entry, bool) {
	e, ok := u.byName[username]
	if !ok {
		return Entry{}, false
	}
	return e.public(), true
}

// Check tells whether password is username's password and returns the
// user's entry when it is; a disabled user never checks. An unknown user, a plain-text user and a hashed
// user take about the same time: when the file holds any bcrypt hash, every
// check runs a bcrypt comparison at the file's highest cost (against the
// costliest hash when the user's own is cheaper or absent) besides one
// constant-time digest comparison.
func (u *Users) Check(username, password string) (Entry, bool) {
	e, known := u.byName[username]
	digest := sha256.Sum256([]byte(password))

	var want [sha256.Size]byte // no password hashes to zeros: the unknown user's digest
	hashed := false
	if known && !e.Hashed {
		want = e.digest
	}
	if known && e.Hashed {
		hashed = true
	}
	digestOK := subtle.ConstantTimeCompare(digest[:], want[:]) == 1

	var hashOK bool
	if hashed {
		hashOK = u.compare(e.hash, []byte(password)) == nil
	}
	if u.dummy != nil && (!hashed || e.cost < u.maxCost) {
		// Spend the costliest comparison's time, whose outcome does not
		// count, so that neither an unknown user nor a user with a cheaper
		// hash answers measurably faster than the slowest known user.
		_ = u.compare(u.dummy, []byte(password))
	}

	switch {
	case !known, e.Disabled:
		return Entry{}, false
	case hashed && hashOK, !hashed && digestOK:
		return e.public(), true
	}
	return Entry{}, false
}

func (e *entry) public() Entry {
	p := e.Entry
	p.UID, p.GID = copyID(e.UID), copyID(e.GID)
	return p
}

// copyID copies an id so that callers cannot change the parsed file.
func copyID(id *uint32) *uint32 {
	if id == nil {
		return nil
	}
	v := *id
	return &v
}

// HashPassword returns the bcrypt hash of password, to paste in a users file.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("hash password: empty password")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), HashCost)
	if err != nil {
		// bcrypt's errors (e.g. longer than 72 bytes) hold no secret.
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// Load reads the users file at path. It refuses a file that is not a
// regular file, or that its group or others may read or write: the file
// holds passwords or their hashes.
func Load(path string) (*Users, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read users file: %w", err)
	}
	defer f.Close()
	// Stat the open file rather than the path, so that what is checked is
	// what is read even if the file is replaced meanwhile.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read users file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("users file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("users file %s has mode %04o; it must be readable by its owner only: chmod 600 %s", path, perm, path)
	}
	return Parse(path, f)
}
