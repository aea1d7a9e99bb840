package httplimit

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoe-project/zoe/internal/testutil"
)

// serve runs Server(h, l) on a Listener and returns its address.
func serve(t *testing.T, h http.Handler, l Limits) (string, *Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := Listen(ln, l)
	srv := Server(h, l, nil)
	go func() { _ = srv.Serve(lim) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), lim
}

// dialFrom connects to addr from the loopback address local (127.0.0.x).
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedSoon tells whether the server closes c within a second, without
// having sent anything.
func closedSoon(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func get(t *testing.T, local, addr string) int {
	t.Helper()
	c := dialFrom(t, local, addr)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET from %s: %v", local, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.WriteHeader(http.StatusNoContent)
})

func TestListenerBounds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Limits{MaxConns: 5, MaxConnsPerAddress: 3}
	lim := Listen(ln, l)
	var reports []string
	var mu sync.Mutex
	lim.OnRefuse = func(addr string, n uint64) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, fmt.Sprint(addr, " ", n))
	}
	srv := Server(ok, l, nil)
	go func() { _ = srv.Serve(lim) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()
	var held []net.Conn
	for range 3 {
		held = append(held, dialFrom(t, "127.0.0.2", addr))
	}
	testutil.WaitFor(t, 5*time.Second, "3 connections open", func() (bool, string) {
		s := lim.Stats()
		return s.Open == 3, fmt.Sprint(s)
	})
	// The fourth from the same address is closed at once; another address
	// is served.
	if c := dialFrom(t, "127.0.0.2", addr); !closedSoon(c) {
		t.Error("a 4th connection from one address was kept")
	}
	if st := get(t, "127.0.0.3", addr); st != http.StatusNoContent {
		t.Errorf("another address: %d", st)
	}
	testutil.WaitFor(t, 5*time.Second, "its connection closed", func() (bool, string) {
		s := lim.Stats()
		return s.Open == 3, fmt.Sprint(s)
	})
	// 3 + 2 from a third address fill the server: the next is refused.
	held = append(held, dialFrom(t, "127.0.0.4", addr), dialFrom(t, "127.0.0.4", addr))
	testutil.WaitFor(t, 5*time.Second, "5 connections open", func() (bool, string) {
		s := lim.Stats()
		return s.Open == 5, fmt.Sprint(s)
	})
	if c := dialFrom(t, "127.0.0.5", addr); !closedSoon(c) {
		t.Error("a connection over the total was kept")
	}
	// A closed connection frees its place.
	held[0].Close()
	testutil.WaitFor(t, 5*time.Second, "a place freed", func() (bool, string) {
		s := lim.Stats()
		return s.Open == 4, fmt.Sprint(s)
	})
	if st := get(t, "127.0.0.2", addr); st != http.StatusNoContent {
		t.Errorf("after a close: %d", st)
	}
	if s := lim.Stats(); s.Refused != 2 {
		t.Errorf("refused: %+v", s)
	}
	// The second refusal came within ReportEvery of the first: one report.
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(reports, []string{"127.0.0.2 1"}) {
		t.Errorf("reports: %q", reports)
	}
}

func TestDeadlines(t *testing.T) {
	l := Limits{ReadHeaderTimeout: 300 * time.Millisecond, BodyTimeout: 300 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond, IdleTimeout: 300 * time.Millisecond, MaxHeaderBytes: 4 << 10}
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		before := Stream(w, r)
		rc := http.NewResponseController(w)
		// Three times the write timeout, writing every 200 ms.
		for i := range 8 {
			before()
			if _, err := fmt.Fprintf(w, "%d\n", i); err != nil || rc.Flush() != nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/", ok)
	mux.Handle("/stream", stream)
	addr, _ := serve(t, mux, l)

	for _, tc := range []struct {
		name, send string
		// closed: the server closes the connection without an answer;
		// else the status line starts with want.
		want string
	}{
		{"header never ends", "GET / HTTP/1.1\r\nHost: x\r\n", ""},
		{"body never ends", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nx", ""},
		{"nothing sent", "", ""},
		{"header too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n", "HTTP/1.1 431"},
		{"idle after a request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 204"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom(t, "127.0.0.1", addr)
			if tc.send != "" {
				fmt.Fprint(c, tc.send)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(c)
			if err != nil && isTimeout(err) {
				t.Fatalf("still open after 5 s; read %q", got)
			}
			if !strings.HasPrefix(string(got), tc.want) {
				t.Errorf("got %q, want %q...", got, tc.want)
			}
		})
	}

	t.Run("a stream outlives the write timeout", func(t *testing.T) {
		resp, err := http.Get("http://" + addr + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || strings.Count(string(body), "\n") != 8 {
			t.Errorf("stream: %q %v", body, err)
		}
	})
	t.Run("a body sent in time is answered", func(t *testing.T) {
		resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000":            "127.0.0.1",
		"[::ffff:10.0.0.1]:80":      "10.0.0.1",
		"[2001:db8:1:2:3:4:5:6]:80": "2001:db8:1:2::/64",
		"[2001:db8:1:2::9]:443":     "2001:db8:1:2::/64",
		"pipe":                      "pipe",
	} {
		if got := HostKey(in); got != want {
			t.Errorf("HostKey(%q) = %q, want %q", in, got, want)
		}
	}
	if got := AddressKey(&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}); got != "192.0.2.7" {
		t.Errorf("AddressKey: %q", got)
	}
}

// TestHTTP2Streams: over TLS with HTTP/2, a connection carries at most
// MaxStreamsPerConn requests at once: the client must open more
// connections (which the Listener counts) for more.
func TestHTTP2Streams(t *testing.T) {
	const n = 20
	var (
		mu      sync.Mutex
		conns   = map[string]bool{}
		entered int
	)
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		entered++
		mu.Unlock()
		if r.ProtoMajor != 2 {
			t.Errorf("protocol %s", r.Proto)
		}
		<-release
	})
	ts := httptest.NewUnstartedServer(h)
	ts.Config = Server(h, Limits{}, log.New(io.Discard, "", 0))
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	c := ts.Client()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := c.Get(ts.URL)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	testutil.WaitFor(t, 10*time.Second, "every request in its handler", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return entered == n, fmt.Sprintf("%d entered", entered)
	})
	mu.Lock()
	used := len(conns)
	mu.Unlock()
	close(release)
	wg.Wait()
	if want := (n + Defaults().MaxStreamsPerConn - 1) / Defaults().MaxStreamsPerConn; used < want {
		t.Errorf("%d requests at once on %d connections, want at least %d", n, used, want)
	}
}
