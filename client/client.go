package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Client calls one Zoe server. It is safe for concurrent use.
type Client struct {
	addr      string   // as given, for messages
	base      *url.URL // ends in /api/v1
	http      *http.Client
	token     string
	user      string
	password  string
	basic     bool
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithToken authenticates every call with a bearer token (from Login).
func WithToken(token string) Option {
	return func(c *Client) { c.token, c.basic = token, false }
}

// WithBasicAuth authenticates every call with HTTP Basic.
func WithBasicAuth(username, password string) Option {
	return func(c *Client) { c.user, c.password, c.basic, c.token = username, password, true, "" }
}

// WithHTTPClient replaces the default HTTP client (for TLS settings, a
// proxy, ...). Streaming calls (Logs with Follow, Events) last as long as
// their context, so the client should have no overall Timeout.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) { c.http = h }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// New returns a client of the Zoe server at addr: "http://host:port",
// "https://host/prefix" or a bare "host:port" (HTTP). The routes are under
// addr's path + /api/v1.
func New(addr string, opts ...Option) (*Client, error) {
	base, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	c := &Client{addr: base.String(), http: &http.Client{}, userAgent: "zoe-client"}
	base.Path = strings.TrimSuffix(base.Path, "/") + "/api/v1"
	c.base = base
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// ParseAddr checks and normalises a server address: a scheme is added when
// missing (http), and the trailing slash is removed.
func ParseAddr(addr string) (*url.URL, error) {
	a := strings.TrimSpace(addr)
	if a == "" {
		return nil, errors.New("no server address")
	}
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	u, err := url.Parse(a)
	if err != nil {
		return nil, fmt.Errorf("invalid server address %q: %w", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid server address %q: the scheme must be http or https", addr)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid server address %q: no host", addr)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("invalid server address %q: want scheme://host[:port][/path]", addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// Addr is the server's address, normalised.
func (c *Client) Addr() string { return c.addr }

// HasCredentials tells whether calls carry a token or Basic credentials.
func (c *Client) HasCredentials() bool { return c.token != "" || c.basic }

// request builds a request for path (below /api/v1, with a leading slash;
// segments already escaped) and query.
func (c *Client) request(ctx context.Context, method, path string, query url.Values, body any) (*http.Request, error) {
	u := c.base.String() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode the request: %w", err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	switch {
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case c.basic:
		req.SetBasicAuth(c.user, c.password)
	}
	return req, nil
}

// send sends req and returns the response when its status is below 400 or
// one of accept; otherwise the body is decoded as an APIError and closed.
func (c *Client) send(req *http.Request, accept ...int) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &ConnectionError{Addr: c.addr, Err: err}
	}
	if resp.StatusCode >= 400 && !slices.Contains(accept, resp.StatusCode) {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

// do sends a JSON request and decodes a JSON answer into out (when not
// nil). Error statuses in accept are decoded into out too.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any, accept ...int) error {
	req, err := c.request(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	resp, err := c.send(req, accept...)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: cannot decode the answer: %w", method, req.URL.Path, err)
	}
	return nil
}

// get is do for GET.
func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	return c.do(ctx, http.MethodGet, path, query, nil, out)
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }
