package swarm

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/zoe-project/zoe/sdk/backend"
)

// TestEndedTask: how an ended task reads. A task that failed because its
// container was gone keeps the exit code it had while it ran, 0: the end
// is unknown, -1. TestManagerRestart meets it only when the stopped engine
// removed the container, which it does not every time.
func TestEndedTask(t *testing.T) {
	cases := []struct {
		name     string
		state    swarm.TaskState
		err      string
		code     int
		wantCode int
		wantMsg  string
	}{
		{"complete", swarm.TaskStateComplete, "", 0, 0, ""},
		{"failed", swarm.TaskStateFailed, "task: non-zero exit (3)", 3, 3, "non-zero exit (3)"},
		{"its container gone", swarm.TaskStateFailed, "No such container: svc.1.x", 0, -1, "its container is gone"},
	}
	p := New(nil)
	s := swarm.Service{ID: "s", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "svc"}}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			task := swarm.Task{ID: "t", ServiceID: "s", NodeID: "n", Status: swarm.TaskStatus{State: c.state, Err: c.err,
				ContainerStatus: &swarm.ContainerStatus{ContainerID: "c", ExitCode: c.code}}}
			st, err := p.status(context.Background(), &runtime{}, s, []swarm.Task{task}, map[string]nodeInfo{"n": {name: "node"}})
			if err != nil || st.State != backend.ServiceExited || st.ExitCode != c.wantCode || !strings.Contains(st.Message, c.wantMsg) {
				t.Errorf("status = %+v, %v; want exited with %d, a message with %q", st, err, c.wantCode, c.wantMsg)
			}
		})
	}
}

// TestTaskWhere: what Start's "did not start" error says of the task.
func TestTaskWhere(t *testing.T) {
	at := time.Date(2026, 12, 7, 13, 29, 12, 0, time.UTC)
	cases := []struct {
		name string
		st   swarm.TaskStatus
		want string
	}{
		{"never allocated", swarm.TaskStatus{State: swarm.TaskStateNew, Message: "created", Timestamp: at},
			"its task t1 is new: created, since 2026-12-07T13:29:12Z"},
		{"not placed yet", swarm.TaskStatus{State: swarm.TaskStatePending, Message: "pending task scheduling"},
			"its task t1 is pending: pending task scheduling"},
		{"with an error", swarm.TaskStatus{State: swarm.TaskStatePreparing, Message: "preparing", Err: "pulling"},
			"its task t1 is preparing: preparing: pulling"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := taskWhere(swarm.Task{ID: "t1", Status: c.st}); got != c.want {
				t.Errorf("taskWhere = %q, want %q", got, c.want)
			}
		})
	}
}
