package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseAddr(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{in: "127.0.0.1:5001", want: "http://127.0.0.1:5001"},
		{in: "http://zoe.example/", want: "http://zoe.example"},
		{in: " https://zoe.example/prefix/ ", want: "https://zoe.example/prefix"},
		{in: "", err: "no server address"},
		{in: "ftp://x", err: "scheme must be http or https"},
		{in: "http://", err: "no host"},
		{in: "http://u:p@host", err: "want scheme://host"},
		{in: "http://host/?q=1", err: "want scheme://host"},
	}
	for _, c := range cases {
		u, err := ParseAddr(c.in)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseAddr(%q): %v, want an error with %q", c.in, err, c.err)
			}
		case err != nil:
			t.Errorf("ParseAddr(%q): %v", c.in, err)
		case u.String() != c.want:
			t.Errorf("ParseAddr(%q) = %s, want %s", c.in, u, c.want)
		}
	}
}

// recorder is a test server that records the last request and answers
// with a fixed status and body.
type recorder struct {
	mu     sync.Mutex
	req    *http.Request
	status int
	ctype  string
	body   string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.req = req.Clone(context.Background())
	status, ctype, body := r.status, r.ctype, r.body
	r.mu.Unlock()
	if ctype == "" {
		ctype = "application/json"
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (r *recorder) last() *http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.req
}

func newRecorder(t *testing.T, status int, body string) (*recorder, string) {
	t.Helper()
	r := &recorder{status: status, body: body}
	s := httptest.NewServer(r)
	t.Cleanup(s.Close)
	return r, s.URL
}

func TestCredentialsAndPaths(t *testing.T) {
	rec, addr := newRecorder(t, 200, `{"username":"alice","role":"admin","enabled":true,"quota":"admin"}`)
	ctx := t.Context()

	c, err := New(addr+"/prefix/", WithToken("tok"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.Me(ctx)
	if err != nil || u.Username != "alice" {
		t.Fatalf("Me: %+v %v", u, err)
	}
	r := rec.last()
	if r.URL.Path != "/prefix/api/v1/me" || r.Header.Get("Authorization") != "Bearer tok" {
		t.Errorf("request %s with Authorization %q", r.URL.Path, r.Header.Get("Authorization"))
	}

	c, _ = New(addr, WithBasicAuth("bob", "pw"))
	if _, err := c.GetUser(ctx, "a/b c"); err != nil {
		t.Fatal(err)
	}
	r = rec.last()
	if user, pw, ok := r.BasicAuth(); !ok || user != "bob" || pw != "pw" {
		t.Errorf("Basic credentials %q %q %v", user, pw, ok)
	}
	if r.URL.EscapedPath() != "/api/v1/users/a%2Fb%20c" {
		t.Errorf("path %s, want the name escaped as one segment", r.URL.EscapedPath())
	}

	c, _ = New(addr)
	if c.HasCredentials() {
		t.Error("a client without options has credentials")
	}
	if _, err := c.ListExecutions(ctx, ExecutionFilter{Status: []string{"running", "queued"}, Owner: "bob", Limit: 5, Cursor: "x"}); err != nil {
		t.Fatal(err)
	}
	r = rec.last()
	if r.Header.Get("Authorization") != "" {
		t.Errorf("anonymous call with Authorization %q", r.Header.Get("Authorization"))
	}
	if got := r.URL.Query().Encode(); got != "cursor=x&limit=5&owner=bob&status=running%2Cqueued" {
		t.Errorf("query %s", got)
	}
	// Bodies go as JSON, as the API requires (415 otherwise).
	for _, call := range []func() error{
		func() error { _, err := c.Login(ctx, Login{Username: "a", Password: "b"}); return err },
		func() error { _, err := c.CreateQuota(ctx, Quota{Name: "q"}); return err },
		func() error { _, err := c.UpdateUser(ctx, "a", UserUpdate{}); return err },
		func() error { _, err := c.StartExecution(ctx, StartExecution{Name: "x"}); return err },
	} {
		_ = call()
		if r := rec.last(); r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s with Content-Type %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
	}
}

func TestAPIErrors(t *testing.T) {
	cases := []struct {
		name   string
		status int
		ctype  string
		body   string
		want   string
		code   string
	}{
		{
			name: "error document", status: 400,
			body: `{"error":{"code":"invalid_argument","message":"invalid ZApp","details":[{"path":"services[0].image","message":"required"},{"message":"second\nline"}]}}`,
			want: "invalid ZApp: services[0].image: required; second; line", code: CodeInvalidArgument,
		},
		{
			// The only detail, already said by the message, is not said
			// twice.
			name: "repeated detail", status: 400,
			body: `{"error":{"code":"invalid_argument","message":"parameter \"X\": must be an integer","details":[{"path":"shop.parameters.X","message":"must be an integer"}]}}`,
			want: `parameter "X": must be an integer`, code: CodeInvalidArgument,
		},
		{
			name: "repeated path and detail", status: 400,
			body: `{"error":{"code":"invalid_argument","message":"tail: must be a non-negative integer","details":[{"path":"tail","message":"must be a non-negative integer"}]}}`,
			want: "tail: must be a non-negative integer", code: CodeInvalidArgument,
		},
		{
			// A detail whose text the message holds, but about another
			// field, is kept.
			name: "same text, other path", status: 400,
			body: `{"error":{"code":"invalid_argument","message":"cores: required","details":[{"path":"memory","message":"required"}]}}`,
			want: "cores: required: memory: required", code: CodeInvalidArgument,
		},
		{
			name: "no details", status: 403,
			body: `{"error":{"code":"permission_denied","message":"admins only"}}`,
			want: "admins only", code: CodePermissionDenied,
		},
		{
			name: "plain text", status: 502, ctype: "text/plain",
			body: "upstream down\n", want: "502 Bad Gateway: upstream down", code: CodeUnavailable,
		},
		{
			name: "html", status: 401, ctype: "text/html",
			body: "<html><body>nope</body></html>", want: "401 Unauthorized", code: CodeUnauthenticated,
		},
		{
			name: "empty", status: 418, want: "418 I'm a teapot", code: CodeInternal,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec, addr := newRecorder(t, c.status, c.body)
			rec.ctype = c.ctype
			cl, _ := New(addr)
			_, err := cl.Info(t.Context())
			var e *APIError
			if !errors.As(err, &e) {
				t.Fatalf("Info: %v, want an *APIError", err)
			}
			if e.Status != c.status || e.Body.Code != c.code || err.Error() != c.want {
				t.Errorf("error %d %q %q, want %d %q %q", e.Status, e.Body.Code, err, c.status, c.code, c.want)
			}
			if !IsStatus(err, c.status) || !IsCode(err, c.code) {
				t.Errorf("IsStatus/IsCode do not recognise %v", err)
			}
		})
	}
}

func TestConnectionError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, _ := New(addr)
	_, err = c.Info(t.Context())
	var ce *ConnectionError
	if !errors.As(err, &ce) {
		t.Fatalf("Info on a closed port: %v, want a *ConnectionError", err)
	}
	want := "cannot reach Zoe at http://" + addr + ": "
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Info(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Info with a cancelled context: %v", err)
	}
}

func TestHealthDegraded(t *testing.T) {
	_, addr := newRecorder(t, 503, `{"status":"degraded","plugins":[{"kind":"auth","name":"file","state":"restarting"}]}`)
	c, _ := New(addr)
	h, err := c.Health(t.Context())
	if err != nil || h.Status != "degraded" || len(h.Plugins) != 1 {
		t.Fatalf("Health: %+v %v", h, err)
	}
}

func TestLogs(t *testing.T) {
	rec, addr := newRecorder(t, 200, "line 1\nline 2\n")
	rec.ctype = "text/plain"
	c, _ := New(addr)
	rc, err := c.Logs(t.Context(), 7, LogOptions{Tail: 10, Follow: true, Timestamps: true})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "line 1\nline 2\n" {
		t.Errorf("logs %q", b)
	}
	r := rec.last()
	if r.URL.Path != "/api/v1/services/7/logs" || r.URL.Query().Encode() != "follow=true&tail=10&timestamps=true" {
		t.Errorf("request %s?%s", r.URL.Path, r.URL.RawQuery)
	}
}

// TestEventsReconnect serves two connections that each break after some
// events; the stream resumes with Last-Event-ID and yields each event once.
func TestEventsReconnect(t *testing.T) {
	var (
		mu      sync.Mutex
		lastIDs []string
		conns   int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns++
		n := conns
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		mu.Unlock()
		if r.URL.Path != "/api/v1/events" || r.URL.Query().Get("execution") != "4" {
			http.Error(w, "wrong route", 404)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		switch n {
		case 1:
			fmt.Fprint(w, "retry: 10\n\n: hi\n\n")
			for i := 1; i <= 2; i++ {
				fmt.Fprintf(w, "id: %d\nevent: execution\ndata: {\"id\":%d,\"execution_id\":4,\"to\":\"queued\"}\n\n", i, i)
			}
			// A message cut by the broken connection.
			fmt.Fprint(w, "id: 3\ndata: {\"id\":3,")
		case 2:
			fmt.Fprint(w, "id: 3\ndata: {\"id\":3,\"execution_id\":4,\"to\":\"running\"}\n\n")
		default:
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"error":{"code":"permission_denied","message":"no more"}}`)
		}
	}))
	defer srv.Close()
	c, _ := New(srv.URL, WithToken("t"))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := c.Events(ctx, EventOptions{Execution: 4, LastEventID: "0", Reconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for s.Next() {
		e := s.Event()
		got = append(got, fmt.Sprintf("%d:%s:%s:%s", e.ID, e.To, s.Type(), s.LastID()))
	}
	want := []string{"1:queued:execution:1", "2:queued:execution:2", "3:running::3"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events %q, want %q", got, want)
	}
	if !IsStatus(s.Err(), 403) {
		t.Errorf("Err %v, want the 403 of the third connection", s.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(lastIDs, ",") != "0,2,3" {
		t.Errorf("Last-Event-ID headers %q, want 0, 2, 3", lastIDs)
	}
}

func TestEventsNoReconnectAndClose(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "id: 1\ndata: {\"id\":1,\"to\":\"queued\"}\n\n")
	}))
	defer srv.Close()
	c, _ := New(srv.URL)
	s, err := c.Events(t.Context(), EventOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Next() || s.Event().ID != 1 {
		t.Fatalf("first event: %+v %v", s.Event(), s.Err())
	}
	if s.Next() {
		t.Fatal("an event after the end of the stream")
	}
	var ce *ConnectionError
	if !errors.As(s.Err(), &ce) || !errors.Is(s.Err(), io.ErrUnexpectedEOF) {
		t.Errorf("Err %v, want a connection error", s.Err())
	}

	// Close from another goroutine stops a waiting Next, and Err is nil.
	block := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(block)
	c, _ = New(hang.URL)
	s, err = c.Events(t.Context(), EventOptions{Reconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, func() { s.Close() })
	if s.Next() {
		t.Fatal("an event from a silent stream")
	}
	if s.Err() != nil {
		t.Errorf("Err after Close: %v", s.Err())
	}
}

func TestEventsFirstConnectionError(t *testing.T) {
	_, addr := newRecorder(t, 401, `{"error":{"code":"unauthenticated","message":"sign in"}}`)
	c, _ := New(addr)
	if _, err := c.Events(t.Context(), EventOptions{Reconnect: true}); !IsStatus(err, 401) {
		t.Errorf("Events: %v, want the 401", err)
	}
}
