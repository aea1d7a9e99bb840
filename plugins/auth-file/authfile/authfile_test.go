package authfile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// writeUsers replaces the file at path atomically, as an editor or a
// provisioning tool would, and returns path.
func writeUsers(t testing.TB, path, content string) string {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func configJSON(t testing.TB, usersFile string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]string{"users_file": usersFile})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// configured returns a plugin configured with a users file holding content.
func configured(t testing.TB, log *slog.Logger, content string) (*Plugin, string) {
	t.Helper()
	path := writeUsers(t, filepath.Join(t.TempDir(), "users"), content)
	p := New(log)
	if err := p.Configure(context.Background(), sdk.Config{JSON: configJSON(t, path)}); err != nil {
		t.Fatal(err)
	}
	return p, path
}

func testLogger(out *testutil.SyncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestInfoAndSchema(t *testing.T) {
	p := New(slog.New(slog.DiscardHandler))
	if info := p.Info(); info.Name != "file" || info.Version != Version || info.Description == "" {
		t.Errorf("Info() = %+v", info)
	}
	s := p.Schema()
	if len(s.Attributes) != 1 || len(s.Blocks) != 0 {
		t.Fatalf("Schema() = %+v, want the one attribute users_file", s)
	}
	if a := s.Attributes[0]; a.Name != "users_file" || a.Type != "string" || !a.Required || a.Help == "" {
		t.Errorf("users_file attribute = %+v", a)
	}
	for _, r := range sdk.ReservedAttributes() {
		if s.Attributes[0].Name == r {
			t.Errorf("schema uses reserved attribute %q", r)
		}
	}
}

func TestConfigure(t *testing.T) {
	dir := t.TempDir()
	good := writeUsers(t, filepath.Join(dir, "users"), "alice,a-pass,user\n")
	world := writeUsers(t, filepath.Join(dir, "world"), "alice,a-pass,user\n")
	if err := os.Chmod(world, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := writeUsers(t, filepath.Join(dir, "bad"), "alice,S3cret,root\nbob\n# ok\nalice,x,user\n")

	tests := []struct {
		name    string
		cfg     sdk.Config
		path    []string // nil: no error wanted
		summary string
		detail  []string // substrings of the detail
	}{
		{name: "absolute", cfg: sdk.Config{JSON: configJSON(t, good)}},
		{name: "relative to ConfigDir", cfg: sdk.Config{JSON: configJSON(t, "users"), ConfigDir: dir}},
		{name: "missing attribute", cfg: sdk.Config{JSON: []byte(`{}`)},
			path: []string{"users_file"}, summary: "Missing users file"},
		{name: "empty block", cfg: sdk.Config{},
			path: []string{"users_file"}, summary: "Missing users file"},
		{name: "unknown attribute", cfg: sdk.Config{JSON: []byte(`{"users_file":"users","extra":1}`), ConfigDir: dir},
			path: []string{}, summary: "Invalid configuration of the file auth plugin", detail: []string{`unknown field "extra"`}},
		{name: "missing file", cfg: sdk.Config{JSON: configJSON(t, "nope"), ConfigDir: dir},
			path: []string{"users_file"}, summary: "Cannot use users file " + filepath.Join(dir, "nope"),
			detail: []string{filepath.Join(dir, "nope") + ": no such file or directory"}},
		{name: "world-readable", cfg: sdk.Config{JSON: configJSON(t, world)},
			path: []string{"users_file"}, summary: "Cannot use users file " + world,
			detail: []string{"users file " + world + " has mode 0644; it must be readable by its owner only: chmod 600 " + world}},
		{name: "directory", cfg: sdk.Config{JSON: configJSON(t, dir)},
			path: []string{"users_file"}, summary: "Cannot use users file " + dir, detail: []string{"is not a regular file"}},
		{name: "every bad line", cfg: sdk.Config{JSON: configJSON(t, "bad"), ConfigDir: dir},
			path: []string{"users_file"}, summary: "Cannot use users file " + bad,
			detail: []string{
				bad + ":1: unknown role in column 3 (valid roles: guest, user, admin)",
				bad + ":2: want 3 to 5 columns",
				bad + `:4: duplicate user "alice" (first defined on line 1)`,
			}},
		{name: "every bad line, validate only", cfg: sdk.Config{JSON: configJSON(t, bad), ValidateOnly: true},
			path: []string{"users_file"}, summary: "Cannot use users file " + bad,
			detail: []string{bad + ":1:", bad + ":2:", bad + ":4:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out testutil.SyncBuffer
			err := New(testLogger(&out)).Configure(context.Background(), tt.cfg)
			if tt.path == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var diags sdk.Diagnostics
			if !errors.As(err, &diags) || len(diags) != 1 {
				t.Fatalf("Configure error = %#v, want one diagnostic", err)
			}
			d := diags[0]
			if d.Severity != sdk.SeverityError || len(d.Path) != len(tt.path) || (len(d.Path) > 0 && !reflect.DeepEqual(d.Path, tt.path)) {
				t.Errorf("diagnostic %+v, want an error at %q", d, tt.path)
			}
			if d.Summary != tt.summary {
				t.Errorf("summary %q, want %q", d.Summary, tt.summary)
			}
			for _, s := range tt.detail {
				if !strings.Contains(d.Detail, s) {
					t.Errorf("detail %q does not hold %q", d.Detail, s)
				}
			}
			if strings.Contains(err.Error()+out.String(), "S3cret") {
				t.Error("a password shows in the error or the log")
			}
		})
	}
}

func TestConfigureRelativeToWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	writeUsers(t, filepath.Join(dir, "users"), "alice,a-pass,user\n")
	t.Chdir(dir)
	p := New(slog.New(slog.DiscardHandler))
	if err := p.Configure(context.Background(), sdk.Config{JSON: configJSON(t, "users")}); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir()) // the absolute path was kept
	if _, err := p.Authenticate(context.Background(), "alice", "a-pass"); err != nil {
		t.Fatal(err)
	}
}

func TestValidateOnlyChangesNothing(t *testing.T) {
	p, _ := configured(t, slog.New(slog.DiscardHandler), "alice,a-pass,user\n")
	other := writeUsers(t, filepath.Join(t.TempDir(), "users"), "bob,b-pass,user\n")
	if err := p.Configure(context.Background(), sdk.Config{JSON: configJSON(t, other), ValidateOnly: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Authenticate(context.Background(), "alice", "a-pass"); err != nil {
		t.Errorf("after a validation: %v", err)
	}
	if _, err := New(nil).Authenticate(context.Background(), "bob", "b-pass"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("validated only, Authenticate error = %v, want ErrUnavailable", err)
	}
}

func TestReconfigure(t *testing.T) {
	p, _ := configured(t, slog.New(slog.DiscardHandler), "alice,a-pass,user\n")
	other := writeUsers(t, filepath.Join(t.TempDir(), "users"), "bob,b-pass,admin\n")
	ctx := context.Background()

	// A failed Configure keeps the state in force.
	if err := p.Configure(ctx, sdk.Config{JSON: configJSON(t, other+".missing")}); err == nil {
		t.Fatal("Configure with a missing file succeeded")
	}
	if _, err := p.Authenticate(ctx, "alice", "a-pass"); err != nil {
		t.Errorf("after a failed Configure: %v", err)
	}

	if err := p.Configure(ctx, sdk.Config{JSON: configJSON(t, other)}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Authenticate(ctx, "alice", "a-pass"); !errors.Is(err, sdk.ErrInvalidCredentials) {
		t.Errorf("user of the old file: error %v, want ErrInvalidCredentials", err)
	}
	if id, err := p.Authenticate(ctx, "bob", "b-pass"); err != nil || id.Role != auth.RoleAdmin {
		t.Errorf("user of the new file: %+v, %v", id, err)
	}
}

func TestAuthenticate(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("b-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := configured(t, slog.New(slog.DiscardHandler), fmt.Sprintf("alice,a-pass,user,1000,100\nbob,%s,admin\ncarol,c-pass,guest,,50\n", hash))
	uid, gid, gid50 := uint32(1000), uint32(100), uint32(50)
	tests := []struct {
		name, user, pass string
		want             auth.Identity
		err              error
	}{
		{"plain", "alice", "a-pass", auth.Identity{Username: "alice", Role: auth.RoleUser, UID: &uid, GID: &gid}, nil},
		{"bcrypt", "bob", "b-pass", auth.Identity{Username: "bob", Role: auth.RoleAdmin}, nil},
		{"gid only", "carol", "c-pass", auth.Identity{Username: "carol", Role: auth.RoleGuest, GID: &gid50}, nil},
		{"wrong plain password", "alice", "b-pass", auth.Identity{}, sdk.ErrInvalidCredentials},
		{"wrong bcrypt password", "bob", "a-pass", auth.Identity{}, sdk.ErrInvalidCredentials},
		{"empty password", "alice", "", auth.Identity{}, sdk.ErrInvalidCredentials},
		{"unknown user", "mallory", "a-pass", auth.Identity{}, sdk.ErrInvalidCredentials},
		{"empty username", "", "", auth.Identity{}, sdk.ErrInvalidCredentials},
	}
	var messages []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.Authenticate(context.Background(), tt.user, tt.pass)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || sdk.Category(err) != tt.err {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
				if tt.pass != "" && strings.Contains(err.Error(), tt.pass) {
					t.Errorf("error quotes the password: %v", err)
				}
				messages = append(messages, err.Error())
			} else if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("identity %+v, want %+v", got, tt.want)
			}
		})
	}
	for _, m := range messages[1:] {
		if m != messages[0] {
			t.Errorf("errors tell failures apart: %q and %q", messages[0], m)
		}
	}
}

func TestAuthenticateErrors(t *testing.T) {
	if _, err := New(slog.New(slog.DiscardHandler)).Authenticate(context.Background(), "alice", "a-pass"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("before Configure: error %v, want ErrUnavailable", err)
	}
	p, _ := configured(t, slog.New(slog.DiscardHandler), "alice,a-pass,user\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Authenticate(ctx, "alice", "a-pass"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: error %v", err)
	}
}

// TestFileChanges follows one plugin through a series of changes to its
// users file; each step says which logins work afterwards and how many
// error lines the log has gained.
func TestFileChanges(t *testing.T) {
	var out testutil.SyncBuffer
	p, path := configured(t, testLogger(&out), "alice,a-pass,user\n")
	ctx := context.Background()

	steps := []struct {
		name   string
		change func(t *testing.T)
		ok     []string // user:password pairs that log in
		fail   []string // ... that do not
		errs   int      // error lines logged by this step
	}{
		{"unchanged", func(*testing.T) {}, []string{"alice:a-pass"}, nil, 0},
		{"user added by rename", func(t *testing.T) {
			writeUsers(t, path, "alice,a-pass,user\nbob,b-pass,user\n")
		}, []string{"alice:a-pass", "bob:b-pass"}, nil, 0},
		{"password changed in place", func(t *testing.T) {
			if err := os.WriteFile(path, []byte("alice,A-pass2,user\nbob,b-pass,user\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"alice:A-pass2", "bob:b-pass"}, []string{"alice:a-pass"}, 0},
		{"broken rewrite keeps the old users", func(t *testing.T) {
			writeUsers(t, path, "alice,S3cret-new,root\n")
		}, []string{"alice:A-pass2", "bob:b-pass"}, []string{"alice:S3cret-new"}, 1},
		{"fixed", func(t *testing.T) {
			writeUsers(t, path, "alice,a-pass3,admin\n")
		}, []string{"alice:a-pass3"}, []string{"bob:b-pass"}, 0},
		{"made world-readable", func(t *testing.T) {
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"alice:a-pass3"}, nil, 1},
		{"mode fixed", func(t *testing.T) {
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"alice:a-pass3"}, nil, 0},
		{"removed", func(t *testing.T) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, []string{"alice:a-pass3"}, nil, 1},
		{"back", func(t *testing.T) {
			writeUsers(t, path, "carol,c-pass,guest\n")
		}, []string{"carol:c-pass"}, []string{"alice:a-pass3"}, 0},
	}
	for _, s := range steps {
		before := strings.Count(out.String(), "level=ERROR")
		s.change(t)
		// Several rounds: a broken version must be logged once, not per call.
		for range 3 {
			for _, up := range s.ok {
				u, pw, _ := strings.Cut(up, ":")
				if id, err := p.Authenticate(ctx, u, pw); err != nil || id.Username != u {
					t.Errorf("%s: %s: %+v, %v", s.name, u, id, err)
				}
			}
			for _, up := range s.fail {
				u, pw, _ := strings.Cut(up, ":")
				if _, err := p.Authenticate(ctx, u, pw); !errors.Is(err, sdk.ErrInvalidCredentials) {
					t.Errorf("%s: %s: error %v, want ErrInvalidCredentials", s.name, up, err)
				}
			}
		}
		if got := strings.Count(out.String(), "level=ERROR") - before; got != s.errs {
			t.Errorf("%s: %d errors logged, want %d:\n%s", s.name, got, s.errs, out.String())
		}
	}
	for _, secret := range []string{"a-pass", "b-pass", "S3cret"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("log shows a password:\n%s", out.String())
		}
	}
}

// TestConcurrent runs logins while the file is rewritten; -race checks it.
func TestConcurrent(t *testing.T) {
	p, path := configured(t, slog.New(slog.DiscardHandler), "alice,a-pass,user\n")
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// alice always logs in; bob comes and goes.
			content := "alice,a-pass,user\n"
			if i%2 == 0 {
				content += "bob,b-pass,user\n"
			}
			// Not writeUsers: t.Fatal may not be called from this goroutine.
			if err := os.WriteFile(path+".tmp", []byte(content), 0o600); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(path+".tmp", path); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var workers sync.WaitGroup
	for range 8 {
		workers.Go(func() {
			for range 200 {
				if _, err := p.Authenticate(ctx, "alice", "a-pass"); err != nil {
					t.Errorf("alice: %v", err)
					return
				}
				if _, err := p.Authenticate(ctx, "bob", "b-pass"); err != nil && !errors.Is(err, sdk.ErrInvalidCredentials) {
					t.Errorf("bob: %v", err)
					return
				}
			}
		})
	}
	workers.Wait()
	close(stop)
	wg.Wait()
}

// Lookup and Generation follow the file: a removed user is not found and a
// changed role shows at once, and the generation grows with each read of a
// changed file, and only then.
func TestLookupFollowsTheFile(t *testing.T) {
	ctx := context.Background()
	p, path := configured(t, slog.New(slog.DiscardHandler), "alice,a-pass,admin,1000,100\nbob,b-pass,user\n")
	g1 := must(t)(p.Generation(ctx))
	uid, gid := uint32(1000), uint32(100)
	if id, err := p.Lookup(ctx, "alice"); err != nil || !reflect.DeepEqual(id, auth.Identity{Username: "alice", Role: auth.RoleAdmin, UID: &uid, GID: &gid}) {
		t.Fatalf("Lookup(alice) = %+v, %v", id, err)
	}
	if g := must(t)(p.Generation(ctx)); g != g1 {
		t.Fatalf("generation %d then %d without a change", g1, g)
	}

	writeUsers(t, path, "alice,a-pass,user,1000,100\n")
	g2 := must(t)(p.Generation(ctx))
	if g2 == g1 {
		t.Fatalf("generation stays %d after the file changed", g2)
	}
	if id, err := p.Lookup(ctx, "alice"); err != nil || id.Role != auth.RoleUser {
		t.Errorf("Lookup(alice) after her demotion = %+v, %v", id, err)
	}
	if _, err := p.Lookup(ctx, "bob"); !errors.Is(err, sdk.ErrNotFound) || sdk.Category(err) != sdk.ErrNotFound {
		t.Errorf("Lookup(bob) after his removal: %v, want ErrNotFound", err)
	}
	// A broken version is not read: the users and the generation stay.
	writeUsers(t, path, "alice,a-pass,root\n")
	if g := must(t)(p.Generation(ctx)); g != g2 {
		t.Errorf("generation %d after a broken version, want %d", g, g2)
	}
	if _, err := New(nil).Lookup(ctx, "alice"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("Lookup before Configure: %v, want ErrUnavailable", err)
	}
}

// TestFileRewrittenInPlace: an editor rewriting the file in place
// truncates it first. Read at that instant, the empty file is not taken
// for "no users" (every token would be revoked): the users last read stay
// until it has content again, which is then read.
func TestFileRewrittenInPlace(t *testing.T) {
	ctx := context.Background()
	out := &testutil.SyncBuffer{}
	p, path := configured(t, testLogger(out), "alice,a-pass,admin\nbob,b-pass,user\n")
	g1 := must(t)(p.Generation(ctx))
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second call sees the same empty version
		if id, err := p.Lookup(ctx, "bob"); err != nil || id.Role != auth.RoleUser {
			t.Fatalf("Lookup(bob) while the file is empty: %+v, %v; want the user last read", id, err)
		}
		if g := must(t)(p.Generation(ctx)); g != g1 {
			t.Fatalf("generation %d while the file is empty, want %d", g, g1)
		}
	}
	if n := strings.Count(out.String(), "users file is empty"); n != 1 {
		t.Errorf("%d warnings about the empty file, want 1:\n%s", n, out)
	}
	// The rest of the in-place write: read at once.
	if err := os.WriteFile(path, []byte("alice,a-pass,admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Lookup(ctx, "bob"); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Lookup(bob) once the file is written without him: %v, want ErrNotFound", err)
	}
	// Every user removed on purpose: a file with a comment line.
	if err := os.WriteFile(path, []byte("# nobody\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Lookup(ctx, "alice"); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Lookup(alice) after every user was removed: %v, want ErrNotFound", err)
	}
}

func must(t *testing.T) func(uint64, error) uint64 {
	return func(v uint64, err error) uint64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// A disabled user (password field starting with '!') can neither log in
// nor be looked up, as the contract asks (the core then revokes its
// tokens); enabled again, it logs in with the password it had.
func TestDisabledUsers(t *testing.T) {
	ctx := context.Background()
	p, path := configured(t, slog.New(slog.DiscardHandler), "alice,a-pass,admin\nbob,!b-pass,user\n")
	if _, err := p.Authenticate(ctx, "bob", "b-pass"); !errors.Is(err, sdk.ErrInvalidCredentials) {
		t.Errorf("Authenticate(disabled bob) = %v, want ErrInvalidCredentials", err)
	}
	if _, err := p.Lookup(ctx, "bob"); !errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("Lookup(disabled bob) = %v, want ErrNotFound saying disabled", err)
	}
	g1 := must(t)(p.Generation(ctx))

	// Enabled again: his password works; alice disabled: hers does not.
	writeUsers(t, path, "alice,!a-pass,admin\nbob,b-pass,user\n")
	if g := must(t)(p.Generation(ctx)); g == g1 {
		t.Errorf("generation stays %d after users were enabled and disabled", g)
	}
	if id, err := p.Authenticate(ctx, "bob", "b-pass"); err != nil || id.Username != "bob" {
		t.Errorf("Authenticate(enabled bob) = %+v, %v", id, err)
	}
	if _, err := p.Lookup(ctx, "bob"); err != nil {
		t.Errorf("Lookup(enabled bob) = %v", err)
	}
	for _, pw := range []string{"a-pass", "!a-pass"} {
		if _, err := p.Authenticate(ctx, "alice", pw); !errors.Is(err, sdk.ErrInvalidCredentials) {
			t.Errorf("Authenticate(disabled alice, %q) = %v, want ErrInvalidCredentials", pw, err)
		}
	}
	if _, err := p.Lookup(ctx, "alice"); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Lookup(disabled alice) = %v, want ErrNotFound", err)
	}
}
