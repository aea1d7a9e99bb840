package userfile

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/zoe-project/zoe/sdk/auth"
)

// Errors of the edits; they wrap these so that callers can add a hint.
var (
	// ErrUserExists: Add of a user the file has already.
	ErrUserExists = errors.New("is already in the users file")
	// ErrUnknownUser: a change to a user the file does not have.
	ErrUnknownUser = errors.New("is not in the users file")
	// ErrNoPassword: Enable of a user whose line has no password to restore.
	ErrNoPassword = errors.New("has no password to enable in the users file")
)

// Doc is a users file held as its lines, to be edited: every line an edit
// does not touch (comments, blank lines, lines with problems, other users)
// is kept byte for byte. A changed user's line is written anew from its
// columns, quoted where needed. Doc does not validate the whole file: pass
// Bytes to Parse for that (Edit does).
type Doc struct {
	// lines are the file's lines without their "\n"; the last is "" when
	// the file ends with a newline (or is empty).
	lines []string
}

// NewDoc holds data for editing.
func NewDoc(data []byte) *Doc {
	return &Doc{lines: strings.Split(string(data), "\n")}
}

// Bytes is the file as edited.
func (d *Doc) Bytes() []byte { return []byte(strings.Join(d.lines, "\n")) }

// NewUser is a user to add.
type NewUser struct {
	Name string
	// Hash is the bcrypt hash of the password (HashPassword).
	Hash     string
	Role     auth.Role
	UID, GID *uint32
	// Disabled adds the user disabled.
	Disabled bool
}

// Change is what Set changes; nil fields are left as they are.
type Change struct {
	Role     *auth.Role
	UID, GID *uint32
	// ClearIDs empties the uid and gid columns (before UID and GID apply).
	ClearIDs bool
}

// ValidUsername returns why name cannot be a username, or nil.
func ValidUsername(name string) error {
	if msg := checkUsername(name); msg != "" {
		return errors.New(msg)
	}
	return nil
}

// line is a user's line: its index in Doc.lines and its columns.
type line struct {
	i      int
	fields []string
	// cr is the "\r" of a CRLF line, kept when it is rewritten.
	cr string
}

// find returns the first line that defines name. Lines that cannot be
// split into columns define no one.
func (d *Doc) find(name string) (line, bool) {
	for i, raw := range d.lines {
		l := strings.TrimSpace(raw)
		if l == "" || l[0] == '#' {
			continue
		}
		fields, err := splitLine(l)
		if err != nil || len(fields) == 0 || fields[0] != name {
			continue
		}
		cr := ""
		if strings.HasSuffix(raw, "\r") {
			cr = "\r"
		}
		for len(fields) < 5 {
			fields = append(fields, "")
		}
		return line{i: i, fields: fields, cr: cr}, true
	}
	return line{}, false
}

// Has tells whether the file defines name.
func (d *Doc) Has(name string) bool {
	_, ok := d.find(name)
	return ok
}

func (d *Doc) user(name string) (line, error) {
	if err := ValidUsername(name); err != nil {
		return line{}, fmt.Errorf("invalid username %q: %w", name, err)
	}
	l, ok := d.find(name)
	if !ok {
		return line{}, fmt.Errorf("user %q %w", name, ErrUnknownUser)
	}
	return l, nil
}

func (d *Doc) put(l line) { d.lines[l.i] = formatLine(l.fields) + l.cr }

// Add appends a user's line at the end of the file.
func (d *Doc) Add(u NewUser) error {
	if err := ValidUsername(u.Name); err != nil {
		return fmt.Errorf("invalid username %q: %w", u.Name, err)
	}
	if _, err := auth.ParseRole(string(u.Role)); err != nil {
		return err
	}
	if err := checkHash(u.Hash); err != nil {
		return err
	}
	if d.Has(u.Name) {
		return fmt.Errorf("user %q %w", u.Name, ErrUserExists)
	}
	pw := u.Hash
	if u.Disabled {
		pw = "!" + pw
	}
	text := formatLine([]string{u.Name, pw, string(u.Role), idText(u.UID), idText(u.GID)})
	last := len(d.lines) - 1
	cr := ""
	if last > 0 && strings.HasSuffix(d.lines[last-1], "\r") {
		cr = "\r" // a CRLF file stays CRLF
	}
	if d.lines[last] == "" {
		// The file ends with a newline (or is empty): the new line goes
		// before the final empty string.
		d.lines = append(d.lines[:last], text+cr, "")
	} else {
		d.lines = append(d.lines, text+cr, "")
	}
	return nil
}

// SetPassword replaces name's password by hash, a bcrypt hash; a disabled
// user stays disabled.
func (d *Doc) SetPassword(name, hash string) error {
	if err := checkHash(hash); err != nil {
		return err
	}
	l, err := d.user(name)
	if err != nil {
		return err
	}
	if strings.HasPrefix(l.fields[1], "!") {
		hash = "!" + hash
	}
	l.fields[1] = hash
	d.put(l)
	return nil
}

// Set changes name's role and ids.
func (d *Doc) Set(name string, c Change) error {
	if c.Role != nil {
		if _, err := auth.ParseRole(string(*c.Role)); err != nil {
			return err
		}
	}
	l, err := d.user(name)
	if err != nil {
		return err
	}
	if c.Role != nil {
		l.fields[2] = string(*c.Role)
	}
	if c.ClearIDs {
		l.fields[3], l.fields[4] = "", ""
	}
	if c.UID != nil {
		l.fields[3] = idText(c.UID)
	}
	if c.GID != nil {
		l.fields[4] = idText(c.GID)
	}
	d.put(l)
	return nil
}

// SetDisabled disables or enables name, keeping the password, and says
// whether that changed anything. Enabling a user whose line has no
// password fails with ErrNoPassword.
func (d *Doc) SetDisabled(name string, disabled bool) (bool, error) {
	l, err := d.user(name)
	if err != nil {
		return false, err
	}
	pw := l.fields[1]
	was := strings.HasPrefix(pw, "!")
	switch {
	case disabled == was:
		return false, nil
	case disabled:
		l.fields[1] = "!" + pw
	default:
		rest := strings.TrimLeft(pw, "!")
		if rest == "" {
			return false, fmt.Errorf("user %q %w", name, ErrNoPassword)
		}
		l.fields[1] = rest
	}
	d.put(l)
	return true, nil
}

// Remove removes the lines of names: all of them, or none when one is not
// in the file (the error then names every unknown one).
func (d *Doc) Remove(names ...string) error {
	drop := make(map[int]bool, len(names))
	var unknown []string
	for _, n := range names {
		if err := ValidUsername(n); err != nil {
			return fmt.Errorf("invalid username %q: %w", n, err)
		}
		l, ok := d.find(n)
		if !ok {
			unknown = append(unknown, strconv.Quote(n))
			continue
		}
		drop[l.i] = true
	}
	if len(unknown) > 0 {
		return fmt.Errorf("user %s %w", strings.Join(unknown, ", "), ErrUnknownUser)
	}
	kept := d.lines[:0]
	for i, l := range d.lines {
		if !drop[i] {
			kept = append(kept, l)
		}
	}
	d.lines = kept
	return nil
}

// checkHash refuses anything but a well-formed bcrypt hash: the edits
// never write plain-text passwords.
func checkHash(h string) error {
	if !isBcrypt(h) {
		return errors.New("the password must be given as a bcrypt hash")
	}
	if _, msg := checkBcrypt(h); msg != "" {
		return errors.New(msg)
	}
	return nil
}

func idText(id *uint32) string {
	if id == nil {
		return ""
	}
	return strconv.FormatUint(uint64(*id), 10)
}

// formatLine joins columns into a line that splitLine splits back into the
// same columns; empty trailing uid and gid columns are left out.
func formatLine(fields []string) string {
	for len(fields) > 3 && fields[len(fields)-1] == "" {
		fields = fields[:len(fields)-1]
	}
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = quoteField(f)
	}
	return strings.Join(out, ",")
}

// quoteField quotes f when splitLine would not give it back bare: a comma
// or a quote inside, spaces or tabs at an edge, or a '#' that would make
// the line a comment.
func quoteField(f string) string {
	if f == "" {
		return f
	}
	needs := strings.ContainsAny(f, `,"`) || isSpace(f[0]) || isSpace(f[len(f)-1]) || f[0] == '#' ||
		strings.TrimSpace(f) != strings.Trim(f, " \t")
	if !needs {
		return f
	}
	return `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
}
