package docker

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
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
