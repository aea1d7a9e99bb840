package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/shop"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk"
)

// maxBody bounds a request's body: a ZApp description is the largest.
const maxBody = 4 << 20

// decode reads r's body, a JSON object, into v strictly: unknown fields,
// wrong types and trailing data are errors, answered here with a 400 that
// names the field. It reports whether v was filled.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	err := decodeJSON(http.MaxBytesReader(w, r.Body, maxBody), v)
	if err == nil {
		return true
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		s.error(w, http.StatusRequestEntityTooLarge, client.CodeTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxBody))
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
		probs  zapp.Problems
		params *shop.ParameterError
		bad    *badRequest
	)
	switch {
	case errors.As(err, &bad):
		s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, bad.Error(), bad.detail)
		return
	case errors.As(err, &probs):
		details := make([]client.Detail, 0, len(probs))
		for _, p := range probs {
			path := "description"
			if p.Path != "" {
				path += "." + strings.TrimPrefix(p.Path, ".")
			}
			details = append(details, client.Detail{Path: path, Message: p.Message})
		}
		s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, fmt.Sprintf("the ZApp description has %d problem(s)", len(probs)), details...)
		return
	case errors.Is(err, shop.ErrInvalidParameter):
		var details []client.Detail
		if errors.As(err, &params) {
			for _, e := range unjoin(err) {
				if errors.As(e, &params) {
					details = append(details, client.Detail{Path: "shop.parameters." + params.Parameter, Message: params.Message})
				}
			}
		}
		s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, err.Error(), details...)
		return
	}
	msg := err.Error()
	if errors.Is(err, context.Canceled) && sdk.Category(err) == sdk.ErrInternal {
		// The client left: no bug, and nobody reads the answer.
		s.error(w, http.StatusServiceUnavailable, client.CodeUnavailable, "the request was cancelled")
		return
	}
	switch sdk.Category(err) {
	case sdk.ErrInvalidArgument:
		s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, msg)
	case sdk.ErrResourceExhausted:
		s.error(w, http.StatusConflict, client.CodeQuotaExceeded, msg)
	case sdk.ErrConflict, sdk.ErrAlreadyExists:
		s.error(w, http.StatusConflict, client.CodeConflict, msg)
	case sdk.ErrNotFound:
		s.error(w, http.StatusNotFound, client.CodeNotFound, msg)
	case sdk.ErrPermissionDenied:
		s.error(w, http.StatusForbidden, client.CodePermissionDenied, msg)
	case sdk.ErrUnavailable, sdk.ErrDeadlineExceeded:
		s.error(w, http.StatusServiceUnavailable, client.CodeUnavailable, msg)
	default:
		s.log.Error("internal error", "error", err)
		s.error(w, http.StatusInternalServerError, client.CodeInternal, "internal error")
	}
}

// unjoin lists the errors joined in err (errors.Join), or err itself.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
