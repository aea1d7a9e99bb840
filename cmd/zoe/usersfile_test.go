package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/plugins/auth-file/userfile"
	"github.com/zoe-project/zoe/sdk/auth"
)

// usersFileFixture is the file every case of TestUsersFileCommands starts
// from: a comment, a hashed admin, a plain-text user with ids, a disabled
// user.
func usersFileFixture(t *testing.T) (content, aliceHash string) {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("wonderland"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return "# the lab's users\n" +
		"alice," + string(h) + ",admin\n" +
		"\n" +
		"bob,bob-pw,user,1000,100\n" +
		"carol,!carol-pw,guest\n", string(h)
}

// checkPassword fails unless name's line in the file holds a bcrypt hash
// of pw.
func checkPassword(t *testing.T, content, name, pw string) {
	t.Helper()
	hash, _ := userHash(t, content, name)
	hash = strings.TrimLeft(hash, "!")
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)); err != nil {
		t.Errorf("%s's hash does not match %q: %v", name, pw, err)
	}
}

func TestUsersFileCommands(t *testing.T) {
	t.Parallel()
	type check func(t *testing.T, u *userfile.Users, content, stdout string)
	entry := func(t *testing.T, u *userfile.Users, name string) userfile.Entry {
		t.Helper()
		e, ok := u.Lookup(name)
		if !ok {
			t.Fatalf("no user %q in the file", name)
		}
		return e
	}
	cases := []struct {
		name  string
		args  []string // after "users-file"; FILE stands for the file
		stdin string
		perm  fs.FileMode // of the file before; 0: 0600; -1 (as 0o1000): no file
		code  int
		out   []string // in stdout
		err   []string // in stderr
		check check    // the file after, when code is 0
	}{
		{name: "add, password from stdin", args: []string{"add", "FILE", "dave"}, stdin: "dave pw\n",
			out: []string{"Added dave (user) to "},
			check: func(t *testing.T, u *userfile.Users, content, _ string) {
				if e := entry(t, u, "dave"); e.Role != auth.RoleUser || !e.Hashed || e.Disabled || e.UID != nil {
					t.Errorf("dave: %+v", e)
				}
				checkPassword(t, content, "dave", "dave pw")
				if !strings.HasPrefix(content, "# the lab's users\nalice,") || !strings.Contains(content, "\n\nbob,bob-pw,user,1000,100\n") {
					t.Errorf("the other lines changed:\n%s", content)
				}
			}},
		{name: "add with role and ids", args: []string{"add", "FILE", "dave", "--role", "admin", "--uid", "5", "--gid", "0"}, stdin: "pw\n",
			check: func(t *testing.T, u *userfile.Users, _, _ string) {
				if e := entry(t, u, "dave"); e.Role != auth.RoleAdmin || e.UID == nil || *e.UID != 5 || e.GID == nil || *e.GID != 0 {
					t.Errorf("dave: %+v", e)
				}
			}},
		{name: "add with a random password", args: []string{"add", "FILE", "dave", "--random-password", "--disabled"},
			out: []string{"Added dave (user, disabled)", "shown only now"},
			check: func(t *testing.T, u *userfile.Users, content, stdout string) {
				m := passwordLine.FindAllStringSubmatch(stdout, -1)
				if len(m) != 1 {
					t.Fatalf("%d password lines, want 1", len(m))
				}
				checkPassword(t, content, "dave", m[0][1])
				if !entry(t, u, "dave").Disabled {
					t.Errorf("dave is not disabled")
				}
			}},
		{name: "add an existing user", args: []string{"add", "FILE", "alice"}, stdin: "pw\n", code: 1,
			err: []string{`user "alice" is already in the users file FILE; change it with zoe users-file set|passwd FILE NAME`}},
		{name: "add with an empty password", args: []string{"add", "FILE", "dave"}, stdin: "\n", code: 1, err: []string{"empty password"}},
		{name: "add with a bad role", args: []string{"add", "FILE", "dave", "--role", "root"}, stdin: "pw\n", code: 2, err: []string{`invalid --role "root"`}},
		{name: "add a name with a comma", args: []string{"add", "FILE", "a,b"}, stdin: "pw\n", code: 2, err: []string{`invalid username "a,b"`}},
		{name: "add a name with a newline", args: []string{"add", "FILE", "a\nb"}, stdin: "pw\n", code: 2, err: []string{`invalid username "a\nb"`}},
		{name: "add a name with an escape", args: []string{"add", "FILE", "a\x1b[2Jb"}, stdin: "pw\n", code: 2, err: []string{`invalid username "a\x1b[2Jb"`}},
		{name: "add a bad uid", args: []string{"add", "FILE", "dave", "--uid", "-1"}, stdin: "pw\n", code: 2, err: []string{"--uid"}},
		{name: "passwd", args: []string{"passwd", "FILE", "bob"}, stdin: "new pw\n", out: []string{"Set the password of bob"},
			check: func(t *testing.T, u *userfile.Users, content, _ string) {
				if e := entry(t, u, "bob"); !e.Hashed || e.Role != auth.RoleUser || *e.UID != 1000 {
					t.Errorf("bob: %+v", e)
				}
				checkPassword(t, content, "bob", "new pw")
			}},
		{name: "passwd of a disabled user", args: []string{"passwd", "FILE", "carol", "--random-password"},
			out: []string{"carol stays disabled: zoe users-file enable FILE carol", "shown only now"},
			check: func(t *testing.T, u *userfile.Users, _, _ string) {
				if e := entry(t, u, "carol"); !e.Hashed || !e.Disabled {
					t.Errorf("carol: %+v", e)
				}
			}},
		{name: "passwd of an unknown user", args: []string{"passwd", "FILE", "zed"}, stdin: "pw\n", code: 1,
			err: []string{`user "zed" is not in the users file FILE; zoe users-file ls FILE lists them`}},
		{name: "set role and clear ids", args: []string{"set", "FILE", "bob", "--role", "admin", "--clear-ids"},
			check: func(t *testing.T, u *userfile.Users, content, _ string) {
				if e := entry(t, u, "bob"); e.Role != auth.RoleAdmin || e.UID != nil || e.GID != nil {
					t.Errorf("bob: %+v", e)
				}
				if !strings.Contains(content, "\nbob,bob-pw,admin\n") {
					t.Errorf("bob's line:\n%s", content)
				}
			}},
		{name: "set a gid", args: []string{"set", "FILE", "bob", "--gid", "7"},
			check: func(t *testing.T, u *userfile.Users, _, _ string) {
				if e := entry(t, u, "bob"); *e.UID != 1000 || *e.GID != 7 {
					t.Errorf("bob: %+v", e)
				}
			}},
		{name: "set nothing", args: []string{"set", "FILE", "bob"}, code: 2, err: []string{"nothing to change"}},
		{name: "set ids and clear them", args: []string{"set", "FILE", "bob", "--uid", "1", "--clear-ids"}, code: 2, err: []string{"--clear-ids"}},
		{name: "set an unknown user", args: []string{"set", "FILE", "zed", "--role", "user"}, code: 1, err: []string{`user "zed" is not in the users file FILE`}},
		{name: "disable", args: []string{"disable", "FILE", "bob"}, out: []string{"Disabled bob in FILE"},
			check: func(t *testing.T, u *userfile.Users, content, _ string) {
				if !entry(t, u, "bob").Disabled || !strings.Contains(content, "\nbob,!bob-pw,user,1000,100\n") {
					t.Errorf("bob is not disabled:\n%s", content)
				}
			}},
		{name: "disable twice", args: []string{"disable", "FILE", "carol"}, out: []string{"carol in FILE is disabled already; nothing written"}},
		{name: "enable", args: []string{"enable", "FILE", "carol"},
			check: func(t *testing.T, u *userfile.Users, content, _ string) {
				if entry(t, u, "carol").Disabled || !strings.Contains(content, "\ncarol,carol-pw,guest\n") {
					t.Errorf("carol is not enabled:\n%s", content)
				}
			}},
		{name: "rm", args: []string{"rm", "FILE", "bob", "carol"}, out: []string{"Removed 2 user(s) from FILE"},
			check: func(t *testing.T, u *userfile.Users, content, _ string) {
				if u.Len() != 1 || !strings.HasPrefix(content, "# the lab's users\nalice,") {
					t.Errorf("after rm:\n%s", content)
				}
			}},
		{name: "rm the last admin", args: []string{"rm", "FILE", "alice"},
			err: []string{"warning: FILE has no enabled admin left; add one with zoe users-file add FILE NAME --role admin"},
			check: func(t *testing.T, u *userfile.Users, _, _ string) {
				if u.Len() != 2 {
					t.Errorf("%d users after rm alice, want 2", u.Len())
				}
			}},
		{name: "rm with an unknown name", args: []string{"rm", "FILE", "bob", "zed", "yan"}, code: 1,
			err: []string{`user "zed", "yan" is not in the users file FILE`}},
		{name: "rm nobody", args: []string{"rm", "FILE"}, code: 2},
		{name: "ls", args: []string{"ls", "FILE"},
			out: []string{"USERNAME  ROLE   UID   GID  PASSWORD  DISABLED\n", "alice     admin  -     -    bcrypt    no\n",
				"bob       user   1000  100  plain     no\n", "carol     guest  -     -    plain     yes\n"},
			err: []string{"2 user(s) of FILE have a plain-text password: set hashes with zoe users-file passwd FILE NAME"}},
		{name: "ls -o json", args: []string{"ls", "FILE", "-o", "json"},
			check: func(t *testing.T, _ *userfile.Users, _, stdout string) {
				var got struct{ Users []usersFileEntry }
				if err := json.Unmarshal([]byte(stdout), &got); err != nil {
					t.Fatal(err)
				}
				if len(got.Users) != 3 || got.Users[1].Username != "bob" || *got.Users[1].UID != 1000 ||
					got.Users[0].Password != "bcrypt" || !got.Users[2].Disabled || got.Users[2].Line != 5 {
					t.Errorf("ls -o json: %+v", got.Users)
				}
			}},
		{name: "init on an existing file", args: []string{"init", "FILE"}, code: 1,
			err: []string{"FILE exists; add users with zoe users-file add FILE NAME, reset a password with zoe users-file passwd FILE NAME"}},
		{name: "init --if-missing on an existing file", args: []string{"init", "--if-missing", "FILE"}, out: []string{"FILE exists: left as it is"}},
		{name: "add to a missing file", args: []string{"add", "FILE", "dave"}, stdin: "pw\n", perm: 0o1000, code: 1,
			err: []string{"no such file or directory; create it with zoe users-file init FILE"}},
		{name: "disable in a missing file", args: []string{"disable", "FILE", "bob"}, perm: 0o1000, code: 1,
			err: []string{"create it with zoe users-file init FILE"}},
		{name: "add to a readable file", args: []string{"add", "FILE", "dave"}, stdin: "pw\n", perm: 0o644, code: 1,
			err: []string{"has mode 0644; it must be readable by its owner only: chmod 600 FILE"}},
		{name: "set in a readable file", args: []string{"set", "FILE", "bob", "--role", "admin"}, perm: 0o640, code: 1,
			err: []string{"chmod 600 FILE"}},
		{name: "unknown subcommand", args: []string{"list", "FILE"}, code: 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			content, aliceHash := usersFileFixture(t)
			file := filepath.Join(t.TempDir(), "users.csv")
			switch c.perm {
			case 0o1000:
			default:
				perm := c.perm
				if perm == 0 {
					perm = 0o600
				}
				if err := os.WriteFile(file, []byte(content), perm); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(file, perm); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := os.Stat(file)
			args := []string{"users-file"}
			for _, a := range c.args {
				args = append(args, strings.ReplaceAll(a, "FILE", file))
			}
			r := runZoe(t, c.stdin, args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.stdout, r.stderr)
			}
			for _, w := range c.out {
				if w = strings.ReplaceAll(w, "FILE", file); !strings.Contains(r.stdout, w) {
					t.Errorf("stdout %q does not hold %q", r.stdout, w)
				}
			}
			for _, w := range c.err {
				if w = strings.ReplaceAll(w, "FILE", file); !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not hold %q", r.stderr, w)
				}
			}
			if c.code != 0 && (r.stdout != "" || strings.Count(r.stderr, "\n") != 1) {
				t.Errorf("a failure prints stdout %q and stderr %q, want nothing and one line", r.stdout, r.stderr)
			}
			// Neither a hash nor a password of the file is ever printed.
			for _, secret := range []string{aliceHash, aliceHash[7:], "bob-pw", "carol-pw"} {
				if strings.Contains(r.stdout+r.stderr, secret) {
					t.Errorf("the output holds %q", secret)
				}
			}
			after, statErr := os.Stat(file)
			data, _ := os.ReadFile(file)
			if c.check == nil || c.code != 0 {
				// Refused or read-only: the file is as it was.
				if c.perm != 0o1000 && (string(data) != content || !os.SameFile(before, after)) {
					t.Errorf("the file changed:\n%s", data)
				}
				if c.perm == 0o1000 && statErr == nil {
					t.Errorf("a command created the missing file")
				}
				return
			}
			if after.Mode().Perm() != 0o600 {
				t.Errorf("mode %04o after the edit, want 0600", after.Mode().Perm())
			}
			u, err := userfile.Load(file)
			if err != nil {
				t.Fatalf("the edited file: %v", err)
			}
			c.check(t, u, string(data), r.stdout)
		})
	}
}

// zoe users, the old name, still runs init (with a notice) and points
// whoever types anything else to the two commands it was confused with.
func TestUsersOldName(t *testing.T) {
	t.Parallel()
	r := runZoe(t, "", "users", "ls")
	if r.code != 2 || !strings.Contains(r.stderr, "zoe users-file") || !strings.Contains(r.stderr, "zoe user ") {
		t.Errorf("zoe users ls: exit %d, stderr %q; want 2 naming zoe users-file and zoe user", r.code, r.stderr)
	}
	file := filepath.Join(t.TempDir(), "users.csv")
	r = runZoe(t, "", "users", "init", file)
	if r.code != 0 || !strings.Contains(r.stderr, "deprecated; use zoe users-file init") || len(passwordLine.FindAllString(r.stdout, -1)) != 1 {
		t.Fatalf("zoe users init: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	if _, err := userfile.Load(file); err != nil {
		t.Error(err)
	}
	help := runZoe(t, "", "--help")
	if strings.Contains(help.stdout, "\n  users ") || !strings.Contains(help.stdout, "users-file") {
		t.Errorf("zoe --help lists the old name, or not the new one:\n%s", help.stdout)
	}
}

// apiMe calls GET /api/v1/me with a bearer token or Basic credentials and
// returns the status and the caller's identity.
func apiMe(t *testing.T, addr, token, user, password string) (int, client.User) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/me", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	} else {
		req.SetBasicAuth(user, password)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var u client.User
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&u); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, u
}

// apiLogin gets a token with POST /api/v1/sessions.
func apiLogin(t *testing.T, addr, user, password string) string {
	t.Helper()
	body, err := json.Marshal(client.Login{Username: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Post("http://"+addr+"/api/v1/sessions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s client.Session
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("log in as %s: status %d", user, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s.Token
}

// Users file edits under a running daemon (backend-sim): a user added by
// zoe users-file logs in right after; a role change, a new password and
// disabling take effect within the bound (the daemon polls the plugin's
// generation every few seconds), a disabled user's token is revoked for
// good, and a removed user cannot log in.
func TestUsersFileUnderDaemon(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	users := filepath.Join(dir, "users.csv")
	testutil.WriteUsersFile(t, users, testutil.User{Name: "alice", Password: "wonderland", Role: "admin"})
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	addr := anyPort
	config := filepath.Join(dir, "zoe.hcl")
	if err := os.WriteFile(config, fmt.Appendf(nil, cliConfig, addr, filepath.Join(root, "examples", "shop")), 0o600); err != nil {
		t.Fatal(err)
	}
	s := launchServer(t, addr, config, "wonderland")

	edit := func(stdin string, args ...string) {
		t.Helper()
		r := runZoe(t, stdin, append([]string{"users-file"}, args...)...)
		if r.code != 0 {
			t.Fatalf("zoe users-file %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	const bound = 2 * time.Minute // the daemon polls every 5 s; a hang bound for a loaded machine
	status := func(token, user, pw string, want int, role string) func() (bool, string) {
		return func() (bool, string) {
			code, u := apiMe(t, s.addr, token, user, pw)
			return code == want && (role == "" || u.Role == role), fmt.Sprintf("status %d, role %q", code, u.Role)
		}
	}

	// Added: logs in at once, with the ids given.
	edit("bob-pw\n", "add", users, "bob", "--uid", "1000", "--gid", "100")
	code, u := apiMe(t, s.addr, "", "bob", "bob-pw")
	if code != http.StatusOK || u.Role != "user" || u.UID == nil || *u.UID != 1000 || u.GID == nil || *u.GID != 100 {
		t.Fatalf("bob right after zoe users-file add: status %d, %+v", code, u)
	}
	token := apiLogin(t, s.addr, "bob", "bob-pw")

	// A role change reaches both the password and the token.
	edit("", "set", users, "bob", "--role", "admin", "--clear-ids")
	waitFor(t, bound, "bob admin by password", status("", "bob", "bob-pw", http.StatusOK, "admin"))
	waitFor(t, bound, "bob admin by token", status(token, "", "", http.StatusOK, "admin"))
	if _, u := apiMe(t, s.addr, token, "", ""); u.UID != nil {
		t.Errorf("bob's uid %d after --clear-ids", *u.UID)
	}

	// A new password: the old one stops working, the token goes on.
	edit("bob-new\n", "passwd", users, "bob")
	waitFor(t, bound, "bob's old password refused", status("", "bob", "bob-pw", http.StatusUnauthorized, ""))
	if code, _ := apiMe(t, s.addr, "", "bob", "bob-new"); code != http.StatusOK {
		t.Errorf("bob's new password: status %d", code)
	}

	// Disabled: the token is revoked, the password refused.
	edit("", "disable", users, "bob")
	waitFor(t, bound, "bob's token refused", status(token, "", "", http.StatusUnauthorized, ""))
	if code, _ := apiMe(t, s.addr, "", "bob", "bob-new"); code != http.StatusUnauthorized {
		t.Errorf("disabled bob logs in: status %d", code)
	}

	// Enabled again: the password works at once (a refused password is
	// not cached, and the plugin reads the changed file before checking;
	// waiting here would pile up failures, and lock bob out, if it did not),
	// the revoked token does not.
	edit("", "enable", users, "bob")
	if code, u := apiMe(t, s.addr, "", "bob", "bob-new"); code != http.StatusOK || u.Role != "admin" {
		t.Errorf("bob enabled again: status %d, role %q", code, u.Role)
	}
	if code, _ := apiMe(t, s.addr, token, "", ""); code != http.StatusUnauthorized {
		t.Errorf("the token revoked while bob was disabled works again: status %d", code)
	}

	// Removed: refused.
	edit("", "rm", users, "bob")
	waitFor(t, bound, "removed bob refused", status("", "bob", "bob-new", http.StatusUnauthorized, ""))
	if code, _ := apiMe(t, s.addr, "", "alice", "wonderland"); code != http.StatusOK {
		t.Errorf("alice after the edits: status %d", code)
	}
}
