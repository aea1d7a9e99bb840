package testutil

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// make test holds its lock (a *.lock file in its cache) as a file
// descriptor of its shell, which every child inherits unless closed for it:
// a test's server that a killed run left behind (the swarm tests' Docker
// engine) then held the lock, and every later make test waited for ever.
// Go opens its own files close-on-exec, so a descriptor without that flag
// came from whoever started the test.
func TestNoLockInherited(t *testing.T) {
	for _, fd := range inheritedLocks(t) {
		t.Errorf("descriptor %s, inherited from whoever ran the test: the processes the tests start would keep it open (and its lock held) after the run", fd)
	}
}

// The check itself finds such a descriptor.
func TestInheritedLocksFound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	fd, err := syscall.Open(path, syscall.O_CREAT|syscall.O_RDWR, 0o600) // no O_CLOEXEC, as a shell's exec 9>file
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	found := false
	for _, d := range inheritedLocks(t) {
		found = found || strings.HasPrefix(d, strconv.Itoa(fd)+" ")
	}
	if !found {
		t.Fatalf("descriptor %d on %s (not close-on-exec) not found", fd, path)
	}
}

// inheritedLocks lists this process's descriptors above 2 that are open on
// a *.lock file and not close-on-exec, as "fd -> path".
func inheritedLocks(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || !strings.HasSuffix(target, ".lock") {
			continue // closed since ReadDir (its own descriptor among them)
		}
		flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
		if errno != 0 || flags&syscall.FD_CLOEXEC != 0 {
			continue
		}
		out = append(out, e.Name()+" -> "+target)
	}
	return out
}
