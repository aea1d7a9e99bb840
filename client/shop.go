package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// Shop is GET /shop: the entries the caller's role may start.
func (c *Client) Shop(ctx context.Context) (*ShopList, error) {
	var v ShopList
	return &v, c.get(ctx, "/shop", nil, &v)
}

// ShopEntry is GET /shop/{id}: one entry with its parameters and
// description.
func (c *Client) ShopEntry(ctx context.Context, id string) (*ShopEntry, error) {
	var v ShopEntry
	return &v, c.get(ctx, "/shop/"+seg(id), nil, &v)
}

// maxLogo bounds a logo's size.
const maxLogo = 8 << 20

// ShopLogo is GET /shop/{id}/logo: the image and its content type.
func (c *Client) ShopLogo(ctx context.Context, id string) ([]byte, string, error) {
	req, err := c.request(ctx, http.MethodGet, "/shop/"+seg(id)+"/logo", nil, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", "image/*")
	resp, err := c.send(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxLogo+1))
	if err != nil {
		return nil, "", &ConnectionError{Addr: c.addr, Err: err}
	}
	if len(b) > maxLogo {
		return nil, "", fmt.Errorf("the logo of %s is larger than %d bytes", id, maxLogo)
	}
	return b, resp.Header.Get("Content-Type"), nil
}
