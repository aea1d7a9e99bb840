package ldapauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/api"
	"github.com/zoe-project/zoe/core/daemon"
	"github.com/zoe-project/zoe/internal/testutil"
)

// TestTokenAfterGroupChange: through the real daemon (the plugin as its
// own process), a user holding a token loses admin when moved out of the
// admins' group, and the token itself when left without a role, within
// the core's identity bound (shortened to 2 s here; the default is a
// minute).
func TestTokenAfterGroupChange(t *testing.T) {
	s := testutil.StartSlapd(t, testutil.SlapdOptions{LDIF: directory()})
	bin := t.TempDir()
	if err := testutil.Build(bin, map[string]string{
		"zoe-plugin-auth-ldap":     "plugins/auth-ldap",
		"zoe-plugin-workspace-dir": "plugins/workspace-dir",
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv("ZOE_TEST_LDAP_PASSWORD", serviceP)
	file := filepath.Join(dir, "zoe.hcl")
	// Port 0: the daemon takes a free port and says which (Ready); a port
	// found free here could be taken before it binds it.
	cfg := fmt.Sprintf("listen = %q\ndata_dir = \"data\"\nauth \"ldap\" {%s}\nworkspace \"dir\" {\n  base_path = \"ws\"\n}\n", "127.0.0.1:0", searchConfig(s.URL))
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	ready := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- daemon.Run(ctx, daemon.Options{
			ConfigFile: file, Executable: filepath.Join(bin, "zoe"), Diagnostics: logs, LogOutput: logs,
			Ready: func(a net.Addr) { ready <- a },
			API: func(c *api.Config) {
				// The bound alone is tested: no generation poll.
				c.IdentityTTL, c.GenerationPoll = 2*time.Second, time.Hour
			},
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-errc
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs)
		}
	})
	var addr string
	select {
	case a := <-ready:
		addr = a.String()
	case err := <-errc:
		errc <- err // for the cleanup, which waits for it
		t.Fatalf("daemon: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the daemon did not start within 2 minutes")
	}

	base := "http://" + addr + "/api/v1"
	body, _ := json.Marshal(client.Login{Username: "carol", Password: "carol-Pa55", TokenName: "laptop"})
	resp, err := http.Post(base+"/sessions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var sess client.Session
	err = json.NewDecoder(resp.Body).Decode(&sess)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || err != nil {
		t.Fatalf("login: %d, %v", resp.StatusCode, err)
	}
	get := func(path string) int {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+sess.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/users"); code != http.StatusOK {
		t.Fatalf("carol, admin by group, lists users: %d", code)
	}

	// Moved from the admins' group to the users'.
	s.Modify(t, `dn: cn=zoe-admins,ou=groups,dc=zoe,dc=test
changetype: modify
replace: member
member: uid=alice,ou=people,dc=zoe,dc=test

dn: cn=zoe-users,ou=groups,dc=zoe,dc=test
changetype: modify
add: memberUid
memberUid: carol
`)
	testutil.WaitFor(t, 2*time.Minute, "carol's token loses admin", func() (bool, string) {
		code := get("/users")
		return code == http.StatusForbidden, fmt.Sprint(code)
	})
	if code := get("/me"); code != http.StatusOK {
		t.Fatalf("carol, a user now, on /me: %d", code)
	}

	// Out of every group: no role, the token is revoked.
	s.Modify(t, `dn: cn=zoe-users,ou=groups,dc=zoe,dc=test
changetype: modify
delete: memberUid
memberUid: carol
`)
	testutil.WaitFor(t, 2*time.Minute, "carol's token revoked", func() (bool, string) {
		code := get("/me")
		return code == http.StatusUnauthorized, fmt.Sprint(code)
	})
}
