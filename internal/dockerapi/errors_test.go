package dockerapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/zoe-project/zoe/sdk"
)

// TestWrap: the engine's error categories become the SDK's; "already
// exists" and "conflict" stay apart.
func TestWrap(t *testing.T) {
	tests := []struct {
		in   error
		want error
	}{
		{cerrdefs.ErrAlreadyExists, sdk.ErrAlreadyExists},
		{cerrdefs.ErrConflict, sdk.ErrConflict},
		{cerrdefs.ErrNotFound, sdk.ErrNotFound},
		{cerrdefs.ErrInvalidArgument, sdk.ErrInvalidArgument},
		{cerrdefs.ErrPermissionDenied, sdk.ErrPermissionDenied},
		{cerrdefs.ErrUnauthenticated, sdk.ErrPermissionDenied},
		{cerrdefs.ErrResourceExhausted, sdk.ErrResourceExhausted},
		{cerrdefs.ErrUnavailable, sdk.ErrUnavailable},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, sdk.ErrUnavailable},
		{context.DeadlineExceeded, sdk.ErrDeadlineExceeded},
		{io.ErrUnexpectedEOF, sdk.ErrUnavailable},
		{io.EOF, sdk.ErrUnavailable},
	}
	for _, tt := range tests {
		got := Wrap(fmt.Errorf("docker says: %w", tt.in), "create %q", "x")
		if sdk.Category(got) != tt.want {
			t.Errorf("Wrap(%v) = %v, category %v, want %v", tt.in, got, sdk.Category(got), tt.want)
		}
	}
	if got := Wrap(cerrdefs.ErrAlreadyExists, "x"); errors.Is(got, sdk.ErrConflict) {
		t.Errorf("already exists is a conflict: %v", got)
	}
	plain := errors.New("something else")
	if got := Wrap(plain, "create %q", "x"); !errors.Is(got, plain) || got.Error() != `create "x": something else` {
		t.Errorf("Wrap(plain) = %v, want the message before the error, which it wraps", got)
	}
	if Wrap(nil, "x") != nil {
		t.Errorf("Wrap(nil) is not nil")
	}
}
