package ldapauth

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	krb5config "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// Attribute names of the configuration block.
const (
	AttrURLs            = "urls"
	AttrStartTLS        = "start_tls"
	AttrCAFile          = "ca_file"
	AttrAllowInsecure   = "allow_insecure"
	AttrTimeout         = "timeout"
	AttrPoolSize        = "pool_size"
	AttrBindDN          = "bind_dn"
	AttrBindPassword    = "bind_password"
	AttrUserBase        = "user_base"
	AttrUserFilter      = "user_filter"
	AttrUserDNTemplate  = "user_dn_template"
	AttrDisabledFilter  = "disabled_filter"
	AttrUsernameAttr    = "username_attribute"
	AttrEmailAttr       = "email_attribute"
	AttrDisplayNameAttr = "display_name_attribute"
	AttrGroupBase       = "group_base"
	AttrDefaultRole     = "default_role"
	BlockRole           = "role"
	BlockGSSAPI         = "sasl_gssapi"
)

// Schema describes the plugin's configuration block.
func (p *Plugin) Schema() sdk.Schema {
	return sdk.Schema{
		Attributes: []sdk.Attribute{
			{Name: AttrURLs, Type: "list(string)", Required: true,
				Help: "Directory servers, tried in order (failover): ldaps://host[:port], or ldap://host[:port] with start_tls = true. Plain ldap:// without StartTLS needs allow_insecure = true."},
			{Name: AttrStartTLS, Type: "bool", Default: false,
				Help: "Upgrade ldap:// connections with StartTLS; the server's certificate is verified."},
			{Name: AttrCAFile, Type: "string",
				Help: "PEM file of the CA certificates that sign the servers' certificates, relative to the configuration file's directory; default: the system's CAs."},
			{Name: AttrAllowInsecure, Type: "bool", Default: false,
				Help: "Allow plain ldap:// without TLS: passwords then cross the network in clear. For a directory on the same host or in tests only."},
			{Name: AttrTimeout, Type: "string", Default: "10s",
				Help: "Bound on connecting to a server and on each request to it (a Go duration: 5s, 1m)."},
			{Name: AttrPoolSize, Type: "number", Default: 4,
				Help: "Most connections open to the directory at once; idle ones are kept for the next logins."},
			{Name: AttrBindDN, Type: "string",
				Help: "DN of a service account bound to search users and groups; none: searches are anonymous."},
			{Name: AttrBindPassword, Type: "string", Sensitive: true,
				Help: `Password of bind_dn. Use env("NAME"): it never belongs in the file, and it is never logged.`},
			{Name: AttrUserBase, Type: "string",
				Help: "Base DN under which users are searched with user_filter (subtree)."},
			{Name: AttrUserFilter, Type: "string", Default: "(uid=%s)",
				Help: "Filter finding a user; %s is the login name, escaped (RFC 4515)."},
			{Name: AttrUserDNTemplate, Type: "string",
				Help: "Instead of a search: the user's DN with %s for the login name (escaped, RFC 4514), e.g. uid=%s,ou=people,dc=example,dc=org; for directories where users cannot be searched before they bind."},
			{Name: AttrDisabledFilter, Type: "string",
				Help: "Filter matching disabled accounts, e.g. (pwdAccountLockedTime=*) or (loginShell=/usr/sbin/nologin): they cannot log in and lose their tokens."},
			{Name: AttrUsernameAttr, Type: "string", Default: "uid",
				Help: "Attribute holding the Zoe username; its value, as the directory spells it, names the user."},
			{Name: AttrEmailAttr, Type: "string", Default: "mail", Help: "Attribute holding the user's e-mail address."},
			{Name: AttrDisplayNameAttr, Type: "string", Default: "cn", Help: "Attribute holding the user's display name."},
			{Name: AttrGroupBase, Type: "string",
				Help: "Base DN under which the user's groups are searched: groupOfNames/groupOfUniqueNames (member, uniqueMember), posixGroup (memberUid, or the user's gidNumber). The user's memberOf values count too."},
			{Name: AttrDefaultRole, Type: "string",
				Help: "Role (guest, user, admin) of users no role block matches; none: such users are refused."},
		},
		Blocks: []sdk.Block{{
			Name:    BlockGSSAPI,
			Nesting: sdk.NestingSingle,
			Help:    "Bind the service account with Kerberos (SASL GSSAPI) and a keytab instead of bind_dn and bind_password; users still bind with their passwords.",
			Schema: sdk.Schema{Attributes: []sdk.Attribute{
				{Name: "principal", Type: "string", Required: true, Help: "The service account's principal, without the realm, e.g. zoe"},
				{Name: "realm", Type: "string", Required: true, Help: "Its Kerberos realm, e.g. EXAMPLE.ORG"},
				{Name: "keytab", Type: "string", Required: true, Help: "Keytab holding the principal's keys (chmod 600), relative to the configuration file's directory"},
				{Name: "krb5_conf", Type: "string", Default: "/etc/krb5.conf", Help: "Kerberos configuration naming the realm's KDCs"},
				{Name: "service_principal", Type: "string", Help: "The directory's principal; default ldap/<host of each URL>"},
			}},
		}, {
			Name:    BlockRole,
			Nesting: sdk.NestingList,
			Help:    "Role rules, first match wins: a user whose gidNumber is gid_number, or who is a member of group (its cn or DN), gets role.",
			Schema: sdk.Schema{Attributes: []sdk.Attribute{
				{Name: "role", Type: "string", Required: true, Help: "guest, user or admin"},
				{Name: "gid_number", Type: "number", Help: "The user's gidNumber (primary group) that gives role."},
				{Name: "group", Type: "string", Help: "A group (cn or DN) whose members get role."},
			}},
		}},
	}
}

// rawConfig is the block as the core decodes it.
type rawConfig struct {
	URLs            []string  `json:"urls"`
	StartTLS        bool      `json:"start_tls"`
	CAFile          *string   `json:"ca_file"`
	AllowInsecure   bool      `json:"allow_insecure"`
	Timeout         string    `json:"timeout"`
	PoolSize        float64   `json:"pool_size"`
	BindDN          *string   `json:"bind_dn"`
	BindPassword    *string   `json:"bind_password"`
	UserBase        *string   `json:"user_base"`
	UserFilter      string    `json:"user_filter"`
	UserDNTemplate  *string   `json:"user_dn_template"`
	DisabledFilter  *string   `json:"disabled_filter"`
	UsernameAttr    string    `json:"username_attribute"`
	EmailAttr       string    `json:"email_attribute"`
	DisplayNameAttr string    `json:"display_name_attribute"`
	GroupBase       *string   `json:"group_base"`
	DefaultRole     *string   `json:"default_role"`
	Roles           []rawRole `json:"role"`
	GSSAPI          *rawGSS   `json:"sasl_gssapi"`
}

type rawGSS struct {
	Principal        string  `json:"principal"`
	Realm            string  `json:"realm"`
	Keytab           string  `json:"keytab"`
	KRB5Conf         string  `json:"krb5_conf"`
	ServicePrincipal *string `json:"service_principal"`
}

type rawRole struct {
	Role      string   `json:"role"`
	GIDNumber *float64 `json:"gid_number"`
	Group     *string  `json:"group"`
}

// config is a checked configuration.
type config struct {
	urls          []*url.URL
	startTLS      bool
	tls           *tls.Config // nil only with allow_insecure and no TLS at all
	timeout       time.Duration
	poolSize      int
	bindDN        string
	bindPassword  string
	userBase      string
	userFilter    string
	dnTemplate    string
	disabled      string
	usernameAttr  string
	emailAttr     string
	displayAttr   string
	groupBase     string
	defaultRole   auth.Role // "" refuses
	roles         []roleRule
	needGroups    bool
	allowInsecure bool
	gss           *gssConfig // nil: simple bind (or anonymous)
}

// gssConfig is the Kerberos identity of the service account.
type gssConfig struct {
	principal, realm string
	keytab           *keytab.Keytab
	krb5             *krb5config.Config
	spn              string // "" : ldap/<host>
}

// hasService tells whether searches run as a service account rather than
// anonymously.
func (c *config) hasService() bool { return c.bindDN != "" || c.gss != nil }

// serviceID names the service account's identity, for telling whether a
// connection is bound as it.
func (c *config) serviceID() string {
	if c.gss != nil {
		return "gssapi:" + c.gss.principal + "@" + c.gss.realm
	}
	return c.bindDN
}

type roleRule struct {
	role  auth.Role
	gid   *uint32
	group string // cn or DN, compared case-insensitively
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return strings.TrimSpace(*p)
}

// parseConfig checks the block; every problem is a diagnostic naming its
// attribute, so that the core shows it at its file:line:col.
func parseConfig(cfg sdk.Config) (*config, sdk.Diagnostics) {
	var r rawConfig
	if err := cfg.Decode(&r); err != nil {
		return nil, sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: "Invalid configuration of the ldap auth plugin", Detail: err.Error()}}
	}
	var diags sdk.Diagnostics
	bad := func(path []string, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: path})
	}
	c := &config{
		startTLS:      r.StartTLS,
		allowInsecure: r.AllowInsecure,
		bindDN:        str(r.BindDN),
		userBase:      str(r.UserBase),
		userFilter:    strings.TrimSpace(r.UserFilter),
		dnTemplate:    str(r.UserDNTemplate),
		disabled:      str(r.DisabledFilter),
		usernameAttr:  strings.TrimSpace(r.UsernameAttr),
		emailAttr:     strings.TrimSpace(r.EmailAttr),
		displayAttr:   strings.TrimSpace(r.DisplayNameAttr),
		groupBase:     str(r.GroupBase),
	}
	if r.BindPassword != nil {
		// Not trimmed: a password may end with a space.
		c.bindPassword = *r.BindPassword
	}

	// Servers and transport security.
	if len(r.URLs) == 0 {
		bad([]string{AttrURLs}, "No directory server", "urls must name at least one server, e.g. [\"ldaps://ldap.example.org\"]")
	}
	plain := false
	for i, s := range r.URLs {
		u, err := url.Parse(strings.TrimSpace(s))
		switch {
		case err != nil:
			bad([]string{AttrURLs}, "Invalid server URL", fmt.Sprintf("urls[%d]: %v", i, err))
			continue
		case u.Scheme != "ldap" && u.Scheme != "ldaps":
			bad([]string{AttrURLs}, "Invalid server URL", fmt.Sprintf("urls[%d] %q: the scheme must be ldaps:// or ldap://", i, s))
			continue
		case u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil:
			bad([]string{AttrURLs}, "Invalid server URL", fmt.Sprintf("urls[%d] %q: want scheme://host[:port] and nothing more", i, s))
			continue
		case u.Scheme == "ldaps" && c.startTLS:
			bad([]string{AttrStartTLS}, "StartTLS on an ldaps:// server", fmt.Sprintf("urls[%d] %q is TLS already: use ldap:// with start_tls, or ldaps:// without", i, s))
		}
		if u.Scheme == "ldap" && !c.startTLS {
			plain = true
		}
		c.urls = append(c.urls, u)
	}
	if plain && !c.allowInsecure {
		bad([]string{AttrURLs}, "Directory connection without TLS",
			"a plain ldap:// server would receive users' passwords in clear: use ldaps://, or set start_tls = true, "+
				"or, for a directory on the same host or in tests, allow_insecure = true")
	}
	caFile := str(r.CAFile)
	if caFile != "" {
		if !filepath.IsAbs(caFile) && cfg.ConfigDir != "" {
			caFile = filepath.Join(cfg.ConfigDir, caFile)
		}
		pem, err := os.ReadFile(caFile)
		pool := x509.NewCertPool()
		switch {
		case err != nil:
			bad([]string{AttrCAFile}, "Cannot read CA file", err.Error())
		case !pool.AppendCertsFromPEM(pem):
			bad([]string{AttrCAFile}, "No certificate in CA file", caFile+" holds no PEM certificate")
		default:
			c.tls = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
	}
	if c.tls == nil {
		c.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}

	d, err := time.ParseDuration(strings.TrimSpace(r.Timeout))
	if err != nil || d <= 0 {
		bad([]string{AttrTimeout}, "Invalid timeout", fmt.Sprintf("%q: want a positive Go duration such as 10s", r.Timeout))
	}
	c.timeout = d
	if r.PoolSize < 1 || r.PoolSize > 1000 || r.PoolSize != math.Trunc(r.PoolSize) {
		bad([]string{AttrPoolSize}, "Invalid pool size", fmt.Sprintf("%v: want a whole number from 1 to 1000", r.PoolSize))
	}
	c.poolSize = int(r.PoolSize)

	// Service account.
	if (c.bindDN == "") != (r.BindPassword == nil || c.bindPassword == "") {
		if c.bindDN == "" {
			bad([]string{AttrBindPassword}, "Password without bind DN", "bind_password is set but bind_dn is not")
		} else {
			// An empty password would be an unauthenticated bind: LDAP
			// answers it with success as anonymous.
			bad([]string{AttrBindDN}, "Bind DN without password", `bind_dn needs bind_password, e.g. bind_password = env("ZOE_LDAP_PASSWORD")`)
		}
	}
	if c.bindDN != "" {
		if _, err := ldap.ParseDN(c.bindDN); err != nil {
			bad([]string{AttrBindDN}, "Invalid bind DN", err.Error())
		}
	}

	if g := r.GSSAPI; g != nil {
		path := func(a string) []string { return []string{BlockGSSAPI, a} }
		gc := &gssConfig{principal: strings.TrimSpace(g.Principal), realm: strings.TrimSpace(g.Realm), spn: str(g.ServicePrincipal)}
		if c.bindDN != "" || c.bindPassword != "" {
			bad([]string{BlockGSSAPI}, "Two service accounts", "use sasl_gssapi or bind_dn and bind_password, not both")
		}
		if gc.principal == "" || strings.Contains(gc.principal, "@") {
			bad(path("principal"), "Invalid principal", "name the principal without its realm, e.g. zoe; the realm goes in realm")
		}
		if gc.realm == "" {
			bad(path("realm"), "Invalid realm", "realm must name the Kerberos realm, e.g. EXAMPLE.ORG")
		}
		abs := func(p string) string {
			if !filepath.IsAbs(p) && cfg.ConfigDir != "" {
				return filepath.Join(cfg.ConfigDir, p)
			}
			return p
		}
		kt, err := keytab.Load(abs(strings.TrimSpace(g.Keytab)))
		if err != nil {
			bad(path("keytab"), "Cannot read keytab", err.Error())
		}
		gc.keytab = kt
		kc, err := krb5config.Load(abs(strings.TrimSpace(g.KRB5Conf)))
		if err != nil {
			bad(path("krb5_conf"), "Cannot read Kerberos configuration", err.Error())
		}
		gc.krb5 = kc
		c.gss = gc
	}

	// How users are found.
	switch {
	case c.dnTemplate != "" && c.userBase != "":
		bad([]string{AttrUserDNTemplate}, "Both user_dn_template and user_base", "use user_base with user_filter to search users, or user_dn_template to bind directly, not both")
	case c.dnTemplate != "":
		if strings.Count(c.dnTemplate, "%s") != 1 {
			bad([]string{AttrUserDNTemplate}, "Invalid user DN template", "it must hold %s exactly once, where the login name goes")
		} else if _, err := ldap.ParseDN(strings.Replace(c.dnTemplate, "%s", "x", 1)); err != nil {
			bad([]string{AttrUserDNTemplate}, "Invalid user DN template", err.Error())
		}
	case c.userBase != "":
		if _, err := ldap.ParseDN(c.userBase); err != nil {
			bad([]string{AttrUserBase}, "Invalid user base DN", err.Error())
		}
		if !strings.Contains(c.userFilter, "%s") {
			bad([]string{AttrUserFilter}, "Invalid user filter", "it must hold %s where the login name goes, e.g. (uid=%s)")
		} else if _, err := ldap.CompileFilter(strings.ReplaceAll(c.userFilter, "%s", "x")); err != nil {
			bad([]string{AttrUserFilter}, "Invalid user filter", err.Error())
		}
	default:
		bad([]string{AttrUserBase}, "Users cannot be found", "set user_base (and user_filter, default (uid=%s)) to search users, or user_dn_template to bind directly")
	}
	if c.disabled != "" {
		if _, err := ldap.CompileFilter(c.disabled); err != nil {
			bad([]string{AttrDisabledFilter}, "Invalid disabled filter", err.Error())
		}
	}
	if c.groupBase != "" {
		if _, err := ldap.ParseDN(c.groupBase); err != nil {
			bad([]string{AttrGroupBase}, "Invalid group base DN", err.Error())
		}
	}
	for _, a := range []struct{ name, v string }{{AttrUsernameAttr, c.usernameAttr}, {AttrEmailAttr, c.emailAttr}, {AttrDisplayNameAttr, c.displayAttr}} {
		if !validAttr(a.v) {
			bad([]string{a.name}, "Invalid attribute name", fmt.Sprintf("%q is not an LDAP attribute description", a.v))
		}
	}

	// Roles.
	if s := str(r.DefaultRole); s != "" {
		role, err := auth.ParseRole(s)
		if err != nil {
			bad([]string{AttrDefaultRole}, "Invalid default role", err.Error())
		}
		c.defaultRole = role
	}
	for i, rr := range r.Roles {
		path := func(attr string) []string { return []string{BlockRole, strconv.Itoa(i), attr} }
		role, err := auth.ParseRole(strings.TrimSpace(rr.Role))
		if err != nil {
			bad(path("role"), "Invalid role", err.Error())
		}
		rule := roleRule{role: role, group: str(rr.Group)}
		if rr.GIDNumber != nil {
			g := *rr.GIDNumber
			if g < 0 || g > math.MaxUint32 || g != math.Trunc(g) {
				bad(path("gid_number"), "Invalid gid number", fmt.Sprintf("%v: want a whole number from 0 to 4294967295", g))
			}
			v := uint32(g)
			rule.gid = &v
		}
		switch {
		case rule.gid == nil && rule.group == "":
			bad([]string{BlockRole, strconv.Itoa(i)}, "Role rule matches nobody", "a role block needs gid_number or group")
		case rule.gid != nil && rule.group != "":
			bad(path("group"), "Role rule with both gid_number and group", "write one role block for each: first match wins")
		}
		if rule.group != "" {
			c.needGroups = true
		}
		c.roles = append(c.roles, rule)
	}
	if len(r.Roles) == 0 && c.defaultRole == "" {
		bad([]string{AttrDefaultRole}, "Nobody can log in", "with no role block, default_role must give every user of the directory a role")
	}
	if c.needGroups && c.groupBase == "" {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityWarning, Summary: "Groups from memberOf only",
			Detail: "no group_base: group role rules match the user's memberOf values only", Path: []string{AttrGroupBase}})
	}
	return c, diags
}

// validAttr accepts an attribute name or OID, with options (RFC 4512).
func validAttr(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == ';') {
			return false
		}
	}
	return true
}
