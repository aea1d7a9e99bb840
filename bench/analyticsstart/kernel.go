package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"

	"github.com/zoe-project/zoe/internal/jupyter"
)

// runCode starts a kernel of the notebook under prefix (its URL through
// Zoe's proxy), runs code in it and returns what the kernel said. hc carries
// the user's bearer token (header) and keeps Jupyter's cookies. When
// Jupyter asks for its own token (its login page), token gives it.
func runCode(ctx context.Context, hc *http.Client, header http.Header, prefix, code string, token func(context.Context) (string, error)) (*jupyter.Execution, error) {
	x := &jupyter.Execution{}
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
	return jupyter.Run(ctx, conn, jupyter.NewID(), code, nil)
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
