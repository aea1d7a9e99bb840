package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zoe-project/zoe/core/httplimit"
	"github.com/zoe-project/zoe/core/proxy"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
)

const prefix = "/zoe/proxy"

// fakeStore is a Store kept in memory. The proxy's tests use it rather than
// core/state because what they check is the proxy's behaviour for each
// state, which is easier to set directly; TestRealStore runs the proxy on a
// real SQLite store too. Every change bumps the version, as a commit does.
type fakeStore struct {
	mu      sync.Mutex
	version uint64
	execs   map[int64]state.Execution
	svcs    map[int64][]state.Service
	eps     map[int64][]state.Endpoint
	reads   int // GetExecution calls
}

func newFakeStore() *fakeStore {
	return &fakeStore{execs: map[int64]state.Execution{}, svcs: map[int64][]state.Service{}, eps: map[int64][]state.Endpoint{}}
}

func (f *fakeStore) GetExecution(_ context.Context, id int64) (state.Execution, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	e, ok := f.execs[id]
	if !ok {
		return state.Execution{}, fmt.Errorf("execution %d: %w", id, sdk.ErrNotFound)
	}
	return e, nil
}

func (f *fakeStore) Services(_ context.Context, id int64) ([]state.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]state.Service(nil), f.svcs[id]...), nil
}

func (f *fakeStore) Endpoints(_ context.Context, id int64) ([]state.Endpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]state.Endpoint(nil), f.eps[id]...), nil
}

func (f *fakeStore) Version(context.Context) (uint64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.version, true
}

func (f *fakeStore) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// portSpec is a port of a fake service: its number, whether the ZApp
// proxies it, and where it is published ("" for nowhere).
type portSpec struct {
	num   int
	proxy bool
	addr  string
}

func (f *fakeStore) addExecution(id int64, owner string, st state.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	f.execs[id] = state.Execution{ID: id, Owner: owner, Status: st}
}

func (f *fakeStore) setStatus(id int64, st state.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	e := f.execs[id]
	e.Status = st
	f.execs[id] = e
}

func (f *fakeStore) setServiceStatus(exec int64, name string, st state.ServiceStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	for i := range f.svcs[exec] {
		if f.svcs[exec][i].Name == name {
			f.svcs[exec][i].Status = st
		}
	}
}

func (f *fakeStore) addService(exec int64, name string, st state.ServiceStatus, ports ...portSpec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	id := int64(len(f.svcs[exec])+1) + exec*100
	type p struct {
		Name       string `json:"name"`
		PortNumber int    `json:"port_number"`
		Protocol   string `json:"protocol"`
		Proxy      bool   `json:"proxy"`
	}
	var ps []p
	for _, pt := range ports {
		ps = append(ps, p{"web", pt.num, "tcp", pt.proxy})
		if pt.addr != "" {
			host, portStr, _ := net.SplitHostPort(pt.addr)
			n, _ := strconv.Atoi(portStr)
			f.eps[exec] = append(f.eps[exec], state.Endpoint{ServiceID: id, ServiceName: name, Name: "web " + strconv.Itoa(pt.num),
				Port: pt.num, Protocol: "tcp", ExternalAddress: host, ExternalPort: n})
		}
	}
	desc, _ := json.Marshal(map[string]any{"name": name, "ports": ps})
	f.svcs[exec] = append(f.svcs[exec], state.Service{ID: id, ExecutionID: exec, Name: name, Status: st, Description: desc})
}

// setToken gives a service the proxy token Zoe stores with its instance
// (zapp.Instance.ProxyToken, the container's ZOE_PROXY_TOKEN).
func (f *fakeStore) setToken(exec int64, name, token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	for i := range f.svcs[exec] {
		sv := &f.svcs[exec][i]
		if sv.Name != name {
			continue
		}
		var desc map[string]any
		if err := json.Unmarshal(sv.Description, &desc); err != nil {
			panic(err)
		}
		desc["proxy_token"] = token
		sv.Description, _ = json.Marshal(desc)
	}
}

// caller identifies users as the daemon would: the zoe_session cookie or
// a bearer token zoe_<user>; "admin" is an admin.
func caller(r *http.Request) (proxy.Caller, error) {
	if c, err := r.Cookie("zoe_session"); err == nil {
		switch c.Value {
		case "broken":
			return proxy.Caller{}, fmt.Errorf("the session store is down")
		case "disabled":
			return proxy.Caller{}, fmt.Errorf("user disabled: %w", proxy.ErrForbidden)
		}
		return proxy.Caller{Username: c.Value, Admin: c.Value == "admin"}, nil
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer zoe_"); ok {
		return proxy.Caller{Username: tok, Admin: tok == "admin", Authorization: true}, nil
	}
	return proxy.Caller{}, proxy.ErrUnauthenticated
}

// newEnv runs a proxy in a real http.Server (with the daemon's limits) on
// 127.0.0.1 and returns it and its URL.
func newEnv(t testing.TB, store proxy.Store, tweak func(*proxy.Config)) (*proxy.Proxy, string) {
	cfg := proxy.Config{Prefix: prefix, Store: store, Caller: caller, LoginURL: "/zoe/login",
		Cookies: []string{"zoe_session", "zoe_csrf"}}
	if tweak != nil {
		tweak(&cfg)
	}
	p, err := proxy.New(testutil.Logger(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	// The proxy is the whole server, without a ServeMux, whose own
	// cleaning of paths would hide the proxy's checks.
	return p, serve(t, httplimit.Server(p, httplimit.Limits{}, nil))
}

// serve runs srv on a new 127.0.0.1 port until the test ends.
func serve(t testing.TB, srv *http.Server) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// backend is a service: it answers /echo with what it received, /ws as a
// WebSocket echo, /big with size bytes, and /sse with events.
type backend struct {
	addr string // host:port
	// sse: the handler writes event i+1 only once the test received event
	// i (sent on next).
	next chan struct{}
	gone chan struct{}
}

type echoed struct {
	Method, Path, RawPath, Query, Host string
	Header                             http.Header
}

func newBackend(t testing.TB) *backend {
	b := &backend{next: make(chan struct{}), gone: make(chan struct{}, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "zoe_session", Value: "planted", Path: "/"})
		http.SetCookie(w, &http.Cookie{Name: "app", Value: "kept", Path: "/"})
		w.Header().Set("Service-Worker-Allowed", "/")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{r.Method, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Host, r.Header})
	})
	mux.HandleFunc("/zoe/proxy/{exec}/{svc}/{port}/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer func() { _ = c.CloseNow() }()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
	// wsauth accepts a WebSocket and sends, as its first message, the
	// Authorization headers the handshake reached it with, one per line.
	mux.HandleFunc("/zoe/proxy/{exec}/{svc}/{port}/wsauth", func(w http.ResponseWriter, r *http.Request) {
		auth := strings.Join(r.Header.Values("Authorization"), "\n")
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer func() { _ = c.CloseNow() }()
		if err := c.Write(r.Context(), websocket.MessageText, []byte(auth)); err != nil {
			return
		}
		_ = c.Close(websocket.StatusNormalClosure, "")
	})
	mux.HandleFunc("/zoe/proxy/{exec}/{svc}/{port}/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64)
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		buf := make([]byte, 64<<10)
		for i := range buf {
			buf[i] = byte(i)
		}
		for n > 0 {
			k := min(n, int64(len(buf)))
			if _, err := w.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	mux.HandleFunc("/zoe/proxy/{exec}/{svc}/{port}/sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := range 3 {
			if i > 0 {
				select {
				case <-b.next:
				case <-r.Context().Done():
					return
				}
			}
			_, _ = fmt.Fprintf(w, "data: event %d\n\n", i)
			_ = rc.Flush()
		}
	})
	mux.HandleFunc("/zoe/proxy/{exec}/{svc}/{port}/upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_, _ = fmt.Fprint(w, n)
	})
	// endless writes until the client is gone, then says so on gone.
	mux.HandleFunc("/zoe/proxy/{exec}/{svc}/{port}/endless", func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				b.gone <- struct{}{}
				return
			}
		}
	})
	url := serve(t, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second})
	b.addr = strings.TrimPrefix(url, "http://")
	return b
}

// get sends a request with the given cookie user ("" for none) and
// headers, and returns the status, body and header.
func get(t testing.TB, url, user string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.AddCookie(&http.Cookie{Name: "zoe_session", Value: user})
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body), res.Header
}

// dialWS opens a WebSocket through the proxy as user (the session cookie,
// or none when user is ""), with the given headers too.
func dialWS(ctx context.Context, url, user string, hdr ...string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if user != "" {
		h.Add("Cookie", "zoe_session="+user)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Add(hdr[i], hdr[i+1])
	}
	return websocket.Dial(ctx, strings.Replace(url, "http://", "ws://", 1), &websocket.DialOptions{HTTPHeader: h})
}

// alicesNotebook serves h as port 8888 (proxied) of service nb0 of alice's
// running execution exec, and returns the proxy's URL.
func alicesNotebook(t testing.TB, exec int64, h http.Handler) string {
	t.Helper()
	addr := strings.TrimPrefix(serve(t, &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}), "http://")
	s := newFakeStore()
	s.addExecution(exec, "alice", state.StatusRunning)
	s.addService(exec, "nb0", state.ServiceRunning, portSpec{8888, true, addr})
	_, url := newEnv(t, s, nil)
	return url
}
