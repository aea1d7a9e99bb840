package pluginhost

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/zoe-project/zoe/sdk"
)

// BinaryName is the file name of the plugin of the given kind and name in
// the plugin directory, e.g. zoe-plugin-auth-file.
func BinaryName(kind sdk.Kind, name string) string {
	return fmt.Sprintf("zoe-plugin-%s-%s", kind, name)
}

// Find returns the path of the plugin's binary in dir, checking that it is
// safe to run: a regular executable file that neither it nor its directory
// can be replaced by users other than its owner.
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
	}
	di, err := os.Stat(filepath.Dir(abs))
	if err != nil {
		return "", fmt.Errorf("plugin directory: %w", err)
	}
	if di.Mode()&0o002 != 0 && di.Mode()&os.ModeSticky == 0 {
		return "", fmt.Errorf("plugin directory %s is writable by everyone: %w", filepath.Dir(abs), sdk.ErrPermissionDenied)
	}
	return abs, nil
}
