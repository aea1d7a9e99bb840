package ldapauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
	krbclient "github.com/jcmturner/gokrb5/v8/client"

	"github.com/zoe-project/zoe/sdk"
)

// pool keeps up to size connections to the directory: idle ones wait in
// idle, and slots bounds how many are open at once (a login waits for a
// slot rather than open more). Connections go to the first server of the
// list that answers, starting from the last one that did (failover
// without paying the dead server's timeout at every connection).
type pool struct {
	cfg   *config
	log   *slog.Logger
	slots chan struct{}
	// krb is the service account's Kerberos client (sasl_gssapi), shared
	// by the binds: it keeps and renews the tickets.
	krb *krbclient.Client

	mu     sync.Mutex
	idle   []*conn
	closed bool
	// next is the index in cfg.urls of the server tried first.
	next int
}

// conn is a connection and who it is bound as, so that a connection left
// bound as a user is bound again as the service account before a search.
type conn struct {
	*ldap.Conn
	server  string
	host    string // the URL's host name, without the port
	index   int    // of the server in cfg.urls
	boundAs string // DN of the last successful bind; "" anonymous
	dirty   bool   // a bind failed or another user bound: boundAs is unknown
}

func newPool(cfg *config, log *slog.Logger) *pool {
	p := &pool{cfg: cfg, log: log, slots: make(chan struct{}, cfg.poolSize)}
	if g := cfg.gss; g != nil {
		p.krb = krbclient.NewWithKeytab(g.principal, g.realm, g.keytab, g.krb5, krbclient.DisablePAFXFAST(true))
	}
	return p
}

// errUnavailable wraps err as the directory being unavailable.
func errUnavailable(what string, err error) error {
	return fmt.Errorf("directory unavailable: %s: %w: %w", what, err, sdk.ErrUnavailable)
}

// get returns a connection, waiting for a free slot and dialling when no
// idle one is left; put or discard gives the slot back.
func (p *pool) get(ctx context.Context) (*conn, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, errUnavailable("waiting for a connection", ctx.Err())
	}
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if !c.IsClosing() {
			return c, nil
		}
		_ = c.Close()
	} else {
		p.mu.Unlock()
	}
	c, err := p.dial(ctx)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return c, nil
}

// put gives a healthy connection back for the next caller.
func (p *pool) put(c *conn) {
	p.mu.Lock()
	if p.closed || c.IsClosing() {
		p.mu.Unlock()
		_ = c.Close()
	} else {
		p.idle = append(p.idle, c)
		p.mu.Unlock()
	}
	<-p.slots
}

// discard closes a connection that failed.
func (p *pool) discard(c *conn) {
	_ = c.Close()
	<-p.slots
}

// dropIdle closes every idle connection: after a network error, those to
// the same server are likely dead too.
func (p *pool) dropIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		_ = c.Close()
	}
}

// failed moves the next connections on to the server after c's, when c's
// was the one in use: a server that accepts connections but then fails or
// hangs is left like one that refuses them.
func (p *pool) failed(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.cfg.urls); n > 1 && p.next == c.index {
		p.next = (c.index + 1) % n
		p.log.Info("directory server failover", "failed", c.server, "next", p.cfg.urls[p.next].Redacted())
	}
}

func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.dropIdle()
	if p.krb != nil {
		p.krb.Destroy()
	}
}

// dial connects to the first server that answers, from p.next on.
func (p *pool) dial(ctx context.Context) (*conn, error) {
	p.mu.Lock()
	start := p.next
	p.mu.Unlock()
	var errs []string
	n := len(p.cfg.urls)
	for i := range n {
		if err := ctx.Err(); err != nil {
			return nil, errUnavailable("connecting", err)
		}
		k := (start + i) % n
		u := p.cfg.urls[k]
		c, err := p.dialOne(ctx, u.Scheme, u.Host)
		if err != nil {
			p.log.Warn("cannot connect to directory server", "server", u.Redacted(), "error", err)
			errs = append(errs, fmt.Sprintf("%s: %v", u.Redacted(), err))
			continue
		}
		if k != start {
			p.log.Info("directory server failover", "server", u.Redacted())
			p.mu.Lock()
			p.next = k
			p.mu.Unlock()
		}
		return &conn{Conn: c, server: u.Redacted(), host: u.Hostname(), index: k}, nil
	}
	return nil, errUnavailable("no server answers", errors.New(strings.Join(errs, "; ")))
}

func (p *pool) dialOne(ctx context.Context, scheme, host string) (*ldap.Conn, error) {
	timeout := p.timeout(ctx)
	d := &net.Dialer{Timeout: timeout}
	if _, _, err := net.SplitHostPort(host); err != nil {
		if scheme == "ldaps" {
			host = net.JoinHostPort(host, "636")
		} else {
			host = net.JoinHostPort(host, "389")
		}
	}
	tc := p.cfg.tls.Clone()
	tc.ServerName, _, _ = net.SplitHostPort(host)
	c, err := ldap.DialURL(scheme+"://"+host, ldap.DialWithDialer(d), ldap.DialWithTLSConfig(tc))
	if err != nil {
		return nil, err
	}
	c.SetTimeout(timeout)
	if scheme == "ldap" && p.cfg.startTLS {
		if err := c.StartTLS(tc); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("StartTLS: %w", err)
		}
	}
	return c, nil
}

// timeout is the configured timeout, shortened to ctx's deadline.
func (p *pool) timeout(ctx context.Context) time.Duration {
	t := p.cfg.timeout
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < t {
			t = max(left, time.Millisecond)
		}
	}
	return t
}

// isNetwork tells errors of the connection (the server is gone, a timeout)
// from the directory's answers.
func isNetwork(err error) bool {
	return ldap.IsErrorAnyOf(err, ldap.ErrorNetwork, ldap.LDAPResultBusy, ldap.LDAPResultUnavailable,
		ldap.LDAPResultServerDown, ldap.LDAPResultTimeout, ldap.LDAPResultTimeLimitExceeded, ldap.LDAPResultConnectError,
		ldap.LDAPResultOther)
}
