package swarm_test

import (
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk/backend"
)

// TestStopViaUpdate: a task on another node than the manager's is stopped
// by a service update (a placement constraint no node meets): it gets
// SIGTERM, ends, keeps its output and exit code, and runs no more.
func TestStopViaUpdate(t *testing.T) {
	t.Parallel()
	p := open(t, deployment(t), nil)
	p.StopViaUpdate()
	ctx := ctxFor(t)
	events := subscribe(t, ctx, p)
	st := start(t, ctx, p, testutil.CreateNetwork(t, ctx, p), backend.ServiceSpec{Image: testimages.HTTPService})
	testutil.WaitUntil(t, ctx, "its first line", func() (bool, string) { return len(testutil.LogLines(t, ctx, p, st.Handle)) > 0, "" })
	if err := p.Stop(ctx, st.Handle, 5*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	got, err := p.Inspect(ctx, st.Handle)
	if err != nil || got.State != backend.ServiceExited || got.ExitCode != 0 {
		t.Errorf("Inspect right after Stop = %+v, %v; want exited with 0 (it exits so on SIGTERM)", got, err)
	}
	if e := testutil.WaitEvent(t, ctx, events, st.Name, backend.EventExited); e.ExitCode != 0 {
		t.Errorf("exit code %d, want 0", e.ExitCode)
	}
	lines := testutil.LogLines(t, ctx, p, st.Handle)
	if len(lines) == 0 || !strings.Contains(string(lines[len(lines)-1].Line), "terminated") {
		t.Errorf("output after Stop %q: want it kept, ending with the line written on SIGTERM", lines)
	}
	if err := p.Stop(ctx, st.Handle, time.Second); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := p.Remove(ctx, st.Handle, false); err != nil {
		t.Errorf("Remove of the stopped service without force: %v", err)
	}
}
