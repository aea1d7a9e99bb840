package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Info is GET /info: the server's name, version and deployment. It needs
// no credentials.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	var v Info
	return &v, c.get(ctx, "/info", nil, &v)
}

// Health is GET /health. A degraded server answers 503 with its Health
// document: that is returned with no error, Status "degraded".
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var v Health
	if err := c.do(ctx, http.MethodGet, "/health", nil, nil, &v, http.StatusServiceUnavailable); err != nil {
		return nil, err
	}
	if v.Status == "" {
		return nil, errors.New("GET /health: no status in the answer")
	}
	return &v, nil
}

// OpenAPI is GET /openapi.json, the OpenAPI 3 document of the API.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var v json.RawMessage
	return v, c.get(ctx, "/openapi.json", nil, &v)
}

// Login is POST /sessions: it checks a username and password and returns a
// new token (Session.Token, shown once). The client's own credentials are
// not used.
func (c *Client) Login(ctx context.Context, l Login) (*Session, error) {
	var v Session
	return &v, c.do(ctx, http.MethodPost, "/sessions", nil, l, &v)
}

// Me is GET /me: the caller.
func (c *Client) Me(ctx context.Context) (*User, error) {
	var v User
	return &v, c.get(ctx, "/me", nil, &v)
}

// MyQuota is GET /me/quota: the caller's quota and what they use of it.
func (c *Client) MyQuota(ctx context.Context) (*QuotaUse, error) {
	var v QuotaUse
	return &v, c.get(ctx, "/me/quota", nil, &v)
}

// Tokens is GET /tokens: the caller's tokens.
func (c *Client) Tokens(ctx context.Context) (*TokenList, error) {
	var v TokenList
	return &v, c.get(ctx, "/tokens", nil, &v)
}

// RevokeToken is DELETE /tokens/{id}: one of the caller's tokens stops
// working.
func (c *Client) RevokeToken(ctx context.Context, id int64) error {
	return c.do(ctx, http.MethodDelete, "/tokens/"+strconv.FormatInt(id, 10), nil, nil, nil)
}
