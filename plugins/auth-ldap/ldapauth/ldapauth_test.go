package ldapauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/hcl/v2"

	zoeconfig "github.com/zoe-project/zoe/core/config"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

const (
	base     = "dc=zoe,dc=test"
	people   = "ou=people," + base
	serviceP = "service-Pa55"
)

// directory is the test directory: one user for each way to get a role.
//
//	alice  gidNumber 5000                      -> admin (gid rule)
//	bob    gidNumber 5001                      -> user  (gid rule)
//	carol  member of groupOfNames zoe-admins   -> admin (group rule, member)
//	dave   memberUid of posixGroup zoe-users   -> user  (group rule by DN, memberUid)
//	erin   member of cn=lab,ou=other           -> guest (group rule by DN; memberOf only: ou=other is outside group_base)
//	heidi  member of cn=zoe-admins,ou=other    -> refused (a rule's group name matches only groups under group_base)
//	frank  loginShell /usr/sbin/nologin        -> disabled
//	grace  nothing                             -> refused, or default_role
//	jörg   gidNumber 5001                      -> user (a non-ASCII name)
func directory() string {
	b64 := func(v string) string { return base64.StdEncoding.EncodeToString([]byte(v)) }
	user := func(uid string, uidNumber, gid int, extra string) string {
		mail := strings.ReplaceAll(uid, "ö", "oe")
		name := strings.ToUpper(uid[:1]) + uid[1:]
		return fmt.Sprintf(`dn:: %s
objectClass: inetOrgPerson
objectClass: posixAccount
uid:: %s
cn:: %s
sn:: %s
mail: %s@zoe.test
uidNumber: %d
gidNumber: %d
homeDirectory: /home/%s
userPassword: %s
%s
`, b64("uid="+uid+","+people), b64(uid), b64(name), b64(uid), mail, uidNumber, gid, mail, testutil.SSHA(uid+"-Pa55"), extra)
	}
	return `dn: ou=people,dc=zoe,dc=test
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=zoe,dc=test
objectClass: organizationalUnit
ou: groups

dn: ou=other,dc=zoe,dc=test
objectClass: organizationalUnit
ou: other

dn: ou=services,dc=zoe,dc=test
objectClass: organizationalUnit
ou: services

dn: cn=zoe,ou=services,dc=zoe,dc=test
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: zoe
userPassword: ` + testutil.SSHA(serviceP) + `

` + user("alice", 1001, 5000, "") + "\n" +
		user("bob", 1002, 5001, "") + "\n" +
		user("carol", 1003, 6000, "") + "\n" +
		user("dave", 1004, 6000, "") + "\n" +
		user("erin", 1005, 6000, "") + "\n" +
		user("frank", 1006, 5000, "loginShell: /usr/sbin/nologin") + "\n" +
		user("grace", 1007, 6000, "") + "\n" +
		user("jörg", 1008, 5001, "") + "\n" +
		user("heidi", 1009, 6000, "") + `
dn: cn=zoe-admins,ou=groups,dc=zoe,dc=test
objectClass: groupOfNames
cn: zoe-admins
member: uid=carol,ou=people,dc=zoe,dc=test

dn: cn=zoe-users,ou=groups,dc=zoe,dc=test
objectClass: posixGroup
cn: zoe-users
gidNumber: 7000
memberUid: dave

dn: cn=staff,ou=groups,dc=zoe,dc=test
objectClass: posixGroup
cn: staff
gidNumber: 5000

dn: cn=lab,ou=other,dc=zoe,dc=test
objectClass: groupOfNames
cn: lab
member: uid=erin,ou=people,dc=zoe,dc=test

dn: cn=zoe-admins,ou=other,dc=zoe,dc=test
objectClass: groupOfNames
cn: zoe-admins
member: uid=heidi,ou=people,dc=zoe,dc=test
`
}

// roles are the role rules of the test configuration.
const roles = `
  role {
    gid_number = 5000
    role       = "admin"
  }
  role {
    group = "zoe-admins"
    role  = "admin"
  }
  role {
    group = "cn=zoe-users,ou=groups,dc=zoe,dc=test"
    role  = "user"
  }
  role {
    gid_number = 5001
    role       = "user"
  }
  role {
    group = "cn=lab,ou=other,dc=zoe,dc=test"
    role  = "guest"
  }
`

// searchConfig is the usual configuration: a service account searches.
func searchConfig(urls ...string) string {
	return fmt.Sprintf(`
  urls            = %s
  allow_insecure  = true
  bind_dn         = "cn=zoe,ou=services,dc=zoe,dc=test"
  bind_password   = env("ZOE_TEST_LDAP_PASSWORD")
  user_base       = "ou=people,dc=zoe,dc=test"
  group_base      = "ou=groups,dc=zoe,dc=test"
  disabled_filter = "(loginShell=/usr/sbin/nologin)"
  timeout         = "20s"
  pool_size       = 2
%s`, hclList(urls), roles)
}

func hclList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// decode decodes body as the core decodes an `auth "ldap"` block of a
// configuration file at dir/zoe.hcl.
func decode(t *testing.T, dir, body string) (*zoeconfig.Config, sdk.Config, hcl.Diagnostics) {
	t.Helper()
	t.Setenv("ZOE_TEST_LDAP_PASSWORD", serviceP)
	return decodeTB(t, dir, body)
}

// decodeTB is decode for benchmarks too; the caller sets the password's
// environment variable.
func decodeTB(t testing.TB, dir, body string) (*zoeconfig.Config, sdk.Config, hcl.Diagnostics) {
	t.Helper()
	file := filepath.Join(dir, "zoe.hcl")
	cfg, diags := zoeconfig.Parse(file, []byte("auth \"ldap\" {"+body+"}\n"))
	if diags.HasErrors() {
		return nil, sdk.Config{}, diags
	}
	js, diags := cfg.Plugins[0].Decode(New(nil).Schema(), cfg.EvalContext())
	return cfg, sdk.Config{JSON: js, ConfigDir: dir}, diags
}

// configure returns a plugin configured with body, failing t on any error.
func configure(t *testing.T, body string) (*Plugin, *testutil.SyncBuffer) {
	t.Helper()
	p, logs, diags := tryConfigure(t, body)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return p, logs
}

func tryConfigure(t *testing.T, body string) (*Plugin, *testutil.SyncBuffer, hcl.Diagnostics) {
	t.Helper()
	dir := t.TempDir()
	cfg, sc, diags := decode(t, dir, body)
	if diags.HasErrors() {
		return nil, nil, diags
	}
	logs := &testutil.SyncBuffer{}
	p := New(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err := p.Configure(context.Background(), sc); err != nil {
		var d sdk.Diagnostics
		if !errors.As(err, &d) {
			t.Fatalf("Configure: %v", err)
		}
		return nil, logs, cfg.Plugins[0].Diagnostics(d)
	}
	t.Cleanup(func() { p.mu.Lock(); p.pool.close(); p.mu.Unlock() })
	return p, logs, nil
}

func u32(v uint32) *uint32 { return &v }

func TestAuthenticate(t *testing.T) {
	// bind_anon_cred: this slapd answers a bind with a DN and no password
	// with success, as RFC 4513 allows, so an empty password must never
	// reach it (the plugin refuses it first; go-ldap also refuses it on the
	// client's side).
	s := testutil.StartSlapd(t, testutil.SlapdOptions{LDIF: directory(), Global: "allow bind_anon_cred"})
	p, logs := configure(t, searchConfig(s.URL))
	ctx := context.Background()

	tests := []struct {
		user, password string
		want           auth.Identity // Username "" : refused as wrong credentials
	}{
		{"alice", "alice-Pa55", auth.Identity{Username: "alice", Role: auth.RoleAdmin, UID: u32(1001), GID: u32(5000), Email: "alice@zoe.test", DisplayName: "Alice", Groups: []string{"staff"}}},
		{"bob", "bob-Pa55", auth.Identity{Username: "bob", Role: auth.RoleUser, UID: u32(1002), GID: u32(5001), Email: "bob@zoe.test", DisplayName: "Bob"}},
		{"carol", "carol-Pa55", auth.Identity{Username: "carol", Role: auth.RoleAdmin, UID: u32(1003), GID: u32(6000), Email: "carol@zoe.test", DisplayName: "Carol", Groups: []string{"zoe-admins"}}},
		{"dave", "dave-Pa55", auth.Identity{Username: "dave", Role: auth.RoleUser, UID: u32(1004), GID: u32(6000), Email: "dave@zoe.test", DisplayName: "Dave", Groups: []string{"zoe-users"}}},
		{"erin", "erin-Pa55", auth.Identity{Username: "erin", Role: auth.RoleGuest, UID: u32(1005), GID: u32(6000), Email: "erin@zoe.test", DisplayName: "Erin", Groups: []string{"lab"}}},
		{"jörg", "jörg-Pa55", auth.Identity{Username: "jörg", Role: auth.RoleUser, UID: u32(1008), GID: u32(5001), Email: "joerg@zoe.test", DisplayName: "Jörg"}},
		// The directory's spelling of the name is the username.
		{"ALICE", "alice-Pa55", auth.Identity{Username: "alice", Role: auth.RoleAdmin, UID: u32(1001), GID: u32(5000), Email: "alice@zoe.test", DisplayName: "Alice", Groups: []string{"staff"}}},
		{"alice", "wrong", auth.Identity{}},
		{"alice", "alice-pa55", auth.Identity{}},
		{"alice", "", auth.Identity{}}, // empty: an anonymous bind would succeed
		{"nobody", "alice-Pa55", auth.Identity{}},
		{"frank", "frank-Pa55", auth.Identity{}}, // disabled
		{"grace", "grace-Pa55", auth.Identity{}}, // no role rule, no default
		{"heidi", "heidi-Pa55", auth.Identity{}}, // her zoe-admins is not under group_base
		// Injection attempts: escaped, they match nobody.
		{"*", "alice-Pa55", auth.Identity{}},
		{"a*", "alice-Pa55", auth.Identity{}},
		{"alice)(uid=*", "alice-Pa55", auth.Identity{}},
		{"*)(|(uid=*", "x", auth.Identity{}},
		{"alice\x00", "alice-Pa55", auth.Identity{}},
		{"alice\\2a", "alice-Pa55", auth.Identity{}},
		{"jorg", "jörg-Pa55", auth.Identity{}},
		{"\xff", "x", auth.Identity{}},
		{"", "", auth.Identity{}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.user), func(t *testing.T) {
			got, err := p.Authenticate(ctx, tt.user, tt.password)
			if tt.want.Username == "" {
				if !errors.Is(err, sdk.ErrInvalidCredentials) {
					t.Fatalf("Authenticate(%q, %q) = %+v, %v; want invalid credentials", tt.user, tt.password, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate(%q): %v", tt.user, err)
			}
			checkIdentity(t, got, tt.want)
			// The look-up gives what a login gives.
			looked, err := p.Lookup(ctx, tt.user)
			if err != nil {
				t.Fatalf("Lookup(%q): %v", tt.user, err)
			}
			checkIdentity(t, looked, tt.want)
		})
	}
	for _, name := range []string{"nobody", "frank", "grace", "*", "alice)(uid=*", ""} {
		if _, err := p.Lookup(ctx, name); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Lookup(%q): %v, want not found", name, err)
		}
	}
	if strings.Contains(logs.String(), serviceP) {
		t.Errorf("the service password is in the log:\n%s", logs)
	}
}

func checkIdentity(t *testing.T, got, want auth.Identity) {
	t.Helper()
	if fmt.Sprint(got.Groups) != fmt.Sprint(want.Groups) || got.Username != want.Username || got.Role != want.Role ||
		got.Email != want.Email || got.DisplayName != want.DisplayName ||
		!equalID(got.UID, want.UID) || !equalID(got.GID, want.GID) {
		t.Errorf("identity\n%s\nwant\n%s", show(got), show(want))
	}
}

func equalID(a, b *uint32) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func show(id auth.Identity) string {
	d := func(p *uint32) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("%s role=%s uid=%s gid=%s mail=%s name=%s groups=%v", id.Username, id.Role, d(id.UID), d(id.GID), id.Email, id.DisplayName, id.Groups)
}

// TestDefaultRole: users no rule matches get the default role; without
// group_base, group rules see memberOf only.
func TestDefaultRole(t *testing.T) {
	s := testutil.StartSlapd(t, testutil.SlapdOptions{LDIF: directory()})
	p, _ := configure(t, fmt.Sprintf(`
  urls           = [%q]
  allow_insecure = true
  user_base      = "ou=people,dc=zoe,dc=test"
  default_role   = "guest"
  role {
    group = "zoe-admins"
    role  = "admin"
  }
`, s.URL))
	ctx := context.Background()
	for _, tt := range []struct {
		user string
		role auth.Role
	}{
		{"grace", auth.RoleGuest},
		{"alice", auth.RoleGuest}, // no gid rule here
		{"carol", auth.RoleAdmin}, // memberOf, searched anonymously
		{"dave", auth.RoleGuest},  // memberUid needs group_base
	} {
		id, err := p.Authenticate(ctx, tt.user, tt.user+"-Pa55")
		if err != nil || id.Role != tt.role {
			t.Errorf("Authenticate(%q) = %s, %v; want role %s", tt.user, show(id), err, tt.role)
		}
	}
}

// TestDNTemplate: users bind directly; look-ups need the service account.
func TestDNTemplate(t *testing.T) {
	s := testutil.StartSlapd(t, testutil.SlapdOptions{LDIF: directory()})
	ctx := context.Background()
	body := fmt.Sprintf(`
  urls             = [%q]
  allow_insecure   = true
  user_dn_template = "uid=%%s,ou=people,dc=zoe,dc=test"
  group_base       = "ou=groups,dc=zoe,dc=test"
  disabled_filter  = "(loginShell=/usr/sbin/nologin)"
%s`, s.URL, roles)
	p, _ := configure(t, body)
	id, err := p.Authenticate(ctx, "carol", "carol-Pa55")
	if err != nil || id.Role != auth.RoleAdmin || id.Username != "carol" {
		t.Fatalf("Authenticate(carol) = %s, %v", show(id), err)
	}
	for _, c := range [][2]string{{"carol", "x"}, {"frank", "frank-Pa55"}, {"nobody", "x"}, {"carol,ou=people", "carol-Pa55"}, {"*", "x"}} {
		if _, err := p.Authenticate(ctx, c[0], c[1]); !errors.Is(err, sdk.ErrInvalidCredentials) {
			t.Errorf("Authenticate(%q): %v, want invalid credentials", c[0], err)
		}
	}
	if _, err := p.Lookup(ctx, "carol"); !errors.Is(err, sdk.ErrUnsupported) {
		t.Errorf("Lookup without bind_dn: %v, want unsupported", err)
	}

	p, _ = configure(t, body+`
  bind_dn       = "cn=zoe,ou=services,dc=zoe,dc=test"
  bind_password = env("ZOE_TEST_LDAP_PASSWORD")
`)
	if id, err := p.Lookup(ctx, "dave"); err != nil || id.Role != auth.RoleUser {
		t.Errorf("Lookup(dave) = %s, %v", show(id), err)
	}
	for _, name := range []string{"nobody", "frank"} {
		if _, err := p.Lookup(ctx, name); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Lookup(%q): %v, want not found", name, err)
		}
	}
}

// TestGroupChange: a user moved out of the admins' group loses admin at
// the next look-up (the core looks up at least once a minute), and a user
// removed from the directory is not found.
func TestGroupChange(t *testing.T) {
	s := testutil.StartSlapd(t, testutil.SlapdOptions{LDIF: directory()})
	p, _ := configure(t, searchConfig(s.URL))
	ctx := context.Background()
	if id, err := p.Authenticate(ctx, "carol", "carol-Pa55"); err != nil || id.Role != auth.RoleAdmin {
		t.Fatalf("Authenticate(carol) = %s, %v", show(id), err)
	}
	s.Modify(t, `dn: cn=zoe-admins,ou=groups,dc=zoe,dc=test
changetype: modify
replace: member
member: uid=alice,ou=people,dc=zoe,dc=test

dn: cn=zoe-users,ou=groups,dc=zoe,dc=test
changetype: modify
add: memberUid
memberUid: carol
`)
	if id, err := p.Lookup(ctx, "carol"); err != nil || id.Role != auth.RoleUser {
		t.Errorf("after the move, Lookup(carol) = %s, %v; want role user", show(id), err)
	}
	// Out of every group: no role, no default: the user is gone.
	s.Modify(t, `dn: cn=zoe-users,ou=groups,dc=zoe,dc=test
changetype: modify
delete: memberUid
memberUid: carol
`)
	if _, err := p.Lookup(ctx, "carol"); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("without a group, Lookup(carol): %v; want not found", err)
	}
	s.Modify(t, "dn: uid=bob,ou=people,dc=zoe,dc=test\nchangetype: delete\n")
	if _, err := p.Lookup(ctx, "bob"); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("deleted, Lookup(bob): %v; want not found", err)
	}
	// Disabled after the login.
	s.Modify(t, "dn: uid=alice,ou=people,dc=zoe,dc=test\nchangetype: modify\nreplace: loginShell\nloginShell: /usr/sbin/nologin\n")
	if _, err := p.Lookup(ctx, "alice"); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("disabled, Lookup(alice): %v; want not found", err)
	}
}

// TestTLS: ldaps:// and StartTLS verify the server against ca_file; a
// wrong CA is refused.
func TestTLS(t *testing.T) {
	ca := testutil.NewCA(t, "zoe-test-ca")
	s := testutil.StartSlapd(t, testutil.SlapdOptions{LDIF: directory(), CA: ca})
	other := testutil.NewCA(t, "other-ca")
	ctx := context.Background()
	tlsConfig := func(url, caFile string, startTLS bool) string {
		return fmt.Sprintf(`
  urls          = [%q]
  start_tls     = %t
  ca_file       = %q
  bind_dn       = "cn=zoe,ou=services,dc=zoe,dc=test"
  bind_password = env("ZOE_TEST_LDAP_PASSWORD")
  user_base     = "ou=people,dc=zoe,dc=test"
  timeout       = "20s"
%s`, url, startTLS, caFile, roles)
	}
	for _, tt := range []struct {
		name     string
		url      string
		startTLS bool
	}{{"ldaps", s.LDAPSURL, false}, {"StartTLS", s.URL, true}} {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := configure(t, tlsConfig(tt.url, ca.File, tt.startTLS))
			if id, err := p.Authenticate(ctx, "alice", "alice-Pa55"); err != nil || id.Role != auth.RoleAdmin {
				t.Errorf("Authenticate(alice) = %s, %v", show(id), err)
			}
			if _, err := p.Authenticate(ctx, "alice", "x"); !errors.Is(err, sdk.ErrInvalidCredentials) {
				t.Errorf("wrong password: %v", err)
			}
			p, logs := configure(t, tlsConfig(tt.url, other.File, tt.startTLS))
			_, err := p.Authenticate(ctx, "alice", "alice-Pa55")
			if !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("with a wrong CA: %v, want unavailable for the certificate", err)
			}
			if !strings.Contains(logs.String(), "certificate") {
				t.Errorf("the log does not tell the certificate is the problem:\n%s", logs)
			}
			// The system's CAs do not know the test CA either.
			p, _ = configure(t, strings.Replace(tlsConfig(tt.url, ca.File, tt.startTLS), "ca_file", "# ca_file", 1))
			if _, err := p.Authenticate(ctx, "alice", "alice-Pa55"); !errors.Is(err, sdk.ErrUnavailable) {
				t.Errorf("without ca_file: %v, want unavailable", err)
			}
		})
	}
}

// TestServerRestart: logins fail as unavailable while the directory is
// down (the pooled connections are dead), and work again once it is back,
// without configuring the plugin again.
func TestServerRestart(t *testing.T) {
	s := testutil.StartSlapd(t, testutil.SlapdOptions{LDIF: directory()})
	p, _ := configure(t, searchConfig(s.URL))
	ctx := context.Background()
	login := func() error {
		_, err := p.Authenticate(ctx, "alice", "alice-Pa55")
		return err
	}
	// Fill the pool.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := login(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s.Stop(t)
	if err := login(); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("directory down: %v, want unavailable", err)
	}
	if _, err := p.Lookup(ctx, "alice"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("directory down, Lookup: %v, want unavailable (not found would revoke the tokens)", err)
	}
	if _, err := p.Authenticate(ctx, "alice", "x"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("directory down, wrong password: %v, want unavailable", err)
	}
	s.Start(t)
	if err := login(); err != nil {
		t.Fatalf("directory back: %v", err)
	}
}

// TestFailover: with the first server down, the second answers.
func TestFailover(t *testing.T) {
	s1 := testutil.StartSlapd(t, testutil.SlapdOptions{LDIF: directory()})
	s2 := testutil.StartSlapd(t, testutil.SlapdOptions{LDIF: directory()})
	p, logs := configure(t, searchConfig(s1.URL, s2.URL))
	ctx := context.Background()
	if _, err := p.Authenticate(ctx, "bob", "bob-Pa55"); err != nil {
		t.Fatal(err)
	}
	s1.Stop(t)
	for i := range 3 {
		if id, err := p.Authenticate(ctx, "bob", "bob-Pa55"); err != nil || id.Role != auth.RoleUser {
			t.Fatalf("login %d with the first server down: %s, %v", i, show(id), err)
		}
	}
	if !strings.Contains(logs.String(), "failover") {
		t.Errorf("no failover in the log:\n%s", logs)
	}
	s2.Stop(t)
	if _, err := p.Authenticate(ctx, "bob", "bob-Pa55"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("both down: %v, want unavailable", err)
	}
	s1.Start(t)
	if _, err := p.Authenticate(ctx, "bob", "bob-Pa55"); err != nil {
		t.Fatalf("first back: %v", err)
	}
}

// TestServiceBindRefused: a wrong service password makes the directory
// unavailable (an administrator's mistake), never "user not found".
func TestServiceBindRefused(t *testing.T) {
	s := testutil.StartSlapd(t, testutil.SlapdOptions{LDIF: directory()})
	p, logs := configure(t, strings.Replace(searchConfig(s.URL), `env("ZOE_TEST_LDAP_PASSWORD")`, `"not-the-password"`, 1))
	ctx := context.Background()
	if _, err := p.Lookup(ctx, "alice"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("Lookup: %v, want unavailable", err)
	}
	if _, err := p.Authenticate(ctx, "alice", "alice-Pa55"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("Authenticate: %v, want unavailable", err)
	}
	if !strings.Contains(logs.String(), "service account") || strings.Contains(logs.String(), "not-the-password") {
		t.Errorf("log:\n%s", logs)
	}
	// A user base that does not exist is not "every user is gone" either.
	p, _ = configure(t, strings.Replace(searchConfig(s.URL), "ou=people,", "ou=nope,", 1))
	if _, err := p.Lookup(ctx, "alice"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("missing user_base, Lookup: %v, want unavailable", err)
	}
}

// TestConfigErrors: bad configurations are refused with the attribute's
// file:line,col.
func TestConfigErrors(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body string
		want       string // line,col: summary
	}{
		{"plain ldap", "\n  urls = [\"ldap://h\"]\n  user_base = \"dc=x\"\n  default_role = \"user\"\n", "2,10: Directory connection without TLS"},
		{"bad scheme", "\n  urls = [\"http://h\"]\n  user_base = \"dc=x\"\n  default_role = \"user\"\n", "2,10: Invalid server URL"},
		{"no url", "\n  urls = []\n  user_base = \"dc=x\"\n  default_role = \"user\"\n", "2,10: No directory server"},
		{"ldaps and starttls", "\n  urls = [\"ldaps://h\"]\n  start_tls = true\n  user_base = \"dc=x\"\n  default_role = \"user\"\n", "3,15: StartTLS on an ldaps:// server"},
		{"ca file", "\n  urls = [\"ldaps://h\"]\n  ca_file = " + fmt.Sprintf("%q", caFile) + "\n  user_base = \"dc=x\"\n  default_role = \"user\"\n", "3,13: No certificate in CA file"},
		{"missing ca file", "\n  urls = [\"ldaps://h\"]\n  ca_file = \"nope.pem\"\n  user_base = \"dc=x\"\n  default_role = \"user\"\n", "3,13: Cannot read CA file"},
		{"timeout", "\n  urls = [\"ldaps://h\"]\n  timeout = \"soon\"\n  user_base = \"dc=x\"\n  default_role = \"user\"\n", "3,13: Invalid timeout"},
		{"pool", "\n  urls = [\"ldaps://h\"]\n  pool_size = 0\n  user_base = \"dc=x\"\n  default_role = \"user\"\n", "3,15: Invalid pool size"},
		{"dn without password", "\n  urls = [\"ldaps://h\"]\n  bind_dn = \"cn=zoe,dc=x\"\n  user_base = \"dc=x\"\n  default_role = \"user\"\n", "3,13: Bind DN without password"},
		{"empty password", "\n  urls = [\"ldaps://h\"]\n  bind_dn = \"cn=zoe,dc=x\"\n  bind_password = \"\"\n  user_base = \"dc=x\"\n  default_role = \"user\"\n", "3,13: Bind DN without password"},
		{"no user base", "\n  urls = [\"ldaps://h\"]\n  default_role = \"user\"\n", "1,1: Users cannot be found"},
		{"filter without %s", "\n  urls = [\"ldaps://h\"]\n  user_base = \"dc=x\"\n  user_filter = \"(uid=alice)\"\n  default_role = \"user\"\n", "4,17: Invalid user filter"},
		{"bad filter", "\n  urls = [\"ldaps://h\"]\n  user_base = \"dc=x\"\n  user_filter = \"(uid=%s\"\n  default_role = \"user\"\n", "4,17: Invalid user filter"},
		{"bad template", "\n  urls = [\"ldaps://h\"]\n  user_dn_template = \"uid=%s,%s\"\n  default_role = \"user\"\n", "3,22: Invalid user DN template"},
		{"bad role", "\n  urls = [\"ldaps://h\"]\n  user_base = \"dc=x\"\n  role {\n    gid_number = 5\n    role = \"root\"\n  }\n", "6,12: Invalid role"},
		{"empty rule", "\n  urls = [\"ldaps://h\"]\n  user_base = \"dc=x\"\n  role {\n    role = \"user\"\n  }\n", "4,3: Role rule matches nobody"},
		{"no roles", "\n  urls = [\"ldaps://h\"]\n  user_base = \"dc=x\"\n", "1,1: Nobody can log in"},
		{"unknown attribute", "\n  urls = [\"ldaps://h\"]\n  user_base = \"dc=x\"\n  default_role = \"user\"\n  password = \"x\"\n", "5,3: Unsupported argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, diags := tryConfigure(t, tt.body)
			var got []string
			for _, d := range diags {
				if d.Subject != nil {
					got = append(got, fmt.Sprintf("%s:%d,%d: %s", filepath.Base(d.Subject.Filename), d.Subject.Start.Line, d.Subject.Start.Column, d.Summary))
				}
			}
			if want := "zoe.hcl:" + tt.want; !strings.Contains(strings.Join(got, "\n"), want) {
				t.Errorf("diagnostics %q, want one %q (%v)", got, want, diags)
			}
		})
	}
}

// TestZoeHCLExample: the commented auth "ldap" block of examples/zoe.hcl,
// uncommented, is a valid configuration but for its CA file, which only a
// real site has.
func TestZoeHCLExample(t *testing.T) {
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "examples", "zoe.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	var body []string
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		switch {
		case line == `# auth "ldap" {`:
			in = true
		case in && line == "# }":
			in = false
		case in:
			body = append(body, strings.TrimPrefix(strings.TrimPrefix(line, "#"), " "))
		}
	}
	if len(body) < 10 {
		t.Fatalf("no commented auth \"ldap\" block in examples/zoe.hcl (%d lines)", len(body))
	}
	t.Setenv("ZOE_LDAP_PASSWORD", "x")
	_, _, diags := tryConfigure(t, "\n"+strings.Join(body, "\n")+"\n")
	if len(diags) != 1 || diags[0].Summary != "Cannot read CA file" {
		t.Fatalf("diagnostics %v, want only that ldap-ca.pem cannot be read", diags)
	}
	// Every attribute of the schema is shown.
	for _, a := range New(nil).Schema().Attributes {
		if !strings.Contains(strings.Join(body, "\n"), a.Name+" ") {
			t.Errorf("examples/zoe.hcl does not show %s", a.Name)
		}
	}
}

// blackHole accepts TCP connections and never answers, as a server that
// hangs does; it returns its ldap:// URL.
func blackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "ldap://" + l.Addr().String()
}

// TestHungServer: a server that accepts connections and never answers
// costs the timeout, then the next server answers; alone, it is
// unavailable rather than a hang.
func TestHungServer(t *testing.T) {
	s := testutil.StartSlapd(t, testutil.SlapdOptions{LDIF: directory()})
	hole := blackHole(t)
	ctx := context.Background()
	// 3 s: the real server must answer within it on a loaded machine.
	p, _ := configure(t, strings.Replace(searchConfig(hole, s.URL), `"20s"`, `"3s"`, 1))
	if id, err := p.Authenticate(ctx, "bob", "bob-Pa55"); err != nil || id.Username != "bob" {
		t.Fatalf("with a hung first server: %s, %v", show(id), err)
	}
	p, _ = configure(t, strings.Replace(searchConfig(hole), `"20s"`, `"500ms"`, 1))
	if _, err := p.Authenticate(ctx, "bob", "bob-Pa55"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("the hung server alone: %v, want unavailable", err)
	}
	if _, err := p.Lookup(ctx, "bob"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("the hung server alone, Lookup: %v, want unavailable", err)
	}
}

// TestPool: at most pool_size connections are open, and they are kept
// across logins, wrong passwords included (a failed bind leaves a
// connection anonymous and usable).
func TestPool(t *testing.T) {
	s := testutil.StartSlapd(t, testutil.SlapdOptions{LDIF: directory()})
	p, _ := configure(t, searchConfig(s.URL)) // pool_size = 2
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			pw := "bob-Pa55"
			if i%2 == 1 {
				pw = "wrong"
			}
			_, err := p.Authenticate(ctx, "bob", pw)
			if (i%2 == 0) != (err == nil) {
				t.Errorf("login %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	p.pool.mu.Lock()
	idle := slices.Clone(p.pool.idle)
	p.pool.mu.Unlock()
	if len(idle) == 0 || len(idle) > 2 {
		t.Fatalf("%d idle connections, want 1 or 2 (pool_size)", len(idle))
	}
	for range 4 {
		if _, err := p.Authenticate(ctx, "bob", "wrong"); !errors.Is(err, sdk.ErrInvalidCredentials) {
			t.Fatal(err)
		}
		if _, err := p.Lookup(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
	}
	p.pool.mu.Lock()
	defer p.pool.mu.Unlock()
	for _, c := range p.pool.idle {
		if !slices.Contains(idle, c) {
			t.Errorf("a connection was replaced after wrong passwords and look-ups")
		}
	}
}
