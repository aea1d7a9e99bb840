package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// APIError is an error answer of the server: its HTTP status and its Error
// document.
type APIError struct {
	Status int
	Body   ErrorBody
}

// Error is one line: the message, then the details it does not already
// say (Problems), separated by semicolons. The code is left out: it is for
// programs (IsCode), and the message says the same in words.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Message())
	for i, d := range e.Problems() {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(d.String())
	}
	return b.String()
}

// Message is the server's message on one line.
func (e *APIError) Message() string { return oneLine(e.Body.Message) }

// Problems are the details of the answer that its message does not
// already say, each on one line: a ZApp's problems, the wrong fields of a
// request. Some answers repeat their only detail in the message ("tail:
// must be ...", path "tail"); that detail is left out rather than said
// twice.
func (e *APIError) Problems() []Detail {
	msg := e.Message()
	var out []Detail
	for _, d := range e.Body.Details {
		d = Detail{Path: oneLine(d.Path), Message: oneLine(d.Message)}
		if d.Message == "" || said(msg, d) {
			continue
		}
		out = append(out, d)
	}
	return out
}

// said tells whether msg already says d: its text, and the last part of
// its path when it has one (`parameter "X": must be ...` says the detail
// shop.parameters.X: must be ...).
func said(msg string, d Detail) bool {
	if !strings.Contains(msg, d.Message) {
		return false
	}
	if d.Path == "" {
		return true
	}
	last := d.Path[strings.LastIndexAny(d.Path, ".]")+1:]
	if last == "" {
		last = d.Path
	}
	return strings.Contains(msg, last)
}

// String is the detail on one line: "path: message", or the message.
func (d Detail) String() string {
	if d.Path == "" {
		return d.Message
	}
	return d.Path + ": " + d.Message
}

// IsStatus tells whether err is an APIError with the given HTTP status.
func IsStatus(err error, status int) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == status
}

// IsCode tells whether err is an APIError with the given code (Code*).
func IsCode(err error, code string) bool {
	var e *APIError
	return errors.As(err, &e) && e.Body.Code == code
}

// ConnectionError is a call that did not reach the server, or whose answer
// did not come back.
type ConnectionError struct {
	Addr string
	Err  error
}

func (e *ConnectionError) Error() string {
	return fmt.Sprintf("cannot reach Zoe at %s: %v", e.Addr, e.Err)
}

func (e *ConnectionError) Unwrap() error { return e.Err }

// maxErrorBody bounds what is read of an error answer.
const maxErrorBody = 1 << 20

// decodeError reads an error answer. A body that is not an Error document
// (a proxy's HTML page, ...) still gives a one-line APIError, with a code
// derived from the status.
func decodeError(resp *http.Response) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &APIError{Status: resp.StatusCode}
	var doc Error
	if json.Unmarshal(body, &doc) == nil && doc.Error.Code != "" {
		e.Body = doc.Error
		if e.Body.Message == "" {
			e.Body.Message = statusText(resp.StatusCode)
		}
		return e
	}
	e.Body = ErrorBody{Code: codeOf(resp.StatusCode), Message: statusText(resp.StatusCode)}
	if text := oneLine(string(body)); text != "" && !strings.HasPrefix(text, "<") {
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		e.Body.Message += ": " + text
	} else if err != nil {
		e.Body.Message += ": " + err.Error()
	}
	return e
}

func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return fmt.Sprintf("%d %s", status, t)
	}
	return fmt.Sprintf("HTTP status %d", status)
}

// codeOf is the Code* of an HTTP status, for answers without an Error
// document.
func codeOf(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeInvalidArgument
	case http.StatusUnauthorized:
		return CodeUnauthenticated
	case http.StatusForbidden:
		return CodePermissionDenied
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case http.StatusConflict:
		return CodeConflict
	case http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case http.StatusUnsupportedMediaType:
		return CodeUnsupportedMediaType
	case http.StatusNotImplemented:
		return CodeUnsupported
	case http.StatusTooManyRequests:
		return CodeTooManyRequests
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return CodeUnavailable
	}
	return CodeInternal
}

// oneLine joins the lines of s with "; ".
func oneLine(s string) string {
	var lines []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}
