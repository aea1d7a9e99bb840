package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
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
//
// With ZOE_TEST_LOCK_LOG set to a file, each holder appends to it how long
// it waited and held the lock: where make test's time goes.
func DockerLock(t testing.TB, exclusive bool) {
	t.Helper()
	h, err := lockDocker(t.Name(), exclusive)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.release)
}

// DockerLockLater is DockerLock for a test that takes the lock after its
// start (take, called once, from t's goroutine): its release is
// registered now, so it comes after every cleanup registered later (the
// test's daemons stopped, its deployment removed), whenever the lock was
// taken.
func DockerLockLater(t testing.TB) (take func(exclusive bool)) {
	var h *dockerHold
	t.Cleanup(func() {
		if h != nil {
			h.release()
		}
	})
	return func(exclusive bool) {
		t.Helper()
		var err error
		if h, err = lockDocker(t.Name(), exclusive); err != nil {
			t.Fatal(err)
		}
	}
}

// dockerHold is a holder of the engine's lock.
type dockerHold struct {
	f          *os.File
	who        string
	exclusive  bool
	asked, got time.Time
}

func lockDocker(who string, exclusive bool) (*dockerHold, error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "zoe-test-docker.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("the Docker engine's test lock: %w", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	h := &dockerHold{f: f, who: who, exclusive: exclusive, asked: time.Now()}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("the Docker engine's test lock: %w", err)
	}
	h.got = time.Now()
	return h, nil
}

// release closes the file, which releases the lock.
func (h *dockerHold) release() {
	h.f.Close()
	logLock(h.who, h.exclusive, h.asked, h.got, time.Now())
}

// logLock appends a holder's line to ZOE_TEST_LOCK_LOG, if set: the
// times it asked, got and released the lock, the seconds it waited and
// held it, and whether alone.
func logLock(who string, exclusive bool, asked, got, released time.Time) {
	path := os.Getenv("ZOE_TEST_LOCK_LOG")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	mode := "shared"
	if exclusive {
		mode = "alone"
	}
	// One write per line: O_APPEND keeps the lines of several processes whole.
	_, _ = fmt.Fprintf(f, "%s %s %s wait=%.0fs held=%.0fs %s\n", asked.Format("15:04:05"), got.Format("15:04:05"),
		released.Format("15:04:05"), got.Sub(asked).Seconds(), released.Sub(got).Seconds(), mode+" "+who)
}
