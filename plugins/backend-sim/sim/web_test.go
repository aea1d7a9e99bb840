package sim_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/coder/websocket"

	"github.com/zoe-project/zoe/internal/htmlcheck"
	"github.com/zoe-project/zoe/plugins/backend-sim/sim"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// loopbackNodes is a cluster on this machine's loopback addresses, where
// the simulator serves the pages of the services that ask for it; "far"
// is on another address, where it does not.
func loopbackNodes() map[string]any {
	return map[string]any{
		"local": map[string]any{"cores": 8, "memory": "8GiB", "address": "127.0.0.1"},
		"other": map[string]any{"cores": 8, "memory": "8GiB", "address": "127.0.0.1"},
		"far":   map[string]any{"cores": 8, "memory": "8GiB", "address": "192.0.2.1"},
	}
}

// webSpec is a service that serves pages on tcp port 8888 (and has a udp
// port), with its REVERSE_PROXY_PATH as Zoe sets it.
func webSpec(name string, knobs ...string) backend.ServiceSpec {
	s := spec(name, append([]string{"RUN=forever"}, knobs...)...)
	s.Node = "local"
	s.Ports = []backend.Port{{Port: 8888, Protocol: "tcp", Name: "web"}, {Port: 53, Protocol: "udp"}}
	s.Environment["REVERSE_PROXY_PATH_8888"] = "/zoe/proxy/7/" + name + "/8888"
	s.ExecutionID = "7"
	return s
}

func pageURL(st backend.ServiceStatus, path string) string {
	return "http://" + net.JoinHostPort(st.Ports[0].HostAddress, strconv.Itoa(int(st.Ports[0].HostPort))) + path
}

// get fetches a page with an X-Forwarded-Prefix, as Zoe's proxy sends it.
func get(t *testing.T, rawURL, prefix string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxFor(t), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if prefix != "" {
		req.Header.Set("X-Forwarded-Prefix", prefix)
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// refused says whether nothing listens at rawURL's address.
// gone tells whether a service's page no longer answers: its port refuses
// connections, or what answers on it is not the page (which echoes the
// path it was asked for): another test of the suite may take the freed
// port at once.
func gone(t *testing.T, st backend.ServiceStatus) bool {
	t.Helper()
	_, body, err := get(t, pageURL(st, "/still-there"), "")
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	return !strings.Contains(body, "GET /still-there")
}

// logText is a service's whole log.
func logText(t *testing.T, p *sim.Plugin, h backend.Handle) string {
	t.Helper()
	ch, err := p.Logs(ctxFor(t), h, backend.LogOptions{})
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	var b strings.Builder
	for e := range ch {
		b.Write(e.Line)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestServesAPageWhileRunning(t *testing.T) {
	p := open(t, stateFile(t), map[string]any{"node": loopbackNodes()})
	st := start(t, p, webSpec("notebook", "HTTP=1"))
	if st.Ports[0].HostAddress != "127.0.0.1" || st.Ports[0].HostPort < 30000 {
		t.Fatalf("published %+v", st.Ports)
	}

	code, body, err := get(t, pageURL(st, "/zoe/proxy/7/notebook/8888/lab?x=1"), "/zoe/proxy/7/notebook/8888")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET the page: %d %v", code, err)
	}
	for _, want := range []string{"<h1>notebook</h1>", "execution 7", "node local", "port 8888",
		`<dd id="request">GET /zoe/proxy/7/notebook/8888/lab?x=1</dd>`,
		`<dd id="forwarded-prefix">/zoe/proxy/7/notebook/8888</dd>`,
		`<dd id="proxy-path">/zoe/proxy/7/notebook/8888</dd>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q:\n%s", want, body)
		}
	}
	u, _ := url.Parse(pageURL(st, "/"))
	if problems := htmlcheck.Check(strings.NewReader(body), u); len(problems) > 0 {
		t.Errorf("the page's HTML: %v", problems)
	}
	// What a path or header holds is escaped, not markup.
	_, body, _ = get(t, pageURL(st, "/"), "<script>alert(1)</script>")
	if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("the prefix is not escaped:\n%s", body)
	}
	if log := logText(t, p, st.Handle); !strings.Contains(log, "http: GET /zoe/proxy/7/notebook/8888/lab?x=1\n") {
		t.Errorf("the request is not in the log:\n%s", log)
	}

	// The WebSocket echo, ended when the service is.
	c, _, err := websocket.Dial(ctxFor(t), "ws"+strings.TrimPrefix(pageURL(st, "/ws"), "http"), nil)
	if err != nil {
		t.Fatalf("WebSocket: %v", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 10)
	for _, msg := range []string{"hello", strings.Repeat("x", 40000)} {
		if err := c.Write(ctxFor(t), websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.Read(ctxFor(t)); err != nil || string(got) != msg {
			t.Fatalf("echo of %d bytes: %d bytes, %v", len(msg), len(got), err)
		}
	}

	if err := p.Stop(ctxFor(t), st.Handle, 0); err != nil {
		t.Fatal(err)
	}
	rctx := ctxFor(t)
	if _, _, err := c.Read(rctx); err == nil || rctx.Err() != nil {
		t.Errorf("the WebSocket outlived the service: %v", err)
	}
	waitFor(t, "the page to go with the service", func() bool { return gone(t, st) })
}

func TestServesOnlyWhenAsked(t *testing.T) {
	cases := []struct {
		name     string
		block    map[string]any // overrides of the block
		knobs    []string
		node     string
		serves   bool
		startErr error
	}{
		{name: "knob", knobs: []string{"HTTP=1"}, serves: true},
		{name: "label"}, // zoe.sim.http=true, set below
		{name: "default off", serves: false},
		{name: "block default", block: map[string]any{"serve_http": true}, serves: true},
		{name: "knob wins over the block", block: map[string]any{"serve_http": true}, knobs: []string{"HTTP=0"}, serves: false},
		{name: "node not on loopback", knobs: []string{"HTTP=1"}, node: "far", serves: false},
		{name: "bad value", knobs: []string{"HTTP=maybe"}, startErr: sdk.ErrInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			overrides := map[string]any{"node": loopbackNodes()}
			for k, v := range c.block {
				overrides[k] = v
			}
			p := open(t, stateFile(t), overrides)
			s := webSpec("svc", c.knobs...)
			if c.name == "label" {
				s.Labels = map[string]string{"zoe.sim.http": "true"}
				c.serves = true
			}
			if c.node != "" {
				s.Node = c.node
			}
			st, err := p.Start(ctxFor(t), s)
			if c.startErr != nil {
				if !errors.Is(err, c.startErr) || !strings.Contains(err.Error(), "ZOE_SIM_HTTP") {
					t.Fatalf("Start: %v, want %v naming the knob", err, c.startErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			if c.node == "far" {
				// Nothing of this machine's to listen on: the service
				// runs as any other.
				if st.State != backend.ServiceRunning || st.Ports[0].HostAddress != "192.0.2.1" {
					t.Errorf("status %+v", st)
				}
				return
			}
			code, _, err := get(t, pageURL(st, "/"), "")
			if c.serves && (err != nil || code != http.StatusOK) {
				t.Errorf("GET the page: %d %v, want 200", code, err)
			}
			if !c.serves {
				// Nobody, this process included, listens on the port.
				ln, err := net.Listen("tcp", strings.TrimPrefix(pageURL(st, ""), "http://"))
				if err != nil {
					t.Errorf("the port is taken (%v): the service serves a page it was not asked for", err)
				} else {
					ln.Close()
				}
			}
		})
	}
}

// The host's ports are not the platform's alone: a service serving pages
// takes only ports it can listen on, and two nodes on one address do not
// collide.
func TestServesOnFreePortsOnly(t *testing.T) {
	p := open(t, stateFile(t), map[string]any{"node": loopbackNodes()})
	// The first port the platform would give; it may be taken by someone
	// else already, which does as well.
	first := "127.0.0.1:30000"
	if ln, err := net.Listen("tcp", first); err == nil {
		defer ln.Close()
	}
	a := start(t, p, webSpec("a", "HTTP=1"))
	s := webSpec("b", "HTTP=1")
	s.Node = "other" // the same address, other host ports on the platform
	b := start(t, p, s)
	if a.Ports[0].HostPort == 30000 || a.Ports[0].HostPort == b.Ports[0].HostPort {
		t.Errorf("ports %d and %d: want two free ones other than 30000", a.Ports[0].HostPort, b.Ports[0].HostPort)
	}
	for _, st := range []backend.ServiceStatus{a, b} {
		if _, body, err := get(t, pageURL(st, "/"), ""); err != nil || !strings.Contains(body, "<h1>"+st.Name+"</h1>") {
			t.Errorf("page of %s: %v\n%s", st.Name, err, body)
		}
	}
	// A service without pages gets the platform's next port as before,
	// whoever listens there.
	plain := webSpec("plain")
	plain.Node = "other"
	if c := start(t, p, plain); c.Ports[0].HostPort != 30000 {
		t.Errorf("a service without pages publishes %d, want 30000", c.Ports[0].HostPort)
	}
}

// A restarted plugin serves the pages of the services it finds running,
// on their recorded ports; a service that ends on its own closes its page.
func TestPagesOutliveThePlugin(t *testing.T) {
	path := stateFile(t)
	overrides := map[string]any{"node": loopbackNodes()}
	first := sim.New(testLogger(t))
	if err := first.Configure(t.Context(), sdk.Config{JSON: block(t, path, overrides), Deployment: "test"}); err != nil {
		t.Fatal(err)
	}
	st := start(t, first, webSpec("long", "HTTP=1"))
	short := start(t, first, webSpec("short", "HTTP=1", "RUN=1s"))
	_ = first.Close(t.Context())
	if !gone(t, st) {
		t.Fatal("the page outlived its plugin")
	}

	second := open(t, path, overrides)
	if _, body, err := get(t, pageURL(st, "/again"), ""); err != nil || !strings.Contains(body, "GET /again") {
		t.Fatalf("the restarted plugin does not serve the page: %v\n%s", err, body)
	}
	if log := logText(t, second, st.Handle); !strings.Contains(log, "http: GET /again") {
		t.Errorf("log:\n%s", log)
	}
	waitFor(t, "the short service's page to end with it", func() bool {
		return inspect(t, second, short.Handle).State == backend.ServiceExited && gone(t, short)
	})
	// Configure again: the page goes on.
	if err := second.Configure(t.Context(), sdk.Config{JSON: block(t, path, overrides), Deployment: "test"}); err != nil {
		t.Fatal(err)
	}
	if code, _, err := get(t, pageURL(st, "/"), ""); err != nil || code != http.StatusOK {
		t.Errorf("after Configure again: %d %v", code, err)
	}
}

// A service logs its first requests, then says it stops.
func TestRequestLogIsBounded(t *testing.T) {
	p := open(t, stateFile(t), map[string]any{"node": loopbackNodes()})
	st := start(t, p, webSpec("busy", "HTTP=1"))
	for i := range 110 {
		if code, _, err := get(t, pageURL(st, fmt.Sprintf("/r%d", i)), ""); err != nil || code != http.StatusOK {
			t.Fatalf("request %d: %d %v", i, code, err)
		}
	}
	log := logText(t, p, st.Handle)
	if n := strings.Count(log, "http: GET"); n != 100 || !strings.Contains(log, "http: GET /r99\n") ||
		strings.Count(log, "the next are not logged") != 1 {
		t.Errorf("%d request lines; log:\n%s", n, log)
	}
}

func TestPageEndsWithThePlugin(t *testing.T) {
	p := sim.New(testLogger(t))
	if err := p.Configure(t.Context(), sdk.Config{JSON: block(t, stateFile(t), map[string]any{"node": loopbackNodes()}), Deployment: "test"}); err != nil {
		t.Fatal(err)
	}
	st := start(t, p, webSpec("svc", "HTTP=1"))
	c, _, err := websocket.Dial(ctxFor(t), "ws"+strings.TrimPrefix(pageURL(st, "/"), "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_ = p.Close(context.Background())
	rctx := ctxFor(t)
	if _, _, err := c.Read(rctx); err == nil || rctx.Err() != nil {
		t.Errorf("the WebSocket outlived the plugin: %v", err)
	}
	if !gone(t, st) {
		t.Error("the page outlived the plugin")
	}
}
