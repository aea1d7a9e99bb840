package sdk

import "errors"

// Error categories. A plugin wraps one of them (fmt.Errorf("user %q: %w",
// name, sdk.ErrNotFound)); the category crosses the wire as a gRPC status code
// and the core tests it with errors.Is. Errors without a category arrive as
// ErrInternal.
var (
	ErrNotFound           = errors.New("not found")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrAlreadyExists      = errors.New("already exists")
	ErrUnavailable        = errors.New("unavailable")
	ErrPermissionDenied   = errors.New("permission denied")
	ErrInvalidCredentials = errors.New("invalid credentials")
	ErrConflict           = errors.New("conflict")
	ErrResourceExhausted  = errors.New("resource exhausted")
	ErrDeadlineExceeded   = errors.New("deadline exceeded")
	ErrUnsupported        = errors.New("not supported")
	ErrInternal           = errors.New("internal error")
)

// Categories lists every error category, most specific first.
func Categories() []error {
	return []error{
		ErrNotFound, ErrInvalidArgument, ErrAlreadyExists, ErrUnavailable,
		ErrPermissionDenied, ErrInvalidCredentials, ErrConflict,
		ErrResourceExhausted, ErrDeadlineExceeded, ErrUnsupported, ErrInternal,
	}
}

// Category returns the category err belongs to, ErrInternal when none.
func Category(err error) error {
	for _, c := range Categories() {
		if errors.Is(err, c) {
			return c
		}
	}
	return ErrInternal
}

// WithCategory returns an error with msg as its text that belongs to the
// category cat. It is how an error is rebuilt on the far side of the wire
// without repeating the category's name in the text.
func WithCategory(cat error, msg string) error {
	return &categorized{cat: cat, msg: msg}
}

type categorized struct {
	cat error
	msg string
}

func (e *categorized) Error() string { return e.msg }
func (e *categorized) Unwrap() error { return e.cat }
