package web

import "testing"

// The quota form shows limits the way it reads them back.
func TestLimitValues(t *testing.T) {
	for _, tc := range []struct {
		seconds int64
		text    string
	}{
		{0, "0"}, {1, "1s"}, {59, "59s"}, {60, "1m"}, {90 * 60, "1h30m"}, {8 * 3600, "8h"}, {3601, "1h0m1s"},
		{86400, "1d"}, {2 * 86400, "2d"}, {86400 + 3600, "25h"},
	} {
		if got := formatRuntime(tc.seconds); got != tc.text {
			t.Errorf("formatRuntime(%d) = %q, want %q", tc.seconds, got, tc.text)
		}
		if back, err := parseLimitDuration(tc.text); err != nil || back != tc.seconds {
			t.Errorf("parseLimitDuration(%q) = %d, %v, want %d", tc.text, back, err, tc.seconds)
		}
	}
	for _, tc := range []struct {
		bytes int64
		text  string
	}{
		{0, "0"}, {1, "1"}, {1023, "1023"}, {1024, "1KiB"}, {1536, "1536"}, {512 << 20, "512MiB"}, {64 << 30, "64GiB"},
		{3 << 40, "3TiB"}, {1<<30 + 1<<20, "1025MiB"},
	} {
		if got := formatSize(tc.bytes); got != tc.text {
			t.Errorf("formatSize(%d) = %q, want %q", tc.bytes, got, tc.text)
		}
		if back, err := parseLimitSize(tc.text); err != nil || back != tc.bytes {
			t.Errorf("parseLimitSize(%q) = %d, %v, want %d", tc.text, back, err, tc.bytes)
		}
	}
	for _, bad := range []string{"-1h", "1.5s", "soon", "1 week", "-2d", "1e3h"} {
		if _, err := parseLimitDuration(bad); err == nil {
			t.Errorf("parseLimitDuration(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"-1", "lots", "1.5", "2XB", "9999999TiB"} {
		if _, err := parseLimitSize(bad); err == nil {
			t.Errorf("parseLimitSize(%q) accepted", bad)
		}
	}
	for _, ok := range []string{"", "unlimited", "UNLIMITED"} {
		if n, err := parseLimitSize(ok); err != nil || n != 0 {
			t.Errorf("parseLimitSize(%q) = %d, %v, want 0", ok, n, err)
		}
		if n, err := parseLimitDuration(ok); err != nil || n != 0 {
			t.Errorf("parseLimitDuration(%q) = %d, %v, want 0", ok, n, err)
		}
	}
}
