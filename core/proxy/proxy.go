// Package proxy is Zoe's authenticated reverse proxy to the web interfaces
// of running services: <prefix>/<execution id>/<service>/<port>/... goes to
// the address Zoe recorded for that port of that service, for the
// execution's owner and admins only. It forwards HTTP and WebSocket, streams
// without buffering bodies, and strips Zoe's own credentials on the way;
// to a service Zoe gave a ZOE_PROXY_TOKEN it presents that token as
// "Authorization: token <it>", so that the service can refuse requests that
// reach its published port without passing the proxy.
//
// The target is chosen from the path and the state store alone: never from
// the request's Host header, an absolute request URI or X-Forwarded-*
// headers. Only ports the ZApp marks "proxy": true are served.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/state"
)

// Store is what the proxy reads of Zoe's state (core/state.Store has it).
type Store interface {
	GetExecution(ctx context.Context, id int64) (state.Execution, error)
	// Services gives each service's status and its description (the
	// expanded zapp.Instance, whose ports say which are proxied and whose
	// proxy_token the proxy presents to it).
	Services(ctx context.Context, executionID int64) ([]state.Service, error)
	Endpoints(ctx context.Context, executionID int64) ([]state.Endpoint, error)
	// Version grows with every committed write: look-ups read at one
	// version are reused while it stays (ok false: never reuse).
	Version(ctx context.Context) (v uint64, ok bool)
}

// Caller is who sends a request, as the daemon's session or token check
// found them.
type Caller struct {
	Username string
	Admin    bool
	// Authorization says the caller was identified by the request's
	// Authorization header: it is Zoe's credential and is not forwarded.
	Authorization bool
}

// Errors the Caller function returns. Any other error is a failure to
// check (the store or the auth plugin is down): 503.
var (
	// ErrUnauthenticated: no credentials, or bad ones (401; a browser gets
	// a page with a link to the login page).
	ErrUnauthenticated = errors.New("not logged in")
	// ErrForbidden: a known user who may not use the proxy (403).
	ErrForbidden = errors.New("not allowed to use the proxy")
)

// Defaults of Config's zero fields.
const (
	DefaultTokenPrefix           = "zoe_"
	DefaultMaxConnsPerUser       = 256
	DefaultDialTimeout           = 10 * time.Second
	DefaultResponseHeaderTimeout = 2 * time.Minute
	DefaultIdleTimeout           = 2 * time.Minute
	DefaultCheckEvery            = 5 * time.Second
	DefaultReauthEvery           = 30 * time.Second
	DefaultMaxIdleConnsPerHost   = 128
)

// Config of a proxy.
type Config struct {
	// Prefix is the path the proxy is mounted at, e.g. "/zoe/proxy": it
	// starts with a slash, has none at its end, and matches the engine's
	// ProxyBase (REVERSE_PROXY_PATH_<port> in the containers). The handler
	// receives full paths.
	Prefix string
	Store  Store
	// Caller says who sends r (the session cookie or a bearer token, with
	// the API's rules), or ErrUnauthenticated, ErrForbidden, or another
	// error when it cannot tell.
	Caller func(r *http.Request) (Caller, error)
	// LoginURL is the login page an anonymous browser is pointed to, with
	// ?next=<the proxy URL> added; "" for none.
	LoginURL string
	// Cookies are the names of Zoe's own cookies (session, CSRF): removed
	// from requests before forwarding, and a service may not set them.
	Cookies []string
	// TokenPrefix starts Zoe's API tokens: an Authorization: Bearer header
	// with such a token is never forwarded. Default "zoe_".
	TokenPrefix string
	// Scheme is the scheme clients use, sent as X-Forwarded-Proto, when Zoe
	// is behind a TLS-terminating proxy ("https"); "" for the
	// connection's own.
	Scheme string
	// TrustedProxies are the reverse proxies in front of Zoe (the http
	// block's trusted_proxies): from them the X-Forwarded-For chain,
	// X-Forwarded-Proto and X-Forwarded-Host are passed on; from anyone
	// else they are replaced.
	TrustedProxies []netip.Prefix
	// MaxConnsPerUser bounds the proxied requests and WebSockets one user
	// has open at once (429 beyond). Default 256.
	MaxConnsPerUser int
	// DialTimeout bounds connecting to a service; ResponseHeaderTimeout
	// its answer's header once the request is sent.
	DialTimeout, ResponseHeaderTimeout time.Duration
	// IdleTimeout is how long a proxied request's body or answer may stall
	// (no byte moving) before it is abandoned. WebSockets have none: they
	// last as long as their execution (see EndExecution).
	IdleTimeout time.Duration
	// CheckEvery is how often the executions of open connections are read
	// again, to close those whose execution or service ended even if
	// EndExecution is not called.
	CheckEvery time.Duration
	// ReauthEvery is how often the callers of open connections are
	// checked again (Caller), to close those of a session that ended, a
	// user disabled or no longer allowed (an admin made a user): a
	// WebSocket, such as a notebook's kernel, would otherwise outlive them.
	ReauthEvery time.Duration
	// MaxIdleConnsPerHost is how many idle connections to one service are
	// kept for reuse.
	MaxIdleConnsPerHost int
}

func (c Config) withDefaults() Config {
	if c.TokenPrefix == "" {
		c.TokenPrefix = DefaultTokenPrefix
	}
	if c.MaxConnsPerUser <= 0 {
		c.MaxConnsPerUser = DefaultMaxConnsPerUser
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ResponseHeaderTimeout <= 0 {
		c.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.CheckEvery <= 0 {
		c.CheckEvery = DefaultCheckEvery
	}
	if c.ReauthEvery <= 0 {
		c.ReauthEvery = DefaultReauthEvery
	}
	if c.MaxIdleConnsPerHost <= 0 {
		c.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	return c
}

func (c Config) validate() error {
	p := c.Prefix
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return fmt.Errorf("proxy prefix %q: must start with / and not end with one", p)
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/-._~", r)) {
			return fmt.Errorf("proxy prefix %q: %q is not allowed (letters, digits and /-._~ only)", p, r)
		}
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("proxy prefix %q: empty, . or .. segment", p)
		}
	}
	if c.Store == nil || c.Caller == nil {
		return errors.New("proxy: a Store and a Caller function are required")
	}
	if c.Scheme != "" && c.Scheme != "http" && c.Scheme != "https" {
		return fmt.Errorf("proxy scheme %q: http or https", c.Scheme)
	}
	return nil
}

// Proxy is the handler. Close it when the daemon stops.
type Proxy struct {
	log     hclog.Logger
	cfg     Config
	rp      *httputil.ReverseProxy
	tr      *http.Transport
	cookies map[string]bool
	looks   *lookups
	conns   *conns
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

var _ http.Handler = (*Proxy)(nil)

// New returns a proxy; it checks cfg and starts the goroutine that closes
// the connections of ended executions.
// maxResponseHeader bounds a service's answer's header (1xx ones too).
const maxResponseHeader = 256 << 10

func New(log hclog.Logger, cfg Config) (*Proxy, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Proxy{log: log, cfg: cfg, cookies: map[string]bool{}, looks: newLookups(cfg.Store), conns: newConns(),
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, c := range cfg.Cookies {
		p.cookies[c] = true
	}
	p.tr = &http.Transport{
		// Never the environment's HTTP_PROXY: services are dialled directly.
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          4 * cfg.MaxIdleConnsPerHost,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		// A service's header is held whole while the client takes it:
		// 10 MiB each (Go's default) over many connections is much.
		MaxResponseHeaderBytes: maxResponseHeader,
		ExpectContinueTimeout:  time.Second,
		// The client's Accept-Encoding goes through and the answer comes
		// back as the service encoded it.
		DisableCompression: true,
		WriteBufferSize:    32 << 10,
		ReadBufferSize:     32 << 10,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:   p.rewrite,
		Transport: p.tr,
		// 0: ReverseProxy flushes each write of an event stream or of an
		// answer of unknown length (-1 for those), and lets a sized
		// answer fill the connection's buffers.
		FlushInterval:  0,
		BufferPool:     newBufferPool(),
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.proxyError,
		ErrorLog:       log.Named("proxy").StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}
	go p.watch()
	return p, nil
}

// Close closes every proxied connection and stops the proxy's goroutine.
// Requests that arrive after get 503.
func (p *Proxy) Close() error {
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		p.conns.closeAll(errClosed)
		p.tr.CloseIdleConnections()
	})
	return nil
}

// EndExecution closes the proxied connections of an execution that ended
// (or is being cleaned up) and answers its later requests 404 without
// reading the store. The daemon calls it when the execution leaves
// running; the periodic check does the same within CheckEvery otherwise.
func (p *Proxy) EndExecution(id int64) {
	p.conns.end(id)
}

// Stats are the proxy's counts.
type Stats struct {
	// Open is the number of proxied requests and WebSockets in progress.
	Open int
}

// Stats returns the proxy's counts.
func (p *Proxy) Stats() Stats { return Stats{Open: p.conns.open()} }

// watch reads again, every CheckEvery, the executions that have
// connections open and closes those that should not be open any more.
func (p *Proxy) watch() {
	defer close(p.done)
	t := time.NewTicker(p.cfg.CheckEvery)
	defer t.Stop()
	lastAuth := time.Now()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		if time.Since(lastAuth) >= p.cfg.ReauthEvery {
			p.reauthorize()
			lastAuth = time.Now()
		}
		for id, svcs := range p.conns.tracked() {
			ctx, cancel := context.WithTimeout(context.Background(), p.cfg.CheckEvery)
			tg, err := p.looks.get(ctx, id)
			cancel()
			switch {
			case errors.Is(err, errNoExecution):
				p.conns.end(id)
			case err != nil:
				// Kept open: the store being down is no reason to cut
				// users off; the next check tries again.
				p.log.Warn("cannot check the execution of proxied connections", "execution", id, "error", err)
			case !tg.status.Active() || tg.status == state.StatusCleaningUp:
				p.conns.end(id)
			default:
				for _, name := range svcs {
					if sv, ok := tg.services[name]; !ok || sv.status != state.ServiceRunning {
						p.conns.endService(id, name)
					}
				}
			}
		}
	}
}

// reauthorize asks the Caller function again who sent each open
// connection, once per distinct credentials, and closes those whose
// caller is no longer known (a session ended or revoked: 401), may no
// longer use the proxy (403), or is neither the execution's owner nor an
// admin any more. A failed check (the store down) closes nothing.
func (p *Proxy) reauthorize() {
	type answer struct {
		who Caller
		err error
	}
	seen := map[string]answer{}
	for _, c := range p.conns.all() {
		key := c.credKey()
		a, ok := seen[key]
		if !ok {
			ctx, cancel := context.WithTimeout(context.Background(), p.cfg.CheckEvery)
			a.who, a.err = p.cfg.Caller(c.creds.WithContext(ctx))
			cancel()
			seen[key] = a
			if a.err != nil && !errors.Is(a.err, ErrUnauthenticated) && !errors.Is(a.err, ErrForbidden) {
				p.log.Warn("cannot check again who sent proxied connections", "user", c.user, "error", a.err)
			}
		}
		switch {
		case errors.Is(a.err, ErrUnauthenticated) || errors.Is(a.err, ErrForbidden):
		case a.err != nil:
			continue
		case a.who.Username == c.user && (a.who.Admin || c.user == c.owner):
			continue
		}
		p.log.Info("proxied connection closed: its caller may no longer use it", "user", c.user,
			"execution", c.exec, "service", c.service)
		c.cancel(errRevoked)
	}
}

// bufferPool lends the buffers ReverseProxy copies bodies with: a free
// list in a channel, which (unlike a sync.Pool of slices) allocates nothing
// to give a buffer back. 128 KiB buffers cost a third less CPU per MiB
// than 32 KiB ones on a download (BenchmarkProxyOverhead); the list keeps
// at most 128 of them (16 MiB) between bursts.
type bufferPool struct{ free chan []byte }

const bufSize = 128 << 10

func newBufferPool() *bufferPool { return &bufferPool{free: make(chan []byte, 128)} }

func (b *bufferPool) Get() []byte {
	select {
	case buf := <-b.free:
		return buf
	default:
		return make([]byte, bufSize)
	}
}

func (b *bufferPool) Put(buf []byte) {
	select {
	case b.free <- buf[:cap(buf)]:
	default:
	}
}

var _ httputil.BufferPool = (*bufferPool)(nil)
