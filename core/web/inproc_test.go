package web

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

// TestInprocStreams: the in-process transport returns the response as
// soon as the handler sent its header, passes each write on, gives the
// handler the browser's address, and ends the handler's context when the
// body is closed.
func TestInprocStreams(t *testing.T) {
	ended := make(chan struct{})
	var addr, xff string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, xff = r.RemoteAddr, r.Header.Get("X-Forwarded-For")
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		for {
			if _, err := w.Write([]byte("data: line\n")); err != nil {
				break
			}
			if rc.Flush() != nil {
				break
			}
		}
		<-r.Context().Done()
		close(ended)
	})
	tr := &inproc{h: h, remoteAddr: "203.0.113.9:5555", forwardedFor: []string{"198.51.100.1"}}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://zoe.in-process/api/v1/events", nil)
	req.Header.Set("X-Forwarded-For", "forged")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: line\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	resp.Body.Close()
	<-ended // a handler whose context never ends hangs the test here
	if addr != "203.0.113.9:5555" || xff != "198.51.100.1" {
		t.Errorf("the handler saw %s and X-Forwarded-For %q", addr, xff)
	}
}

func TestInprocAnswers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		h       http.HandlerFunc
		status  int
		body    string
		wantErr bool
	}{
		{"no write", func(http.ResponseWriter, *http.Request) {}, 200, "", false},
		{"error", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "nope", 404) }, 404, "nope\n", false},
		{"write without a header", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("x")) }, 200, "x", false},
		{"informational first", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(103); w.WriteHeader(201) }, 201, "", false},
		{"panic", func(http.ResponseWriter, *http.Request) { panic("boom") }, 0, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://zoe.in-process/x", nil)
			resp, err := (&inproc{h: tc.h}).RoundTrip(req)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "panicked") {
					t.Errorf("err %v, want the panic", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b strings.Builder
			_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
			if resp.StatusCode != tc.status || b.String() != tc.body {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, b.String(), tc.status, tc.body)
			}
		})
	}
}
