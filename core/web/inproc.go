package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/zoe-project/zoe/core/api"
)

// inproc is an http.RoundTripper that serves each request with the API's
// handler in this process, so that the pages get exactly the API's
// authentication, authorisation, throttling and validation without a
// network hop. Answers stream: the response is returned as soon as the
// handler has written its headers, and closing its body (or the request's
// context ending) ends the handler's context.
type inproc struct {
	h http.Handler
	// remoteAddr and forwardedFor are the browser's, so that the API's
	// throttling of failed logins sees the real client.
	remoteAddr   string
	forwardedFor []string
}

func (t *inproc) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(api.ViaWebPages(req.Context()))
	in := req.Clone(ctx)
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = t.remoteAddr
	in.Host = req.URL.Host
	in.Header.Del("X-Forwarded-For")
	for _, v := range t.forwardedFor {
		in.Header.Add("X-Forwarded-For", v)
	}
	if in.Body == nil {
		in.Body = http.NoBody
	}
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, pw: pw, ready: make(chan struct{}), ctx: ctx}
	go func() {
		defer func() {
			if p := recover(); p != nil {
				w.fail(fmt.Errorf("the API's handler panicked: %v", p))
				return
			}
			w.finish()
		}()
		t.h.ServeHTTP(w, in)
	}()
	select {
	case <-w.ready:
	case <-ctx.Done():
		cancel()
		_ = pr.CloseWithError(ctx.Err())
		return nil, ctx.Err()
	}
	if w.err != nil {
		cancel()
		return nil, w.err
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.sent, Body: &pipeBody{PipeReader: pr, cancel: cancel}, ContentLength: -1, Request: req,
	}, nil
}

// pipeWriter is the http.ResponseWriter of an in-process request: what
// the handler writes goes through a pipe to the response's body.
type pipeWriter struct {
	header http.Header
	pw     *io.PipeWriter
	mu     sync.Mutex
	// sent is the header as it was when WriteHeader was called; status
	// the status written; ready is closed then.
	sent   http.Header
	status int
	ready  chan struct{}
	err    error // set before ready is closed, when the handler failed
	// ctx ends when the reader closes the body or gives up.
	ctx context.Context
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sent != nil || code < 200 { // informational answers are not passed on
		return
	}
	w.sent, w.status = w.header.Clone(), code
	close(w.ready)
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.pw.Write(p)
}

// FlushError sends the header if it is not sent yet; the pipe hands
// every write to the reader as it is made, so there is nothing more to
// do. It fails once the reader is gone, which ends streams.
func (w *pipeWriter) FlushError() error {
	w.WriteHeader(http.StatusOK)
	return w.ctx.Err()
}

func (w *pipeWriter) finish() {
	w.WriteHeader(http.StatusOK)
	_ = w.pw.Close()
}

func (w *pipeWriter) fail(err error) {
	w.mu.Lock()
	if w.sent == nil {
		w.err, w.sent, w.status = err, http.Header{}, http.StatusInternalServerError
		close(w.ready)
	}
	w.mu.Unlock()
	_ = w.pw.CloseWithError(err)
}

// pipeBody is an in-process response's body: closing it ends the
// handler's context and its writes.
type pipeBody struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (b *pipeBody) Close() error {
	b.cancel()
	return b.PipeReader.CloseWithError(errBodyClosed)
}

var errBodyClosed = errors.New("the response body was closed")

// forwardedFor is the browser request's X-Forwarded-For, for the API to
// judge by its own trusted proxies.
func forwardedFor(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
