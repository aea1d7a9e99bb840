package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// kernelMsg is what the benchmark reads of a message of Jupyter's kernel
// protocol, as the notebook's WebSocket carries it (JSON, one a frame).
type kernelMsg struct {
	MsgType      string `json:"msg_type"`
	ParentHeader struct {
		MsgID string `json:"msg_id"`
	} `json:"parent_header"`
	Content struct {
		Text           string `json:"text"`
		Status         string `json:"status"`
		ExecutionState string `json:"execution_state"`
		EName          string `json:"ename"`
		EValue         string `json:"evalue"`
	} `json:"content"`
}

// execution gathers what a kernel says about one execute_request.
type execution struct {
	id string
	// started is when the first message about the request came: the
	// kernel began to run it.
	started time.Time
	out     strings.Builder
	err     error
	// replied and idle: the reply (on the shell channel) and the kernel's
	// idle status (on iopub, after every output of the request) came;
	// either may come first.
	replied, idle bool
}

// add takes message m in: done once the request's reply and the kernel's
// idle status after it came. Messages of other requests are left out.
func (x *execution) add(m kernelMsg) (done bool) {
	if m.ParentHeader.MsgID != x.id {
		return false
	}
	if x.started.IsZero() {
		x.started = time.Now()
	}
	switch m.MsgType {
	case "stream":
		x.out.WriteString(m.Content.Text)
	case "error":
		x.err = fmt.Errorf("the kernel: %s: %s", m.Content.EName, m.Content.EValue)
	case "status":
		x.idle = x.idle || m.Content.ExecutionState == "idle"
	case "execute_reply":
		if x.err == nil && m.Content.Status != "ok" {
			x.err = fmt.Errorf("the kernel's reply: %s %s: %s", m.Content.Status, m.Content.EName, m.Content.EValue)
		}
		x.replied = true
	}
	return x.replied && x.idle
}

// runCode starts a kernel of the notebook under prefix (its URL through
// Zoe's proxy), runs code in it and returns what the kernel said. hc carries
// the user's bearer token (header) and keeps Jupyter's cookies. When
// Jupyter asks for its own token (its login page), token gives it.
func runCode(ctx context.Context, hc *http.Client, header http.Header, prefix, code string, token func(context.Context) (string, error)) (*execution, error) {
	x := &execution{id: randomID()}
	// Jupyter refuses a POST without its _xsrf cookie echoed in
	// X-XSRFToken, unless its token authenticates the request; its pages
	// set the cookie, as a browser's first visit does.
	final, err := get(ctx, hc, header, prefix+"/tree")
	if err != nil {
		return x, err
	}
	query := ""
	if strings.Contains(final, "/login") {
		t, err := token(ctx)
		if err != nil {
			return x, err
		}
		query = "?token=" + url.QueryEscape(t)
	}
	h := header.Clone()
	h.Set("Content-Type", "application/json")
	if u, err := url.Parse(prefix + "/"); err == nil && hc.Jar != nil {
		for _, c := range hc.Jar.Cookies(u) {
			if c.Name == "_xsrf" {
				h.Set("X-XSRFToken", c.Value)
			}
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, prefix+"/api/kernels"+query, strings.NewReader(`{"name": "python3"}`))
	if err != nil {
		return x, err
	}
	req.Header = h
	resp, err := hc.Do(req)
	if err != nil {
		return x, fmt.Errorf("start a kernel: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		return x, fmt.Errorf("start a kernel (X-XSRFToken %q): %s %.300s (%v)", h.Get("X-XSRFToken"), resp.Status, body, err)
	}
	var kernel struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &kernel); err != nil || kernel.ID == "" {
		return x, fmt.Errorf("start a kernel: %.300s (%v)", body, err)
	}

	ws := "ws" + strings.TrimPrefix(prefix, "http") + "/api/kernels/" + kernel.ID + "/channels" + query
	// The handshake goes through hc for its cookies: no timeout of its own
	// there (the WebSocket library refuses one), ctx bounds it.
	conn, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: header,
		HTTPClient: &http.Client{Jar: hc.Jar, Transport: hc.Transport}})
	if err != nil {
		return x, fmt.Errorf("the kernel's WebSocket: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	msg, err := json.Marshal(map[string]any{
		"header": map[string]string{"msg_id": x.id, "username": "bench", "session": randomID(),
			"msg_type": "execute_request", "version": "5.3", "date": ""},
		"parent_header": map[string]any{}, "metadata": map[string]any{}, "channel": "shell", "buffers": []any{},
		"content": map[string]any{"code": code, "silent": false, "store_history": false,
			"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true},
	})
	if err != nil {
		return x, err
	}
	if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
		return x, fmt.Errorf("send the code to the kernel: %w", err)
	}
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return x, fmt.Errorf("the kernel's WebSocket: %w", err)
		}
		var m kernelMsg
		if err := json.Unmarshal(b, &m); err != nil {
			return x, fmt.Errorf("a kernel message: %w", err)
		}
		if x.add(m) {
			return x, x.err
		}
	}
}

// get is a GET of u, after redirects, that must answer 200; it returns
// the final URL's path.
func get(ctx context.Context, hc *http.Client, header http.Header, u string) (string, error) {
	_, final, err := getBody(ctx, hc, header, u)
	return final, err
}

// getBody is get, with the body.
func getBody(ctx context.Context, hc *http.Client, header http.Header, u string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header = header.Clone()
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return body, resp.Request.URL.Path, nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
