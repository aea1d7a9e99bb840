package sim

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/zoe-project/zoe/sdk/backend"
)

// A simulated service does not run, so nothing would answer on its
// published ports and Zoe's proxy would have nothing to show. A service
// with the HTTP knob (ZOE_SIM_HTTP=1, or serve_http in the block) on a node
// whose address is a loopback address gets a listener on each published
// tcp port, on that address, while it runs: a small page naming the
// service and echoing the request's path and X-Forwarded-Prefix, and a
// WebSocket echo. Each request writes a line to the service's log (the
// first maxHTTPLogged of them), as a web server would.
//
// The listeners are the process's: the instance that starts the service
// listens, and an instance that finds a running service it does not serve
// (a plugin restarted by the core) listens on its recorded ports if it can.
// Since the host's ports are not the platform's alone, Start gives such a
// service only ports it could listen on.

const (
	// maxHTTPLogged bounds the request lines a service writes to its log,
	// which the platform keeps: the next request writes that it stops.
	maxHTTPLogged = 100
	// maxLoggedPath bounds the path a log line and the page echo.
	maxLoggedPath = 256
	// wsReadLimit bounds one WebSocket message.
	wsReadLimit = 64 << 10
)

// webServers are the pages this process serves, by service ID. They
// outlive a runtime (a Configure again keeps them) and end with the
// plugin.
type webServers struct {
	log *slog.Logger
	// logRequest writes a line to a running service's log.
	logRequest func(id, line string)

	mu      sync.Mutex
	servers map[string]*webServer
	// failed are the services whose recorded ports this process could not
	// listen on, so that it says so once.
	failed map[string]bool
	closed bool
}

type webServer struct {
	srv    *http.Server
	cancel context.CancelFunc // ends the WebSocket connections, which Close does not
	// lns are closed by stop too: srv.Close closes only the listeners
	// Serve has taken, and a Serve goroutine may not have run yet.
	lns []net.Listener
}

func newWebServers(log *slog.Logger, logRequest func(id, line string)) *webServers {
	return &webServers{log: log, logRequest: logRequest, servers: map[string]*webServer{}, failed: map[string]bool{}}
}

// isLoopback says whether a node's address is a loopback IP address, the
// only kind this process may listen on for a simulated node.
func isLoopback(address string) bool {
	a, err := netip.ParseAddr(address)
	return err == nil && a.IsLoopback()
}

// listen is the bind function of hostPorts for a service serving pages on
// a loopback node: it listens on address:port, keeping the listener.
func listen(address string, lns *[]net.Listener) func(uint16) bool {
	return func(port uint16) bool {
		ln, err := net.Listen("tcp", net.JoinHostPort(address, strconv.Itoa(int(port))))
		if err != nil {
			return false
		}
		*lns = append(*lns, ln)
		return true
	}
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		_ = ln.Close()
	}
}

// serve serves s's page on lns, which it takes over.
func (w *webServers) serve(s *service, lns []net.Listener) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.servers[s.ID] != nil {
		closeAll(lns)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &http.Server{
		Handler:           &page{s: s, logRequest: w.logRequest},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(w.log.Handler(), slog.LevelDebug),
	}
	w.servers[s.ID] = &webServer{srv: srv, cancel: cancel, lns: lns}
	for _, ln := range lns {
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				w.log.Warn("a simulated service's page stopped", "service", s.Name, "address", ln.Addr().String(), "error", err)
			}
		}()
	}
}

// sync makes what this process serves of service id follow the platform:
// s is the service as it is now (nil when removed). A running service of
// this deployment with the HTTP knob that nobody here serves yet is taken
// over on its recorded ports; any other is served no more.
func (w *webServers) sync(id string, s *service, deployment string) {
	if s == nil || s.State != backend.ServiceRunning || !s.HTTP || s.Deployment != deployment {
		w.stop(id)
		return
	}
	w.mu.Lock()
	served, failed := w.servers[id] != nil, w.failed[id]
	w.mu.Unlock()
	if served || failed {
		return
	}
	var lns []net.Listener
	for _, p := range s.Ports {
		if p.Protocol != "tcp" || !isLoopback(p.HostAddress) {
			continue
		}
		if !listen(p.HostAddress, &lns)(p.HostPort) {
			closeAll(lns)
			w.mu.Lock()
			w.failed[id] = true
			w.mu.Unlock()
			w.log.Warn("cannot serve a simulated service's page: its port is taken (by another instance of the plugin?)",
				"service", s.Name, "address", net.JoinHostPort(p.HostAddress, strconv.Itoa(int(p.HostPort))))
			return
		}
	}
	w.serve(s, lns)
}

// syncServed makes this process serve exactly the services given, the
// running ones of its deployment with the HTTP knob, after the whole
// platform was (re)loaded.
func (w *webServers) syncServed(serve []*service) {
	keep := make(map[string]bool, len(serve))
	for _, s := range serve {
		keep[s.ID] = true
	}
	w.mu.Lock()
	var gone []string
	for id := range w.servers {
		if !keep[id] {
			gone = append(gone, id)
		}
	}
	w.mu.Unlock()
	for _, id := range gone {
		w.stop(id)
	}
	for _, s := range serve {
		w.sync(s.ID, s, s.Deployment)
	}
}

// stop ends service id's page, its listeners and connections.
func (w *webServers) stop(id string) {
	w.mu.Lock()
	ws := w.servers[id]
	delete(w.servers, id)
	delete(w.failed, id)
	w.mu.Unlock()
	if ws != nil {
		ws.cancel()
		_ = ws.srv.Close()
		closeAll(ws.lns)
	}
}

// close ends every page; serve takes no more.
func (w *webServers) close() {
	w.mu.Lock()
	w.closed = true
	ids := make([]string, 0, len(w.servers))
	for id := range w.servers {
		ids = append(ids, id)
	}
	w.mu.Unlock()
	for _, id := range ids {
		w.stop(id)
	}
}

// page is a simulated service's web server.
type page struct {
	s          *service
	logRequest func(id, line string)
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Service}}: a simulated service</title></head>
<body>
<main>
<h1>{{.Service}}</h1>
<p>A simulated service of Zoe's sim back-end (execution {{.Execution}}, node {{.Node}}, image {{.Image}}): it runs nothing, and answers on its port {{.Port}} with this page.</p>
<dl>
<dt>Request</dt><dd id="request">{{.Method}} {{.Path}}</dd>
<dt>X-Forwarded-Prefix</dt><dd id="forwarded-prefix">{{if .Prefix}}{{.Prefix}}{{else}}(none){{end}}</dd>
<dt>REVERSE_PROXY_PATH_{{.Port}}</dt><dd id="proxy-path">{{if .ProxyPath}}{{.ProxyPath}}{{else}}(not set){{end}}</dd>
</dl>
<p>A WebSocket connection to any path of this port gets every message back.</p>
</main>
</body>
</html>
`))

type pageView struct {
	Service, Execution, Node, Image string
	Port                            uint16
	Method, Path, Prefix, ProxyPath string
}

func (p *page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	port := p.port(r)
	path := clip(r.URL.RequestURI())
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		p.logRequest(p.s.ID, "http: WebSocket "+path)
		p.echo(w, r)
		return
	}
	p.logRequest(p.s.ID, "http: "+r.Method+" "+path)
	v := pageView{Service: p.s.Name, Execution: p.s.ExecutionID, Node: p.s.Node, Image: p.s.Image, Port: port,
		Method: r.Method, Path: path, Prefix: clip(r.Header.Get("X-Forwarded-Prefix")),
		ProxyPath: p.s.ProxyPaths[strconv.Itoa(int(port))]}
	if v.Execution == "" {
		v.Execution = "none"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.Header().Set("Cache-Control", "no-store")
	_ = pageTemplate.Execute(w, v)
}

// port is the container port of the published port the request came in
// on.
func (p *page) port(r *http.Request) uint16 {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			for _, pp := range p.s.Ports {
				if pp.HostPort == ap.Port() {
					return pp.Port
				}
			}
		}
	}
	return 0
}

// echo sends every WebSocket message back until the peer or the service
// ends.
func (p *page) echo(w http.ResponseWriter, r *http.Request) {
	// Any origin: the page is reached through Zoe's proxy, whose host is
	// not this listener's, and a simulated service guards nothing.
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(wsReadLimit)
	ctx := r.Context()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				_ = c.Close(websocket.StatusGoingAway, "the service ended")
			}
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}

// clip bounds what a request makes the page echo and the log keep.
func clip(s string) string {
	if len(s) > maxLoggedPath {
		return s[:maxLoggedPath] + "..."
	}
	return s
}

// logRequest writes line to a running service's log, as one of the first
// maxHTTPLogged requests; the next says that the service logs no more.
func (p *Plugin) logRequest(id, line string) {
	rt, err := p.runtime()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = rt.transact(ctx, nil, func(t *tx) error {
		s := t.pl.services[id]
		if s == nil || s.State != backend.ServiceRunning || s.HTTPLogged > maxHTTPLogged {
			return errUnchanged
		}
		t.update(s, func(s *service) {
			s.HTTPLogged++
			if s.HTTPLogged > maxHTTPLogged {
				line = fmt.Sprintf("http: more than %d requests; the next are not logged", maxHTTPLogged)
			}
			at := t.now
			if n := len(s.Logs); n > 0 && !at.After(s.Logs[n-1].Time) {
				at = s.Logs[n-1].Time.Add(1) // lines stay in order, a nanosecond apart at least
			}
			s.Logs = append(s.Logs, logLine{Time: at, Stream: backend.Stdout, Line: line})
		})
		return nil
	})
	if err != nil {
		p.log.Debug("cannot log a simulated service's request", "service", id, "error", err)
	}
}
