package ldapauth

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// TestGSSAPI: the service account binds with SASL GSSAPI, its keys in a
// keytab, against a real MIT KDC and a slapd that accepts GSSAPI (Cyrus
// SASL's MIT module). The directory lets only the service account read
// users, so look-ups work only when that bind does.
func TestGSSAPI(t *testing.T) {
	kdc := testutil.StartKDC(t, "ZOE.TEST")
	ldapKeytab := kdc.Keytab(t, "ldap/localhost")
	zoeKeytab := kdc.Keytab(t, "zoe")
	otherKeytab := kdc.Keytab(t, "other")
	s := testutil.StartSlapd(t, testutil.SlapdOptions{
		LDIF: directory(),
		Global: `sasl-host localhost
sasl-realm ZOE.TEST
authz-regexp "uid=([^,]*),cn=zoe.test,cn=gssapi,cn=auth" "cn=$1,ou=services,dc=zoe,dc=test"`,
		Access: `access to attrs=userPassword by self write by anonymous auth by * none
access to * by dn.exact="cn=zoe,ou=services,dc=zoe,dc=test" read by self read by * none`,
		Env: append(kdc.Env(), "KRB5_KTNAME="+ldapKeytab),
	})
	ctx := context.Background()
	gss := func(keytab string) string {
		return fmt.Sprintf(`
  urls           = [%q]
  allow_insecure = true
  user_base      = "ou=people,dc=zoe,dc=test"
  group_base     = "ou=groups,dc=zoe,dc=test"
  timeout        = "20s"
  sasl_gssapi {
    principal         = "zoe"
    realm             = "ZOE.TEST"
    keytab            = %q
    krb5_conf         = %q
    service_principal = "ldap/localhost"
  }
%s`, s.URL, keytab, kdc.KRB5Conf, roles)
	}
	p, logs := configure(t, gss(zoeKeytab))
	id, err := p.Lookup(ctx, "carol")
	if err != nil || id.Role != auth.RoleAdmin {
		t.Fatalf("Lookup(carol) = %s, %v\n%s", show(id), err, logs)
	}
	if id, err := p.Authenticate(ctx, "dave", "dave-Pa55"); err != nil || id.Role != auth.RoleUser {
		t.Fatalf("Authenticate(dave) = %s, %v", show(id), err)
	}
	if _, err := p.Authenticate(ctx, "dave", "x"); !errors.Is(err, sdk.ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	// A login, then a look-up on the same connection: bound as the
	// service again.
	if id, err := p.Lookup(ctx, "dave"); err != nil || id.Role != auth.RoleUser {
		t.Fatalf("Lookup(dave) after a login = %s, %v", show(id), err)
	}

	// Anonymous, the same directory hides even the user base: the ACL is
	// what the GSSAPI bind passed. A hidden base is unavailable, not
	// "every user is gone".
	anon, _ := configure(t, fmt.Sprintf("\n  urls = [%q]\n  allow_insecure = true\n  user_base = \"ou=people,dc=zoe,dc=test\"\n%s", s.URL, roles))
	if _, err := anon.Lookup(ctx, "carol"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("anonymous Lookup(carol): %v, want unavailable", err)
	}

	// Keys of another principal: the KDC refuses, the directory is
	// unavailable (not "no such user").
	bad, logs := configure(t, gss(otherKeytab))
	if _, err := bad.Lookup(ctx, "carol"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("wrong keytab, Lookup: %v, want unavailable\n%s", err, logs)
	}
}
