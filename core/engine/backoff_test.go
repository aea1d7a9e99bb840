package engine_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/engine"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/workspace"
)

// faulty stands between the engine and its plugins: it records when each
// method is called and, while a fault is set for a method, fails it.
type faulty struct {
	engine.Backend
	ws engine.Workspace

	mu     sync.Mutex
	faults map[string]faultFor
	calls  map[string][]time.Time
}

// faultFor fails the calls of a method whose service or network name
// contains match ("": every call) with err.
type faultFor struct {
	match string
	err   error
}

func (f *faulty) call(method, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fault, ok := f.faults[method]
	if ok && !strings.Contains(name, fault.match) {
		return nil
	}
	f.calls[method] = append(f.calls[method], time.Now())
	if ok {
		return fault.err
	}
	return nil
}

// set fails method's calls on names containing match with err; nil err
// clears the fault. The record of calls starts again.
func (f *faulty) set(method, match string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.faults, method)
	} else {
		f.faults[method] = faultFor{match, err}
	}
	delete(f.calls, method)
}

// times are the recorded calls of method.
func (f *faulty) times(method string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.calls[method]...)
}

func (f *faulty) List(ctx context.Context, opts backend.ListOptions) ([]backend.ServiceStatus, error) {
	if err := f.call("List", ""); err != nil {
		return nil, err
	}
	return f.Backend.List(ctx, opts)
}

func (f *faulty) Nodes(ctx context.Context) ([]backend.Node, error) {
	f.call("Nodes", "")
	return f.Backend.Nodes(ctx)
}

func (f *faulty) CreateNetwork(ctx context.Context, spec backend.NetworkSpec) (string, error) {
	if err := f.call("CreateNetwork", spec.Name); err != nil {
		return "", err
	}
	return f.Backend.CreateNetwork(ctx, spec)
}

func (f *faulty) RemoveNetwork(ctx context.Context, id string) error {
	if err := f.call("RemoveNetwork", id); err != nil {
		return err
	}
	return f.Backend.RemoveNetwork(ctx, id)
}

func (f *faulty) Start(ctx context.Context, spec backend.ServiceSpec) (backend.ServiceStatus, error) {
	if err := f.call("Start", spec.Name); err != nil {
		return backend.ServiceStatus{}, err
	}
	return f.Backend.Start(ctx, spec)
}

func (f *faulty) Prepare(ctx context.Context, u workspace.User) (workspace.Mount, error) {
	if err := f.call("Prepare", u.Username); err != nil {
		return workspace.Mount{}, err
	}
	return f.ws.Prepare(ctx, u)
}

const (
	testBase     = 50 * time.Millisecond
	testMax      = time.Second
	testInterval = 500 * time.Millisecond
)

// newFaultyEnv is an engine whose plugins fail at will, with a back-off of
// 50 ms to 1 s and a pass every 500 ms; it runs from the returned time.
func newFaultyEnv(t *testing.T) (*env, *faulty, time.Time) {
	t.Helper()
	f := &faulty{faults: map[string]faultFor{}, calls: map[string][]time.Time{}}
	e := newEnv(t, options{noEngine: true, wrap: func(b engine.Backend) engine.Backend {
		f.Backend = b
		return f
	}})
	f.ws = e.cfg.Workspace
	e.cfg.Workspace = f
	e.cfg.BackoffBase, e.cfg.BackoffMax, e.cfg.Interval = testBase, testMax, testInterval
	var err error
	if e.eng, err = engine.New(testutil.Logger(t).Named("engine"), e.cfg); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	e.run()
	return e, f, t0
}

// The back-off tests are not parallel: checkBackoff bounds the engine's
// passes by the time elapsed, which other tests beside them would skew.

// step is the n-th step of the test back-off (n ≥ 1), without its jitter.
func step(n int) time.Duration {
	d := testBase
	for i := 1; i < n; i++ {
		d = min(2*d, testMax)
	}
	return d
}

// checkBackoff: each attempt (a call of method, one per attempt) came at
// least a back-off step after the one before (exact, as the jitter only
// adds), so no more attempts were made than steps fit in the time; and the
// passes (List calls, one per pass, less those of the attempts) since t0
// are bounded by its ticks and the attempts: a failure makes no pass.
func checkBackoff(t *testing.T, f *faulty, method string, t0 time.Time, listsPerAttempt int) {
	t.Helper()
	// Read the passes first: every one they count was made by then.
	lists, nodes := len(f.times("List")), len(f.times("Nodes"))
	elapsed := time.Since(t0)
	at := f.times(method)
	passes := lists - listsPerAttempt*len(at)
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < step(i) {
			t.Errorf("attempt %d came %s after attempt %d, before the back-off step of %s", i+1, gap, i, step(i))
		}
	}
	steps, sum := 1, time.Duration(0)
	for sum+step(steps) <= at[len(at)-1].Sub(at[0]) {
		sum += step(steps)
		steps++
	}
	if len(at) > steps {
		t.Errorf("%d attempts in %s; %d back-off steps fit", len(at), at[len(at)-1].Sub(at[0]), steps)
	}
	// The ticks, the first pass, and the passes asked for by the
	// submission, its queueing, the events' subscription and a few
	// back-end events; then one pass per attempt at most (its back-off's
	// timer). A failure that asked for a pass would make hundreds.
	ticks := int(elapsed/testInterval) + 1
	const asked = 8
	if max := ticks + asked + len(at); passes > max {
		t.Errorf("%d passes in %s with %d attempts: more than %d ticks + %d asked + %d attempts", passes, elapsed,
			len(at), ticks, asked, len(at))
	}
	// The scheduler asks for the nodes before each attempt to start, and
	// not while the execution backs off.
	if nodes > len(at)+2 {
		t.Errorf("%d Nodes calls for %d attempts", nodes, len(at))
	}
	t.Logf("%d attempts, %d passes, %d Nodes calls in %s", len(at), passes, nodes, elapsed)
}

// waitAttempts waits for n attempts (calls of method).
func waitAttempts(t *testing.T, f *faulty, method string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d attempts", n), func() (bool, string) {
		k := len(f.times(method))
		return k >= n, fmt.Sprint(k)
	})
}

// waitReason waits for the execution's waiting reason to match re, and for
// its event.
func (e *env) waitReason(id int64, re string) string {
	e.t.Helper()
	rx := regexp.MustCompile(re)
	var reason string
	waitFor(e.t, "a waiting reason matching "+re, func() (bool, string) {
		reason = e.eng.WaitingReason(id)
		return rx.MatchString(reason), reason
	})
	waitFor(e.t, "its event", func() (bool, string) {
		evs, err := e.store.Events(e.t.Context(), id)
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range evs {
			if ev.From == ev.To && ev.Reason == "waiting: "+reason {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(evs))
	})
	return reason
}

// TestBackoffWorkspaceUnavailable: while the workspace plugin answers
// unavailable, the start is tried at the back-off's pace, not at once, with
// the reason shown; then it starts.
func TestBackoffWorkspaceUnavailable(t *testing.T) {
	e, f, t0 := newFaultyEnv(t)
	f.set("Prepare", "", fmt.Errorf(`workspace plugin "dir" is restarting: %w`, sdk.ErrUnavailable))
	ex := e.submit(zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}))
	waitAttempts(t, f, "Prepare", 5)
	checkBackoff(t, f, "Prepare", t0, 0)
	e.waitReason(ex.ID, `^retrying the start in \d+m?s: cannot prepare the workspace: workspace plugin "dir" is restarting: unavailable$`)
	if cur, err := e.store.GetExecution(t.Context(), ex.ID); err != nil || cur.Status != state.StatusQueued {
		t.Fatalf("while the workspace cannot be prepared: %s, %v", cur.Status, err)
	}

	f.set("Prepare", "", nil)
	e.waitStatus(ex.ID, state.StatusRunning)
	if r := e.eng.WaitingReason(ex.ID); r != "" {
		t.Errorf("running, with the waiting reason %q", r)
	}
}

// TestBackoffStartUnavailable: an essential service whose start fails
// transiently is started again at the back-off's pace; once the execution
// runs, its back-off is reset: an elastic service's failed restart waits
// the first step again.
func TestBackoffStartUnavailable(t *testing.T) {
	e, f, t0 := newFaultyEnv(t)
	unavailable := fmt.Errorf("the registry is down: %w", sdk.ErrUnavailable)
	f.set("Start", "main0-", unavailable)
	ex := e.submit(zappJSON(t, false, svc{name: "main", ess: 1, total: 2, monitor: true, env: forever()}))
	waitAttempts(t, f, "Start", 5)
	checkBackoff(t, f, "Start", t0, 0)
	e.waitReason(ex.ID, `^retrying the start in \d+m?s: service main0 could not start: the registry is down: unavailable$`)
	if cur, err := e.store.GetExecution(t.Context(), ex.ID); err != nil || cur.Status != state.StatusStarting {
		t.Fatalf("while main0 cannot start: %s, %v", cur.Status, err)
	}
	if s := e.services(ex.ID)["main0"]; s.Status != state.ServiceCreated {
		t.Errorf("main0 is %s, want created, to be placed again", s.Status)
	}

	f.set("Start", "main0-", nil)
	e.waitStatus(ex.ID, state.StatusRunning)
	waitFor(t, "main1 running", func() (bool, string) {
		s := e.services(ex.ID)["main1"]
		return s.Status == state.ServiceRunning, string(s.Status)
	})

	// Reset: the elastic main1 dies and cannot start again; the first
	// failure since the success waits the first step, 50 to 75 ms.
	f.set("Start", "main1-", unavailable)
	if err := e.ctl.Kill(t.Context(), containerName(ex.ID, "main1")); err != nil {
		t.Fatal(err)
	}
	e.waitReason(ex.ID, `^retrying the start in [5-8]0ms: service main1 could not start: `)
	f.set("Start", "main1-", nil)
	waitFor(t, "main1 replaced", func() (bool, string) {
		s := e.services(ex.ID)["main1"]
		return s.Status == state.ServiceRunning && s.RestartCount == 1, fmt.Sprintf("%s %d", s.Status, s.RestartCount)
	})
	waitFor(t, "no waiting reason", func() (bool, string) { r := e.eng.WaitingReason(ex.ID); return r == "", r })
}

// TestBackoffCleanup: a network that cannot be removed makes the clean-up
// back off; then the execution ends.
func TestBackoffCleanup(t *testing.T) {
	e, f, _ := newFaultyEnv(t)
	ex := e.submit(zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}))
	e.waitStatus(ex.ID, state.StatusRunning)
	f.set("RemoveNetwork", "", errors.New("the network is stuck"))
	t0 := time.Now()
	f.set("List", "", nil) // the passes from now on
	f.set("Nodes", "", nil)
	if _, err := e.eng.Terminate(t.Context(), ex.ID, "done"); err != nil {
		t.Fatal(err)
	}
	waitAttempts(t, f, "RemoveNetwork", 5)
	checkBackoff(t, f, "RemoveNetwork", t0, 1)
	e.waitReason(ex.ID, `^retrying the clean-up in \d+m?s: cannot remove the network: the network is stuck$`)
	if cur, err := e.store.GetExecution(t.Context(), ex.ID); err != nil || cur.Status != state.StatusCleaningUp {
		t.Fatalf("while the network cannot be removed: %s, %v", cur.Status, err)
	}

	f.set("RemoveNetwork", "", nil)
	e.waitStatus(ex.ID, state.StatusTerminated)
	e.platformEmpty()
	if r := e.eng.WaitingReason(ex.ID); r != "" {
		t.Errorf("terminated, with the waiting reason %q", r)
	}
}

// TestReplacementsBackOff: an elastic service that keeps ending soon after
// it starts is replaced after the back-off's steps, and after
// ReplaceLimit ends in a row no more; the rest of its execution runs on.
func TestReplacementsBackOff(t *testing.T) {
	e := newEnv(t, options{noEngine: true})
	e.cfg.BackoffBase, e.cfg.BackoffMax, e.cfg.ReplaceLimit = testBase, testMax, 3
	var err error
	if e.eng, err = engine.New(testutil.Logger(t).Named("engine"), e.cfg); err != nil {
		t.Fatal(err)
	}
	e.run()
	ex := e.submit(zappJSON(t, false,
		svc{name: "master", ess: 1, total: 1, monitor: true, env: forever()},
		svc{name: "crash", ess: 1, total: 2, env: forever()}))
	e.waitStatus(ex.ID, state.StatusRunning)
	// The elastic crash1 ends as soon as it runs, four times.
	for restarts := 0; restarts < 4; restarts++ {
		waitFor(t, fmt.Sprintf("crash1 running after %d restarts", restarts), func() (bool, string) {
			s := e.services(ex.ID)["crash1"]
			return s.Status == state.ServiceRunning && s.RestartCount == restarts, fmt.Sprintf("%s, %d restarts", s.Status, s.RestartCount)
		})
		if err := e.ctl.Kill(t.Context(), containerName(ex.ID, "crash1")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "crash1 given up", func() (bool, string) {
		s := e.services(ex.ID)["crash1"]
		return s.Status == state.ServiceStopped, fmt.Sprintf("%s, %d restarts", s.Status, s.RestartCount)
	})
	evs, err := e.store.Events(t.Context(), ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, ev := range evs {
		if ev.ServiceName == "crash1" && ev.To == string(state.ServiceCreated) && ev.From == string(state.ServiceStopped) || ev.ServiceName == "crash1" && strings.Contains(ev.Reason, "not replaced") {
			reasons = append(reasons, ev.Reason)
		}
	}
	// Each wait is a step (50 ms, 100 ms, 200 ms) plus up to half of it.
	want := []string{
		`^elastic service exited with code 137; replacing it in (5\d|6\d|7[0-5])ms \(restart 1\)$`,
		`^elastic service exited with code 137; replacing it in (1[0-4]\d|150)ms \(restart 2\)$`,
		`^elastic service exited with code 137; replacing it in (2\d\d|300)ms \(restart 3\)$`,
		`^exited with code 137; not replaced: it ended 4 times in a row, each within 10m of being replaced$`,
	}
	if len(reasons) != len(want) {
		t.Fatalf("crash1's reasons:\n%s", strings.Join(reasons, "\n"))
	}
	for i, re := range want {
		if !regexp.MustCompile(re).MatchString(reasons[i]) {
			t.Errorf("reason %d: %q, want %s", i, reasons[i], re)
		}
	}
	time.Sleep(3 * testMax)
	if n := e.startsOf(containerName(ex.ID, "crash1")); n != 4 {
		t.Errorf("crash1 started %d times after it was given up", n)
	}
	if cur, _ := e.store.GetExecution(t.Context(), ex.ID); cur.Status != state.StatusRunning {
		t.Errorf("the execution is %s", cur.Status)
	}
	if s := e.services(ex.ID)["master0"]; s.Status != state.ServiceRunning {
		t.Errorf("master0 is %s", s.Status)
	}
}
