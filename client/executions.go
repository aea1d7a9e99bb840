package client

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ExecutionFilter selects executions for ListExecutions; zero values
// select everything.
type ExecutionFilter struct {
	Status []string // any of these statuses
	Owner  string   // admins only; others always see their own
	Name   string
	Limit  int    // page size; 0: the server's default
	Cursor string // ExecutionList.NextCursor of the previous page
}

func (f ExecutionFilter) query() url.Values {
	q := url.Values{}
	if len(f.Status) > 0 {
		q.Set("status", strings.Join(f.Status, ","))
	}
	if f.Owner != "" {
		q.Set("owner", f.Owner)
	}
	if f.Name != "" {
		q.Set("name", f.Name)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Cursor != "" {
		q.Set("cursor", f.Cursor)
	}
	return q
}

// ListExecutions is GET /executions: one page, newest first.
func (c *Client) ListExecutions(ctx context.Context, f ExecutionFilter) (*ExecutionList, error) {
	var v ExecutionList
	return &v, c.get(ctx, "/executions", f.query(), &v)
}

// StartExecution is POST /executions: a ZApp description or a shop entry.
func (c *Client) StartExecution(ctx context.Context, s StartExecution) (*Execution, error) {
	var v Execution
	return &v, c.do(ctx, http.MethodPost, "/executions", nil, s, &v)
}

// GetExecution is GET /executions/{id}: with services, endpoints and
// events.
func (c *Client) GetExecution(ctx context.Context, id int64) (*Execution, error) {
	var v Execution
	return &v, c.get(ctx, "/executions/"+strconv.FormatInt(id, 10), nil, &v)
}

// Terminate is POST /executions/{id}/terminate: the execution is stopped;
// the answer is the execution as the request left it.
func (c *Client) Terminate(ctx context.Context, id int64) (*Execution, error) {
	var v Execution
	return &v, c.do(ctx, http.MethodPost, "/executions/"+strconv.FormatInt(id, 10)+"/terminate", nil, nil, &v)
}

// DeleteExecution is DELETE /executions/{id}: a finished execution and its
// logs are deleted (admins).
func (c *Client) DeleteExecution(ctx context.Context, id int64) error {
	return c.do(ctx, http.MethodDelete, "/executions/"+strconv.FormatInt(id, 10), nil, nil, nil)
}

// GetService is GET /services/{id}.
func (c *Client) GetService(ctx context.Context, id int64) (*Service, error) {
	var v Service
	return &v, c.get(ctx, "/services/"+strconv.FormatInt(id, 10), nil, &v)
}

// LogOptions are the options of Logs.
type LogOptions struct {
	// Tail asks for the last Tail lines only; 0: every line.
	Tail int
	// Follow keeps the stream open for new lines until the service stops
	// (or the context ends).
	Follow bool
	// Timestamps prefixes each line with its time.
	Timestamps bool
}

// Logs is GET /services/{id}/logs: the service's log as a stream of text
// lines, to be closed by the caller.
func (c *Client) Logs(ctx context.Context, serviceID int64, o LogOptions) (io.ReadCloser, error) {
	q := url.Values{}
	if o.Tail > 0 {
		q.Set("tail", strconv.Itoa(o.Tail))
	}
	if o.Follow {
		q.Set("follow", "true")
	}
	if o.Timestamps {
		q.Set("timestamps", "true")
	}
	req, err := c.request(ctx, http.MethodGet, "/services/"+strconv.FormatInt(serviceID, 10)+"/logs", q, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
