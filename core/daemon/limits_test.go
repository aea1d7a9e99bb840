package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	zoeclient "github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/testutil"
)

// TestSlowClients is the reproduction of issue 12's slow clients: a client
// opens thousands of connections, sends a request's header and one byte of
// its body on each, then nothing. The daemon keeps serving others, closes
// a connection over the per-address bound at once, and closes the slow
// ones once their body's time is up.
//
// The machine's open files are shared (20,000): 2,000 connections (4,000
// descriptors, both ends in this process) under bounds set to match.
//
// Every slow connection must still be open once the last one is, so the
// body timeout outlasts opening them all: 45 s, since the test runs beside
// the package's other tests (on 2 busy cores, 1,144 connections opened in
// 15 s). It waits for that timeout while the Docker tests run.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	const (
		slow        = 2000
		bodyTimeout = 45 * time.Second
	)
	_, opts, _ := setup(t, baseConfig+fmt.Sprintf(`
http {
  max_connections             = %d
  max_connections_per_address = %d
  body_timeout                = "%s"
}
`, slow+50, slow, bodyTimeout))
	ready := make(chan net.Addr, 1)
	opts.Ready = func(a net.Addr) { ready <- a }
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var addr string
	select {
	case a := <-ready:
		addr = a.String()
	case err := <-errc:
		errc <- err // for the cleanup, which waits for it
		t.Fatalf("Run returned before serving: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not call Ready within 2 minutes")
	}
	base := "http://" + addr + "/api/v1"

	// The slow client, from 127.0.0.2.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 10 * time.Second}
	conns := make([]net.Conn, 0, slow)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range slow {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := fmt.Fprint(c, "POST /api/v1/sessions HTTP/1.1\r\nHost: zoe\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	var logins zoeclient.Logins
	if code := getJSON(t, base+"/logins", &logins); code != http.StatusOK || logins.Connections == nil {
		t.Fatalf("GET /logins: %d %+v", code, logins)
	}
	// Every slow connection is still open, or the rest of the test would
	// prove nothing (the body timeout was set long enough).
	if c := logins.Connections; c.Open < slow {
		t.Fatalf("connections: %+v, want the %d slow ones open", c, slow)
	}

	// Another client is served.
	var info zoeclient.Info
	if code := getJSON(t, base+"/info", &info); code != http.StatusOK || info.DeploymentName != "unit" {
		t.Errorf("GET /info while the slow client holds %d connections: %d %+v", slow, code, info)
	}
	// One more from the slow client's address is closed at once.
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conns = append(conns, c)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("a connection over the per-address bound: read %d, %v; want it closed", n, err)
	}
	logs := opts.LogOutput.(*testutil.SyncBuffer)
	testutil.WaitFor(t, 5*time.Second, "the refusal logged", func() (bool, string) {
		return strings.Contains(logs.String(), "connections closed at once: too many open: last_from=127.0.0.2 closed=1"), ""
	})

	// The slow connections are closed once their body's time is up.
	for i, c := range conns[:slow] {
		_ = c.SetReadDeadline(time.Now().Add(bodyTimeout + 25*time.Second))
		if _, err := io.Copy(io.Discard, c); isTimeout(err) {
			t.Fatalf("slow connection %d still open 25 s after the body timeout", i)
		}
	}
	if code := getJSON(t, base+"/logins", &logins); code != http.StatusOK || logins.Connections.Refused < 1 {
		t.Errorf("GET /logins: %d %+v", code, logins.Connections)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
