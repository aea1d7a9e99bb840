package pluginhost

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	write("zoe-plugin-auth-worldw", 0o757)
	path := func(name string) string { return filepath.Join(dir, "zoe-plugin-auth-"+name) }
	tests := []struct {
		name string
		want error
		msg  string // the whole message: what is wrong, and the fix
	}{
		{"foreign", sdk.ErrPermissionDenied, "plugin binary " + path("foreign") +
			" belongs to uid 4242: Zoe runs only plugins owned by root or by the user it runs as (uid " + strconv.Itoa(os.Geteuid()) + "); chown it to one of them"},
		{"good", nil, ""},
		{"missing", sdk.ErrNotFound, "plugin binary " + path("missing") + " does not exist"},
		{"noexec", sdk.ErrPermissionDenied, "plugin binary " + path("noexec") + " is not executable: chmod u+x " + path("noexec")},
		{"groupw", sdk.ErrPermissionDenied, "plugin binary " + path("groupw") +
			" is group-writable (mode 0775): others than its owner could replace it; chmod go-w " + path("groupw")},
		{"worldw", sdk.ErrPermissionDenied, "plugin binary " + path("worldw") +
			" is world-writable (mode 0757): others than its owner could replace it; chmod go-w " + path("worldw")},
		{"link", sdk.ErrPermissionDenied, "plugin binary " + path("link") + " is a symbolic link; Zoe runs only regular files: name the file it points to"},
		{"dir", sdk.ErrInvalidArgument, "plugin binary " + path("dir") + " is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Find(dir, sdk.KindAuth, tt.name)
			if tt.want == nil {
				if err != nil || got != path("good") {
					t.Errorf("Find = %q, %v", got, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Find: %v, want %v", err, tt.want)
			}
			if err == nil || err.Error() != tt.msg {
				t.Errorf("Find: %v\nwant %s", err, tt.msg)
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
		_, err := Find(dir, sdk.KindAuth, "x")
		if !errors.Is(err, sdk.ErrPermissionDenied) || !strings.HasSuffix(fmt.Sprint(err), "chmod go-w "+dir) {
			t.Errorf("directory mode %v: Find = %v, want a refusal saying chmod go-w %s", mode, err, dir)
		}
	}
}
