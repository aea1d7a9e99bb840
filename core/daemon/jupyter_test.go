package daemon

// A client of Jupyter's REST and kernel API through Zoe's proxy, as a
// browser's notebook page uses it: it starts a kernel and runs code in it
// over the kernel's WebSocket (Jupyter's messaging protocol, version 5).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// jupyter is a notebook server at base (Zoe's proxy path of its port,
// e.g. http://127.0.0.1:5001/proxy/7/notebook0/8888), reached as user.
type jupyter struct {
	base       string
	user, pass string
}

// notebookThroughProxy is the notebook of instance in execution id, as
// c's user reaches it through the proxy of the daemon c talks to.
func notebookThroughProxy(c apiClient, id int64, instance string) jupyter {
	root := strings.TrimSuffix(c.base, "/api/v1")
	return jupyter{base: fmt.Sprintf("%s/proxy/%d/%s/8888", root, id, instance), user: c.user, pass: c.pass}
}

// do sends one request to the notebook with the user's credentials (Zoe's:
// the proxy takes them off) and returns the status and body.
func (j jupyter) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
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
func (j jupyter) waitReady(t *testing.T) string {
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
func (j jupyter) startKernel(t *testing.T) string {
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
func (j jupyter) connect(t *testing.T, kernel string) *kernelConn {
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
	// A result may be large (a traceback); Jupyter's messages are JSON.
	c.SetReadLimit(16 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return &kernelConn{c: c, session: randomHex()}
}

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// execute runs code in the kernel; each piece of its output (stdout,
// stderr) goes to stream as it comes. It returns the whole output once
// the kernel replied and is idle again, or an error with the traceback
// when the code raised.
func (k *kernelConn) execute(ctx context.Context, code string, stream func(text string)) (string, error) {
	id := randomHex()
	msg := map[string]any{
		"header": map[string]string{"msg_id": id, "username": "zoe-test", "session": k.session,
			"msg_type": "execute_request", "version": "5.3", "date": time.Now().UTC().Format(time.RFC3339)},
		"parent_header": map[string]any{}, "metadata": map[string]any{}, "channel": "shell", "buffers": []any{},
		"content": map[string]any{"code": code, "silent": false, "store_history": false,
			"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true},
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return "", err
	}
	if err := k.c.Write(ctx, websocket.MessageText, b); err != nil {
		return "", fmt.Errorf("sending the code: %w", err)
	}
	var out strings.Builder
	var raised error
	// The reply comes on the shell channel, the output on iopub: the reply
	// may come first. The kernel's "idle" status on iopub comes after
	// every output of the request, so both are waited for.
	replied, idle := false, false
	for !replied || !idle {
		_, data, err := k.c.Read(ctx)
		if err != nil {
			return out.String(), fmt.Errorf("reading the kernel's messages (output so far %q): %w", out.String(), err)
		}
		var m struct {
			MsgType      string `json:"msg_type"`
			ParentHeader struct {
				MsgID string `json:"msg_id"`
			} `json:"parent_header"`
			Content struct {
				Text           string   `json:"text"`
				Status         string   `json:"status"`
				ExecutionState string   `json:"execution_state"`
				EName          string   `json:"ename"`
				EValue         string   `json:"evalue"`
				Traceback      []string `json:"traceback"`
			} `json:"content"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			return out.String(), fmt.Errorf("a kernel message: %w: %.200s", err, data)
		}
		if m.ParentHeader.MsgID != id {
			continue
		}
		switch m.MsgType {
		case "stream":
			out.WriteString(m.Content.Text)
			if stream != nil {
				stream(m.Content.Text)
			}
		case "error":
			raised = fmt.Errorf("the code raised %s: %s\n%s", m.Content.EName, m.Content.EValue, strings.Join(m.Content.Traceback, "\n"))
		case "status":
			idle = idle || m.Content.ExecutionState == "idle"
		case "execute_reply":
			if raised == nil && m.Content.Status != "ok" {
				raised = fmt.Errorf("the kernel replied %s: %s %s", m.Content.Status, m.Content.EName, m.Content.EValue)
			}
			replied = true
		}
	}
	return out.String(), raised
}
