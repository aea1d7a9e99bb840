package docker

import (
	"context"
	"errors"
	"fmt"
	"testing"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/zoe-project/zoe/sdk"
)

// TestWrap: Docker's error categories become the SDK's; "already exists"
// and "conflict" stay apart.
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
		{context.DeadlineExceeded, sdk.ErrDeadlineExceeded},
	}
	for _, tt := range tests {
		got := wrap(fmt.Errorf("docker says: %w", tt.in), "create %q", "x")
		if sdk.Category(got) != tt.want {
			t.Errorf("wrap(%v) = %v, category %v, want %v", tt.in, got, sdk.Category(got), tt.want)
		}
	}
	if got := wrap(cerrdefs.ErrAlreadyExists, "x"); errors.Is(got, sdk.ErrConflict) {
		t.Errorf("already exists is a conflict: %v", got)
	}
}
