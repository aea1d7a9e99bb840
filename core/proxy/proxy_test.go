package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/proxy"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk/auth"
)

// world: execution 1 of alice, running, with service nb0 (port 8888
// proxied, 9999 not) and a starting service sp0; execution 2 of bob,
// terminated; execution 3 of alice, starting with nb0 created.
func world(t *testing.T) (*fakeStore, *backend) {
	b := newBackend(t)
	s := newFakeStore()
	s.addExecution(1, "alice", state.StatusRunning)
	s.addService(1, "nb0", state.ServiceRunning, portSpec{8888, true, b.addr}, portSpec{9999, false, b.addr})
	s.addService(1, "sp0", state.ServiceStarting, portSpec{4040, true, ""})
	s.addService(1, "dead0", state.ServiceStopped, portSpec{8888, true, b.addr})
	s.addExecution(2, "bob", state.StatusTerminated)
	s.addService(2, "nb0", state.ServiceStopped, portSpec{8888, true, b.addr})
	s.addExecution(3, "alice", state.StatusStarting)
	s.addService(3, "nb0", state.ServiceCreated, portSpec{8888, true, ""})
	return s, b
}

func TestAccess(t *testing.T) {
	t.Parallel()
	s, _ := world(t)
	_, url := newEnv(t, s, nil)
	cases := []struct {
		name, path, user string
		hdr              []string
		status           int
		body             string // a part of the body
	}{
		{"owner", "/1/nb0/8888/x", "alice", nil, 200, `"Path":"/zoe/proxy/1/nb0/8888/x"`},
		{"admin", "/1/nb0/8888/x", "admin", nil, 200, `"Path":"/zoe/proxy/1/nb0/8888/x"`},
		{"other user", "/1/nb0/8888/x", "bob", nil, 403, "not yours"},
		{"other user on an unknown service", "/1/nope/8888/x", "bob", nil, 403, "not yours"},
		{"anonymous", "/1/nb0/8888/x", "", nil, 401, "log in"},
		{"anonymous browser", "/1/nb0/8888/x?a=1", "", []string{"Accept", "text/html"}, 401,
			`href="/zoe/login?next=%2Fzoe%2Fproxy%2F1%2Fnb0%2F8888%2Fx%3Fa%3D1"`},
		{"a user who may not use the proxy", "/1/nb0/8888/x", "disabled", nil, 403, "may not use the proxy"},
		{"the caller check fails", "/1/nb0/8888/x", "broken", nil, 503, "cannot check"},
		{"unknown execution", "/99/nb0/8888/x", "alice", nil, 404, "no execution 99"},
		{"unknown service", "/1/nope/8888/x", "alice", nil, 404, `no service "nope"`},
		{"unknown port", "/1/nb0/1234/x", "alice", nil, 404, "no TCP port 1234"},
		{"port not proxied", "/1/nb0/9999/x", "alice", nil, 404, `not marked "proxy": true`},
		{"ended execution", "/2/nb0/8888/x", "bob", nil, 404, "has ended (terminated)"},
		{"ended execution, admin", "/2/nb0/8888/x", "admin", nil, 404, "has ended"},
		{"stopped service", "/1/dead0/8888/x", "alice", nil, 404, "is stopped"},
		{"service starting", "/1/sp0/4040/", "alice", nil, 503, "not running yet"},
		{"execution starting", "/3/nb0/8888/", "alice", []string{"Accept", "text/html"}, 503, `http-equiv="refresh"`},
		{"port not a number", "/1/nb0/http/x", "alice", nil, 404, "not a port number"},
		{"port out of range", "/1/nb0/65536/x", "alice", nil, 404, "not a port number"},
		{"port with a leading zero", "/1/nb0/08888/x", "alice", nil, 404, "not a port number"},
		{"execution with a sign", "/+1/nb0/8888/x", "alice", nil, 404, "no execution"},
		{"execution with a leading zero", "/01/nb0/8888/x", "alice", nil, 404, "no execution"},
		{"too short", "/1/nb0", "alice", nil, 404, "a proxy address is"},
		{"no trailing slash", "/1/nb0/8888", "alice", nil, 308, ""},
		{"dot dot in the rest", "/1/nb0/8888/a/../../../2/nb0/8888/", "alice", nil, 400, ". or .."},
		{"encoded dot dot", "/1/nb0/8888/%2e%2E/x", "alice", nil, 400, ". or .."},
		{"encoded slash in the service", "/1/nb0%2F..%2F..%2F2/8888/x", "alice", nil, 400, "escapes"},
		{"encoded service name", "/1/%6eb0/8888/x", "alice", nil, 400, "escapes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body, h := get(t, url+prefix+c.path, c.user, c.hdr...)
			if st != c.status || !strings.Contains(body, c.body) {
				t.Fatalf("GET %s as %q: %d %q, want %d with %q", c.path, c.user, st, body, c.status, c.body)
			}
			if st == 503 && h.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if st == 308 && h.Get("Location") != prefix+c.path+"/" {
				t.Errorf("Location %q", h.Get("Location"))
			}
		})
	}
}

// TestEndedAtOnce: the request after a status change is refused, although
// the one before was served (and its look-up cached).
func TestEndedAtOnce(t *testing.T) {
	t.Parallel()
	for _, to := range []state.Status{state.StatusCleaningUp, state.StatusTerminated, state.StatusError} {
		t.Run(string(to), func(t *testing.T) {
			s, _ := world(t)
			_, url := newEnv(t, s, nil)
			for range 2 {
				if st, body, _ := get(t, url+prefix+"/1/nb0/8888/", "alice"); st != 200 {
					t.Fatalf("before: %d %s", st, body)
				}
			}
			s.setStatus(1, to)
			if st, body, _ := get(t, url+prefix+"/1/nb0/8888/", "alice"); st != 404 {
				t.Fatalf("after %s: %d %s, want 404", to, st, body)
			}
		})
	}
	t.Run("the service stops", func(t *testing.T) {
		s, _ := world(t)
		_, url := newEnv(t, s, nil)
		if st, _, _ := get(t, url+prefix+"/1/nb0/8888/", "alice"); st != 200 {
			t.Fatalf("before: %d", st)
		}
		s.setServiceStatus(1, "nb0", state.ServiceStopping)
		if st, _, _ := get(t, url+prefix+"/1/nb0/8888/", "alice"); st != 404 {
			t.Fatalf("after: %d, want 404", st)
		}
	})
}

// TestLookupsCached: while the store does not change, a request does not
// read the execution again.
func TestLookupsCached(t *testing.T) {
	t.Parallel()
	s, _ := world(t)
	_, url := newEnv(t, s, nil)
	get(t, url+prefix+"/1/nb0/8888/", "alice")
	n := s.readCount()
	for range 5 {
		get(t, url+prefix+"/1/nb0/8888/", "alice")
	}
	if got := s.readCount(); got != n {
		t.Errorf("%d reads of the execution for 5 requests at one store version", got-n)
	}
}

func TestWebSocket(t *testing.T) {
	t.Parallel()
	s, _ := world(t)
	p, url := newEnv(t, s, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, _, err := dialWS(ctx, url+prefix+"/1/nb0/8888/ws", "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.CloseNow() }()
	for i := range 3 {
		msg := fmt.Sprintf("hello %d", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != msg {
			t.Fatalf("echo %d: %q, %v", i, got, err)
		}
	}
	if n := p.Stats().Open; n != 1 {
		t.Errorf("%d open connections, want 1", n)
	}
	// Another user cannot open one.
	if _, res, err := dialWS(ctx, url+prefix+"/1/nb0/8888/ws", "bob"); err == nil || res == nil || res.StatusCode != 403 {
		t.Errorf("bob's WebSocket: %v, %v", res, err)
	}
	// A WebSocket outlives the daemon's write timeout only as long as its
	// execution: EndExecution closes it, and new requests are refused.
	p.EndExecution(1)
	if _, _, err := c.Read(ctx); err == nil {
		t.Fatal("the WebSocket is still open after EndExecution")
	}
	if st, _, _ := get(t, url+prefix+"/1/nb0/8888/", "alice"); st != 404 {
		t.Errorf("after EndExecution: %d, want 404", st)
	}
}

// TestWebSocketClosedByCheck: without EndExecution, the periodic check
// closes a WebSocket whose execution ended.
func TestWebSocketClosedByCheck(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		change func(s *fakeStore)
	}{
		{"execution terminated", func(s *fakeStore) { s.setStatus(1, state.StatusTerminated) }},
		{"service stopped", func(s *fakeStore) { s.setServiceStatus(1, "nb0", state.ServiceStopped) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := world(t)
			p, url := newEnv(t, s, func(c *proxy.Config) { c.CheckEvery = 20 * time.Millisecond })
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			ws, _, err := dialWS(ctx, url+prefix+"/1/nb0/8888/ws", "alice")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = ws.CloseNow() }()
			if err := ws.Write(ctx, websocket.MessageText, []byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, _, err := ws.Read(ctx); err != nil {
				t.Fatal(err)
			}
			c.change(s)
			// Blocks until the proxy closes it (the context only bounds a
			// failing test).
			if _, _, err := ws.Read(ctx); err == nil || ctx.Err() != nil {
				t.Fatalf("not closed by the check: %v", err)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestWebSocketReauthorized: the periodic check asks again who sent each
// open connection: a session that ended, a user disabled, an admin who is
// one no more (on another's execution) lose their WebSockets; a failed
// check (the session store down) closes nothing.
func TestWebSocketReauthorized(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		user   string
		change func(r *http.Request) (proxy.Caller, error)
		closed bool
	}{
		{"session ended", "alice", func(*http.Request) (proxy.Caller, error) { return proxy.Caller{}, proxy.ErrUnauthenticated }, true},
		{"user disabled", "alice", func(*http.Request) (proxy.Caller, error) {
			return proxy.Caller{}, fmt.Errorf("disabled: %w", proxy.ErrForbidden)
		}, true},
		{"admin no more", "admin", func(*http.Request) (proxy.Caller, error) { return proxy.Caller{Username: "admin"}, nil }, true},
		{"another user now", "alice", func(*http.Request) (proxy.Caller, error) { return proxy.Caller{Username: "bob"}, nil }, true},
		{"store down", "alice", func(*http.Request) (proxy.Caller, error) {
			return proxy.Caller{}, fmt.Errorf("the session store is down")
		}, false},
		{"unchanged", "admin", caller, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := world(t)
			var changed atomic.Bool
			checks := make(chan struct{}, 100)
			p, url := newEnv(t, s, func(cfg *proxy.Config) {
				cfg.CheckEvery, cfg.ReauthEvery = 10*time.Millisecond, 20*time.Millisecond
				cfg.Caller = func(r *http.Request) (proxy.Caller, error) {
					if !changed.Load() {
						return caller(r)
					}
					select {
					case checks <- struct{}{}:
					default:
					}
					return c.change(r)
				}
			})
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			ws, _, err := dialWS(ctx, url+prefix+"/1/nb0/8888/ws", c.user)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = ws.CloseNow() }()
			changed.Store(true)
			// One check closes; three that do not leave it open.
			n := 3
			if c.closed {
				n = 1
			}
			for range n {
				select {
				case <-checks:
				case <-ctx.Done():
					t.Fatal("the callers were not checked again")
				}
			}
			if c.closed {
				// Blocks until the proxy closes it (the context only
				// bounds a failing test).
				if _, _, err := ws.Read(ctx); err == nil || ctx.Err() != nil {
					t.Errorf("not closed by the check: %v", err)
				}
			} else if err := ws.Write(ctx, websocket.MessageText, []byte("x")); err != nil {
				t.Errorf("closed by the check: %v", err)
			} else if _, got, err := ws.Read(ctx); err != nil || string(got) != "x" {
				t.Errorf("closed by the check: %q, %v", got, err)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCloseEndsConnections(t *testing.T) {
	t.Parallel()
	s, _ := world(t)
	p, url := newEnv(t, s, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ws, _, err := dialWS(ctx, url+prefix+"/1/nb0/8888/ws", "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ws.CloseNow() }()
	_ = p.Close()
	if _, _, err := ws.Read(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("open after Close: %v", err)
	}
	if st, _, _ := get(t, url+prefix+"/1/nb0/8888/", "alice"); st != 503 {
		t.Errorf("after Close: %d, want 503", st)
	}
}

func TestPerUserLimit(t *testing.T) {
	t.Parallel()
	s, _ := world(t)
	s.addExecution(4, "bob", state.StatusRunning)
	s.addService(4, "nb0", state.ServiceRunning, portSpec{8888, true, newBackend(t).addr})
	_, url := newEnv(t, s, func(c *proxy.Config) { c.MaxConnsPerUser = 2 })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var open []*websocket.Conn
	defer func() {
		for _, c := range open {
			_ = c.CloseNow()
		}
	}()
	for range 2 {
		c, _, err := dialWS(ctx, url+prefix+"/1/nb0/8888/ws", "alice")
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
	}
	st, body, h := get(t, url+prefix+"/1/nb0/8888/", "alice")
	if st != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("third connection: %d %s", st, body)
	}
	if st, _, _ := get(t, url+prefix+"/4/nb0/8888/", "bob"); st != 200 {
		t.Fatalf("another user: %d", st)
	}
	_ = open[0].Close(websocket.StatusNormalClosure, "")
	open = open[1:]
	// The place is given back once the proxy sees the close: wait for it
	// rather than for a time.
	for {
		st, _, _ := get(t, url+prefix+"/1/nb0/8888/", "alice")
		if st == 200 {
			break
		}
		if st != 429 || ctx.Err() != nil {
			t.Fatalf("after a close: %d", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLargeDownload: 256 MiB pass through while the process allocates a
// small part of that: the proxy streams, it does not hold the body.
func TestLargeDownload(t *testing.T) {
	s, _ := world(t)
	_, url := newEnv(t, s, nil)
	const size = 256 << 20
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s%s/1/nb0/8888/big?size=%d", url, prefix, size), nil)
	req.AddCookie(&http.Cookie{Name: "zoe_session", Value: "alice"})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.CopyBuffer(io.Discard, res.Body, make([]byte, 64<<10))
	_ = res.Body.Close()
	runtime.ReadMemStats(&after)
	if err != nil || n != size || res.StatusCode != 200 {
		t.Fatalf("read %d of %d bytes, status %d: %v", n, size, res.StatusCode, err)
	}
	// Everything the test's process allocated during the download: the
	// client, the proxy and the service together.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("%d MiB allocated to move %d MiB: the body is buffered", alloc>>20, size>>20)
	} else {
		t.Logf("%d KiB allocated to move %d MiB", alloc>>10, size>>20)
	}
}

// TestUpload: a request body streams to the service.
func TestUpload(t *testing.T) {
	s, _ := world(t)
	_, url := newEnv(t, s, nil)
	const size = 64 << 20
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	req, _ := http.NewRequest(http.MethodPost, url+prefix+"/1/nb0/8888/upload", io.LimitReader(zeros{}, size))
	req.AddCookie(&http.Cookie{Name: "zoe_session", Value: "alice"})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	runtime.ReadMemStats(&after)
	if res.StatusCode != 200 || string(body) != fmt.Sprint(size) {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("%d MiB allocated to send %d MiB: the body is buffered", alloc>>20, size>>20)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestStalledClient: a client that stops reading an answer is dropped
// after IdleTimeout, and the service's connection with it; one that reads
// is not, however long it lasts (TestLargeDownload, TestEventStream).
func TestStalledClient(t *testing.T) {
	t.Parallel()
	s, b := world(t)
	p, url := newEnv(t, s, func(c *proxy.Config) { c.IdleTimeout = 200 * time.Millisecond })
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+prefix+"/1/nb0/8888/endless", nil)
	req.AddCookie(&http.Cookie{Name: "zoe_session", Value: "alice"})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	// Not reading: the socket buffers fill, the proxy's write stalls and
	// its deadline passes.
	select {
	case <-b.gone:
	case <-ctx.Done():
		t.Fatal("the service is still writing to a client that stopped reading")
	}
	for p.Stats().Open != 0 {
		if ctx.Err() != nil {
			t.Fatalf("%d connections still counted", p.Stats().Open)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEventStream: each event arrives before the service writes the next.
func TestEventStream(t *testing.T) {
	t.Parallel()
	s, b := world(t)
	_, url := newEnv(t, s, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+prefix+"/1/nb0/8888/sse", nil)
	req.AddCookie(&http.Cookie{Name: "zoe_session", Value: "alice"})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	sc := bufio.NewScanner(res.Body)
	for i := range 3 {
		// The service writes event i only after event i-1 got here: a
		// proxy that held events back would leave this read waiting
		// (until the test's context ends it, and it fails).
		for sc.Scan() && sc.Text() == "" {
		}
		if want := fmt.Sprintf("data: event %d", i); sc.Text() != want {
			t.Fatalf("got %q (%v), want %q", sc.Text(), sc.Err(), want)
		}
		if i < 2 {
			b.next <- struct{}{}
		}
	}
}

// TestOtherTargetsUnreachable: whatever the request says, it goes to the
// recorded endpoint of the service its path names, or nowhere.
func TestOtherTargetsUnreachable(t *testing.T) {
	t.Parallel()
	s, _ := world(t)
	_, url := newEnv(t, s, nil)
	// secret is another service on this machine: nobody may reach it
	// through the proxy.
	var hits atomic.Int64
	secret := strings.TrimPrefix(serve(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "secret")
	})}), "http://")
	proxyAddr := strings.TrimPrefix(url, "http://")
	raw := func(t *testing.T, reqLine string, hdr ...string) (int, string) {
		c, err := net.Dial("tcp", proxyAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		msg := reqLine + "\r\nCookie: zoe_session=alice\r\nConnection: close\r\n"
		if len(hdr) == 0 {
			msg += "Host: " + proxyAddr + "\r\n"
		}
		for _, h := range hdr {
			msg += h + "\r\n"
		}
		if _, err := io.WriteString(c, msg+"\r\n"); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = res.Body.Close() }()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	cases := []struct {
		name, line string
		hdr        []string
		status     int
	}{
		{"Host header", "GET " + prefix + "/1/nb0/8888/ HTTP/1.1", []string{"Host: " + secret}, 200},
		{"absolute-form URI", "GET http://" + secret + prefix + "/1/nb0/8888/ HTTP/1.1", nil, 200},
		{"absolute-form with credentials", "GET http://u:p@" + secret + prefix + "/1/nb0/8888/ HTTP/1.1", nil, 200},
		{"X-Forwarded-Host", "GET " + prefix + "/1/nb0/8888/ HTTP/1.1", []string{"Host: " + proxyAddr, "X-Forwarded-Host: " + secret,
			"Forwarded: host=" + secret, "X-Original-URL: http://" + secret + "/"}, 200},
		{"dot dot", "GET " + prefix + "/1/nb0/8888/../../../../x HTTP/1.1", nil, 400},
		{"encoded dot dot", "GET " + prefix + "/1/nb0/8888/%2E%2E/%2e%2e/x HTTP/1.1", nil, 400},
		{"bad escape", "GET " + prefix + "/1/nb0/8888/%zz HTTP/1.1", nil, 400},
		{"encoded slash", "GET " + prefix + "/1%2Fnb0/8888/x HTTP/1.1", nil, 400},
		{"port in the path is the service's port, not a host port", "GET " + prefix + "/1/nb0/" +
			secret[strings.LastIndex(secret, ":")+1:] + "/ HTTP/1.1", nil, 404},
		{"CONNECT", "CONNECT " + secret + " HTTP/1.1", []string{"Host: " + secret}, 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body := raw(t, c.line, c.hdr...)
			if st != c.status {
				t.Fatalf("%s: %d %q, want %d", c.line, st, body, c.status)
			}
			if st == 200 && !strings.Contains(body, `"Path":"/zoe/proxy/1/nb0/8888/"`) {
				t.Errorf("not the service's answer: %s", body)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the other service was reached %d times", n)
	}
}

// TestForwardedRequest: what the service receives and what the client
// gets back.
func TestForwardedRequest(t *testing.T) {
	t.Parallel()
	s, _ := world(t)
	_, url := newEnv(t, s, nil)
	decode := func(t *testing.T, body string) echoed {
		var e echoed
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return e
	}
	t.Run("cookies, prefix and forwarded headers", func(t *testing.T) {
		st, body, h := get(t, url+prefix+"/1/nb0/8888/api/a%2Fb?x=1", "",
			"Cookie", "zoe_session=alice; app=1; zoe_csrf=tok",
			"Cookie", "other=2",
			"Authorization", "Basic YXBwOmFwcA==", // the app's own, not Zoe's: kept
			"X-Forwarded-Prefix", "/evil", "X-Real-IP", "10.9.9.9", "X-Forwarded-For", "10.8.8.8")
		if st != 200 {
			t.Fatalf("%d %s", st, body)
		}
		e := decode(t, body)
		if got := e.Header.Values("Cookie"); len(got) != 1 || got[0] != "app=1; other=2" {
			t.Errorf("cookies forwarded: %q, want the app's only", got)
		}
		if got := e.Header.Get("Authorization"); got != "Basic YXBwOmFwcA==" {
			t.Errorf("Authorization %q: the app's own credentials should pass", got)
		}
		if got := e.Header.Get("X-Forwarded-Prefix"); got != "/zoe/proxy/1/nb0/8888" {
			t.Errorf("X-Forwarded-Prefix %q", got)
		}
		if got := e.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("X-Forwarded-For %q, want the client's address only", got)
		}
		if got := e.Header.Get("X-Real-Ip"); got != "" {
			t.Errorf("X-Real-IP %q passed", got)
		}
		if e.Header.Get("X-Forwarded-Proto") != "http" || e.Header.Get("X-Forwarded-Host") != strings.TrimPrefix(url, "http://") ||
			e.Host != strings.TrimPrefix(url, "http://") {
			t.Errorf("proto %q, forwarded host %q, host %q", e.Header.Get("X-Forwarded-Proto"), e.Header.Get("X-Forwarded-Host"), e.Host)
		}
		if e.Path != "/zoe/proxy/1/nb0/8888/api/a/b" || e.RawPath != "/zoe/proxy/1/nb0/8888/api/a%2Fb" || e.Query != "x=1" {
			t.Errorf("path %q raw %q query %q: the full path goes through as sent", e.Path, e.RawPath, e.Query)
		}
		// The service's answer: it may not set Zoe's cookie or widen a
		// service worker; its own cookie passes; the owner is not
		// sandboxed.
		for _, c := range h.Values("Set-Cookie") {
			if strings.HasPrefix(c, "zoe_session=") {
				t.Errorf("the service set Zoe's cookie: %q", c)
			}
		}
		if sc := h.Values("Set-Cookie"); len(sc) != 1 || !strings.HasPrefix(sc[0], "app=kept") {
			t.Errorf("Set-Cookie %q, want the app's", sc)
		}
		if h.Get("Service-Worker-Allowed") != "" || strings.Contains(strings.Join(h.Values("Content-Security-Policy"), ","), "sandbox") {
			t.Errorf("Service-Worker-Allowed %q, CSP %q", h.Get("Service-Worker-Allowed"), h.Get("Content-Security-Policy"))
		}
	})
	t.Run("behind a trusted proxy", func(t *testing.T) {
		_, url := newEnv(t, s, func(c *proxy.Config) {
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		})
		st, body, _ := get(t, url+prefix+"/1/nb0/8888/", "alice", "X-Forwarded-For", "192.0.2.7",
			"X-Forwarded-Proto", "https", "X-Forwarded-Host", "zoe.example.org")
		if st != 200 {
			t.Fatalf("%d %s", st, body)
		}
		e := decode(t, body)
		if e.Header.Get("X-Forwarded-For") != "192.0.2.7, 127.0.0.1" || e.Header.Get("X-Forwarded-Proto") != "https" ||
			e.Header.Get("X-Forwarded-Host") != "zoe.example.org" {
			t.Errorf("forwarded for %q proto %q host %q", e.Header.Get("X-Forwarded-For"), e.Header.Get("X-Forwarded-Proto"),
				e.Header.Get("X-Forwarded-Host"))
		}
	})
	t.Run("Zoe's bearer token", func(t *testing.T) {
		st, body, _ := get(t, url+prefix+"/1/nb0/8888/", "", "Authorization", "Bearer zoe_alice")
		if st != 200 {
			t.Fatalf("%d %s", st, body)
		}
		if got := decode(t, body).Header.Get("Authorization"); got != "" {
			t.Errorf("Zoe's token forwarded: %q", got)
		}
	})
	t.Run("a Zoe token not used to log in", func(t *testing.T) {
		st, body, _ := get(t, url+prefix+"/1/nb0/8888/", "alice", "Authorization", "bearer zoe_someoneelse")
		if st != 200 {
			t.Fatalf("%d %s", st, body)
		}
		if got := decode(t, body).Header.Get("Authorization"); got != "" {
			t.Errorf("Zoe's token forwarded: %q", got)
		}
	})
	t.Run("admin on another's service is sandboxed", func(t *testing.T) {
		_, _, h := get(t, url+prefix+"/1/nb0/8888/", "admin")
		if csp := h.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox ") || strings.Contains(csp, "allow-same-origin") {
			t.Errorf("CSP %q", csp)
		}
	})
}

// TestProxyToken: a service Zoe gave a proxy token receives exactly
// "Authorization: token <it>" with every request and WebSocket handshake
// that passes the proxy, whatever Authorization the client sent (Zoe's
// token, the app's own, a guess of the token); a service without one gets
// no such header, and its app's own credentials as before.
func TestProxyToken(t *testing.T) {
	t.Parallel()
	s, b := world(t) // execution 1's nb0 has no token
	const tok = "T0KENT0KENT0KENT0KENT0KEN2"
	s.addExecution(5, "alice", state.StatusRunning)
	s.addService(5, "tok0", state.ServiceRunning, portSpec{8888, true, b.addr})
	s.setToken(5, "tok0", tok)
	_, url := newEnv(t, s, nil)
	cases := []struct {
		name, path, user string
		hdr              []string // the client's headers
		want             string   // the Authorization the service gets; "" for none
	}{
		{"owner", "/5/tok0/8888/", "alice", nil, "token " + tok},
		{"admin", "/5/tok0/8888/", "admin", nil, "token " + tok},
		{"Zoe's bearer token", "/5/tok0/8888/", "", []string{"Authorization", "Bearer zoe_alice"}, "token " + tok},
		{"the app's own credentials", "/5/tok0/8888/", "alice", []string{"Authorization", "Basic YXBwOmFwcA=="}, "token " + tok},
		{"a guessed token", "/5/tok0/8888/", "alice", []string{"Authorization", "token guess"}, "token " + tok},
		{"two Authorization headers", "/5/tok0/8888/", "alice",
			[]string{"Authorization", "token guess", "Authorization", "token " + tok}, "token " + tok},
		{"no token, nothing sent", "/1/nb0/8888/", "alice", nil, ""},
		{"no token, Zoe's bearer token", "/1/nb0/8888/", "", []string{"Authorization", "Bearer zoe_alice"}, ""},
		{"no token, the app's own credentials", "/1/nb0/8888/", "alice",
			[]string{"Authorization", "Basic YXBwOmFwcA=="}, "Basic YXBwOmFwcA=="},
	}
	for _, c := range cases {
		t.Run("HTTP/"+c.name, func(t *testing.T) {
			st, body, _ := get(t, url+prefix+c.path+"echo", c.user, c.hdr...)
			if st != 200 {
				t.Fatalf("%d %s", st, body)
			}
			var e echoed
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if got := e.Header.Values("Authorization"); strings.Join(got, "\n") != c.want {
				t.Errorf("the service got Authorization %q, want %q", got, c.want)
			}
		})
		t.Run("WebSocket/"+c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			ws, _, err := dialWS(ctx, url+prefix+c.path+"wsauth", c.user, c.hdr...)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = ws.CloseNow() }()
			_, got, err := ws.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("the service's handshake had Authorization %q, want %q", got, c.want)
			}
		})
	}
	// The token goes to the service only, never back to the client, and
	// never to a caller the proxy refuses.
	for _, user := range []string{"alice", "bob", ""} {
		_, body, h := get(t, url+prefix+"/5/tok0/8888/nothere", user)
		if user != "alice" && strings.Contains(body, tok) {
			t.Errorf("%q: the token in the answer: %s", user, body)
		}
		for k, vs := range h {
			if strings.Contains(strings.Join(vs, " "), tok) {
				t.Errorf("%q: the token in the answer's %s header", user, k)
			}
		}
	}
}

// TestBadGateway: a service that does not answer gets a 502 page that
// says nothing of the internals.
func TestBadGateway(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	s := newFakeStore()
	s.addExecution(1, "alice", state.StatusRunning)
	s.addService(1, "nb0", state.ServiceRunning, portSpec{8888, true, dead})
	s.addService(1, "nopub0", state.ServiceRunning, portSpec{8888, true, ""})
	_, url := newEnv(t, s, nil)
	st, body, _ := get(t, url+prefix+"/1/nb0/8888/", "alice")
	if st != 502 || strings.Contains(body, "127.0.0.1") || strings.Contains(body, "refused") {
		t.Errorf("%d %q", st, body)
	}
	if st, body, _ := get(t, url+prefix+"/1/nopub0/8888/", "alice"); st != 502 {
		t.Errorf("unpublished port: %d %q", st, body)
	}
	// A service not listening yet: a browser's GET is asked to try again
	// by itself; a POST (a form) is not sent twice.
	for _, c := range []struct {
		method string
		want   string // the page's refresh, "" for none
	}{{"GET", `<meta http-equiv="refresh" content="3">`}, {"POST", ""}} {
		req, err := http.NewRequest(c.method, url+prefix+"/1/nb0/8888/tree", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/html")
		req.AddCookie(&http.Cookie{Name: "zoe_session", Value: "alice"})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		refresh := strings.Contains(string(b), `http-equiv="refresh"`)
		if resp.StatusCode != 502 || refresh != (c.want != "") || (c.want != "" && !strings.Contains(string(b), c.want)) ||
			(c.want != "") != (resp.Header.Get("Retry-After") == "3") {
			t.Errorf("%s of a service not listening: %d, Retry-After %q:\n%s", c.method, resp.StatusCode, resp.Header.Get("Retry-After"), b)
		}
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	s := newFakeStore()
	for _, c := range []struct {
		cfg  proxy.Config
		want string
	}{
		{proxy.Config{Prefix: "zoe/proxy", Store: s, Caller: caller}, "must start with /"},
		{proxy.Config{Prefix: "/zoe/proxy/", Store: s, Caller: caller}, "must start with /"},
		{proxy.Config{Prefix: "/zoe/../proxy", Store: s, Caller: caller}, ". or .."},
		{proxy.Config{Prefix: "/zoe proxy", Store: s, Caller: caller}, "not allowed"},
		{proxy.Config{Prefix: "/proxy", Caller: caller}, "Store"},
		{proxy.Config{Prefix: "/proxy", Store: s, Caller: caller, Scheme: "ftp"}, "scheme"},
	} {
		if _, err := proxy.New(hclog.NewNullLogger(), c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg.Prefix, err, c.want)
		}
	}
}

// TestRealStore runs the proxy on a real SQLite store: the execution, its
// services and endpoints as the engine records them.
func TestRealStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := newBackend(t)
	st, err := state.OpenSQLite(ctx, t.TempDir()+"/zoe.db", hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	for _, u := range []string{"alice", "bob"} {
		if _, err := st.RecordLogin(ctx, auth.Identity{Username: u, Role: auth.RoleUser}); err != nil {
			t.Fatal(err)
		}
	}
	desc := `{"name":"nb0","ports":[{"name":"Notebook","port_number":8888,"protocol":"tcp","proxy":true}],` +
		`"proxy_token":"STORED2TOKEN"}`
	ex, err := st.CreateExecution(ctx, state.NewExecution{Owner: "alice", Name: "nb",
		Services: []state.NewService{{Name: "nb0", Group: "nb", Essential: true, Description: []byte(desc)}}})
	if err != nil {
		t.Fatal(err)
	}
	svs, err := st.Services(ctx, ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(b.addr)
	var portN int
	_, _ = fmt.Sscan(port, &portN)
	if _, err := st.Transition(ctx, ex.ID, []state.Status{state.StatusSubmitted}, state.StatusStarting, state.ExecutionChange{Started: true}); err != nil {
		t.Fatal(err)
	}
	_, url := newEnv(t, st, nil)
	path := fmt.Sprintf("%s%s/%d/nb0/8888/", url, prefix, ex.ID)
	if code, body, _ := get(t, path, "alice"); code != 503 {
		t.Fatalf("created service: %d %s", code, body)
	}
	if _, err := st.PlaceServices(ctx, ex.ID, []state.Placement{{ServiceID: svs[0].ID, Node: "node1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RecordStarted(ctx, svs[0].ID, state.Started{Node: "node1", IP: "10.0.0.2", Endpoints: []state.Endpoint{
		{Name: "Notebook", Port: 8888, Protocol: "tcp", ExternalAddress: host, ExternalPort: portN}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Transition(ctx, ex.ID, []state.Status{state.StatusStarting}, state.StatusRunning, state.ExecutionChange{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user string
		want int
	}{{"alice", 200}, {"alice", 200}, {"bob", 403}} {
		code, body, _ := get(t, path, c.user)
		if code != c.want {
			t.Fatalf("%s: %d %s, want %d", c.user, code, body, c.want)
		}
		// The token stored with the instance reaches the service.
		if code == 200 && !strings.Contains(body, `"Authorization":["token STORED2TOKEN"]`) {
			t.Errorf("%s: the service did not get the stored token: %s", c.user, body)
		}
	}
	if _, err := st.Transition(ctx, ex.ID, []state.Status{state.StatusRunning}, state.StatusCleaningUp, state.ExecutionChange{}); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := get(t, path, "alice"); code != 404 {
		t.Fatalf("cleaning up: %d %s, want 404", code, body)
	}
}
