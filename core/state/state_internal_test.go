package state

import (
	"slices"
	"testing"
)

// Both dialects have the same migrations, by version and name.
func TestMigrationFiles(t *testing.T) {
	var names [2][]string
	for i, d := range []string{"sqlite", "postgres"} {
		ms, err := migrations(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			names[i] = append(names[i], m.name)
		}
	}
	if !slices.Equal(names[0], names[1]) {
		t.Fatalf("sqlite migrations %v, postgres %v", names[0], names[1])
	}
}

func TestCursor(t *testing.T) {
	tests := []struct {
		in   string
		want int64 // 0: invalid
	}{
		{encodeCursor(1), 1},
		{encodeCursor(1 << 50), 1 << 50},
		{"", 0},
		{"!!", 0},
		{"ZTA", 0},  // e0
		{"eDE", 0},  // x1
		{"ZS0x", 0}, // e-1
		{"ZTF4", 0}, // e1x
	}
	for _, tc := range tests {
		got, err := decodeCursor(tc.in)
		if (err != nil) != (tc.want == 0) || got != tc.want {
			t.Errorf("decodeCursor(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestFmtBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1536, "1.5 KiB"},
		{32 << 30, "32 GiB"},
		{1<<40 + 1<<39, "1.5 TiB"},
	}
	for _, tc := range tests {
		if got := fmtBytes(tc.n); got != tc.want {
			t.Errorf("fmtBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
