package daemon

// A client of Jupyter's REST and kernel API through Zoe's proxy, as a
// browser's notebook page uses it: it starts a kernel and runs code in it
// over the kernel's WebSocket (Jupyter's messaging protocol, version 5).

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zoe-project/zoe/internal/jupyter"
)

// jupyterServer is a Jupyter server at base (Zoe's proxy path of its port,
// e.g. http://127.0.0.1:5001/proxy/7/notebook0/8888), reached as user.
type jupyterServer struct {
	base       string
	user, pass string
}

// notebookThroughProxy is the notebook of instance in execution id, as
// c's user reaches it through the proxy of the daemon c talks to.
func notebookThroughProxy(c apiClient, id int64, instance string) jupyterServer {
	root := strings.TrimSuffix(c.base, "/api/v1")
	return jupyterServer{base: fmt.Sprintf("%s/proxy/%d/%s/8888", root, id, instance), user: c.user, pass: c.pass}
}

// do sends one request to the notebook with the user's credentials (Zoe's:
// the proxy takes them off) and returns the status and body.
func (j jupyterServer) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, j.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if j.user != "" {
		req.SetBasicAuth(j.user, j.pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// waitReady waits until Jupyter answers its /api with its version (a
// started container takes a few seconds to listen) and returns it.
func (j jupyterServer) waitReady(t *testing.T) string {
	t.Helper()
	var version string
	waitUntil(t, "Jupyter answering through the proxy", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		code, b, err := j.do(ctx, "GET", "/api", nil)
		var v struct{ Version string }
		if err == nil && code == http.StatusOK && json.Unmarshal(b, &v) == nil && v.Version != "" {
			version = v.Version
			return true, ""
		}
		return false, fmt.Sprintf("%d %.300s %v", code, b, err)
	})
	return version
}

// startKernel starts a Python 3 kernel and returns its id.
func (j jupyterServer) startKernel(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, b, err := j.do(ctx, "POST", "/api/kernels", map[string]string{"name": "python3"})
	var k struct{ ID string }
	if err != nil || code != http.StatusCreated || json.Unmarshal(b, &k) != nil || k.ID == "" {
		t.Fatalf("starting a kernel: %d %s %v", code, b, err)
	}
	return k.ID
}

// kernelConn is a kernel's channels, over one WebSocket.
type kernelConn struct {
	c       *websocket.Conn
	session string
}

// connect opens the kernel's channels through the proxy.
func (j jupyterServer) connect(t *testing.T, kernel string) *kernelConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := "ws" + strings.TrimPrefix(j.base, "http") + "/api/kernels/" + kernel + "/channels"
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(j.user+":"+j.pass))
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {basic}}})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("the kernel's WebSocket through the proxy: %d %v", status, err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return &kernelConn{c: c, session: jupyter.NewID()}
}

// execute runs code in the kernel; each piece of its output (stdout,
// stderr) goes to stream as it comes. It returns the whole output once
// the kernel replied and is idle again, or an error with the traceback
// when the code raised.
func (k *kernelConn) execute(ctx context.Context, code string, stream func(text string)) (string, error) {
	x, err := jupyter.Run(ctx, k.c, k.session, code, stream)
	return x.Output(), err
}
