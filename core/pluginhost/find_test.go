package pluginhost

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/zoe-project/zoe/sdk"
)

func TestFind(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/true\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("zoe-plugin-auth-good", 0o755)
	write("zoe-plugin-auth-noexec", 0o644)
	write("zoe-plugin-auth-groupw", 0o775)
	if err := os.Symlink(filepath.Join(dir, "zoe-plugin-auth-good"), filepath.Join(dir, "zoe-plugin-auth-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "zoe-plugin-auth-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A binary owned by someone else (uid 4242) is refused.
	write("zoe-plugin-auth-foreign", 0o755)
	if err := os.Chown(filepath.Join(dir, "zoe-plugin-auth-foreign"), 4242, 4242); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want error
	}{
		{"foreign", sdk.ErrPermissionDenied},
		{"good", nil},
		{"missing", sdk.ErrNotFound},
		{"noexec", sdk.ErrPermissionDenied},
		{"groupw", sdk.ErrPermissionDenied},
		{"link", sdk.ErrPermissionDenied},
		{"dir", sdk.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, err := Find(dir, sdk.KindAuth, tt.name)
			if tt.want == nil {
				if err != nil || path != filepath.Join(dir, "zoe-plugin-auth-good") {
					t.Errorf("Find = %q, %v", path, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Find: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFindRefusesAWritableDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "zoe-plugin-auth-x"), []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o775, 0o777 | os.ModeSticky} {
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := Find(dir, sdk.KindAuth, "x"); !errors.Is(err, sdk.ErrPermissionDenied) {
			t.Errorf("directory mode %v: Find = %v, want a refusal", mode, err)
		}
	}
}
