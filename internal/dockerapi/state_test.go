package dockerapi

import (
	"testing"
	"time"
)

func TestMaybeOOMKilled(t *testing.T) {
	tests := []struct {
		code      int
		oomKilled bool
		want      bool
	}{
		{137, false, true},
		{137, true, false}, // marked already
		{0, false, false},
		{1, false, false},
		{143, false, false}, // SIGTERM
	}
	for _, tt := range tests {
		if got := MaybeOOMKilled(tt.code, tt.oomKilled); got != tt.want {
			t.Errorf("MaybeOOMKilled(%d, %t) = %t, want %t", tt.code, tt.oomKilled, got, tt.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2026-12-06T10:00:00.123456789Z", time.Date(2026, 12, 6, 10, 0, 0, 123456789, time.UTC)},
		{"2026-12-06T11:00:00+01:00", time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)},
		{"0001-01-01T00:00:00Z", time.Time{}}, // not started, not ended
		{"", time.Time{}},
		{"yesterday", time.Time{}},
	}
	for _, tt := range tests {
		if got := ParseTime(tt.in); !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
