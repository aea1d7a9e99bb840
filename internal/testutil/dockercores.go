package testutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// DockerCores holds a lock on the local Docker engine's cores until t ends,
// exclusive or shared with the other holders, in every test process of the
// machine (a file lock). The Docker back-end counts the cores reserved by
// every Zoe container on the engine, whatever its deployment, and its
// scheduler queues what does not fit: a test of one package reserving
// cores beside a daemon's tests of another (go test -p runs packages at
// once) would keep the daemon's executions queued past their tests'
// bounds. Tests that reserve most of the cores, or take every core left
// (elastic services), hold it exclusively; tests that reserve little (all
// of them together fitting in 2 cores) share it.
func DockerCores(t testing.TB, exclusive bool) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "zoe-test-docker-cores.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("the Docker cores lock: %v", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		t.Fatalf("the Docker cores lock: %v", err)
	}
	// Closing the file releases the lock.
	t.Cleanup(func() { f.Close() })
}
