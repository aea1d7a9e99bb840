package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// EventOptions are the options of Events.
type EventOptions struct {
	// Execution limits the stream to one execution; 0: every execution the
	// caller may see.
	Execution int64
	// LastEventID resumes a stream after the event with this id
	// (EventStream.LastID of an earlier stream).
	LastEventID string
	// Reconnect makes the stream reconnect, resuming after the last event
	// received, when the connection breaks, until the context ends. Without
	// it Next returns false and Err says why.
	Reconnect bool
}

// EventStream is the open event stream of Events:
//
//	for s.Next() {
//		e := s.Event()
//		...
//	}
//	if err := s.Err(); err != nil { ... }
//
// It is not safe for concurrent use; Close may be called from another
// goroutine to stop it.
type EventStream struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	opts   EventOptions
	body   io.ReadCloser
	sse    *sseReader
	ev     Event
	typ    string
	lastID string
	err    error
	closed atomic.Bool
}

// Events is GET /events: a stream of the events of the executions the
// caller may see, from now on or after opts.LastEventID. Errors of the
// first connection (401, ...) are returned at once.
func (c *Client) Events(ctx context.Context, opts EventOptions) (*EventStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &EventStream{c: c, ctx: ctx, cancel: cancel, opts: opts, lastID: opts.LastEventID}
	if err := s.connect(); err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

func (s *EventStream) connect() error {
	q := url.Values{}
	if s.opts.Execution != 0 {
		q.Set("execution", strconv.FormatInt(s.opts.Execution, 10))
	}
	req, err := s.c.request(s.ctx, http.MethodGet, "/events", q, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if s.lastID != "" {
		req.Header.Set("Last-Event-ID", s.lastID)
	}
	resp, err := s.c.send(req)
	if err != nil {
		return err
	}
	s.body = resp.Body
	retry := time.Duration(0)
	if s.sse != nil {
		retry = s.sse.retry
	}
	s.sse = newSSEReader(resp.Body, s.lastID)
	s.sse.retry = retry
	return nil
}

// Next waits for the next event; false when the stream ended (see Err).
func (s *EventStream) Next() bool {
	for s.err == nil {
		m, err := s.sse.next()
		if err == nil {
			s.lastID = m.ID
			if m.Data == "" {
				continue
			}
			var e Event
			if err := json.Unmarshal([]byte(m.Data), &e); err != nil {
				s.err = fmt.Errorf("event stream: event %q: %w", m.ID, err)
				return false
			}
			s.ev, s.typ = e, m.Event
			return true
		}
		s.lastID = s.sse.lastID
		if s.ctx.Err() != nil {
			s.err = s.ctx.Err()
			break
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if !s.opts.Reconnect {
			s.err = &ConnectionError{Addr: s.c.addr, Err: fmt.Errorf("event stream: %w", err)}
			break
		}
		s.err = s.reconnect()
	}
	s.body.Close()
	return false
}

// reconnect connects again after the server's retry delay (default 1 s),
// trying until the context ends; errors that retrying cannot fix (401,
// 403, ...) end the stream.
func (s *EventStream) reconnect() error {
	s.body.Close()
	delay := s.sse.retry
	if delay <= 0 {
		delay = time.Second
	}
	for {
		t := time.NewTimer(delay)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return s.ctx.Err()
		case <-t.C:
		}
		err := s.connect()
		var apiErr *APIError
		switch {
		case err == nil:
			return nil
		case s.ctx.Err() != nil:
			return s.ctx.Err()
		case errors.As(err, &apiErr) && apiErr.Status != http.StatusServiceUnavailable &&
			apiErr.Status != http.StatusBadGateway && apiErr.Status != http.StatusGatewayTimeout:
			return err
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// Event is the event Next read.
func (s *EventStream) Event() Event { return s.ev }

// Type is the SSE event type of the event Next read ("" when the server
// sent none).
func (s *EventStream) Type() string { return s.typ }

// LastID is the id of the last event received, to resume from with
// EventOptions.LastEventID.
func (s *EventStream) LastID() string { return s.lastID }

// Err is why the stream ended: nil after Close, the context's error when
// it ended.
func (s *EventStream) Err() error {
	if s.closed.Load() {
		return nil
	}
	return s.err
}

// Close ends the stream; a Next blocked in another goroutine returns
// false.
func (s *EventStream) Close() error {
	s.closed.Store(true)
	s.cancel()
	return nil
}
