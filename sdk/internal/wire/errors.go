// Package wire holds what the gRPC adapters of every plugin kind share: the
// mapping of error categories to gRPC status codes and the base service.
package wire

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zoe-project/zoe/sdk"
)

var codeOf = map[error]codes.Code{
	sdk.ErrNotFound:           codes.NotFound,
	sdk.ErrInvalidArgument:    codes.InvalidArgument,
	sdk.ErrAlreadyExists:      codes.AlreadyExists,
	sdk.ErrUnavailable:        codes.Unavailable,
	sdk.ErrPermissionDenied:   codes.PermissionDenied,
	sdk.ErrInvalidCredentials: codes.Unauthenticated,
	sdk.ErrConflict:           codes.FailedPrecondition,
	sdk.ErrResourceExhausted:  codes.ResourceExhausted,
	sdk.ErrDeadlineExceeded:   codes.DeadlineExceeded,
	sdk.ErrUnsupported:        codes.Unimplemented,
	sdk.ErrInternal:           codes.Internal,
}

// ToStatus turns an error a plugin returned into a gRPC status error that
// carries its category.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	// A gRPC status from further down (a client library the plugin uses)
	// passes through only when the plugin gave the error no category of its
	// own; otherwise the plugin's category wins.
	if _, ok := status.FromError(err); ok && sdk.Category(err) == sdk.ErrInternal && !errors.Is(err, sdk.ErrInternal) {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codeOf[sdk.Category(err)], err.Error())
}

// FromStatus turns a gRPC error back into an error of the same category, so
// that errors.Is works on the core's side.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Canceled:
		// Either the caller gave up or the connection to the plugin closed
		// under the call (a restart, a stop): both categories hold.
		return fmt.Errorf("%s: %w", st.Message(), errors.Join(sdk.ErrUnavailable, context.Canceled))
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: %w", st.Message(), errors.Join(sdk.ErrDeadlineExceeded, context.DeadlineExceeded))
	case codes.Unknown:
		return sdk.WithCategory(sdk.ErrInternal, st.Message())
	}
	for cat, code := range codeOf {
		if code == st.Code() {
			return sdk.WithCategory(cat, st.Message())
		}
	}
	return sdk.WithCategory(sdk.ErrInternal, fmt.Sprintf("%s (%s)", st.Message(), st.Code()))
}
