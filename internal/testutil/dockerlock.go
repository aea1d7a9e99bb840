package testutil

import (
	"fmt"
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
	unlock, err := LockDocker(exclusive)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unlock)
}

// LockDocker is DockerLock for a test that takes the lock after its start
// and must release it at a moment of its choosing (unlock), such as after
// cleanups registered before it.
func LockDocker(exclusive bool) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "zoe-test-docker.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("the Docker engine's test lock: %w", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("the Docker engine's test lock: %w", err)
	}
	// Closing the file releases the lock.
	return func() { f.Close() }, nil
}
