package userfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/zoe-project/zoe/sdk/auth"
)

func id(v uint32) *uint32 { return &v }

// hashOf hashes at the lowest cost to keep tests fast.
func hashOf(t testing.TB, pw string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestParseErrors(t *testing.T) {
	cost99 := "$2a$99$" + strings.Repeat("a", 53)
	tests := []struct {
		name, in string
		want     []string
	}{
		{"too few columns", "alice,pw", []string{"users:1: want 3 to 5 columns (username,password,role[,uid[,gid]]), got 2"}},
		{"too many columns", "alice,pw,user,1,2,3", []string{"users:1: want 3 to 5 columns (username,password,role[,uid[,gid]]), got 6"}},
		{"empty username", ",pw,user", []string{"users:1: empty username"}},
		{"empty quoted username", `"",pw,user`, []string{"users:1: empty username"}},
		{"empty password", "alice,,user", []string{"users:1: empty password"}},
		{"empty role", "alice,pw,", []string{"users:1: empty role (valid roles: guest, user, admin)"}},
		{"unknown role", "alice,pw,root", []string{"users:1: unknown role in column 3 (valid roles: guest, user, admin)"}},
		{"role is case-sensitive", "alice,pw,Admin", []string{"users:1: unknown role in column 3 (valid roles: guest, user, admin)"}},
		{"space in username", "al ice,pw,user", []string{"users:1: username: character 3 is not allowed (use letters, digits, '.', '_', '-', '@')"}},
		{"non-ASCII username", "zoé,pw,user", []string{"users:1: username: character 3 is not allowed (use letters, digits, '.', '_', '-', '@')"}},
		{"long username", strings.Repeat("a", 65) + ",pw,user", []string{"users:1: username longer than 64 characters"}},
		{"negative uid", "alice,pw,user,-1", []string{"users:1: invalid uid in column 4: want an integer from 0 to 4294967295"}},
		{"uid not a number", "alice,pw,user,abc,1", []string{"users:1: invalid uid in column 4: want an integer from 0 to 4294967295"}},
		{"gid too big", "alice,pw,user,1,4294967296", []string{"users:1: invalid gid in column 5: want an integer from 0 to 4294967295"}},
		{"unclosed quote", `alice,"pw,user`, []string{"users:1: column 2: quoted field is not closed on its line"}},
		{"text after quote", `alice,"pw"x,user`, []string{"users:1: column 2: text after the closing quote"}},
		{"bare quote", `alice,p"w,user`, []string{`users:1: column 2: a field holding a " must be quoted, with "" for each "`}},
		{"short bcrypt", "alice,$2a$10$short,user", []string{"users:1: malformed bcrypt hash (want $2b$CC$ and 53 characters of salt and hash, 60 in all)"}},
		{"bcrypt bad alphabet", "alice,$2b$10$" + strings.Repeat("!", 53) + ",user", []string{"users:1: malformed bcrypt hash (want $2b$CC$ and 53 characters of salt and hash, 60 in all)"}},
		{"bcrypt bad cost", "alice," + cost99 + ",user", []string{"users:1: bcrypt hash with a cost outside 4..31"}},
		{"disabled, malformed hash", "alice,!$2a$10$short,user", []string{"users:1: malformed bcrypt hash (want $2b$CC$ and 53 characters of salt and hash, 60 in all)"}},
		{"disabled, sha512-crypt", "alice,!$6$salt$abcdef,user", []string{"users:1: password looks like a crypt(3) hash other than bcrypt; only bcrypt hashes ($2a$, $2b$, $2y$) and plain text are supported"}},
		{"sha512-crypt", "alice,$6$salt$abcdef,user", []string{"users:1: password looks like a crypt(3) hash other than bcrypt; only bcrypt hashes ($2a$, $2b$, $2y$) and plain text are supported"}},
		{"every column wrong", "a b,,root,x,y", []string{
			"users:1: username: character 2 is not allowed (use letters, digits, '.', '_', '-', '@')",
			"users:1: empty password",
			"users:1: unknown role in column 3 (valid roles: guest, user, admin)",
			"users:1: invalid uid in column 4: want an integer from 0 to 4294967295",
			"users:1: invalid gid in column 5: want an integer from 0 to 4294967295",
		}},
		{"duplicate", "alice,a,user\nbob,b,user\nalice,c,admin", []string{`users:3: duplicate user "alice" (first defined on line 1)`}},
		{"duplicate of a bad line", "alice,a,root\nalice,c,admin", []string{
			"users:1: unknown role in column 3 (valid roles: guest, user, admin)",
			`users:2: duplicate user "alice" (first defined on line 1)`,
		}},
		{"line too long", "alice,pw,user\n" + strings.Repeat("x", maxLineLen+1), []string{"users:2: line longer than 65536 bytes; is this a users file?"}},
		{"all problems at once", strings.Join([]string{
			"# users of the lab",
			"alice,pw,user",
			"",
			"bob,pw,superuser",
			"   # indented comment",
			"carol,pw",
			"alice,pw2,admin",
			"dave,pw,user,4294967296",
		}, "\n"), []string{
			"users:4: unknown role in column 3 (valid roles: guest, user, admin)",
			"users:6: want 3 to 5 columns (username,password,role[,uid[,gid]]), got 2",
			`users:7: duplicate user "alice" (first defined on line 2)`,
			"users:8: invalid uid in column 4: want an integer from 0 to 4294967295",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := Parse("users", strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded with %d users, want errors", u.Len())
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
			var le *LineError
			if !errors.As(err, &le) || le.File != "users" || le.Line < 1 {
				t.Errorf("error does not hold a *LineError with file and line: %#v", le)
			}
		})
	}
}

// TestParseErrorsHoldNoSecret checks that a password in the wrong column is
// not quoted in errors.
func TestParseErrorsHoldNoSecret(t *testing.T) {
	const secret = "S3cr3t-Pa55"
	for _, line := range []string{
		"alice,admin," + secret,
		secret + " x,alice,user",
		"alice,pw,user," + secret,
		"alice,pw,user,1," + secret,
		"alice,pw,user,1,2," + secret,
	} {
		_, err := Parse("users", strings.NewReader(line))
		if err == nil {
			t.Fatalf("%q: want an error", line)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%q: error quotes the secret: %v", line, err)
		}
	}
}

func TestParse(t *testing.T) {
	hash := hashOf(t, "h-pass", bcrypt.MinCost)
	tests := []struct {
		name, in string
		want     []Entry
	}{
		{"empty file", "", []Entry{}},
		{"comments and blank lines", "# a comment\n\n   \n\t# another\n", []Entry{}},
		{"three columns", "alice,pw,user", []Entry{{Username: "alice", Role: auth.RoleUser, Line: 1}}},
		{"every role", "g,pw,guest\nu,pw,user\na,pw,admin", []Entry{
			{Username: "g", Role: auth.RoleGuest, Line: 1},
			{Username: "u", Role: auth.RoleUser, Line: 2},
			{Username: "a", Role: auth.RoleAdmin, Line: 3},
		}},
		{"uid and gid", "alice,pw,user,1000,100", []Entry{{Username: "alice", Role: auth.RoleUser, UID: id(1000), GID: id(100), Line: 1}}},
		{"largest ids", "alice,pw,user,4294967295,0", []Entry{{Username: "alice", Role: auth.RoleUser, UID: id(4294967295), GID: id(0), Line: 1}}},
		{"uid only", "alice,pw,user,1000", []Entry{{Username: "alice", Role: auth.RoleUser, UID: id(1000), Line: 1}}},
		{"gid only", "alice,pw,user,,100", []Entry{{Username: "alice", Role: auth.RoleUser, GID: id(100), Line: 1}}},
		{"trailing comma", "alice,pw,user,", []Entry{{Username: "alice", Role: auth.RoleUser, Line: 1}}},
		{"spaces trimmed", "  alice ,\tpw , admin ,  7 , 8  ", []Entry{{Username: "alice", Role: auth.RoleAdmin, UID: id(7), GID: id(8), Line: 1}}},
		{"quoted fields", `"alice","p,w ""x"" ","user"`, []Entry{{Username: "alice", Role: auth.RoleUser, Line: 1}}},
		{"CRLF", "# users\r\nalice,pw,user\r\nbob,pw,guest\r\n", []Entry{
			{Username: "alice", Role: auth.RoleUser, Line: 2},
			{Username: "bob", Role: auth.RoleGuest, Line: 3},
		}},
		{"username characters", "First.Last_2-x@example.org,pw,user", []Entry{{Username: "First.Last_2-x@example.org", Role: auth.RoleUser, Line: 1}}},
		{"64-character username", strings.Repeat("a", 64) + ",pw,user", []Entry{{Username: strings.Repeat("a", 64), Role: auth.RoleUser, Line: 1}}},
		{"bcrypt hash", "alice," + hash + ",admin", []Entry{{Username: "alice", Role: auth.RoleAdmin, Line: 1, Hashed: true}}},
		{"$2x$ is plain text", "alice,$2x$10$abc,user", []Entry{{Username: "alice", Role: auth.RoleUser, Line: 1}}},
		{"disabled, hashed", "alice,!" + hash + ",admin", []Entry{{Username: "alice", Role: auth.RoleAdmin, Line: 1, Hashed: true, Disabled: true}}},
		{"disabled, plain", "alice,!pw,user", []Entry{{Username: "alice", Role: auth.RoleUser, Line: 1, Disabled: true}}},
		{"disabled, quoted", `alice,"!p,w",user`, []Entry{{Username: "alice", Role: auth.RoleUser, Line: 1, Disabled: true}}},
		{"disabled, no password", "alice,!,user", []Entry{{Username: "alice", Role: auth.RoleUser, Line: 1, Disabled: true, NoPassword: true}}},
		{"disabled twice", "alice,!!" + hash + ",user", []Entry{{Username: "alice", Role: auth.RoleUser, Line: 1, Hashed: true, Disabled: true}}},
		{"! inside is plain text", "alice,p!w,user", []Entry{{Username: "alice", Role: auth.RoleUser, Line: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := Parse("users", strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Entries(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("entries:\n got %+v\nwant %+v", got, tt.want)
			}
			if u.Len() != len(tt.want) {
				t.Errorf("Len() = %d, want %d", u.Len(), len(tt.want))
			}
		})
	}
}

func TestCheck(t *testing.T) {
	hash := hashOf(t, "h-pass", bcrypt.MinCost)
	hash2y := "$2y$" + hashOf(t, "y-pass", bcrypt.MinCost)[4:] // PHP's name for the same algorithm
	file := strings.Join([]string{
		"alice,a-pass,user,1000,100",
		"bob," + hash + ",admin",
		`carol," spaced, pass ",guest`,
		"dave," + hash2y + ",user",
		"erin,!" + hash + ",user",
		"frank,!f-pass,user",
		"gina,!,user",
	}, "\n")
	plainOnly := "alice,a-pass,user,1000,100"
	tests := []struct {
		name, file, user, pass string
		ok                     bool
		want                   Entry
	}{
		{"plain right", file, "alice", "a-pass", true, Entry{Username: "alice", Role: auth.RoleUser, UID: id(1000), GID: id(100), Line: 1}},
		{"plain wrong", file, "alice", "a-pas", false, Entry{}},
		{"plain longer", file, "alice", "a-pass ", false, Entry{}},
		{"plain empty", file, "alice", "", false, Entry{}},
		{"plain quoted with spaces", file, "carol", " spaced, pass ", true, Entry{Username: "carol", Role: auth.RoleGuest, Line: 3}},
		{"bcrypt right", file, "bob", "h-pass", true, Entry{Username: "bob", Role: auth.RoleAdmin, Line: 2, Hashed: true}},
		{"bcrypt wrong", file, "bob", "a-pass", false, Entry{}},
		{"bcrypt hash as password", file, "bob", hash, false, Entry{}},
		{"$2y$ right", file, "dave", "y-pass", true, Entry{Username: "dave", Role: auth.RoleUser, Line: 4, Hashed: true}},
		{"unknown user", file, "eve", "a-pass", false, Entry{}},
		{"disabled, bcrypt right", file, "erin", "h-pass", false, Entry{}},
		{"disabled, hash with its !", file, "erin", "!h-pass", false, Entry{}},
		{"disabled, plain right", file, "frank", "f-pass", false, Entry{}},
		{"disabled, plain with its !", file, "frank", "!f-pass", false, Entry{}},
		{"disabled, no password", file, "gina", "", false, Entry{}},
		{"disabled, no password, !", file, "gina", "!", false, Entry{}},
		{"unknown user, empty password", file, "eve", "", false, Entry{}},
		{"username is case-sensitive", file, "Alice", "a-pass", false, Entry{}},
		{"unknown user, plain-only file", plainOnly, "eve", "a-pass", false, Entry{}},
		{"plain right, plain-only file", plainOnly, "alice", "a-pass", true, Entry{Username: "alice", Role: auth.RoleUser, UID: id(1000), GID: id(100), Line: 1}},
		{"empty file", "", "alice", "a-pass", false, Entry{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := Parse("users", strings.NewReader(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := u.Check(tt.user, tt.pass)
			if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Check(%q) = %+v, %v; want %+v, %v", tt.user, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestEntriesAreCopies(t *testing.T) {
	u, err := Parse("users", strings.NewReader("alice,pw,user,1000,100"))
	if err != nil {
		t.Fatal(err)
	}
	e, _ := u.Check("alice", "pw")
	*e.UID = 0
	u.Entries()[0].GID = nil
	if e, _ := u.Lookup("alice"); e.UID == nil || *e.UID != 1000 || e.GID == nil {
		t.Errorf("changing a returned entry changed the users: %+v", e)
	}
	id := e.Identity()
	if id.Username != "alice" || id.Role != auth.RoleUser || id.UID == e.UID {
		t.Errorf("Identity() = %+v, want a copy of %+v", id, e)
	}
}

// TestCheckTiming checks that an unknown user and a plain-text user cost a
// bcrypt comparison when the file holds hashes, so that they cannot be told
// from hashed users by timing. Costs differ by orders of magnitude (a
// digest takes microseconds, bcrypt at cost 8 milliseconds), so the generous
// bound does not make the test flaky.
// TestCheckCost checks that every check costs what the costliest hash of
// the file costs, whoever the user: the comparisons made are recorded with
// their bcrypt cost, rather than timed (a timing test fails on a busy
// machine).
func TestCheckCost(t *testing.T) {
	// "cheap" has a cheaper hash than "hashed": htpasswd -nbB defaults to
	// cost 5 while zoe hash-password uses 12, so files mix costs.
	file := "hashed," + hashOf(t, "h-pass", 6) + ",user\nplain,p-pass,user\ncheap," + hashOf(t, "c-pass", 4) + ",user\n"
	u, err := Parse("users", strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	var costs []int
	compare := u.compare
	u.compare = func(hash, password []byte) error {
		c, err := bcrypt.Cost(hash)
		if err != nil {
			t.Fatal(err)
		}
		costs = append(costs, c)
		return compare(hash, password)
	}
	for _, c := range []struct {
		user, pass string
		ok         bool
	}{
		{"hashed", "wrong", false}, {"hashed", "h-pass", true}, {"nobody", "wrong", false},
		{"plain", "wrong", false}, {"plain", "p-pass", true}, {"cheap", "wrong", false}, {"cheap", "c-pass", true},
	} {
		costs = nil
		if _, ok := u.Check(c.user, c.pass); ok != c.ok {
			t.Errorf("Check(%q, %q) = %v, want %v", c.user, c.pass, ok, c.ok)
		}
		if !slices.Contains(costs, 6) {
			t.Errorf("Check(%q) compared against hashes of costs %v, not the file's highest (6): tells users apart by time", c.user, costs)
		}
	}

	// A file without hashes compares none.
	plain, err := Parse("users", strings.NewReader("plain,p-pass,user\n"))
	if err != nil {
		t.Fatal(err)
	}
	plain.compare = func(hash, password []byte) error {
		t.Error("a bcrypt comparison in a file without hashes")
		return nil
	}
	if _, ok := plain.Check("nobody", "x"); ok {
		t.Error("unknown user accepted")
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost([]byte(h)); err != nil || cost != HashCost {
		t.Errorf("cost of %q = %d, %v; want %d", h, cost, err, HashCost)
	}
	// Checking the password would cost another bcrypt at HashCost (seconds
	// under -race); that the file accepts the hash is what matters here.
	if _, err := Parse("users", strings.NewReader("alice,"+h+",user")); err != nil {
		t.Error(err)
	}

	for _, bad := range []string{"", strings.Repeat("x", 73)} {
		if _, err := HashPassword(bad); err == nil {
			t.Errorf("HashPassword(%d bytes) succeeded, want an error", len(bad))
		} else if len(bad) > 0 && strings.Contains(err.Error(), bad) {
			t.Errorf("error quotes the password: %v", err)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("alice,pw,user\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask may have masked bits
			t.Fatal(err)
		}
		return p
	}
	good := write("good", 0o600)
	readOnly := write("readonly", 0o400)
	world := write("world", 0o644)
	group := write("group", 0o620)
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("alice,pw,root\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, path string
		wantErr    string
		is         error
	}{
		{"0600", good, "", nil},
		{"0400", readOnly, "", nil},
		{"0644", world, "users file " + world + " has mode 0644; it must be readable by its owner only: chmod 600 " + world, nil},
		{"0620", group, "users file " + group + " has mode 0620; it must be readable by its owner only: chmod 600 " + group, nil},
		{"directory", sub, "users file " + sub + " is not a regular file", nil},
		{"missing", filepath.Join(dir, "missing"), "read users file: open " + filepath.Join(dir, "missing") + ": no such file or directory", fs.ErrNotExist},
		{"bad line", bad, bad + ":1: unknown role in column 3 (valid roles: guest, user, admin)", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := Load(tt.path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if u.Len() != 1 {
					t.Errorf("Len() = %d, want 1", u.Len())
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Load error = %v\nwant %s", err, tt.wantErr)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
}

// Names the workspace plugin would refuse are refused here too, at their
// line, so that no user can log in without being able to get a workspace.
func TestUsernamesNamingNoDirectory(t *testing.T) {
	for _, name := range []string{".hidden", "-rf"} {
		_, err := Parse("users", strings.NewReader("ok,pw,user\n"+name+",pw,user\n"))
		if err == nil || !strings.Contains(err.Error(), "users:2: username starts with '.' or '-'") {
			t.Errorf("Parse with user %q: %v", name, err)
		}
	}
}
