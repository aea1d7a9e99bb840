package engine

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBackOff(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name        string
		base, limit time.Duration
		jitter      float64
		n           int
		want        time.Duration
	}{
		{"first", time.Second, 5 * time.Minute, 0, 1, time.Second},
		{"doubles", time.Second, 5 * time.Minute, 0, 4, 8 * time.Second},
		{"capped", time.Second, 5 * time.Minute, 0, 10, 5 * time.Minute},
		{"capped long after", time.Second, 5 * time.Minute, 0, 1000, 5 * time.Minute},
		{"jitter adds", 100 * ms, time.Second, 0.5, 2, 250 * ms},
		{"jitter below half", 100 * ms, time.Second, 0.999, 1, 149950 * time.Microsecond},
		{"jitter on the cap", 100 * ms, 300 * ms, 0.5, 5, 375 * ms},
		{"cap below base", time.Second, 500 * ms, 0, 1, 500 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := backOff{base: tt.base, limit: tt.limit, jitter: func() float64 { return tt.jitter }}
			if got := b.delay(tt.n); got != tt.want {
				t.Errorf("delay(%d) = %s, want %s", tt.n, got, tt.want)
			}
			if s := b.step(tt.n); b.delay(tt.n) < s || b.delay(tt.n) >= s+s/2 {
				t.Errorf("delay(%d) = %s outside [%s, 1.5×%[3]s)", tt.n, b.delay(tt.n), s)
			}
		})
	}
}

func TestRetryReason(t *testing.T) {
	long := errors.New(strings.Repeat("é", 300))
	tests := []struct {
		cleanup bool
		d       time.Duration
		err     error
		want    string
	}{
		{false, 8*time.Second + 300*time.Millisecond, errors.New("workspace plugin unavailable: restarting"),
			"retrying the start in 8s: workspace plugin unavailable: restarting"},
		{true, 150 * time.Millisecond, errors.New("x"), "retrying the clean-up in 150ms: x"},
		{false, 5 * time.Minute, errors.New("x"), "retrying the start in 5m: x"},
		{false, 4*time.Minute + 10*time.Second, errors.New("x"), "retrying the start in 4m10s: x"},
		{false, 7*time.Minute + 29*time.Second + 600*time.Millisecond, errors.New("x"), "retrying the start in 7m30s: x"},
		{false, time.Hour, errors.New("x"), "retrying the start in 1h: x"},
		{false, time.Second, long, "retrying the start in 1s: " + strings.Repeat("é", 199) + "…"},
	}
	for _, tt := range tests {
		if got := retryReason(tt.cleanup, tt.d, tt.err); got != tt.want {
			t.Errorf("retryReason(%v, %s) = %q, want %q", tt.cleanup, tt.d, got, tt.want)
		}
	}
}
