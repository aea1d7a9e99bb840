package dockerapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/sdk"
)

// Wrap gives an engine's error its sdk category, after the message that
// format and args make; nil stays nil.
func Wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	var op *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %v: %w", msg, err, sdk.ErrDeadlineExceeded)
	case client.IsErrConnectionFailed(err), errors.As(err, &op), cerrdefs.IsUnavailable(err),
		// The engine closed the connection mid-answer (stopping, restarting).
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: engine unreachable: %v: %w", msg, err, sdk.ErrUnavailable)
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%s: %v: %w", msg, err, sdk.ErrNotFound)
	case cerrdefs.IsAlreadyExists(err):
		// Kept apart from a conflict: the core adopts what exists already.
		return fmt.Errorf("%s: %v: %w", msg, err, sdk.ErrAlreadyExists)
	case cerrdefs.IsConflict(err):
		return fmt.Errorf("%s: %v: %w", msg, err, sdk.ErrConflict)
	case cerrdefs.IsInvalidArgument(err):
		return fmt.Errorf("%s: %v: %w", msg, err, sdk.ErrInvalidArgument)
	case cerrdefs.IsPermissionDenied(err), cerrdefs.IsUnauthorized(err):
		return fmt.Errorf("%s: %v: %w", msg, err, sdk.ErrPermissionDenied)
	case cerrdefs.IsResourceExhausted(err):
		return fmt.Errorf("%s: %v: %w", msg, err, sdk.ErrResourceExhausted)
	}
	return fmt.Errorf("%s: %w", msg, err)
}
