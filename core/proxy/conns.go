package proxy

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Causes of a proxied request's end that are not the client's doing.
var (
	errEnded   = errors.New("the execution or service ended")
	errClosed  = errors.New("the proxy is shutting down")
	errRevoked = errors.New("the caller's session or rights ended")
)

// maxEnded bounds the executions remembered as ended; execution ids are
// never reused, so forgetting one only means reading the store again.
const maxEnded = 16384

// conns tracks the proxied requests in progress: by user, to bound them,
// and by execution, to close them when it ends.
type conns struct {
	mu     sync.Mutex
	byUser map[string]int
	byExec map[int64]map[*conn]struct{}
	ended  map[int64]struct{}
	closed bool
}

// conn is one proxied request (or WebSocket) in progress.
type conn struct {
	exec    int64
	service string
	user    string
	owner   string // the execution's
	cancel  context.CancelCauseFunc
	// creds is the request with only what says who sent it (cookies,
	// Authorization, address), for the Caller function to check again.
	creds *http.Request
}

// credentials is r stripped to what the Caller function reads.
func credentials(r *http.Request) *http.Request {
	h := http.Header{}
	for _, k := range []string{"Cookie", "Authorization"} {
		if v := r.Header.Values(k); len(v) > 0 {
			h[k] = slices.Clone(v)
		}
	}
	return &http.Request{Method: r.Method, URL: r.URL, Host: r.Host, Header: h, RemoteAddr: r.RemoteAddr}
}

// credKey tells credentials apart: conns that share it are one check
// (not the address, whose port differs for each connection).
func (c *conn) credKey() string {
	return strings.Join(c.creds.Header.Values("Cookie"), "\x00") + "\x01" +
		strings.Join(c.creds.Header.Values("Authorization"), "\x00")
}

func newConns() *conns {
	return &conns{byUser: map[string]int{}, byExec: map[int64]map[*conn]struct{}{}, ended: map[int64]struct{}{}}
}

// errTooMany and errEndedAlready are add's refusals.
var (
	errTooMany      = errors.New("too many proxied connections")
	errEndedAlready = errors.New("the execution ended")
)

// add registers a request of user to a service of execution exec, unless
// the user has max open or the execution ended.
func (cs *conns) add(c *conn, max int) error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return errClosed
	}
	if _, ok := cs.ended[c.exec]; ok {
		return errEndedAlready
	}
	if cs.byUser[c.user] >= max {
		return errTooMany
	}
	cs.byUser[c.user]++
	m := cs.byExec[c.exec]
	if m == nil {
		m = map[*conn]struct{}{}
		cs.byExec[c.exec] = m
	}
	m[c] = struct{}{}
	return nil
}

func (cs *conns) remove(c *conn) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if n := cs.byUser[c.user] - 1; n > 0 {
		cs.byUser[c.user] = n
	} else {
		delete(cs.byUser, c.user)
	}
	if m := cs.byExec[c.exec]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(cs.byExec, c.exec)
		}
	}
}

// end closes the execution's connections and remembers it ended.
func (cs *conns) end(exec int64) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.ended) >= maxEnded {
		clear(cs.ended)
	}
	cs.ended[exec] = struct{}{}
	for c := range cs.byExec[exec] {
		c.cancel(errEnded)
	}
}

// isEnded says whether end was called for the execution.
func (cs *conns) isEnded(exec int64) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	_, ok := cs.ended[exec]
	return ok
}

// endService closes the connections to one service.
func (cs *conns) endService(exec int64, service string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for c := range cs.byExec[exec] {
		if c.service == service {
			c.cancel(errEnded)
		}
	}
}

// closeAll closes every connection and refuses new ones.
func (cs *conns) closeAll(cause error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.closed = true
	for _, m := range cs.byExec {
		for c := range m {
			c.cancel(cause)
		}
	}
}

// tracked returns the executions with connections open and their
// services.
func (cs *conns) tracked() map[int64][]string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := make(map[int64][]string, len(cs.byExec))
	for id, m := range cs.byExec {
		seen := map[string]bool{}
		for c := range m {
			if !seen[c.service] {
				seen[c.service] = true
				out[id] = append(out[id], c.service)
			}
		}
	}
	return out
}

// all returns the connections open.
func (cs *conns) all() []*conn {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var out []*conn
	for _, m := range cs.byExec {
		for c := range m {
			out = append(out, c)
		}
	}
	return out
}

func (cs *conns) open() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	n := 0
	for _, m := range cs.byExec {
		n += len(m)
	}
	return n
}
