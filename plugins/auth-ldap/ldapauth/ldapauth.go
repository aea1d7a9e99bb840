// Package ldapauth is Zoe's `ldap` auth plugin: users, passwords, roles,
// uid/gid and e-mail addresses from an LDAP directory (OpenLDAP, 389-ds,
// Active Directory), through a small pool of TLS connections with failover
// between servers.
package ldapauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

const (
	// Name is the plugin's name in Zoe's configuration.
	Name = "ldap"
	// Version is the plugin's version.
	Version = "0.1.0"
	// maxNameLen bounds login names: longer ones are nobody's.
	maxNameLen = 256
)

var _ auth.Authenticator = (*Plugin)(nil)

// Plugin authenticates the users of an LDAP directory. It is safe for
// concurrent use.
type Plugin struct {
	log *slog.Logger

	mu   sync.Mutex
	cfg  *config
	pool *pool
	gen  uint64
}

// New returns an unconfigured plugin that logs to log.
func New(log *slog.Logger) *Plugin {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Plugin{log: log}
}

// Info names the plugin.
func (p *Plugin) Info() sdk.Info {
	return sdk.Info{
		Name:        Name,
		Version:     Version,
		Description: "Users, passwords, roles (from gidNumber or groups), uid/gid and e-mail from an LDAP directory",
	}
}

// Configure checks the configuration and, unless cfg.ValidateOnly, puts it
// in force. It does not need the directory to answer: a directory that is
// down makes logins unavailable, not Zoe.
func (p *Plugin) Configure(_ context.Context, cfg sdk.Config) error {
	c, diags := parseConfig(cfg)
	if diags.HasErrors() {
		return diags
	}
	for _, d := range diags {
		p.log.Warn(d.Summary, "detail", d.Detail, "attribute", strings.Join(d.Path, "."))
	}
	if cfg.ValidateOnly {
		return nil
	}
	pl := newPool(c, p.log)
	p.mu.Lock()
	old := p.pool
	p.cfg, p.pool = c, pl
	p.gen++
	p.mu.Unlock()
	if old != nil {
		old.close()
	}
	servers := make([]string, len(c.urls))
	for i, u := range c.urls {
		servers[i] = u.Redacted()
	}
	// The service password is never logged, only whether there is one.
	p.log.Info("configured LDAP directory", "servers", servers, "start_tls", c.startTLS, "service_bind", c.bindDN != "",
		"user_base", c.userBase, "user_dn_template", c.dnTemplate, "group_base", c.groupBase, "role_rules", len(c.roles))
	return nil
}

func (p *Plugin) current() (*config, *pool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg == nil {
		return nil, nil, fmt.Errorf("ldap auth plugin is not configured: %w", sdk.ErrUnavailable)
	}
	return p.cfg, p.pool, nil
}

// errWrong is the one answer to a wrong password, an unknown user, a
// disabled one and one without a role: they are not told apart.
var errWrong = fmt.Errorf("wrong username or password: %w", sdk.ErrInvalidCredentials)

// validName tells whether a login name can be anybody's. Escaping makes
// any name safe in a filter or a DN; these are refused only because no
// directory entry could have them.
func validName(s string) bool {
	return s != "" && len(s) <= maxNameLen && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// Authenticate checks username and password with a bind as the user.
func (p *Plugin) Authenticate(ctx context.Context, username, password string) (auth.Identity, error) {
	if err := ctx.Err(); err != nil {
		return auth.Identity{}, fmt.Errorf("authenticate: %w", err)
	}
	// An empty password must never reach a bind: LDAP takes a simple bind
	// with a DN and no password as an unauthenticated bind, which
	// succeeds (RFC 4513 5.1.2).
	if password == "" || !validName(username) {
		return auth.Identity{}, errWrong
	}
	cfg, pl, err := p.current()
	if err != nil {
		return auth.Identity{}, err
	}
	return withConn(ctx, pl, func(c *conn) (auth.Identity, error) {
		s := session{cfg: cfg, pool: pl, log: p.log, c: c}
		return s.authenticate(ctx, username, password)
	})
}

// Lookup returns the user's identity as the directory has it now.
func (p *Plugin) Lookup(ctx context.Context, username string) (auth.Identity, error) {
	if err := ctx.Err(); err != nil {
		return auth.Identity{}, fmt.Errorf("lookup: %w", err)
	}
	if !validName(username) {
		return auth.Identity{}, fmt.Errorf("no such user: %w", sdk.ErrNotFound)
	}
	cfg, pl, err := p.current()
	if err != nil {
		return auth.Identity{}, err
	}
	if cfg.dnTemplate != "" && !cfg.hasService() {
		// Anonymous reads of user entries are refused by most directories,
		// and a refusal looks like a missing entry: taking it for one
		// would revoke every token at once.
		return auth.Identity{}, fmt.Errorf("ldap: user look-ups need bind_dn with user_dn_template: %w", sdk.ErrUnsupported)
	}
	return withConn(ctx, pl, func(c *conn) (auth.Identity, error) {
		s := session{cfg: cfg, pool: pl, log: p.log, c: c}
		return s.lookup(ctx, username)
	})
}

// Generation changes only when the plugin is configured again: a directory
// does not tell its clients about changes, so the core's periodic Lookup
// bounds how long a change goes unseen.
func (p *Plugin) Generation(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("generation: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gen, nil
}

// withConn runs f on a pooled connection. When the connection fails
// (e.g. an idle one to a server that restarted), the idle ones are dropped
// and f runs once more on a fresh connection, to the next server if the
// first is down; a second failure is ErrUnavailable.
func withConn(ctx context.Context, pl *pool, f func(*conn) (auth.Identity, error)) (auth.Identity, error) {
	var last error
	for attempt := range 2 {
		c, err := pl.get(ctx)
		if err != nil {
			return auth.Identity{}, err
		}
		id, err := f(c)
		if err == nil || !isNetwork(err) {
			if c.dirty {
				pl.discard(c)
			} else {
				pl.put(c)
			}
			return id, err
		}
		pl.log.Warn("directory connection failed", "server", c.server, "attempt", attempt+1, "error", err)
		pl.discard(c)
		pl.failed(c)
		pl.dropIdle()
		last = err
	}
	return auth.Identity{}, errUnavailable("request failed", last)
}

// session is one use of a connection.
type session struct {
	cfg  *config
	pool *pool
	log  *slog.Logger
	c    *conn
}

func (s *session) prepare(ctx context.Context) { s.c.SetTimeout(s.pool.timeout(ctx)) }

// bind binds as dn, keeping track of who the connection is bound as.
func (s *session) bind(ctx context.Context, dn, password string) error {
	s.prepare(ctx)
	s.c.dirty = true
	var err error
	if dn == "" {
		err = s.c.UnauthenticatedBind("")
	} else {
		err = s.c.Bind(dn, password)
	}
	switch {
	case err == nil:
		s.c.boundAs, s.c.dirty = dn, false
	case !isNetwork(err):
		// A failed bind leaves the connection anonymous (RFC 4513 4): it
		// can serve again.
		s.c.boundAs, s.c.dirty = "", false
	}
	return err
}

// bindService binds as the service account (or anonymously), unless the
// connection already is.
func (s *session) bindService(ctx context.Context) error {
	if !s.c.dirty && s.c.boundAs == s.cfg.serviceID() {
		return nil
	}
	var err error
	if s.cfg.gss != nil {
		err = s.gssBind(ctx)
	} else {
		err = s.bind(ctx, s.cfg.bindDN, s.cfg.bindPassword)
	}
	switch {
	case err == nil, isNetwork(err):
		return err
	case !s.cfg.hasService():
		return errUnavailable("anonymous bind refused (set bind_dn)", err)
	case s.cfg.gss != nil:
		s.log.Error("the directory refuses the service account's Kerberos bind: check sasl_gssapi", "principal", s.cfg.gss.principal, "error", err)
		return errUnavailable("service account GSSAPI bind refused", err)
	}
	s.log.Error("the directory refuses the service account's bind: check bind_dn and bind_password", "bind_dn", s.cfg.bindDN, "error", err)
	return errUnavailable("service account bind refused", err)
}

func (s *session) attributes() []string {
	return []string{s.cfg.usernameAttr, s.cfg.emailAttr, s.cfg.displayAttr, "uidNumber", "gidNumber", "memberOf"}
}

// errNoUser: no entry (or not exactly one) matches; the callers turn it
// into their own category.
var errNoUser = errors.New("no such user")

// findUser searches the user's entry.
func (s *session) findUser(ctx context.Context, username string) (*ldap.Entry, error) {
	filter := strings.ReplaceAll(s.cfg.userFilter, "%s", ldap.EscapeFilter(username))
	if s.cfg.disabled != "" {
		filter = "(&" + filter + "(!" + s.cfg.disabled + "))"
	}
	s.prepare(ctx)
	res, err := s.c.Search(ldap.NewSearchRequest(s.cfg.userBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, int(s.pool.timeout(ctx).Seconds())+1, false, filter, s.attributes(), nil))
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded):
		s.log.Warn("several directory entries match one login name: refused", "user", username, "filter", filter)
		return nil, errNoUser
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		// The base is missing: a configuration error, not a missing user
		// (taking it for one would revoke every token).
		s.log.Error("user_base does not exist in the directory", "user_base", s.cfg.userBase)
		return nil, errUnavailable("searching users", err)
	case err != nil && isNetwork(err):
		return nil, err
	case err != nil:
		return nil, errUnavailable("searching users", err)
	case len(res.Entries) > 1:
		s.log.Warn("several directory entries match one login name: refused", "user", username, "filter", filter)
		return nil, errNoUser
	case len(res.Entries) == 0:
		return nil, errNoUser
	}
	return res.Entries[0], nil
}

// readEntry reads the entry at dn (user_dn_template).
func (s *session) readEntry(ctx context.Context, dn string) (*ldap.Entry, error) {
	filter := "(objectClass=*)"
	if s.cfg.disabled != "" {
		filter = "(!" + s.cfg.disabled + ")"
	}
	s.prepare(ctx)
	res, err := s.c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, int(s.pool.timeout(ctx).Seconds())+1, false, filter, s.attributes(), nil))
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return nil, errNoUser
	case err != nil && isNetwork(err):
		return nil, err
	case err != nil:
		return nil, errUnavailable("reading the user's entry", err)
	case len(res.Entries) != 1:
		return nil, errNoUser
	}
	return res.Entries[0], nil
}

func (s *session) userDN(username string) string {
	return strings.Replace(s.cfg.dnTemplate, "%s", ldap.EscapeDN(username), 1)
}

func (s *session) authenticate(ctx context.Context, username, password string) (auth.Identity, error) {
	var entry *ldap.Entry
	if s.cfg.dnTemplate == "" {
		if err := s.bindService(ctx); err != nil {
			return auth.Identity{}, err
		}
		e, err := s.findUser(ctx, username)
		if errors.Is(err, errNoUser) {
			return auth.Identity{}, errWrong
		}
		if err != nil {
			return auth.Identity{}, err
		}
		entry = e
		if err := s.userBind(ctx, entry.DN, password); err != nil {
			return auth.Identity{}, err
		}
	} else {
		dn := s.userDN(username)
		if err := s.userBind(ctx, dn, password); err != nil {
			return auth.Identity{}, err
		}
		// Read as the user: users may read their own entry where they
		// may not search.
		e, err := s.readEntry(ctx, dn)
		if errors.Is(err, errNoUser) {
			return auth.Identity{}, errWrong
		}
		if err != nil {
			return auth.Identity{}, err
		}
		entry = e
	}
	id, err := s.identity(ctx, entry)
	if errors.Is(err, errNoUser) {
		return auth.Identity{}, errWrong
	}
	return id, err
}

// userBind checks the password with a bind as dn.
func (s *session) userBind(ctx context.Context, dn, password string) error {
	if password == "" {
		// Checked by Authenticate already; this is the last line.
		return errWrong
	}
	err := s.bind(ctx, dn, password)
	switch {
	case err == nil:
		return nil
	case isNetwork(err):
		return err
	case !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials):
		// Locked accounts (ppolicy), unwilling servers: refused all the
		// same, but worth a line for the administrator.
		s.log.Info("directory refused a user's bind", "dn", dn, "error", err)
	}
	return errWrong
}

func (s *session) lookup(ctx context.Context, username string) (auth.Identity, error) {
	if err := s.bindService(ctx); err != nil {
		return auth.Identity{}, err
	}
	var (
		entry *ldap.Entry
		err   error
	)
	if s.cfg.dnTemplate == "" {
		entry, err = s.findUser(ctx, username)
	} else {
		entry, err = s.readEntry(ctx, s.userDN(username))
	}
	if err == nil {
		var id auth.Identity
		id, err = s.identity(ctx, entry)
		if err == nil {
			return id, nil
		}
	}
	if errors.Is(err, errNoUser) {
		return auth.Identity{}, fmt.Errorf("user %q is not in the directory, is disabled or has no role: %w", username, sdk.ErrNotFound)
	}
	return auth.Identity{}, err
}

// identity builds the user's identity from their entry and groups;
// errNoUser when no role rule matches and there is no default role.
func (s *session) identity(ctx context.Context, e *ldap.Entry) (auth.Identity, error) {
	id := auth.Identity{
		Username:    e.GetAttributeValue(s.cfg.usernameAttr),
		Email:       e.GetAttributeValue(s.cfg.emailAttr),
		DisplayName: e.GetAttributeValue(s.cfg.displayAttr),
		UID:         s.posixID(e, "uidNumber"),
		GID:         s.posixID(e, "gidNumber"),
	}
	if id.Username == "" {
		s.log.Warn("directory entry has no username attribute: refused", "dn", e.DN, "username_attribute", s.cfg.usernameAttr)
		return auth.Identity{}, errNoUser
	}
	var groups []group
	if s.cfg.needGroups {
		var err error
		if groups, err = s.groups(ctx, e, id); err != nil {
			return auth.Identity{}, err
		}
		for _, g := range groups {
			id.Groups = append(id.Groups, g.name)
		}
		slices.Sort(id.Groups)
		id.Groups = slices.Compact(id.Groups)
	}
	id.Role = s.cfg.defaultRole
	for _, r := range s.cfg.roles {
		if r.matches(id.GID, groups) {
			id.Role = r.role
			break
		}
	}
	if id.Role == "" {
		s.log.Info("directory user matches no role rule and there is no default_role: refused", "user", id.Username)
		return auth.Identity{}, errNoUser
	}
	return id, nil
}

func (s *session) posixID(e *ldap.Entry, attr string) *uint32 {
	v := e.GetAttributeValue(attr)
	if v == "" {
		return nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		s.log.Warn("ignoring an invalid POSIX id", "dn", e.DN, "attribute", attr, "value", v)
		return nil
	}
	u := uint32(n)
	return &u
}

// group is a group the user belongs to: its DN and its name (cn, or the
// first RDN's value).
type group struct {
	dn   *ldap.DN
	name string
	// named tells whether a rule may match the group by its name: with a
	// group_base, only a group under it. A memberOf value can be a group
	// anywhere in the directory, such as one a user made in an OU
	// delegated to them and named like the admins' group.
	named bool
}

// groups collects the user's groups: the memberOf values, then under
// group_base the groups that list the user (member, uniqueMember,
// memberUid) and the posixGroup of the user's gidNumber.
func (s *session) groups(ctx context.Context, e *ldap.Entry, id auth.Identity) ([]group, error) {
	var gs []group
	var base *ldap.DN
	if s.cfg.groupBase != "" {
		base, _ = ldap.ParseDN(s.cfg.groupBase) // checked with the configuration
	}
	for _, v := range e.GetAttributeValues("memberOf") {
		if g, ok := groupOf(v, ""); ok {
			g.named = base == nil || base.AncestorOfFold(g.dn)
			gs = append(gs, g)
		}
	}
	if s.cfg.groupBase == "" {
		return gs, nil
	}
	// Groups are searched as the service account, or anonymously, not as
	// the user just bound, who may not read them.
	if s.cfg.hasService() || s.cfg.dnTemplate == "" {
		if err := s.bindService(ctx); err != nil {
			return nil, err
		}
	}
	dn := ldap.EscapeFilter(e.DN)
	filter := "(|(member=" + dn + ")(uniqueMember=" + dn + ")(memberUid=" + ldap.EscapeFilter(id.Username) + ")"
	if id.GID != nil {
		filter += "(&(objectClass=posixGroup)(gidNumber=" + strconv.FormatUint(uint64(*id.GID), 10) + "))"
	}
	filter += ")"
	s.prepare(ctx)
	res, err := s.c.Search(ldap.NewSearchRequest(s.cfg.groupBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		1000, int(s.pool.timeout(ctx).Seconds())+1, false, filter, []string{"cn"}, nil))
	switch {
	case err != nil && isNetwork(err):
		return nil, err
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		s.log.Error("group_base does not exist in the directory", "group_base", s.cfg.groupBase)
		return nil, errUnavailable("searching groups", err)
	case err != nil:
		return nil, errUnavailable("searching groups", err)
	}
	for _, ge := range res.Entries {
		if g, ok := groupOf(ge.DN, ge.GetAttributeValue("cn")); ok {
			g.named = true // found under group_base
			gs = append(gs, g)
		}
	}
	return gs, nil
}

func groupOf(dn, cn string) (group, bool) {
	d, err := ldap.ParseDN(dn)
	if err != nil || len(d.RDNs) == 0 {
		return group{}, false
	}
	if cn == "" && len(d.RDNs[0].Attributes) > 0 {
		cn = d.RDNs[0].Attributes[0].Value
	}
	return group{dn: d, name: cn}, true
}

// matches tells whether the rule gives its role to a user with gid and
// groups. A rule's group is a DN when it parses as one with an '=' in it,
// else a group name, which matches only groups under group_base when
// there is one (group.named).
func (r roleRule) matches(gid *uint32, groups []group) bool {
	if r.gid != nil {
		return gid != nil && *gid == *r.gid
	}
	var dn *ldap.DN
	if strings.Contains(r.group, "=") {
		dn, _ = ldap.ParseDN(r.group)
	}
	for _, g := range groups {
		if dn != nil && dn.EqualFold(g.dn) || dn == nil && g.named && strings.EqualFold(g.name, r.group) {
			return true
		}
	}
	return false
}
