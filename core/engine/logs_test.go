package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/engine"
	"github.com/zoe-project/zoe/core/logs"
	"github.com/zoe-project/zoe/core/scheduler"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

func lineOf(en logs.Entry) string {
	if en.Stream == logs.Stderr {
		return "stderr: " + string(en.Line)
	}
	return string(en.Line)
}

// logLines is a service's stored output, stderr lines marked.
func (e *env) logLines(id int64, svc string) ([]string, error) {
	var out []string
	err := e.logs.Read(e.t.Context(), id, svc, logs.ReadOptions{}, func(en logs.Entry) error {
		out = append(out, lineOf(en))
		return nil
	})
	return out, err
}

// waitLog waits until the service's stored output is exactly want.
func (e *env) waitLog(id int64, svc string, want ...string) {
	e.t.Helper()
	waitFor(e.t, fmt.Sprintf("the log of %s to be %q", svc, want), func() (bool, string) {
		got, err := e.logLines(id, svc)
		return err == nil && slices.Equal(got, want), fmt.Sprintf("%q %v", got, err)
	})
}

// started is the line backend-sim writes when it starts a container.
func (e *env) started(id int64, svc string) string {
	e.t.Helper()
	s := e.services(id)[svc]
	return fmt.Sprintf("started %s on %s", containerName(id, svc), s.Node)
}

// follower is a following Read of a service's log.
type follower struct {
	mu   sync.Mutex
	got  []string
	done chan error
}

func (e *env) follow(id int64, svc string) *follower {
	f := &follower{done: make(chan error, 1)}
	store := e.logs // a restart replaces e.logs; a follower stays with its store
	go func() {
		f.done <- store.Read(e.t.Context(), id, svc, logs.ReadOptions{Follow: true}, func(en logs.Entry) error {
			f.mu.Lock()
			f.got = append(f.got, lineOf(en))
			f.mu.Unlock()
			return nil
		})
	}()
	return f
}

func (f *follower) lines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

func (f *follower) running(t *testing.T) {
	t.Helper()
	select {
	case err := <-f.done:
		t.Fatalf("the follower ended early: %v", err)
	default:
	}
}

func (f *follower) end(t *testing.T) {
	t.Helper()
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("follower: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("the follower did not end with the execution")
	}
}

// TestLogs: a service's output is kept while it runs, up to its last line
// (written as it is stopped), after its container is removed; followers
// end with the execution.
func TestLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{logs: true})
	ex := e.submit(zappJSON(t, false,
		svc{name: "main", ess: 1, total: 1, monitor: true, env: forever("ZOE_SIM_LOG", "hello|  spaced  |wörld")},
		svc{name: "side", ess: 1, total: 1, env: forever()}))
	e.waitStatus(ex.ID, state.StatusRunning)
	first := []string{e.started(ex.ID, "main0"), "hello", "  spaced  ", "wörld"}
	e.waitLog(ex.ID, "main0", first...)
	e.waitLog(ex.ID, "side0", e.started(ex.ID, "side0"))
	f := e.follow(ex.ID, "main0")
	waitFor(t, "the follower to read the log", func() (bool, string) {
		return slices.Equal(f.lines(), first), fmt.Sprint(f.lines())
	})
	f.running(t)

	// An essential service is killed: its last line is kept, the execution
	// ends, the followers return and the logs outlive the containers.
	if err := e.ctl.Kill(t.Context(), containerName(ex.ID, "side0")); err != nil {
		t.Fatal(err)
	}
	f.end(t)
	e.waitStatus(ex.ID, state.StatusTerminated)
	e.platformEmpty()
	want := append(slices.Clone(first), "received SIGTERM, exiting")
	if got := f.lines(); !slices.Equal(got, want) {
		t.Errorf("followed %q, want %q", got, want)
	}
	e.waitLog(ex.ID, "main0", want...)
	e.waitLog(ex.ID, "side0", e.started(ex.ID, "side0"), "stderr: Killed")
	svcs, err := e.logs.Services(ex.ID)
	if err != nil || !slices.Equal(svcs, []string{"main0", "side0"}) {
		t.Errorf("services with logs: %v %v", svcs, err)
	}
}

// TestLogsAcrossRestarts: the daemon stops; meanwhile a running service
// writes and an elastic one is killed. The next daemon stores what was
// written while it was down, nothing twice, and the replacement of the
// elastic service goes on in the same log.
func TestLogsAcrossRestarts(t *testing.T) {
	t.Parallel()
	var subs *cutLogs
	e := newEnv(t, options{logs: true, wrap: func(b engine.Backend) engine.Backend {
		subs = &cutLogs{Backend: b}
		return subs
	}})
	ctx := t.Context()
	ex := e.submit(zappJSON(t, false,
		// It takes an hour to exit after SIGTERM: the operator's SIGTERM
		// below only makes it write a line.
		svc{name: "master", ess: 1, total: 1, monitor: true,
			env: forever("ZOE_SIM_LOG", "m1|m2", "ZOE_SIM_TERM_TIME", "1h")},
		svc{name: "worker", ess: 1, total: 2, env: forever()}))
	e.waitStatus(ex.ID, state.StatusRunning)
	waitFor(t, "every service running", func() (bool, string) {
		for _, s := range e.services(ex.ID) {
			if s.Status != state.ServiceRunning {
				return false, s.Name + " is " + string(s.Status)
			}
		}
		return true, ""
	})
	master := []string{e.started(ex.ID, "master0"), "m1", "m2"}
	e.waitLog(ex.ID, "master0", master...)
	e.waitLog(ex.ID, "worker0", e.started(ex.ID, "worker0"))
	oldWorker := e.started(ex.ID, "worker1")
	e.waitLog(ex.ID, "worker1", oldWorker)
	before := e.services(ex.ID)

	e.stop()
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	h := before["master0"].Handle
	if err := e.ctl.Stop(sctx, backend.Handle{ID: h.ID, Version: h.Version, State: h.Data}, 2*time.Hour); !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(fmt.Sprint(err), "still running") {
		t.Fatalf("SIGTERM to the master: %v", err)
	}
	cancel()
	if err := e.ctl.Kill(ctx, containerName(ex.ID, "worker1")); err != nil {
		t.Fatal(err)
	}
	e.restart()

	master = append(master, "received SIGTERM, exiting")
	waitFor(t, "worker1 replaced", func() (bool, string) {
		s := e.services(ex.ID)["worker1"]
		return s.RestartCount == 1 && s.Status == state.ServiceRunning && s.Handle.ID != before["worker1"].Handle.ID,
			fmt.Sprintf("%s restarts %d", s.Status, s.RestartCount)
	})
	worker1 := []string{oldWorker, "stderr: Killed", e.started(ex.ID, "worker1")}
	e.waitLog(ex.ID, "worker1", worker1...)
	e.waitLog(ex.ID, "master0", master...)
	e.waitLog(ex.ID, "worker0", e.started(ex.ID, "worker0"))
	fm, fw := e.follow(ex.ID, "master0"), e.follow(ex.ID, "worker1")

	// Once more, with nothing new: nothing is stored twice.
	e.stop()
	subsBefore := subs.subscriptions()
	e.restart()
	waitFor(t, "the three services' output followed again", func() (bool, string) {
		n := subs.subscriptions() - subsBefore
		return n >= 3, fmt.Sprint(n)
	})
	e.waitLog(ex.ID, "master0", master...)
	e.waitLog(ex.ID, "worker1", worker1...)
	fm.running(t)
	fw.running(t)

	if _, err := e.eng.Terminate(ctx, ex.ID, "done"); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(ex.ID, state.StatusTerminated)
	fm.end(t)
	fw.end(t)
	e.platformEmpty()
	// The master ignores SIGTERM for an hour: the grace period's kill.
	master = append(master, "received SIGTERM, shutting down")
	worker1 = append(worker1, "received SIGTERM, exiting")
	e.waitLog(ex.ID, "master0", master...)
	e.waitLog(ex.ID, "worker1", worker1...)
	if got := fm.lines(); !slices.Equal(got, master) {
		t.Errorf("followed master0: %q", got)
	}
	if got := fw.lines(); !slices.Equal(got, worker1) {
		t.Errorf("followed worker1: %q", got)
	}
}

// cutLogs counts the subscriptions to log streams and, with after > 0,
// cuts every following stream after that many entries, as a
// back-end plugin that keeps restarting would.
type cutLogs struct {
	engine.Backend
	after int
	mu    sync.Mutex
	calls int
}

func (c *cutLogs) Logs(ctx context.Context, h backend.Handle, opts backend.LogOptions) (<-chan backend.LogEntry, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	sub, cancel := context.WithCancel(ctx)
	in, err := c.Backend.Logs(sub, h, opts)
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan backend.LogEntry)
	go func() {
		defer close(out)
		defer cancel()
		n := 0
		for en := range in {
			select {
			case out <- en:
			case <-ctx.Done():
				return
			}
			if n++; opts.Follow && n == c.after {
				return
			}
		}
	}()
	return out, nil
}

func (c *cutLogs) subscriptions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func TestLogsStreamBreaks(t *testing.T) {
	t.Parallel()
	var cut *cutLogs
	e := newEnv(t, options{logs: true, wrap: func(b engine.Backend) engine.Backend {
		cut = &cutLogs{Backend: b, after: 2}
		return cut
	}})
	ex := e.submit(zappJSON(t, false,
		svc{name: "main", ess: 1, total: 1, monitor: true, env: forever("ZOE_SIM_LOG", "a|b|c|d|e")}))
	e.waitStatus(ex.ID, state.StatusRunning)
	want := []string{e.started(ex.ID, "main0"), "a", "b", "c", "d", "e"}
	e.waitLog(ex.ID, "main0", want...)
	if n := cut.subscriptions(); n < 3 {
		t.Errorf("%d subscriptions for 6 lines cut every 2", n)
	}
	if _, err := e.eng.Terminate(t.Context(), ex.ID, "done"); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(ex.ID, state.StatusTerminated)
	e.waitLog(ex.ID, "main0", append(want, "received SIGTERM, exiting")...)
}

// TestLogsOff: without a store nothing is collected and executions run as
// before.
func TestLogsOff(t *testing.T) {
	t.Parallel()
	var cut *cutLogs
	e := newEnv(t, options{wrap: func(b engine.Backend) engine.Backend {
		cut = &cutLogs{Backend: b}
		return cut
	}})
	ex := e.submit(zappJSON(t, false, svc{name: "main", ess: 1, total: 1, monitor: true, env: forever()}))
	e.waitStatus(ex.ID, state.StatusRunning)
	if _, err := e.eng.Terminate(t.Context(), ex.ID, "done"); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(ex.ID, state.StatusTerminated)
	if n := cut.subscriptions(); n != 0 {
		t.Errorf("%d log subscriptions without a log store", n)
	}
}

// sized sets a description's size hint.
func sized(t *testing.T, desc []byte, size int) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(desc, &m); err != nil {
		t.Fatal(err)
	}
	m["size"] = size
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func queueIDs(t *testing.T, q []engine.QueueEntry) []int64 {
	t.Helper()
	var ids []int64
	for i, en := range q {
		if en.Position != i+1 {
			t.Errorf("entry %d has position %d", i, en.Position)
		}
		ids = append(ids, en.Execution.ID)
	}
	return ids
}

func TestQueue(t *testing.T) {
	t.Parallel()
	oneNode := map[string]any{"node1": map[string]any{"cores": 2, "memory": "16GiB", "address": "10.1.0.1"}}
	for _, tt := range []struct {
		policy scheduler.Policy
		order  []int // of the three waiting executions, of sizes 3, 1, 2
	}{
		{scheduler.FIFO, []int{0, 1, 2}},
		{scheduler.Size, []int{1, 2, 0}},
	} {
		t.Run(string(tt.policy), func(t *testing.T) {
			ctx := t.Context()
			app := zappJSON(t, false, svc{name: "main", ess: 1, total: 1, monitor: true, cores: 2, env: forever()})
			submit := func(e *env) []int64 {
				var ids []int64
				for _, size := range []int{3, 1, 2} {
					ids = append(ids, e.submit(sized(t, app, size)).ID)
				}
				return []int64{ids[tt.order[0]], ids[tt.order[1]], ids[tt.order[2]]}
			}

			// Submitted: in the order they will be queued, no reason yet.
			e := newEnv(t, options{nodes: oneNode, policy: tt.policy, noEngine: true})
			want := submit(e)
			q, err := e.eng.Queue(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := queueIDs(t, q); !slices.Equal(got, want) {
				t.Errorf("submitted: queue %v, want %v", got, want)
			}
			for _, en := range q {
				if en.Reason != "" || en.Execution.Status != state.StatusSubmitted {
					t.Errorf("submitted entry %+v", en)
				}
			}

			// Queued behind a running execution that takes the only node.
			e = newEnv(t, options{nodes: oneNode, policy: tt.policy})
			running := e.submit(sized(t, app, 1))
			e.waitStatus(running.ID, state.StatusRunning)
			want = submit(e)
			// The reasons of a pass that ran before the last submission
			// may still be there (the first execution alone at the head):
			// wait for those of a pass that saw all three.
			waitFor(t, "every waiting reason", func() (bool, string) {
				q, err = e.eng.Queue(ctx)
				if err != nil {
					return false, err.Error()
				}
				if len(q) != 3 {
					return false, fmt.Sprint(len(q))
				}
				for i, en := range q {
					if en.Reason == "" || en.Execution.Status != state.StatusQueued ||
						i > 0 && strings.Contains(en.Reason, "needs 2 cores") {
						return false, fmt.Sprintf("%+v", en)
					}
				}
				return true, ""
			})
			if got := queueIDs(t, q); !slices.Equal(got, want) {
				t.Errorf("queued: queue %v, want %v", got, want)
			}
			if r := q[0].Reason; !strings.Contains(r, "needs 2 cores") {
				t.Errorf("the head waits because %q", r)
			}
			for _, en := range q[1:] {
				if r := en.Reason; r != fmt.Sprintf("waiting behind execution %d (strict order)", want[0]) {
					t.Errorf("execution %d waits because %q", en.Execution.ID, r)
				}
			}
			// The head is the next to start.
			if _, err := e.eng.Terminate(ctx, running.ID, "make room"); err != nil {
				t.Fatal(err)
			}
			e.waitStatus(want[0], state.StatusRunning)
			waitFor(t, "the queue to move", func() (bool, string) {
				q, err := e.eng.Queue(ctx)
				if err != nil {
					return false, err.Error()
				}
				got := queueIDs(t, q)
				var st []string
				for _, id := range want {
					ex, _ := e.store.GetExecution(ctx, id)
					st = append(st, fmt.Sprint(id, ex.Status))
				}
				return slices.Equal(got, want[1:]), fmt.Sprint(got, st)
			})
		})
	}
}

func TestNodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	ctx := t.Context()
	ex := e.submit(zappJSON(t, false,
		svc{name: "master", ess: 1, total: 1, monitor: true, env: forever()},
		svc{name: "worker", ess: 2, total: 2, env: forever()}))
	e.waitStatus(ex.ID, state.StatusRunning)
	want := map[string]int{}
	for _, s := range e.services(ex.ID) {
		want[s.Node]++
	}
	nodes, err := e.eng.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Node.Name)
		if n.Services > 0 {
			got[n.Node.Name] = n.Services
		}
		if n.Node.Cores != 8 || n.Node.Address == "" {
			t.Errorf("node %+v", n.Node)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"node1", "node2"}) || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("nodes %v with services %v, want %v", names, got, want)
	}
	if _, err := e.eng.Terminate(ctx, ex.ID, "done"); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(ex.ID, state.StatusTerminated)
	nodes, err = e.eng.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Services != 0 {
			t.Errorf("after the end: %s has %d services", n.Node.Name, n.Services)
		}
	}
}

// lateLogs stands for a back-end plugin whose follow streams deliver
// nothing (they end with the container) and whose first reads after that
// fail, as while the plugin restarts: the output can only be had by the
// final read, retried.
type lateLogs struct {
	engine.Backend
	mu       sync.Mutex
	failures int // reads still to fail
}

func (l *lateLogs) Logs(ctx context.Context, h backend.Handle, opts backend.LogOptions) (<-chan backend.LogEntry, error) {
	if !opts.Follow {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.failures > 0 {
			l.failures--
			return nil, fmt.Errorf("restarting: %w", sdk.ErrUnavailable)
		}
		return l.Backend.Logs(ctx, h, opts)
	}
	in, err := l.Backend.Logs(ctx, h, opts)
	if err != nil {
		return nil, err
	}
	out := make(chan backend.LogEntry)
	go func() {
		defer close(out)
		for range in {
		}
	}()
	return out, nil
}

func TestLogsLastReadRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{logs: true, wrap: func(b engine.Backend) engine.Backend {
		return &lateLogs{Backend: b, failures: 2}
	}})
	ex := e.submit(zappJSON(t, false,
		svc{name: "main", ess: 1, total: 1, monitor: true, env: forever("ZOE_SIM_LOG", "a|b")}))
	e.waitStatus(ex.ID, state.StatusRunning)
	first := e.started(ex.ID, "main0")
	if _, err := e.eng.Terminate(t.Context(), ex.ID, "done"); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(ex.ID, state.StatusTerminated)
	e.waitLog(ex.ID, "main0", first, "a", "b", "received SIGTERM, exiting")
}
