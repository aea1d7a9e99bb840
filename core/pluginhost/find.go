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

// Check checks that path is safe to run as a plugin (see Find). A refusal
// says what is wrong and the command that fixes it; it wraps
// sdk.ErrPermissionDenied (sdk.ErrNotFound for a missing file), whose name
// is not part of the message.
func Check(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		if os.IsNotExist(err) {
			return "", refusal{fmt.Sprintf("plugin binary %s does not exist", abs), sdk.ErrNotFound}
		}
		return "", fmt.Errorf("plugin binary: %w", err)
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return "", refusal{fmt.Sprintf("plugin binary %s is a symbolic link; Zoe runs only regular files: name the file it points to", abs), sdk.ErrPermissionDenied}
	case !fi.Mode().IsRegular():
		return "", refusal{fmt.Sprintf("plugin binary %s is not a regular file", abs), sdk.ErrInvalidArgument}
	case fi.Mode()&0o111 == 0:
		return "", refusal{fmt.Sprintf("plugin binary %s is not executable: chmod u+x %s", abs, abs), sdk.ErrPermissionDenied}
	case fi.Mode()&0o022 != 0:
		return "", refusal{fmt.Sprintf("plugin binary %s is %s (mode %04o): others than its owner could replace it; chmod go-w %s",
			abs, writable(fi.Mode()), fi.Mode().Perm(), abs), sdk.ErrPermissionDenied}
	case !trustedOwner(fi):
		return "", refusal{fmt.Sprintf("plugin binary %s belongs to uid %d: Zoe runs only plugins owned by root or by the user it runs as (uid %d); chown it to one of them",
			abs, owner(fi), os.Geteuid()), sdk.ErrPermissionDenied}
	}
	dir := filepath.Dir(abs)
	di, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("plugin directory: %w", err)
	}
	// Whoever may write the directory may put another binary in the
	// file's place.
	if di.Mode()&0o022 != 0 {
		return "", refusal{fmt.Sprintf("plugin directory %s is %s (mode %04o): others than its owner could replace the plugins in it; chmod go-w %s",
			dir, writable(di.Mode()), di.Mode().Perm(), dir), sdk.ErrPermissionDenied}
	}
	if !trustedOwner(di) {
		return "", refusal{fmt.Sprintf("plugin directory %s belongs to uid %d, neither root nor the user Zoe runs as (uid %d); chown it to one of them",
			dir, owner(di), os.Geteuid()), sdk.ErrPermissionDenied}
	}
	return abs, nil
}

// refusal is a plugin binary Zoe will not run: the message says why, the
// category (errors.Is) sorts it.
type refusal struct {
	msg string
	cat error
}

func (r refusal) Error() string { return r.msg }
func (r refusal) Unwrap() error { return r.cat }

// writable says who may write a file of mode m besides its owner.
func writable(m os.FileMode) string {
	switch {
	case m&0o022 == 0o022:
		return "group- and world-writable"
	case m&0o002 != 0:
		return "world-writable"
	}
	return "group-writable"
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
