package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/shop"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk"
)

// maxBody bounds the body of a request that carries a ZApp description,
// the largest; maxSmallBody every other body (a login, a quota, a user's
// changes): a login is anyone's, and the body is read before its
// password is checked.
const (
	maxBody      = 4 << 20
	maxSmallBody = 64 << 10
)

// decode reads r's body, a JSON object sent as JSON (Content-Type) in
// UTF-8, into v strictly: unknown fields, wrong types and trailing data
// are errors, answered here with a 400 that names the field. It reports
// whether v was filled.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	return s.decodeChecked(w, r, maxSmallBody, v, nil)
}

// decodeChecked is decode with a bound of its own (limit bytes) and a
// check of the body run first, for the parts whose problems decoding
// cannot place (a map's keys): a *badRequest it returns is the answer.
func (s *Server) decodeChecked(w http.ResponseWriter, r *http.Request, limit int64, v any, check func([]byte) error) bool {
	if !jsonBody(r) {
		drain(r)
		got := r.Header.Get("Content-Type")
		if got == "" {
			got = "none"
		}
		s.error(w, http.StatusUnsupportedMediaType, client.CodeUnsupportedMediaType,
			"send the body as JSON, with the header Content-Type: application/json (Content-Type: "+truncate(got, 64)+")")
		return false
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err == nil {
		if i := invalidUTF8(data); i >= 0 {
			// The JSON decoder would quietly put U+FFFD in its place.
			s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, "invalid request body",
				client.Detail{Message: fmt.Sprintf("not valid UTF-8 at byte %d; JSON is UTF-8", i)})
			return false
		}
		if check != nil {
			err = check(data)
		}
		if err == nil {
			err = decodeJSON(bytes.NewReader(data), v)
		}
	}
	if err == nil {
		return true
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		s.error(w, http.StatusRequestEntityTooLarge, client.CodeTooLarge, fmt.Sprintf("the body is larger than %d bytes", limit))
		return false
	}
	var bad *badRequest
	if errors.As(err, &bad) {
		s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, "invalid request body", bad.detail)
		return false
	}
	s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, "cannot read the request body: "+err.Error())
	return false
}

// invalidUTF8 is the offset of the first byte of b that is not valid
// UTF-8; -1 when b is valid.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// badRequest is a body that is not the JSON document expected.
type badRequest struct{ detail client.Detail }

func (b *badRequest) Error() string {
	if b.detail.Path == "" {
		return b.detail.Message
	}
	return b.detail.Path + ": " + b.detail.Message
}

// decodeJSON decodes one JSON object from rd into v; its errors are
// *badRequest, except those of rd.
func decodeJSON(rd io.Reader, v any) error {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err := dec.Token(); err != io.EOF {
			if err == nil || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, new(*json.SyntaxError)) {
				return &badRequest{client.Detail{Message: "unexpected data after the JSON object"}}
			}
			return err
		}
		return nil
	}
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return &badRequest{client.Detail{Message: "the body is empty; send a JSON object"}}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &badRequest{client.Detail{Message: "the JSON body ends too early"}}
	case errors.As(err, &syntax):
		return &badRequest{client.Detail{Message: fmt.Sprintf("malformed JSON at byte %d: %s", syntax.Offset, syntax.Error())}}
	case errors.As(err, &typ):
		if typ.Field == "" {
			return &badRequest{client.Detail{Message: "the body must be a JSON object, not " + typ.Value}}
		}
		return &badRequest{client.Detail{Path: typ.Field, Message: fmt.Sprintf("must be %s, not %s", jsonType(typ.Type.Kind().String()), typ.Value)}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return &badRequest{client.Detail{Path: field, Message: "unknown field"}}
	}
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return err
	}
	return &badRequest{client.Detail{Message: err.Error()}}
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "float32", "float64":
		return "a number"
	default:
		if strings.HasPrefix(kind, "int") || strings.HasPrefix(kind, "uint") {
			return "an integer"
		}
		return "a " + kind
	}
}

// pathID parses the {id} of the path; a malformed id is not found.
func (s *Server) pathID(w http.ResponseWriter, r *http.Request, what string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.error(w, http.StatusNotFound, client.CodeNotFound, "no "+what+" "+strconv.Quote(r.PathValue("id")))
		return 0, false
	}
	return id, true
}

// fail answers err with the status of its sdk category. A ZApp's problems
// and a shop entry's wrong parameters are the details.
func (s *Server) fail(w http.ResponseWriter, err error) {
	var (
		probs zapp.Problems
		bad   *badRequest
	)
	switch {
	case errors.As(err, &bad):
		// The message does not repeat the detail: a detail with a path
		// says what is wrong where, under a summary; one without is the
		// message itself.
		if bad.detail.Path == "" {
			s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, bad.detail.Message)
			return
		}
		s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, "invalid "+bad.detail.Path, bad.detail)
		return
	case errors.Is(err, shop.ErrInvalidParameter):
		s.shopInvalid(w, err)
		return
	case errors.As(err, &probs):
		s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, fmt.Sprintf("the ZApp description has %d problem(s)", len(probs)),
			problemDetails(probs)...)
		return
	}
	if errors.Is(err, context.Canceled) {
		// The client left (or the daemon is stopping): no bug, and
		// nobody reads the answer.
		s.log.Debug("request cancelled", "error", err)
		s.error(w, http.StatusServiceUnavailable, client.CodeUnavailable, "the request was cancelled")
		return
	}
	status, code := categoryStatus(sdk.Category(err))
	if status == http.StatusInternalServerError {
		s.log.Error("internal error", "error", err)
		s.error(w, status, code, "internal error")
		return
	}
	if status >= 500 {
		// Not a bug, but the administrator may need to act.
		var c interface{ Cause() error }
		if errors.As(err, &c) {
			s.log.Warn("request failed", "error", err, "cause", c.Cause())
		} else {
			s.log.Warn("request failed", "error", err)
		}
	}
	s.error(w, status, code, describe(err))
}

// problemDetails are a ZApp description's problems, at their paths in
// the request (under description).
func problemDetails(probs zapp.Problems) []client.Detail {
	details := make([]client.Detail, 0, len(probs))
	for _, p := range probs {
		path := "description"
		if p.Path != "" {
			path += "." + strings.TrimPrefix(p.Path, ".")
		}
		details = append(details, client.Detail{Path: path, Message: p.Message})
	}
	return details
}

// shopInvalid answers the wrong values of a shop entry's start: each
// parameter at shop.parameters.<key>, each service's memory or cores at
// shop.resources.<service>.<field>, and the description's other problems
// at their paths.
func (s *Server) shopInvalid(w http.ResponseWriter, err error) {
	var (
		details               []client.Detail
		params, res, descProb int
	)
	for _, e := range unjoin(err) {
		var (
			pe    *shop.ParameterError
			re    *shop.ResourceError
			probs zapp.Problems
		)
		switch {
		case errors.As(e, &pe):
			params++
			details = append(details, client.Detail{Path: "shop.parameters." + pe.Parameter, Message: pe.Message})
		case errors.As(e, &re):
			res++
			details = append(details, client.Detail{Path: resourcePath(re), Message: re.Message})
		case errors.As(e, &probs):
			descProb += len(probs)
			details = append(details, problemDetails(probs)...)
		case e != shop.ErrInvalidParameter: // the category alone says nothing more
			details = append(details, client.Detail{Message: describe(e)})
		}
	}
	var msg string
	switch {
	case params+res+descProb == 0:
		s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, describe(err))
		return
	case res == 0 && descProb == 0:
		msg = fmt.Sprintf("the shop parameters have %d problem(s)", len(details))
	case params == 0 && res == 0:
		msg = fmt.Sprintf("the ZApp description has %d problem(s)", len(details))
	default:
		msg = fmt.Sprintf("the shop entry's values have %d problem(s)", len(details))
	}
	s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, msg, details...)
}

// categoryStatus is the HTTP status and code of an sdk error category.
// An ErrInvalidCredentials reaching a handler is about credentials other
// than the caller's (an image registry's, a plugin's): a 401 would tell
// the client to log in again, so it is a 400. ErrUnsupported is a valid
// request this Zoe's plugins cannot serve: 501.
func categoryStatus(cat error) (int, string) {
	switch cat {
	case sdk.ErrInvalidArgument, sdk.ErrInvalidCredentials:
		return http.StatusBadRequest, client.CodeInvalidArgument
	case sdk.ErrResourceExhausted:
		return http.StatusConflict, client.CodeQuotaExceeded
	case sdk.ErrConflict, sdk.ErrAlreadyExists:
		return http.StatusConflict, client.CodeConflict
	case sdk.ErrNotFound:
		return http.StatusNotFound, client.CodeNotFound
	case sdk.ErrPermissionDenied:
		return http.StatusForbidden, client.CodePermissionDenied
	case sdk.ErrUnavailable:
		return http.StatusServiceUnavailable, client.CodeUnavailable
	case sdk.ErrDeadlineExceeded:
		return http.StatusGatewayTimeout, client.CodeUnavailable
	case sdk.ErrUnsupported:
		return http.StatusNotImplemented, client.CodeUnsupported
	}
	return http.StatusInternalServerError, client.CodeInternal
}

// classifying are the categories whose names only sort an error: at the
// end of a message (fmt.Errorf("...: %w", sdk.ErrConflict)) they add
// nothing for the reader. "not found", "already exists" and "not
// supported" say what is wrong, and stay.
var classifying = []string{
	sdk.ErrInvalidArgument.Error(), sdk.ErrResourceExhausted.Error(), sdk.ErrConflict.Error(),
	sdk.ErrUnavailable.Error(), sdk.ErrPermissionDenied.Error(), sdk.ErrInvalidCredentials.Error(),
	sdk.ErrDeadlineExceeded.Error(), sdk.ErrInternal.Error(),
}

// describe is err's message for a client: in words, on one line, without
// the names of sdk categories that only classify it.
func describe(err error) string {
	msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
	for {
		before := msg
		for _, c := range classifying {
			msg = strings.ReplaceAll(msg, ": "+c+": ", ": ")
			msg = strings.ReplaceAll(msg, ": "+c+"; ", ": ")
			msg = strings.TrimSuffix(msg, ": "+c)
		}
		if msg == before {
			return onceNamed(msg)
		}
	}
}

// onceNamed drops a part of msg that repeats the end of the one before,
// as the store's operations and errors both name what they are about:
// `update user "bob": user "bob": not found` reads
// `update user "bob": not found`. Only parts that name something (hold a
// quoted name) are dropped, and parts that repeat the one before whole
// (`no such file: no such file`).
func onceNamed(msg string) string {
	parts := strings.Split(msg, ": ")
	for i := 0; i+1 < len(parts); {
		if next := parts[i+1]; next == parts[i] || strings.Contains(next, `"`) && strings.HasSuffix(parts[i], " "+next) {
			parts = append(parts[:i+1], parts[i+2:]...)
			continue
		}
		i++
	}
	return strings.Join(parts, ": ")
}

// unjoin lists the errors joined in err (errors.Join), or err itself.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
