package userfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/zoe-project/zoe/sdk/auth"
)

func role(r auth.Role) *auth.Role { return &r }

func TestDocEdits(t *testing.T) {
	h1 := hashOf(t, "one", bcrypt.MinCost)
	h2 := hashOf(t, "two", bcrypt.MinCost)
	base := "# lab users\n\n" +
		"alice, " + h1 + " ,admin,1000,100\n" +
		"   # indented comment, kept\n" +
		`carol,"p,w ""q""",user` + "\n" +
		"bob,plain,guest\n"
	tests := []struct {
		name string
		in   string
		edit func(*Doc) error
		want string // "" with wantErr
		// wantErr is matched with errors.Is.
		wantErr error
	}{
		{"add", base, func(d *Doc) error {
			return d.Add(NewUser{Name: "dave", Hash: h2, Role: auth.RoleUser, UID: id(7)})
		}, base + "dave," + h2 + ",user,7\n", nil},
		{"add with a gid only", base, func(d *Doc) error {
			return d.Add(NewUser{Name: "dave", Hash: h2, Role: auth.RoleUser, GID: id(8)})
		}, base + "dave," + h2 + ",user,,8\n", nil},
		{"add disabled", base, func(d *Doc) error {
			return d.Add(NewUser{Name: "dave", Hash: h2, Role: auth.RoleGuest, Disabled: true})
		}, base + "dave,!" + h2 + ",guest\n", nil},
		{"add to a file without a final newline", "alice,pw,user", func(d *Doc) error {
			return d.Add(NewUser{Name: "dave", Hash: h2, Role: auth.RoleUser})
		}, "alice,pw,user\ndave," + h2 + ",user\n", nil},
		{"add to an empty file", "", func(d *Doc) error {
			return d.Add(NewUser{Name: "dave", Hash: h2, Role: auth.RoleUser})
		}, "dave," + h2 + ",user\n", nil},
		{"add to a CRLF file", "alice,pw,user\r\n", func(d *Doc) error {
			return d.Add(NewUser{Name: "dave", Hash: h2, Role: auth.RoleUser})
		}, "alice,pw,user\r\ndave," + h2 + ",user\r\n", nil},
		{"add twice", base, func(d *Doc) error {
			return d.Add(NewUser{Name: "alice", Hash: h2, Role: auth.RoleUser})
		}, "", ErrUserExists},
		{"add a commented-out name", "# dave,x,user\n", func(d *Doc) error {
			return d.Add(NewUser{Name: "dave", Hash: h2, Role: auth.RoleUser})
		}, "# dave,x,user\ndave," + h2 + ",user\n", nil},
		{"passwd", base, func(d *Doc) error { return d.SetPassword("alice", h2) },
			strings.Replace(base, "alice, "+h1+" ,admin,1000,100", "alice,"+h2+",admin,1000,100", 1), nil},
		{"passwd of a plain-text user", base, func(d *Doc) error { return d.SetPassword("bob", h2) },
			strings.Replace(base, "bob,plain,guest", "bob,"+h2+",guest", 1), nil},
		{"passwd keeps disabled", "alice,!" + h1 + ",user\n", func(d *Doc) error { return d.SetPassword("alice", h2) },
			"alice,!" + h2 + ",user\n", nil},
		{"passwd of an unknown user", base, func(d *Doc) error { return d.SetPassword("eve", h2) }, "", ErrUnknownUser},
		{"set role keeps a quoted password", base, func(d *Doc) error { return d.Set("carol", Change{Role: role(auth.RoleAdmin)}) },
			strings.Replace(base, `carol,"p,w ""q""",user`, `carol,"p,w ""q""",admin`, 1), nil},
		{"set uid keeps the gid", base, func(d *Doc) error { return d.Set("alice", Change{UID: id(0)}) },
			strings.Replace(base, "alice, "+h1+" ,admin,1000,100", "alice,"+h1+",admin,0,100", 1), nil},
		{"set gid without uid", base, func(d *Doc) error { return d.Set("bob", Change{GID: id(5)}) },
			strings.Replace(base, "bob,plain,guest", "bob,plain,guest,,5", 1), nil},
		{"clear ids", base, func(d *Doc) error { return d.Set("alice", Change{ClearIDs: true}) },
			strings.Replace(base, "alice, "+h1+" ,admin,1000,100", "alice,"+h1+",admin", 1), nil},
		{"set on a CRLF line", "alice,pw,user\r\nbob,pw,user\r\n", func(d *Doc) error { return d.Set("alice", Change{Role: role(auth.RoleGuest)}) },
			"alice,pw,guest\r\nbob,pw,user\r\n", nil},
		{"set fixes a bad role", "alice,pw,root\n", func(d *Doc) error { return d.Set("alice", Change{Role: role(auth.RoleUser)}) },
			"alice,pw,user\n", nil},
		{"set an unknown role", base, func(d *Doc) error { return d.Set("alice", Change{Role: role("root")}) }, "", sdkInvalid},
		{"set an unknown user", base, func(d *Doc) error { return d.Set("eve", Change{Role: role(auth.RoleUser)}) }, "", ErrUnknownUser},
		{"disable", base, func(d *Doc) error { _, err := d.SetDisabled("bob", true); return err },
			strings.Replace(base, "bob,plain,guest", "bob,!plain,guest", 1), nil},
		{"disable twice changes nothing", "bob,!plain,guest\n", func(d *Doc) error { _, err := d.SetDisabled("bob", true); return err },
			"bob,!plain,guest\n", nil},
		{"enable", "bob,!" + h1 + ",guest\n", func(d *Doc) error { _, err := d.SetDisabled("bob", false); return err },
			"bob," + h1 + ",guest\n", nil},
		{"enable several !", "bob,!!plain,guest\n", func(d *Doc) error { _, err := d.SetDisabled("bob", false); return err },
			"bob,plain,guest\n", nil},
		{"enable without a password", "bob,!,guest\n", func(d *Doc) error { _, err := d.SetDisabled("bob", false); return err }, "", ErrNoPassword},
		{"enable an enabled user", base, func(d *Doc) error { _, err := d.SetDisabled("bob", false); return err }, base, nil},
		{"rm", base, func(d *Doc) error { return d.Remove("carol", "alice") },
			"# lab users\n\n   # indented comment, kept\nbob,plain,guest\n", nil},
		{"rm the last line without a newline", "alice,pw,user\nbob,pw,user", func(d *Doc) error { return d.Remove("bob") },
			"alice,pw,user", nil},
		{"rm unknown names removes none", base, func(d *Doc) error { return d.Remove("alice", "eve", "zed") }, "", ErrUnknownUser},
		{"rm keeps a broken line", "alice,pw,user\nbroken line\n", func(d *Doc) error { return d.Remove("alice") },
			"broken line\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDoc([]byte(tt.in))
			err := tt.edit(d)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				if got := string(d.Bytes()); got != tt.in {
					t.Errorf("a failed edit changed the file:\n%s", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(d.Bytes()); got != tt.want {
				t.Errorf("file:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// sdkInvalid is what auth.ParseRole wraps.
var sdkInvalid = func() error {
	_, err := auth.ParseRole("root")
	return errors.Unwrap(err)
}()

// Names that would break the file, or the workspace directory they name,
// are refused by every edit, and the file is left as it was.
func TestDocRefusesBadNames(t *testing.T) {
	h := hashOf(t, "pw", bcrypt.MinCost)
	for _, name := range []string{"", "a,b", "a\nb,x,admin", "a\rb", "a\x00b", "a\x1bb", `a"b`, "a b", "#a", ".a", "-a", "zoé", strings.Repeat("a", 65)} {
		in := "alice,pw,user\n"
		d := NewDoc([]byte(in))
		errs := []error{
			d.Add(NewUser{Name: name, Hash: h, Role: auth.RoleUser}),
			d.SetPassword(name, h),
			d.Set(name, Change{Role: role(auth.RoleAdmin)}),
			d.Remove("alice", name),
		}
		_, err := d.SetDisabled(name, true)
		errs = append(errs, err)
		for i, err := range errs {
			if err == nil || !strings.Contains(err.Error(), "invalid username") {
				t.Errorf("edit %d with name %q: %v, want an invalid username", i, name, err)
			}
		}
		if got := string(d.Bytes()); got != in {
			t.Errorf("name %q: the file changed to %q", name, got)
		}
	}
}

// The edits write bcrypt hashes only: never a plain password.
func TestDocRefusesPlainPasswords(t *testing.T) {
	d := NewDoc([]byte("alice,pw,user\n"))
	for _, pw := range []string{"", "secret", "!" + hashOf(t, "pw", bcrypt.MinCost), "$2a$10$short"} {
		if err := d.Add(NewUser{Name: "bob", Hash: pw, Role: auth.RoleUser}); err == nil {
			t.Errorf("Add with password field %q succeeded", pw)
		}
		if err := d.SetPassword("alice", pw); err == nil {
			t.Errorf("SetPassword with %q succeeded", pw)
		}
	}
}

// FuzzFormatLine checks that a line written by the edits reads back as the
// same columns, whatever the password field holds.
func FuzzFormatLine(f *testing.F) {
	for _, s := range []string{"pw", "p,w", `"q"`, " edge ", "\tx", "#x", "!", "!p, w", `a""b`, "\x00\x1b\u202e", "\v"} {
		f.Add("alice", s, "user", "1", "")
	}
	f.Fuzz(func(t *testing.T, name, pw, role, uid, gid string) {
		if strings.ContainsAny(name+pw+role+uid+gid, "\n\r") {
			return // a line holds no line break; the edits refuse names with them
		}
		in := []string{name, pw, role, uid, gid}
		line := formatLine(append([]string(nil), in...))
		got, err := splitLine(strings.TrimSpace(line))
		if err != nil {
			t.Fatalf("formatLine(%q) = %q, which does not split: %v", in, line, err)
		}
		for len(got) < 5 {
			got = append(got, "")
		}
		for i := range in {
			if got[i] != in[i] {
				t.Fatalf("formatLine(%q) = %q, splits into %q", in, line, got)
			}
		}
		if checkUsername(name) == "" && strings.HasPrefix(strings.TrimSpace(line), "#") {
			t.Fatalf("line %q of user %q reads as a comment", line, name)
		}
	})
}

// writeFile writes a users file with mode perm and returns its path.
func writeFile(t *testing.T, dir, content string, perm fs.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

func addUser(name, hash string) func(*Doc) error {
	return func(d *Doc) error { return d.Add(NewUser{Name: name, Hash: hash, Role: auth.RoleUser}) }
}

func TestEdit(t *testing.T) {
	h := hashOf(t, "pw", bcrypt.MinCost)
	t.Run("replaces the file, mode kept", func(t *testing.T) {
		for _, perm := range []fs.FileMode{0o600, 0o400} {
			path := writeFile(t, t.TempDir(), "# kept\nalice,pw,user\n", perm)
			before, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			changed, err := Edit(path, addUser("bob", h))
			if err != nil || !changed {
				t.Fatalf("Edit = %v, %v", changed, err)
			}
			after, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if after.Mode() != before.Mode() {
				t.Errorf("mode %v, want %v", after.Mode(), before.Mode())
			}
			if os.SameFile(before, after) {
				t.Errorf("the file was written in place, not replaced")
			}
			if st, ok := after.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
				t.Errorf("owner %d, want %d", st.Uid, os.Geteuid())
			}
			u, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := u.Lookup("bob"); !ok || u.Len() != 2 {
				t.Errorf("after Edit: %d users, bob there: %v", u.Len(), ok)
			}
			left, err := filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp"))
			if err != nil || len(left) != 0 {
				t.Errorf("temporary files left: %v %v", left, err)
			}
		}
	})
	t.Run("owner kept when root", func(t *testing.T) {
		if os.Geteuid() != 0 {
			// Only root can give a file away; as anyone else the test
			// below (another owner refused) is the one that runs.
			return
		}
		path := writeFile(t, t.TempDir(), "alice,pw,user\n", 0o600)
		if err := os.Chown(path, 12345, 23456); err != nil {
			t.Fatal(err)
		}
		if _, err := Edit(path, addUser("bob", h)); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, LockPath(path)} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != 12345 || st.Gid != 23456 {
				t.Errorf("%s: owner %d:%d, want 12345:23456", filepath.Base(p), st.Uid, st.Gid)
			}
		}
	})
	t.Run("follows a symbolic link", func(t *testing.T) {
		dir := t.TempDir()
		real := writeFile(t, dir, "alice,pw,user\n", 0o600)
		link := filepath.Join(dir, "link.csv")
		if err := os.Symlink(real, link); err != nil {
			t.Fatal(err)
		}
		if _, err := Edit(link, addUser("bob", h)); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
		}
		data, err := os.ReadFile(real)
		if err != nil || !strings.Contains(string(data), "bob,") {
			t.Errorf("the linked file was not edited: %q %v", data, err)
		}
	})

	refused := []struct {
		name    string
		content string
		perm    fs.FileMode
		edit    func(*Doc) error
		want    string
		is      error
	}{
		{"group-readable", "alice,pw,user\n", 0o640, addUser("bob", h), "has mode 0640; it must be readable by its owner only: chmod 600", nil},
		{"world-readable", "alice,pw,user\n", 0o604, addUser("bob", h), "has mode 0604", nil},
		{"broken before", "alice," + h + ",root\n", 0o600, addUser("bob", h), "users.csv:1: unknown role in column 3", ErrInvalidFile},
		{"the edit fails", "alice,pw,user\n", 0o600, addUser("alice", h), `user "alice" is already in the users file`, ErrUserExists},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), tt.content, tt.perm)
			before, _ := os.Stat(path)
			changed, err := Edit(path, tt.edit)
			if err == nil || changed || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Edit = %v, %v; want an error with %q", changed, err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if strings.Contains(err.Error(), h) {
				t.Errorf("the error quotes a hash: %v", err)
			}
			after, _ := os.Stat(path)
			data, _ := os.ReadFile(path)
			if !os.SameFile(before, after) || string(data) != tt.content {
				t.Errorf("a refused edit changed the file")
			}
		})
	}

	t.Run("a fix of a broken file is written", func(t *testing.T) {
		path := writeFile(t, t.TempDir(), "alice,pw,root\nbob,pw,user\n", 0o600)
		if _, err := Edit(path, func(d *Doc) error { return d.Remove("alice") }); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err != nil {
			t.Errorf("after the fix: %v", err)
		}
	})
	t.Run("no change, no write", func(t *testing.T) {
		path := writeFile(t, t.TempDir(), "alice,!pw,user\n", 0o600)
		before, _ := os.Stat(path)
		changed, err := Edit(path, func(d *Doc) error { _, err := d.SetDisabled("alice", true); return err })
		after, _ := os.Stat(path)
		if err != nil || changed || !os.SameFile(before, after) {
			t.Errorf("Edit = %v, %v; replaced: %v", changed, err, !os.SameFile(before, after))
		}
	})
	t.Run("a link as the lock file", func(t *testing.T) {
		dir := t.TempDir()
		path := writeFile(t, dir, "alice,pw,user\n", 0o600)
		elsewhere := filepath.Join(dir, "elsewhere")
		if err := os.Symlink(elsewhere, LockPath(path)); err != nil {
			t.Fatal(err)
		}
		if _, err := Edit(path, addUser("bob", h)); err == nil {
			t.Errorf("Edit through a lock file that is a link succeeded")
		}
		if _, err := os.Lstat(elsewhere); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the lock's link made a file appear: %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := Edit(filepath.Join(t.TempDir(), "none.csv"), addUser("bob", h))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Edit of a missing file: %v, want ErrNotExist", err)
		}
	})
}

// Concurrent edits each take the lock: none is lost.
func TestEditConcurrent(t *testing.T) {
	h := hashOf(t, "pw", bcrypt.MinCost)
	path := writeFile(t, t.TempDir(), "# users\n", 0o600)
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := Edit(path, addUser(fmt.Sprintf("user%d", i), h))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	u, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if u.Len() != n {
		t.Errorf("%d users after %d concurrent adds", u.Len(), n)
	}
}

func TestCreate(t *testing.T) {
	h := hashOf(t, "pw", bcrypt.MinCost)
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "users.csv")
	content := "admin," + h + ",admin\n"
	if err := Create(path, []byte(content)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("created file: %v %v, want mode 0600", fi, err)
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("created directory: %v %v, want mode 0700", di, err)
	}
	if err := Create(path, []byte("other,"+h+",admin\n")); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create over an existing file: %v, want ErrExist", err)
	}
	dangling := filepath.Join(dir, "dangling.csv")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	if err := Create(dangling, []byte(content)); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create over a dangling link: %v, want ErrExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nowhere")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Create wrote through a dangling link")
	}
	if data, _ := os.ReadFile(path); string(data) != content {
		t.Errorf("the file holds %q, want %q", data, content)
	}
	if err := Create(filepath.Join(dir, "bad.csv"), []byte("alice,pw,root\n")); err == nil {
		t.Errorf("Create of an invalid file succeeded")
	}
}

// FuzzDocEdit checks, on any valid file, that an edit either fails and
// changes nothing, or gives a valid file where the user changed as asked
// and every other user is as it was.
func FuzzDocEdit(f *testing.F) {
	h := hashOf(f, "pw", bcrypt.MinCost)
	for _, s := range []string{
		"alice,pw,user\n",
		"# c\r\nalice,\"p,w\",admin,1,2\r\nbob,!x,guest",
		"alice,!,user\n\n  # x\nbob," + h + ",user,,3\n",
		"",
	} {
		for op := range uint8(5) {
			f.Add(s, "alice", op)
			f.Add(s, "carol", op)
		}
	}
	f.Fuzz(func(t *testing.T, data, name string, op uint8) {
		before, err := Parse("f", strings.NewReader(data))
		if err != nil {
			return
		}
		d := NewDoc([]byte(data))
		switch op % 5 {
		case 0:
			err = d.Add(NewUser{Name: name, Hash: h, Role: auth.RoleGuest})
		case 1:
			err = d.SetPassword(name, h)
		case 2:
			err = d.Set(name, Change{Role: role(auth.RoleAdmin), ClearIDs: true})
		case 3:
			_, err = d.SetDisabled(name, true)
		case 4:
			err = d.Remove(name)
		}
		if err != nil {
			if string(d.Bytes()) != data {
				t.Fatalf("a failed edit (%v) changed the file", err)
			}
			return
		}
		after, err := Parse("f", strings.NewReader(string(d.Bytes())))
		if err != nil {
			t.Fatalf("edit %d of %q gives an invalid file: %v\n%s", op%5, name, err, d.Bytes())
		}
		e, ok := after.Lookup(name)
		switch op % 5 {
		case 0:
			ok = ok && e.Role == auth.RoleGuest && e.Hashed && !e.Disabled
		case 1:
			ok = ok && e.Hashed
		case 2:
			ok = ok && e.Role == auth.RoleAdmin && e.UID == nil && e.GID == nil
		case 3:
			ok = ok && e.Disabled
		case 4:
			ok = !ok
		}
		if !ok {
			t.Fatalf("edit %d of %q: got %+v\n%s", op%5, name, e, d.Bytes())
		}
		for _, b := range before.Entries() {
			if b.Username == name {
				continue
			}
			a, found := after.Lookup(b.Username)
			a.Line, b.Line = 0, 0
			if !found || !reflect.DeepEqual(a, b) {
				t.Fatalf("edit %d of %q changed %q: %+v, was %+v", op%5, name, b.Username, a, b)
			}
		}
	})
}
