package testutil

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing t with what and cond's last
// description after timeout: tests wait on conditions, never on a fixed
// sleep.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
