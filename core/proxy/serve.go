package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"

	"github.com/zoe-project/zoe/core/httplimit"
	"github.com/zoe-project/zoe/core/state"
)

// routed is what the handler passes to rewrite and modifyResponse with the
// request's context.
type routed struct {
	route
	addr string
	// stripAuth: the Authorization header is Zoe's credential.
	stripAuth bool
	// token is the service's ZOE_PROXY_TOKEN, sent as its Authorization
	// header instead of the client's; "" for none.
	token string
	// sandbox: the caller is an admin on someone else's execution, whose
	// pages must not run scripts with the admin's Zoe session.
	sandbox bool
	conn    *conn
}

type routedKey struct{}

// headersFromClient are request headers some frameworks trust to name the
// client, the scheme or even the path; the proxy sets the ones it knows
// and drops the others rather than pass on what the client claims.
var headersFromClient = []string{"X-Real-Ip", "X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Ssl",
	"X-Forwarded-Scheme", "X-Forwarded-Prefix", "X-Original-Url", "X-Rewrite-Url", "X-Original-Uri"}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect || r.URL.Opaque != "" {
		page(w, r, http.StatusMethodNotAllowed, "Not allowed", "The proxy forwards requests to paths, not tunnels.", 0)
		return
	}
	rt, perr := parsePath(p.cfg.Prefix, r.URL.EscapedPath(), r.URL.RawQuery)
	if perr != nil {
		if perr.redirect != "" {
			w.Header().Set("Location", perr.redirect)
			w.WriteHeader(perr.status)
			return
		}
		page(w, r, perr.status, http.StatusText(perr.status), perr.msg, 0)
		return
	}
	who, err := p.cfg.Caller(r)
	switch {
	case errors.Is(err, ErrUnauthenticated):
		p.unauthenticated(w, r)
		return
	case errors.Is(err, ErrForbidden):
		page(w, r, http.StatusForbidden, "Forbidden", "Your account may not use the proxy.", 0)
		return
	case err != nil:
		p.log.Warn("cannot tell who calls the proxy", "error", err)
		page(w, r, http.StatusServiceUnavailable, "Unavailable", "Zoe cannot check who you are right now; try again in a moment.", 10)
		return
	case who.Username == "":
		p.unauthenticated(w, r)
		return
	}
	if !who.Authorization && p.crossOrigin(r) {
		page(w, r, http.StatusForbidden, "Forbidden", "This request came from a page of another origin and was refused.", 0)
		return
	}
	notFound := func(msg string) { page(w, r, http.StatusNotFound, "Not found", msg, 0) }
	t, err := p.looks.get(r.Context(), rt.exec)
	switch {
	case errors.Is(err, errNoExecution):
		notFound("There is no execution " + strconv.FormatInt(rt.exec, 10) + ".")
		return
	case err != nil:
		p.log.Warn("cannot read a proxy target", "execution", rt.exec, "error", err)
		page(w, r, http.StatusServiceUnavailable, "Unavailable", "Zoe cannot read its state right now; try again in a moment.", 10)
		return
	}
	if t.owner != who.Username && !who.Admin {
		page(w, r, http.StatusForbidden, "Forbidden", "Execution "+strconv.FormatInt(rt.exec, 10)+" is not yours.", 0)
		return
	}
	if !t.status.Active() || t.status == state.StatusCleaningUp {
		notFound("Execution " + strconv.FormatInt(rt.exec, 10) + " has ended (" + string(t.status) + ").")
		return
	}
	if p.conns.isEnded(rt.exec) { // told by the daemon before the store says so
		notFound("Execution " + strconv.FormatInt(rt.exec, 10) + " has ended.")
		return
	}
	sv, ok := t.services[rt.service]
	if !ok {
		notFound("Execution " + strconv.FormatInt(rt.exec, 10) + " has no service " + strconv.Quote(rt.service) + ".")
		return
	}
	pt, ok := sv.ports[rt.port]
	if !ok {
		notFound("Service " + rt.service + " has no TCP port " + strconv.Itoa(rt.port) + ".")
		return
	}
	if !pt.proxy {
		notFound("Port " + strconv.Itoa(rt.port) + " of service " + rt.service +
			" is not marked \"proxy\": true in its ZApp; it is reached at its direct address (see the execution's endpoints).")
		return
	}
	switch sv.status {
	case state.ServiceRunning:
	case state.ServiceCreated, state.ServiceStarting:
		page(w, r, http.StatusServiceUnavailable, "Not running yet", "Service "+rt.service+" of execution "+
			strconv.FormatInt(rt.exec, 10)+" is "+string(sv.status)+", not running yet. This page reloads by itself.", 5)
		return
	default:
		notFound("Service " + rt.service + " of execution " + strconv.FormatInt(rt.exec, 10) + " is " + string(sv.status) + ".")
		return
	}
	if pt.addr == "" {
		page(w, r, http.StatusBadGateway, "No address", "Zoe has no published address for port "+strconv.Itoa(rt.port)+
			" of service "+rt.service+".", 0)
		return
	}

	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	c := &conn{exec: rt.exec, service: rt.service, user: who.Username, owner: t.owner, cancel: cancel, creds: credentials(r)}
	switch err := p.conns.add(c, p.cfg.MaxConnsPerUser); {
	case errors.Is(err, errTooMany):
		page(w, r, http.StatusTooManyRequests, "Too many connections", "You have "+strconv.Itoa(p.cfg.MaxConnsPerUser)+
			" proxied connections open; close some and try again.", 5)
		return
	case errors.Is(err, errEndedAlready):
		notFound("Execution " + strconv.FormatInt(rt.exec, 10) + " has ended.")
		return
	case err != nil:
		page(w, r, http.StatusServiceUnavailable, "Unavailable", "Zoe is shutting down.", 10)
		return
	}
	defer p.conns.remove(c)

	rd := &routed{route: rt, addr: pt.addr, conn: c, sandbox: t.owner != who.Username, token: sv.token,
		stripAuth: who.Authorization || p.isZoeToken(r.Header.Get("Authorization"))}
	p.rp.ServeHTTP(p.deadlines(w, r), r.WithContext(context.WithValue(ctx, routedKey{}, rd)))
}

// trusted says whether the peer at addr is one of the trusted proxies.
func (p *Proxy) trusted(addr string) bool {
	return httplimit.FromProxy(addr, p.cfg.TrustedProxies)
}

func (p *Proxy) isZoeToken(h string) bool {
	scheme, tok, ok := strings.Cut(h, " ")
	return ok && strings.EqualFold(scheme, "Bearer") && strings.HasPrefix(strings.TrimSpace(tok), p.cfg.TokenPrefix)
}

// rewrite builds the request to the service: to the recorded address
// only, with the full path (apps are told their prefix), without Zoe's
// credentials, and with the service's proxy token when it has one.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	rd := pr.In.Context().Value(routedKey{}).(*routed)
	u := pr.Out.URL
	u.Scheme, u.Host, u.User, u.Opaque = "http", rd.addr, nil, ""
	u.Path, u.RawPath, u.RawQuery = pr.In.URL.Path, pr.In.URL.RawPath, pr.In.URL.RawQuery
	// The client's Host goes on: apps such as Jupyter compare it with the
	// WebSocket Origin. It does not choose where the request goes.
	pr.Out.Host = pr.In.Host
	h := pr.Out.Header
	for _, k := range headersFromClient {
		h.Del(k)
	}
	pr.SetXForwarded()
	if p.trusted(pr.In.RemoteAddr) {
		if prior := pr.In.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			h.Set("X-Forwarded-For", strings.Join(prior, ", ")+", "+h.Get("X-Forwarded-For"))
		}
		if v := pr.In.Header.Get("X-Forwarded-Proto"); v == "http" || v == "https" {
			h.Set("X-Forwarded-Proto", v)
		}
		if v := pr.In.Header.Get("X-Forwarded-Host"); v != "" {
			h.Set("X-Forwarded-Host", v)
		}
	}
	if p.cfg.Scheme != "" {
		h.Set("X-Forwarded-Proto", p.cfg.Scheme)
	}
	h.Set("X-Forwarded-Prefix", rd.base)
	switch {
	case rd.token != "":
		// The service's port is published where others reach it too; the
		// token, which Zoe gave it and no client knows, tells it that the
		// request passed the proxy's checks ("token" is Jupyter's scheme).
		// Whatever the client sent is replaced, never passed beside it.
		h.Set("Authorization", "token "+rd.token)
	case rd.stripAuth:
		h.Del("Authorization")
	}
	if len(p.cookies) > 0 {
		stripCookies(h, p.cookies)
	}
}

// stripCookies removes the named cookies from the Cookie headers and
// leaves the others as the client sent them.
func stripCookies(h http.Header, names map[string]bool) {
	vs := h["Cookie"]
	if len(vs) == 0 {
		return
	}
	var kept []string
	changed := false
	for _, v := range vs {
		var keep []string
		for part := range strings.SplitSeq(v, ";") {
			name, _, _ := strings.Cut(part, "=")
			if names[strings.TrimSpace(name)] {
				changed = true
				continue
			}
			if strings.TrimSpace(part) != "" {
				keep = append(keep, strings.TrimSpace(part))
			}
		}
		if len(keep) > 0 {
			kept = append(kept, strings.Join(keep, "; "))
		}
	}
	if !changed {
		return
	}
	if len(kept) == 0 {
		h.Del("Cookie")
		return
	}
	h["Cookie"] = []string{strings.Join(kept, "; ")}
}

// modifyResponse keeps a service from reaching beyond its own path: it
// may not set or clear Zoe's cookies, set cookies for other paths, widen a
// service worker's scope to the whole site, clear the site's data, or let
// a shared cache keep its answers.
func (p *Proxy) modifyResponse(res *http.Response) error {
	h := res.Header
	rd := res.Request.Context().Value(routedKey{}).(*routed)
	if vs := h["Set-Cookie"]; len(vs) > 0 {
		kept := vs[:0:0]
		for _, v := range vs {
			pair, _, _ := strings.Cut(v, ";")
			name, _, named := strings.Cut(pair, "=")
			name = strings.TrimSpace(name)
			// A cookie without a name goes back as its bare value, which
			// may read "zoe_session=...": no service needs one.
			if named && name != "" && !p.cookies[name] {
				kept = append(kept, cookieScope(v, rd.base))
			}
		}
		if len(kept) != len(vs) {
			p.log.Debug("a service tried to set one of Zoe's cookies, or one without a name; dropped", "execution", rd.exec)
		}
		h["Set-Cookie"] = kept
	}
	privateCache(h)
	h.Del("Service-Worker-Allowed")
	// Zoe's pages are same-origin with the services but isolated from a
	// window that opened them, as long as its opener policy differs.
	h.Del("Cross-Origin-Opener-Policy")
	h.Del("Clear-Site-Data")
	// Headers the browser applies to the whole origin, beyond the
	// service's page and its sandbox: reports of every later request to
	// Zoe sent where the service says (NEL, Report-To), Zoe's HSTS
	// cleared, its traffic sent elsewhere (Alt-Svc). And a challenge
	// that makes the browser ask for a password on Zoe's origin and keep
	// it for the service's scripts (the proxy sends the service its own
	// token, never the client's credentials, so no service needs one).
	for _, k := range []string{"NEL", "Report-To", "Reporting-Endpoints", "Strict-Transport-Security", "Alt-Svc",
		"WWW-Authenticate", "Proxy-Authenticate"} {
		h.Del(k)
	}
	if rd.sandbox {
		// An admin looking at a user's service: its scripts run in an
		// opaque origin, so they cannot act with the admin's session.
		h.Add("Content-Security-Policy", "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads")
	}
	// Framed by Zoe's origin only: a page on another port of Zoe's host is
	// same-site, so the session cookie goes with its frames (clickjacking).
	h.Add("Content-Security-Policy", "frame-ancestors 'self'")
	return nil
}

// badGatewayRetry is the seconds after which a browser shown the 502 page
// of a GET asks again (its Retry-After, and the page's refresh).
const badGatewayRetry = 3

// proxyError answers a request the service did not: 502 with a short
// page, or 404 when its execution ended meanwhile. What went wrong is
// logged, never shown.
func (p *Proxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	rd, _ := r.Context().Value(routedKey{}).(*routed)
	cause := context.Cause(r.Context())
	switch {
	case errors.Is(cause, errEnded):
		page(w, r, http.StatusNotFound, "Not found", "The execution or service has ended.", 0)
	case errors.Is(cause, errClosed):
		page(w, r, http.StatusServiceUnavailable, "Unavailable", "Zoe is shutting down.", 10)
	case errors.Is(cause, errRevoked):
		page(w, r, http.StatusForbidden, "Forbidden", "Your session ended or you may no longer use this execution.", 0)
	case r.Context().Err() != nil:
		// The client went away: nobody to answer.
	default:
		if rd != nil {
			p.log.Debug("proxied request failed", "execution", rd.exec, "service", rd.service, "port", rd.port, "error", err)
		}
		// A service is "running" once its container started, which is
		// before it listens: a browser opening its link at once would
		// stop at this page. It asks again by itself (a GET only, never
		// a form sent twice), every few seconds, until the service answers.
		retry := 0
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			retry = badGatewayRetry
		}
		page(w, r, http.StatusBadGateway, "Bad gateway", "The service did not answer properly. It may still be starting "+
			"(this page tries again every few seconds), or not serve HTTP on this port.", retry)
	}
}

// deadlines replaces the daemon's fixed request deadlines (core/httplimit)
// with ones that move while bytes do: a proxied download, upload or event
// stream may last as long as it progresses, and one that stalls for
// IdleTimeout ends. An upgraded connection (WebSocket) has no deadline:
// the server clears them when it is hijacked, and it lasts as long as its
// execution.
func (p *Proxy) deadlines(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	rc := http.NewResponseController(w)
	idle := p.cfg.IdleTimeout
	// Waiting for the service's header is bounded by the transport's
	// ResponseHeaderTimeout; the client gets IdleTimeout per write after
	// (WriteHeader and Write move it). An answer without a body is written
	// by the server after the handler returns: this deadline bounds that
	// write too, against a client that never reads.
	_ = rc.SetWriteDeadline(time.Now().Add(p.cfg.ResponseHeaderTimeout + idle))
	if r.Body == nil || r.Body == http.NoBody {
		// Lifted, or the server's background read would end the request
		// when the old deadline passes.
		_ = rc.SetReadDeadline(time.Time{})
	} else {
		_ = rc.SetReadDeadline(time.Now().Add(idle))
		r.Body = &idleBody{ReadCloser: r.Body, rc: rc, idle: idle}
	}
	return &idleWriter{ResponseWriter: w, rc: rc, idle: idle}
}

// every is how often a moving deadline is moved at most: moving it is
// cheap but not free, and a body copied in 32 KiB writes makes many.
func every(idle time.Duration) time.Duration { return min(time.Second, idle/4) }

// idleWriter moves the write deadline on with each write.
type idleWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	idle time.Duration
	last time.Time
}

func (w *idleWriter) Write(b []byte) (int, error) {
	if now := time.Now(); now.Sub(w.last) >= every(w.idle) {
		w.last = now
		_ = w.rc.SetWriteDeadline(now.Add(w.idle))
	}
	return w.ResponseWriter.Write(b)
}

// WriteHeader passes an informational answer of the service (103 Early
// Hints) on with its Link headers only: it does not go through
// modifyResponse, and must not set cookies or clear the site's data.
func (w *idleWriter) WriteHeader(code int) {
	w.last = time.Now()
	_ = w.rc.SetWriteDeadline(w.last.Add(w.idle))
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		h := w.Header()
		for k := range h {
			if k != "Link" {
				delete(h, k)
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController (Flush, Hijack) reach the server's
// writer.
func (w *idleWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// idleBody moves the read deadline on with each read of the request
// body, and lifts it once the body is read.
type idleBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
	last time.Time
}

func (b *idleBody) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(b.last) >= every(b.idle) {
		b.last = now
		_ = b.rc.SetReadDeadline(now.Add(b.idle))
	}
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
