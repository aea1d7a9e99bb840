// Package httplimit bounds what one HTTP client can hold of a server: the
// connections it keeps open (in all and per client address), the size of
// its request headers and the time it may take to send a request, to read
// an answer or to sit idle. Without these bounds a client that opens
// connections and sends nothing, or a body one byte at a time, keeps a file
// descriptor each until the process has none left.
package httplimit

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of a server. Zero fields take the defaults (Defaults).
type Limits struct {
	// MaxConns bounds the open connections; more are closed at once.
	MaxConns int
	// MaxConnsPerAddress bounds the open connections of one client address
	// (an IPv6 client: of its /64).
	MaxConnsPerAddress int
	// MaxHeaderBytes bounds a request's header.
	MaxHeaderBytes int
	// ReadHeaderTimeout is the time to send a request's header (and, with
	// TLS, to complete the handshake).
	ReadHeaderTimeout time.Duration
	// BodyTimeout is the time to send a request's body.
	BodyTimeout time.Duration
	// WriteTimeout is the time to answer an ordinary request, from its
	// header to the end of the answer; a stream instead has it for each
	// of its writes (Stream).
	WriteTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request.
	IdleTimeout time.Duration
	// MaxStreamsPerConn bounds the requests one HTTP/2 connection carries
	// at once: the connection bounds would otherwise be multiplied by
	// HTTP/2's default of 250.
	MaxStreamsPerConn int
}

// Defaults are well under the open files a process usually has (a test
// machine here allows 20,000), and generous for a slow link.
func Defaults() Limits {
	return Limits{
		MaxConns:           4096,
		MaxConnsPerAddress: 128,
		MaxHeaderBytes:     64 << 10,
		ReadHeaderTimeout:  10 * time.Second,
		BodyTimeout:        30 * time.Second,
		WriteTimeout:       60 * time.Second,
		IdleTimeout:        2 * time.Minute,
		MaxStreamsPerConn:  16,
	}
}

// WithDefaults returns l with its zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	d := Defaults()
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxConns, d.MaxConns)
	set(&l.MaxConnsPerAddress, d.MaxConnsPerAddress)
	set(&l.MaxHeaderBytes, d.MaxHeaderBytes)
	setD(&l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	setD(&l.BodyTimeout, d.BodyTimeout)
	setD(&l.WriteTimeout, d.WriteTimeout)
	setD(&l.IdleTimeout, d.IdleTimeout)
	set(&l.MaxStreamsPerConn, d.MaxStreamsPerConn)
	return l
}

// Server returns an http.Server for h with the limits: the header size,
// header and idle timeouts, and per request the body and answer deadlines
// (Deadlines). Serve it on a Listener, which bounds the connections.
func Server(h http.Handler, l Limits, errorLog *log.Logger) *http.Server {
	l = l.WithDefaults()
	return &http.Server{
		Handler:           Deadlines(h, l),
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		// The baseline: Deadlines sets it again for each request, and a
		// stream moves it at each write. Without it, an error the server
		// answers itself (a header too large) could block on a client
		// that does not read.
		WriteTimeout: l.WriteTimeout,
		ErrorLog:     errorLog,
		HTTP2:        &http.HTTP2Config{MaxConcurrentStreams: l.MaxStreamsPerConn},
	}
}

type limitsKey struct{}

// Deadlines sets, for each request, a deadline to send its body
// (BodyTimeout) and one to answer it (WriteTimeout). Once the body has been
// read, the read deadline moves to the answer's: the server's background
// read of the connection, which notices a client that hung up, would
// otherwise end the request at the body's deadline.
func Deadlines(h http.Handler, l Limits) http.Handler {
	l = l.WithDefaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		end := now.Add(l.WriteTimeout)
		_ = rc.SetWriteDeadline(end)
		if r.Body == nil || r.Body == http.NoBody {
			_ = rc.SetReadDeadline(end)
		} else {
			_ = rc.SetReadDeadline(now.Add(l.BodyTimeout))
			r.Body = &bodyEnd{ReadCloser: r.Body, done: func() { _ = rc.SetReadDeadline(end) }}
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), limitsKey{}, &l)))
	})
}

// bodyEnd calls done once the body has been read to its end.
type bodyEnd struct {
	io.ReadCloser
	done func()
	once sync.Once
}

func (b *bodyEnd) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.done)
	}
	return n, err
}

// Stream lifts the deadlines of a request whose answer is a stream (events,
// a followed log): it may last as long as it sends, and the client sends
// nothing more. The returned function is to be called before each write:
// it gives that write WriteTimeout. Outside Deadlines (tests) it does
// nothing.
func Stream(w http.ResponseWriter, r *http.Request) (beforeWrite func()) {
	l, ok := r.Context().Value(limitsKey{}).(*Limits)
	if !ok {
		return func() {}
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	d := l.WriteTimeout
	// Moving a deadline is cheap but not free: a log read in bulk writes
	// line after line, and a deadline moved once a second (at most a
	// quarter of its time) is as good.
	every := min(time.Second, d/4)
	var last time.Time
	before := func() {
		if now := time.Now(); now.Sub(last) >= every {
			last = now
			_ = rc.SetWriteDeadline(now.Add(d))
		}
	}
	before()
	return before
}

// Listener bounds the connections that ln accepts: in all and per client
// address. A connection over either bound is closed as soon as it is
// accepted: the client sees a reset or end of file, never a wait. A TLS
// server wraps this listener, so a connection in its handshake counts.
type Listener struct {
	net.Listener
	// OnRefuse, when set before serving, is told of the connections
	// closed at once: at most once every ReportEvery, with the client
	// address of the last one and how many were closed since the last
	// call — a flood is one log line, not one per connection.
	OnRefuse func(addr string, n uint64)

	maxConns, maxPerAddr int

	mu     sync.Mutex
	open   int
	byAddr map[string]int
	// unreported refusals since lastReport.
	unreported uint64
	lastReport time.Time
	// refused counts the connections closed at once.
	refused atomic.Uint64
}

// ReportEvery is how often Listener.OnRefuse is called at most.
const ReportEvery = 10 * time.Second

// Listen wraps ln with the connection limits of l.
func Listen(ln net.Listener, l Limits) *Listener {
	l = l.WithDefaults()
	return &Listener{Listener: ln, maxConns: l.MaxConns, maxPerAddr: l.MaxConnsPerAddress, byAddr: map[string]int{}}
}

// Accept returns the next connection within the limits.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := AddressKey(c.RemoteAddr())
		if l.take(key) {
			return &conn{Conn: c, release: func() { l.give(key) }}, nil
		}
		l.refused.Add(1)
		_ = c.Close()
		if l.OnRefuse != nil {
			l.report(key)
		}
	}
}

func (l *Listener) report(key string) {
	l.mu.Lock()
	l.unreported++
	now := time.Now()
	if now.Sub(l.lastReport) < ReportEvery {
		l.mu.Unlock()
		return
	}
	n := l.unreported
	l.unreported, l.lastReport = 0, now
	l.mu.Unlock()
	l.OnRefuse(key, n)
}

func (l *Listener) take(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.maxConns || l.byAddr[key] >= l.maxPerAddr {
		return false
	}
	l.open++
	l.byAddr[key]++
	return true
}

func (l *Listener) give(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if n := l.byAddr[key] - 1; n > 0 {
		l.byAddr[key] = n
	} else {
		delete(l.byAddr, key)
	}
}

// Stats are a listener's counts.
type Stats struct {
	// Open connections, and the client addresses they come from.
	Open, Addresses int
	// Refused connections since the start.
	Refused uint64
}

// Stats returns the listener's counts.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Open: l.open, Addresses: len(l.byAddr), Refused: l.refused.Load()}
}

// conn gives back its place once closed (the server may close twice).
type conn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// AddressKey is the client address a's connections and failures are counted
// under: the IP address, or for IPv6 its /64, which one client usually
// holds whole.
func AddressKey(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return ipKey(a.IP)
	case nil:
		return ""
	default:
		return HostKey(a.String())
	}
}

// HostKey is AddressKey for a "host:port" or "host" string, such as
// http.Request.RemoteAddr.
func HostKey(hostport string) string {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if ip := net.ParseIP(host); ip != nil {
		return ipKey(ip)
	}
	return host
}

func ipKey(ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return (&net.IPNet{IP: ip.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
}

// FromProxy tells whether the peer at remoteAddr (host:port, as
// http.Request.RemoteAddr) is one of the trusted reverse proxies.
func FromProxy(remoteAddr string, proxies []netip.Prefix) bool {
	if len(proxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	return slices.ContainsFunc(proxies, func(p netip.Prefix) bool { return p.Contains(a) })
}
