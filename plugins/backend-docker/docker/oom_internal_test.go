package docker

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/zoe-project/zoe/sdk/backend"
)

func TestOOMWait(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	for _, tc := range []struct {
		name string
		s    *container.State
		want time.Duration
	}{
		{"no state", nil, 0},
		{"running", &container.State{Status: container.StateRunning, FinishedAt: at(0)}, 0},
		{"exited 0", &container.State{Status: container.StateExited, ExitCode: 0, FinishedAt: at(-100 * time.Millisecond)}, 0},
		{"killed, already OOM", &container.State{Status: container.StateExited, ExitCode: 137, OOMKilled: true,
			FinishedAt: at(-100 * time.Millisecond)}, 0},
		{"killed just now", &container.State{Status: container.StateExited, ExitCode: 137,
			FinishedAt: at(-300 * time.Millisecond)}, 700 * time.Millisecond},
		{"killed long ago", &container.State{Status: container.StateExited, ExitCode: 137,
			FinishedAt: at(-2 * time.Second)}, -time.Second},
		{"an engine clock ahead", &container.State{Status: container.StateExited, ExitCode: 137,
			FinishedAt: at(time.Hour)}, oomSettle},
		{"no end time", &container.State{Status: container.StateExited, ExitCode: 137,
			FinishedAt: "0001-01-01T00:00:00Z"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := oomWait(tc.s, now); got != tc.want && !(tc.want < 0 && got <= 0) {
				t.Errorf("oomWait = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRememberOOM: an exited service the engine's events said was
// OOM-killed stays so, whatever the container says later.
func TestRememberOOM(t *testing.T) {
	p := New(nil)
	p.ooms.Add("killed")
	for _, tc := range []struct {
		id    string
		state backend.ServiceState
		code  int
		want  bool
	}{
		{"killed", backend.ServiceExited, 137, true},
		{"killed", backend.ServiceRunning, 0, false}, // started again since
		{"killed", backend.ServiceExited, 1, false},  // a child was killed, the program ended by itself
		{"other", backend.ServiceExited, 137, false},
	} {
		st := backend.ServiceStatus{Handle: backend.Handle{ID: tc.id}, State: tc.state, ExitCode: tc.code}
		p.rememberOOM(&st)
		if st.OOMKilled != tc.want {
			t.Errorf("%s %s: OOM-killed %t, want %t", tc.id, tc.state, st.OOMKilled, tc.want)
		}
	}
}
