package userfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

const (
	// maxFileSize bounds what an edit reads: a million users take about
	// 100 MB, so a larger file is not a users file.
	maxFileSize = 256 << 20
	// lockWait is how long an edit waits for another one to finish.
	lockWait = 10 * time.Second
)

// ErrInvalidFile wraps the problems of a users file that an edit found
// invalid before changing it: it must be fixed by hand first.
var ErrInvalidFile = errors.New("the users file has problems; fix them by hand first")

// LockPath is the lock file that edits of the users file at path take: an
// empty file beside it, left in place (removing it would let two editors
// lock two different files).
func LockPath(path string) string { return path + ".lock" }

// Edit changes the users file at path with fn, safely: under an exclusive
// lock (flock of LockPath) so that concurrent edits do not lose one
// another, reading the file, applying fn to it in memory, checking the
// result with Parse, then writing it to a temporary file in the same
// directory with the file's mode (and owner, when run as root), syncing
// it and renaming it over the file, so that a reader (the running daemon)
// sees either version and never half of one. A symbolic link is followed:
// the file it points to is replaced. It refuses a file its group or
// others may read or write, as Load does, and a file owned by another
// user when not run as root (the copy would change owner). Edit writes
// nothing when fn changes nothing, and reports whether it wrote.
//
// Errors name the file; none quotes a password or a hash.
func Edit(path string, fn func(*Doc) error) (bool, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false, fmt.Errorf("users file %s: %w", path, err)
	}
	// The lock file gets the users file's owner, so that an edit run as
	// root once does not keep that owner from editing afterwards.
	var owner fs.FileInfo
	if fi, err := os.Stat(real); err == nil {
		owner = fi
	}
	unlock, err := lock(real, owner)
	if err != nil {
		return false, err
	}
	defer unlock()

	f, err := os.Open(real)
	if err != nil {
		return false, fmt.Errorf("read users file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("read users file: %w", err)
	}
	if err := checkOwnFile(path, fi); err != nil {
		return false, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return false, fmt.Errorf("read users file %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return false, fmt.Errorf("users file %s is larger than %d MiB; is it a users file?", path, maxFileSize>>20)
	}
	_, before := Parse(path, bytes.NewReader(data))

	d := NewDoc(data)
	if err := fn(d); err != nil {
		return false, err
	}
	out := d.Bytes()
	if bytes.Equal(out, data) {
		return false, nil
	}
	if _, err := Parse(path, bytes.NewReader(out)); err != nil {
		if before != nil {
			return false, fmt.Errorf("%w:\n%w", ErrInvalidFile, before)
		}
		// The edits validate what they write; this is a bug, but the file
		// stays as it was.
		return false, fmt.Errorf("the change would make %s invalid; nothing written:\n%w", path, err)
	}
	if err := replace(real, out, fi); err != nil {
		return false, fmt.Errorf("write users file %s: %w", path, err)
	}
	return true, nil
}

// Create writes a new users file at path holding data, with mode 0600,
// creating its directory (mode 0700) if needed. It fails with an error
// wrapping fs.ErrExist when path exists, even as a dangling link, and
// never leaves a partly written file at path.
func Create(path string, data []byte) error {
	if _, err := Parse(path, bytes.NewReader(data)); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create users file: %w", err)
	}
	unlock, err := lock(path, nil)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("create users file %s: %w", path, fs.ErrExist)
	}
	tmp, err := writeTemp(dir, filepath.Base(path), data, 0o600, nil)
	if err != nil {
		return fmt.Errorf("create users file %s: %w", path, err)
	}
	defer os.Remove(tmp)
	// A hard link, unlike a rename, fails when path appeared meanwhile
	// (created by something that does not take the lock).
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create users file %s: %w", path, fs.ErrExist)
		}
		// File systems without hard links: the lock and the Lstat above
		// make a rename safe enough.
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("create users file %s: %w", path, err)
		}
	}
	return syncDir(dir)
}

// checkOwnFile refuses to edit what Load would refuse to read, and a file
// this process would hand over to itself by replacing it.
func checkOwnFile(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("users file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("users file %s has mode %04o; it must be readable by its owner only: chmod 600 %s", path, perm, path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if euid := os.Geteuid(); euid != 0 && int(st.Uid) != euid {
			return fmt.Errorf("users file %s belongs to uid %d: edit it as that user or as root (a copy written by uid %d could not be read by its owner)", path, st.Uid, euid)
		}
	}
	return nil
}

// replace writes data over path atomically, with fi's mode and owner.
func replace(path string, data []byte, fi fs.FileInfo) error {
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, filepath.Base(path), data, fi.Mode().Perm(), fi)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// writeTemp writes data to a new hidden file in dir, with mode perm (and
// the owner of like, when run as root), synced; it returns its path.
func writeTemp(dir, base string, data []byte, perm fs.FileMode, like fs.FileInfo) (string, error) {
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return "", err
	}
	name := f.Name()
	err = f.Chmod(perm)
	if st, ok := sysStat(like); err == nil && ok && os.Geteuid() == 0 {
		err = f.Chown(int(st.Uid), int(st.Gid))
	}
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

func sysStat(fi fs.FileInfo) (*syscall.Stat_t, bool) {
	if fi == nil {
		return nil, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// lock takes the exclusive lock of the users file at path, waiting up to
// lockWait for another edit to finish, and returns its release. Run as
// root, it gives the lock file the owner of like (when not nil). The lock
// file is opened read-only (flock needs no more) and never through a
// symbolic link, so that a link planted there makes no file appear
// elsewhere.
func lock(path string, like fs.FileInfo) (func(), error) {
	name := LockPath(path)
	f, err := os.OpenFile(name, os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("lock users file %s: %w (the lock file belongs to another user: chown it to the owner of %s, or remove it when no edit runs)", path, err, path)
		}
		return nil, fmt.Errorf("lock users file %s: %w", path, err)
	}
	if st, ok := sysStat(like); ok && os.Geteuid() == 0 {
		if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock users file %s: %w", path, err)
		}
	}
	deadline := time.Now().Add(lockWait)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("users file %s is being edited by another process (it holds %s); try again", path, name)
			}
			return nil, fmt.Errorf("lock users file %s: %w", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
