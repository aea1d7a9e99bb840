package testutil

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Chromium aborts every request in flight with net::ERR_NETWORK_CHANGED
// when any network interface of its host comes or goes, loopback requests
// included, and the Docker tests running beside the browser tests create
// and remove bridge interfaces all the time: a page's fetch or a
// navigation then failed for no fault of the page. So where it can (as
// root), the test Chromium starts in a network namespace of its own, which
// holds only a loopback interface that never changes, and reaches the
// machine's loopback through a proxy of the test process listening in
// that namespace: every request goes to the proxy (the bypass Chromium
// keeps for loopback is removed), which forwards those for loopback
// addresses to the machine's loopback and refuses every other one.

// isolatedProxyAddr is the proxy's address in Chromium's namespace: a new
// namespace has every port free, and Chromium is told it before it starts.
const isolatedProxyAddr = "127.0.0.1:3128"

// canIsolate tells whether this process may make network namespaces
// (CAP_SYS_ADMIN): it tries, on a thread that it then returns to its own.
func canIsolate() bool {
	var ok bool
	_ = inNetns(func() error { return unix.Unshare(unix.CLONE_NEWNET) }, func() error {
		ok = true
		return nil
	})
	return ok
}

// listenInNetns sets up the loopback of the network namespace of process
// pid and listens on addr in it: the listener stays in that namespace
// whichever thread uses it.
func listenInNetns(pid int, addr string) (net.Listener, error) {
	var ln net.Listener
	err := inNetns(func() error {
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("the network namespace of %d: %w", pid, err)
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter the network namespace of %d: %w", pid, err)
		}
		return nil
	}, func() error {
		if err := loopbackUp(); err != nil {
			return err
		}
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln, err
}

// inNetns runs enter, then f, on one OS thread, and puts the thread back
// in its own network namespace. The thread is never left in another one,
// nor ended: a child process started with Pdeathsig from a thread (as
// the tests start daemons) is killed when that thread ends, whichever
// goroutine ends it.
func inNetns(enter, f func() error) error {
	res := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			res <- fmt.Errorf("this thread's network namespace: %w", err)
			return
		}
		defer unix.Close(own)
		if err := enter(); err != nil {
			runtime.UnlockOSThread() // enter failed: the thread is where it was
			res <- err
			return
		}
		err = f()
		if back := unix.Setns(own, unix.CLONE_NEWNET); back != nil {
			// Left locked: the runtime ends the thread rather than run
			// other goroutines in the wrong namespace.
			res <- errors.Join(err, fmt.Errorf("back to this thread's network namespace: %w", back))
			return
		}
		runtime.UnlockOSThread()
		res <- err
	}()
	return <-res
}

// loopbackUp sets the namespace's lo interface up (a new namespace has it
// down), as ip link set lo up does.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}

// browserProxy is the proxy Chromium sends its requests to. It refuses,
// with 403, every request for a host not on loopback (and remembers it);
// with forward set, it passes those for loopback on to the machine's
// loopback (the browser in its own namespace sends it every request),
// otherwise it is asked for nothing else (Chromium sends loopback
// requests to no proxy by default).
type browserProxy struct {
	addr  string
	srv   *http.Server
	mu    sync.Mutex
	hosts []string
}

func startBrowserProxy(ln net.Listener, forward bool) *browserProxy {
	p := &browserProxy{addr: ln.Addr().String()}
	// Its own transport: no proxy from the environment, no compression
	// of its own, connections dialled from this process's namespace.
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
		DisableCompression:    true,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 0, // a long poll or an event stream may wait
	}
	rp := &httputil.ReverseProxy{
		// The request as the browser made it: the absolute URL it asked
		// the proxy for, its Host, and no X-Forwarded headers.
		Rewrite:       func(r *httputil.ProxyRequest) { r.Out.URL = r.In.URL; r.Out.Host = r.In.Host },
		Transport:     tr,
		FlushInterval: -1, // event streams pass at once
		ErrorLog:      nil,
	}
	p.srv = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !forward || !onLoopback(r.Host) {
				p.mu.Lock()
				p.hosts = append(p.hosts, r.Host)
				p.mu.Unlock()
				http.Error(w, "the test browser may not leave loopback", http.StatusForbidden)
				return
			}
			if r.Method == http.MethodConnect {
				tunnel(w, r.Host)
				return
			}
			if r.URL.Scheme != "http" || r.URL.Host == "" {
				http.Error(w, "the test browser's proxy forwards absolute http URLs and CONNECT only", http.StatusBadRequest)
				return
			}
			rp.ServeHTTP(w, r)
		}),
	}
	go func() { _ = p.srv.Serve(ln) }()
	return p
}

// onLoopback tells whether host (host:port or host) names the loopback.
func onLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tunnel answers a CONNECT (an https or WebSocket connection through the
// proxy) by joining the browser's connection to one to addr.
func tunnel(w http.ResponseWriter, addr string) {
	up, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		http.Error(w, "no hijacking", http.StatusInternalServerError)
		return
	}
	down, buf, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	if _, err := down.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		up.Close()
		down.Close()
		return
	}
	// Each way ends with its writer's half-close; both done, both close.
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(up, buf.Reader) // what the browser sent after its CONNECT too
		closeWrite(up)
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(down, up)
		closeWrite(down)
	}()
	go func() {
		wg.Wait()
		up.Close()
		down.Close()
	}()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// asked returns the hosts refused so far.
func (p *browserProxy) asked() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.hosts...)
}

func (p *browserProxy) close() { _ = p.srv.Close() }
