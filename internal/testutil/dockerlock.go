package testutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// DockerLock holds a lock on the local Docker engine until t ends,
// exclusive or shared with the other holders, in every test process of the
// machine (a file lock): go test -p runs packages at once. The tests that
// use the engine share it, but for those that need it to themselves:
//
//   - Cores: the Docker back-end counts the cores reserved by every Zoe
//     container on the engine, whatever its deployment, and its scheduler
//     queues what does not fit. A test reserving most of the cores (or
//     whose elastic services take every core left) beside a daemon's tests
//     would keep their executions queued past their bounds.
//   - Network isolation: Docker 20.10 deletes and inserts again its FORWARD
//     jump to the isolation chains whenever it creates a network, and
//     between the two, containers of two bridge networks reach each other.
//     A test that checks the isolation must create no network beside it.
func DockerLock(t testing.TB, exclusive bool) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "zoe-test-docker.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("the Docker engine's test lock: %v", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		t.Fatalf("the Docker engine's test lock: %v", err)
	}
	// Closing the file releases the lock.
	t.Cleanup(func() { f.Close() })
}
