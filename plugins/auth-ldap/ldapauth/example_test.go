package ldapauth

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/testutil"
)

// TestExampleDaemon runs `zoe server` on examples/ldap.hcl as it is (the
// directory's address, CA and service password from the environment, as
// the file says) against a real slapd with TLS, and logs users in through
// the HTTP API: the roles, uid and gid come from the directory; the auth
// "file" block after the ldap one serves local accounts, also while the
// directory is down.
func TestExampleDaemon(t *testing.T) {
	ca := testutil.NewCA(t, "zoe-test-ca")
	s := testutil.StartSlapd(t, testutil.SlapdOptions{LDIF: directory(), CA: ca})
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	bins := testutil.Binaries()
	bins["zoe-plugin-auth-ldap"] = "plugins/auth-ldap"
	if err := testutil.Build(bin, bins); err != nil {
		t.Fatal(err)
	}
	// The example's relative paths (../.zoe/...) land in the test's
	// directory.
	work := t.TempDir()
	example, err := os.ReadFile(filepath.Join(root, "examples", "ldap.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"examples", ".zoe"} {
		if err := os.Mkdir(filepath.Join(work, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cfgFile := filepath.Join(work, "examples", "ldap.hcl")
	if err := os.WriteFile(cfgFile, example, 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.WriteUsersFile(t, filepath.Join(work, ".zoe", "ldap-users.csv"),
		testutil.User{Name: "robot", Password: "robot-Pa55", Role: "admin"},
		// alice is in the directory too, with another password.
		testutil.User{Name: "alice", Password: "local-Pa55", Role: "guest"})

	// Port 0: the daemon takes a free port and says which in its ready
	// line (a port found free here could be taken before it binds it).
	var addr string
	out := &testutil.SyncBuffer{}
	cmd := exec.Command(filepath.Join(bin, "zoe"), "server", "-config", cfgFile)
	cmd.Env = append(os.Environ(), "ZOE_LISTEN=127.0.0.1:0", "ZOE_LDAP_URL="+s.LDAPSURL, "ZOE_LDAP_CA_FILE="+ca.File,
		"ZOE_LDAP_PASSWORD="+serviceP)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("zoe server output:\n%s", out)
		}
	})
	hc := &http.Client{Timeout: time.Minute}
	get := func(path, user, password string) (int, client.User) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(user, password)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s as %s: %v", path, user, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var u client.User
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(body, &u); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
		}
		return resp.StatusCode, u
	}
	me := func(user, password string) (int, client.User) {
		t.Helper()
		return get("/api/v1/me", user, password)
	}
	// asAdmin is user as the users file's admin sees them.
	asAdmin := func(user string) client.User {
		t.Helper()
		code, u := get("/api/v1/users/"+user, "robot", "robot-Pa55")
		if code != 200 {
			t.Fatalf("GET /api/v1/users/%s: %d", user, code)
		}
		return u
	}
	testutil.WaitFor(t, 2*time.Minute, "the API answers with the plugins ready", func() (bool, string) {
		select {
		case <-done:
			t.Fatalf("zoe server exited: %v", cmd.ProcessState)
		default:
		}
		if addr == "" {
			m := regexp.MustCompile(`zoe is ready: url=http://([^/ ]+)/`).FindStringSubmatch(out.String())
			if m == nil {
				return false, "no ready line yet"
			}
			addr = m[1]
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/me", nil)
		req.SetBasicAuth("robot", "robot-Pa55")
		resp, err := hc.Do(req)
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})

	id := func(u *uint32) string {
		if u == nil {
			return "-"
		}
		return fmt.Sprint(*u)
	}
	for _, tt := range []struct {
		user, password string
		status         int
		role, uid, gid string
		groups         []string
	}{
		{"alice", "alice-Pa55", 200, "admin", "1001", "5000", []string{"staff"}}, // gidNumber 5000
		{"carol", "carol-Pa55", 200, "admin", "1003", "6000", []string{"zoe-admins"}},
		{"dave", "dave-Pa55", 200, "user", "1004", "6000", []string{"zoe-users"}},
		{"grace", "grace-Pa55", 403, "", "", "", nil},        // default_role guest: no API
		{"robot", "robot-Pa55", 200, "admin", "-", "-", nil}, // the users file
		{"frank", "frank-Pa55", 401, "", "", "", nil},        // disabled
		{"alice", "wrong", 401, "", "", "", nil},
		{"*", "alice-Pa55", 401, "", "", "", nil},
	} {
		code, u := me(tt.user, tt.password)
		if code != tt.status {
			t.Errorf("%s: status %d, want %d", tt.user, code, tt.status)
			continue
		}
		if code == 200 && (u.Role != tt.role || id(u.UID) != tt.uid || id(u.GID) != tt.gid || !slices.Equal(u.Groups, tt.groups)) {
			t.Errorf("%s: role %s uid %s gid %s groups %v; want %s %s %s %v", tt.user, u.Role, id(u.UID), id(u.GID), u.Groups, tt.role, tt.uid, tt.gid, tt.groups)
		}
	}
	if u := asAdmin("grace"); u.Role != "guest" || u.Email != "grace@zoe.test" || id(u.UID) != "1007" {
		t.Errorf("grace: role %s, e-mail %s, uid %s; want guest (default_role), grace@zoe.test, 1007", u.Role, u.Email, id(u.UID))
	}
	// A name in both sources belongs to the directory, the first block
	// that knows it (every look-up asks it first): the users file's
	// password for it is refused.
	if code, _ := me("alice", "local-Pa55"); code != http.StatusUnauthorized {
		t.Errorf("alice with the users file's password: %d, want 401 (the name is the directory's)", code)
	}

	// Directory down: the file's accounts still log in; directory users
	// not seen before get 503 (unavailable), not 401.
	s.Stop(t)
	if code, _ := me("robot", "robot-Pa55"); code != 200 {
		t.Errorf("robot with the directory down: %d, want 200", code)
	}
	if code, _ := me("erin", "erin-Pa55"); code != http.StatusServiceUnavailable {
		t.Errorf("erin with the directory down: %d, want 503", code)
	}
	s.Start(t)
	if code, _ := me("erin", "erin-Pa55"); code != http.StatusForbidden {
		t.Errorf("erin with the directory back: %d, want 403 (a guest)", code)
	}
	if u := asAdmin("erin"); u.Role != "guest" {
		t.Errorf("erin: role %s, want guest", u.Role)
	}
}
