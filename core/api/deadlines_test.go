package api_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/zoe-project/zoe/internal/testutil"
)

// TestStreamOutlivesDeadlines: with the server's body and write timeouts
// at a second, an event stream idle for longer still delivers the next
// event (streams lift the read deadline and are timed per write).
func TestStreamOutlivesDeadlines(t *testing.T) {
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, fmt.Sprintf(simConfig, filepath.Join(root, "examples", "shop"))+`
http {
  body_timeout  = "1s"
  write_timeout = "1s"
}
`)
	alice := e.as("alice")
	s := e.openEvents(alice, "", "")
	// Idle past both deadlines: the quantity under test, not a wait for
	// a condition.
	time.Sleep(2500 * time.Millisecond)
	ex := e.startApp(alice, "late", app("late", nil))
	s.until(ex.ID, "running")
}
