package pluginhost

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/zoe-project/zoe/sdk"
)

// BinaryName is the file name of the plugin of the given kind and name in
// the plugin directory, e.g. zoe-plugin-auth-file.
func BinaryName(kind sdk.Kind, name string) string {
	return fmt.Sprintf("zoe-plugin-%s-%s", kind, name)
}

// Find returns the path of the plugin's binary in dir, checking that it is
// safe to run: a regular executable file, owned with its directory by root
// or the user Zoe runs as, which no one else can write or replace.
func Find(dir string, kind sdk.Kind, name string) (string, error) {
	return Check(filepath.Join(dir, BinaryName(kind, name)))
}

// Check checks that path is safe to run as a plugin (see Find).
func Check(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		if os.IsNotExist(err) {
			return "", fmt.Errorf("plugin binary %s does not exist: %w", abs, sdk.ErrNotFound)
		}
		return "", fmt.Errorf("plugin binary: %w", err)
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return "", fmt.Errorf("plugin binary %s is a symbolic link; Zoe runs only regular files: %w", abs, sdk.ErrPermissionDenied)
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("plugin binary %s is not a regular file: %w", abs, sdk.ErrInvalidArgument)
	case fi.Mode()&0o111 == 0:
		return "", fmt.Errorf("plugin binary %s is not executable: %w", abs, sdk.ErrPermissionDenied)
	case fi.Mode()&0o022 != 0:
		return "", fmt.Errorf("plugin binary %s has mode %04o: others than its owner could replace it (chmod go-w): %w", abs, fi.Mode().Perm(), sdk.ErrPermissionDenied)
	case !trustedOwner(fi):
		return "", fmt.Errorf("plugin binary %s belongs to uid %d: Zoe runs only plugins owned by root or by the user it runs as: %w", abs, owner(fi), sdk.ErrPermissionDenied)
	}
	dir := filepath.Dir(abs)
	di, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("plugin directory: %w", err)
	}
	// Whoever may write the directory may put another binary in the
	// file's place.
	if di.Mode()&0o022 != 0 {
		return "", fmt.Errorf("plugin directory %s has mode %04o: others than its owner could replace the plugins in it (chmod go-w): %w", dir, di.Mode().Perm(), sdk.ErrPermissionDenied)
	}
	if !trustedOwner(di) {
		return "", fmt.Errorf("plugin directory %s belongs to uid %d, neither root nor the user Zoe runs as: %w", dir, owner(di), sdk.ErrPermissionDenied)
	}
	return abs, nil
}

func owner(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

func trustedOwner(fi os.FileInfo) bool {
	uid := owner(fi)
	return uid == 0 || uid == os.Geteuid()
}
