package client

import (
	"context"
	"net/http"
	"strconv"
)

// Stats is GET /stats: the queue; for admins also what runs and the nodes.
func (c *Client) Stats(ctx context.Context) (*Stats, error) {
	var v Stats
	return &v, c.get(ctx, "/stats", nil, &v)
}

// Users is GET /users (admins).
func (c *Client) Users(ctx context.Context) (*UserList, error) {
	var v UserList
	return &v, c.get(ctx, "/users", nil, &v)
}

// GetUser is GET /users/{name} (admins).
func (c *Client) GetUser(ctx context.Context, name string) (*User, error) {
	var v User
	return &v, c.get(ctx, "/users/"+seg(name), nil, &v)
}

// UpdateUser is PATCH /users/{name} (admins): the fields set in u change.
func (c *Client) UpdateUser(ctx context.Context, name string, u UserUpdate) (*User, error) {
	var v User
	return &v, c.do(ctx, http.MethodPatch, "/users/"+seg(name), nil, u, &v)
}

// UserTokens is GET /users/{name}/tokens (admins): a user's tokens.
func (c *Client) UserTokens(ctx context.Context, name string) (*TokenList, error) {
	var v TokenList
	return &v, c.get(ctx, "/users/"+seg(name)+"/tokens", nil, &v)
}

// RevokeUserToken is DELETE /users/{name}/tokens/{id} (admins): one of a
// user's tokens stops working.
func (c *Client) RevokeUserToken(ctx context.Context, name string, id int64) error {
	return c.do(ctx, http.MethodDelete, "/users/"+seg(name)+"/tokens/"+strconv.FormatInt(id, 10), nil, nil, nil)
}

// Quotas is GET /quotas (admins).
func (c *Client) Quotas(ctx context.Context) (*QuotaList, error) {
	var v QuotaList
	return &v, c.get(ctx, "/quotas", nil, &v)
}

// CreateQuota is POST /quotas (admins).
func (c *Client) CreateQuota(ctx context.Context, q Quota) (*Quota, error) {
	var v Quota
	return &v, c.do(ctx, http.MethodPost, "/quotas", nil, q, &v)
}

// GetQuota is GET /quotas/{name} (admins).
func (c *Client) GetQuota(ctx context.Context, name string) (*Quota, error) {
	var v Quota
	return &v, c.get(ctx, "/quotas/"+seg(name), nil, &v)
}

// UpdateQuota is PUT /quotas/{name} (admins): q replaces the quota's
// limits.
func (c *Client) UpdateQuota(ctx context.Context, name string, q Quota) (*Quota, error) {
	var v Quota
	return &v, c.do(ctx, http.MethodPut, "/quotas/"+seg(name), nil, q, &v)
}

// DeleteQuota is DELETE /quotas/{name} (admins).
func (c *Client) DeleteQuota(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/quotas/"+seg(name), nil, nil, nil)
}

// Plugins is GET /plugins (admins): every plugin process and its state.
func (c *Client) Plugins(ctx context.Context) (*PluginList, error) {
	var v PluginList
	return &v, c.get(ctx, "/plugins", nil, &v)
}
