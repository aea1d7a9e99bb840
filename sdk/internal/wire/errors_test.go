package wire

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zoe-project/zoe/sdk"
)

func TestFromStatus(t *testing.T) {
	tests := []struct {
		name string
		in   error
		want []error // every one must hold
	}{
		{"category", status.Error(codes.NotFound, "x"), []error{sdk.ErrNotFound}},
		{"closed connection or caller gave up", status.Error(codes.Canceled, "the client connection is closing"),
			[]error{sdk.ErrUnavailable, context.Canceled}},
		{"deadline", status.Error(codes.DeadlineExceeded, "slow"), []error{sdk.ErrDeadlineExceeded, context.DeadlineExceeded}},
		{"unknown code", status.Error(codes.Unknown, "boom"), []error{sdk.ErrInternal}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FromStatus(tt.in)
			for _, w := range tt.want {
				if !errors.Is(got, w) {
					t.Errorf("FromStatus(%v) = %v, not %v", tt.in, got, w)
				}
			}
		})
	}
}

func TestToStatus(t *testing.T) {
	downstream := status.Error(codes.Unauthenticated, "token expired")
	tests := []struct {
		name string
		in   error
		want codes.Code
	}{
		{"category", fmt.Errorf("user: %w", sdk.ErrNotFound), codes.NotFound},
		{"plain", errors.New("boom"), codes.Internal},
		{"downstream status without a category passes", downstream, codes.Unauthenticated},
		// A plugin that sorted a downstream error keeps its own category.
		{"plugin's category wins", fmt.Errorf("%w: %w", sdk.ErrUnavailable, downstream), codes.Unavailable},
		{"context", context.Canceled, codes.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := status.FromError(ToStatus(tt.in))
			if st.Code() != tt.want {
				t.Errorf("ToStatus(%v) code %s, want %s", tt.in, st.Code(), tt.want)
			}
		})
	}
}
