// Package engine is Zoe's lifecycle engine, the only writer of the states of
// executions and services. It is level-based and idempotent, in the manner
// of a Kubernetes controller: every pass reads the store and the back-end
// and moves each execution one step towards where it should be; Submit,
// Terminate and the back-end's events only make the next pass come sooner.
//
// # A pass
//
//  1. Reconcile: the store's services are compared with the back-end's List.
//     A running service that the back-end reports exited, or that it no
//     longer knows (after Recover failed), has died: an essential one ends
//     its execution, an elastic one is removed and put back to created with
//     its restart count increased, so that the scheduler places it again. A
//     service left starting by a daemon that died is adopted when the
//     back-end has it and made created again when it does not, so nothing is
//     started twice (container names are unique in a deployment). This
//     store's containers (LabelStore) of executions that are not active are
//     orphans and removed; another store's, and unlabelled ones from before
//     store labels, are left alone (see ownership.go). A back-end that
//     cannot be listed is said once, and again when it answers: its
//     executions are kept as they are, and queued ones wait with the
//     reason.
//  2. Lifecycle: submitted executions are checked again and queued (or
//     fail), to be scheduled in the same pass; executions cleaning up are
//     cleaned up by a worker (every container stopped with a grace period
//     and removed, the network removed, then terminated, or error when the
//     execution has an error message), and running executions past their
//     owner's run-time limit are terminated.
//  3. Scheduling: queued executions, executions left starting, and running
//     executions with elastic services to place go to scheduler.Schedule
//     with the back-end's nodes; each execution with services to start gets
//     a worker that prepares the owner's workspace, creates the network and
//     starts the services one startup_order after the other, the services of
//     one order placed together (one PlaceServices) and started in
//     parallel. Why every queued execution waits is recorded as a
//     queued→queued event when it changes, and kept for WaitingReason.
//
// Executions backing off (below) are skipped by both: neither cleaned up
// nor placed.
//
// # Failures and back-off
//
// A worker whose attempt fails in a way worth trying again (a plugin
// unavailable, the auth source unable to confirm the owner, a transient
// error of the back-end, the store failing) does not make a pass: its
// execution backs off, the way controller-runtime requeues a failing
// object. The next attempt is due after Config.BackoffBase (1 s), doubled
// after each further failure in a row up to Config.BackoffMax (5 min), plus
// a jitter of up to half of it that never shortens it; a timer then asks for
// the pass that makes it. Until then the passes skip the execution. The
// reason, such as "retrying the start in 8s: cannot prepare the workspace:
// ...", is the execution's WaitingReason and an event (queued→queued,
// starting→starting, running→running or cleaning_up→cleaning_up) once per
// attempt. An attempt that succeeds (the services started, the clean-up
// done) ends the back-off. A failure that trying again cannot mend (the
// back-end refuses an essential service, the workspace cannot be prepared
// for good) ends the execution in error instead.
//
// An elastic service that ends is replaced after the same back-off, counted
// per service: its n-th end in a row, each within ReplaceWindow of the
// moment its replacement was due (or of the first, the first time), waits
// the n-th step. After ReplaceLimit such ends in a row it is not replaced
// again: it stays stopped, the reason says why, and the rest of its
// execution goes on. Without this, a worker that exits at once (a bad
// command, an image that crashes) was replaced every second for as long as
// its execution ran, each time four events and a container.
//
// A back-end's sdk.ErrConflict is such a failure, like any other category;
// only the store's sdk.ErrConflict, when the execution's status changed
// under a worker, means that the execution ended meanwhile. A back-end's
// sdk.ErrAlreadyExists on Start is a start whose answer was lost: the
// service is adopted.
//
// # Descriptions and ids
//
// The store needs the services when it creates the execution, but their DNS
// names and environment depend on the execution id the store assigns, and
// the owner's uid and gid (ZOE_UID, ZOE_GID) are only known when it starts.
// The ZApp is therefore expanded once, at submission, by zapp.Instances:
// each service's instance is stored with all that does not depend on the
// execution (what the scheduler needs: image, resources, labels, ports,
// order; the command; the environment as written). The start worker
// completes the stored instance with zapp.Bind, a pure function of it and
// of the execution's id, name, owner and ids, which adds the DNS name,
// resolves the environment's templates and adds Zoe's variables; it is
// tested to give what a whole expansion gives. The command is split into
// words by zapp.SplitCommand, with a shell's quoting but no shell. The
// secret of an instance with a proxied port (ZOE_PROXY_TOKEN, which the
// proxy presents to it) is random, so it is made at submission too and
// stored with the instance: every start of the instance, after a restart
// of the daemon or an adoption, binds the token its container has.
//
// # Where an execution ends
//
// An execution ends terminated unless it has an error message: a service
// that could not start, a batch ZApp (will_end) whose essential service
// exited with a non-zero code (the code is recorded), a workspace that
// could not be prepared. An essential service of an interactive ZApp that
// dies ends the execution terminated, with the reason in its events.
//
// # Networks
//
// Each execution has a network named zoe-<deployment>-<id>. The back-end's
// id of it is recorded in the execution as soon as CreateNetwork returns,
// before any service is started on it, so that the clean-up of a daemon
// that restarted removes it: with the execution's move from queued to
// starting, in the same transaction (state.ExecutionChange.NetworkID), or
// alone (state.Store.SetNetwork) for an execution that is starting already.
// When that write is refused the engine removes the network again.
//
// One window remains: a daemon that dies after the back-end created the
// network and before the store recorded its id leaves a network no one
// knows the id of. The next start of the execution finds the network name
// taken (sdk.ErrAlreadyExists) and cannot remove the network without its
// id (the back-end interface has no way to look a network up by name), so
// it creates another one with a unique suffix and logs the name of the one
// it leaves behind, which an operator removes on the back-end.
package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/logs"
	"github.com/zoe-project/zoe/core/policy"
	"github.com/zoe-project/zoe/core/scheduler"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/workspace"
)

// Backend is what the engine asks of the back-end plugin
// (pluginhost.Backend in the daemon).
type Backend interface {
	Nodes(ctx context.Context) ([]backend.Node, error)
	CreateNetwork(ctx context.Context, spec backend.NetworkSpec) (string, error)
	RemoveNetwork(ctx context.Context, id string) error
	Start(ctx context.Context, spec backend.ServiceSpec) (backend.ServiceStatus, error)
	Stop(ctx context.Context, h backend.Handle, grace time.Duration) error
	Remove(ctx context.Context, h backend.Handle, force bool) error
	Recover(ctx context.Context, h backend.Handle) (backend.ServiceStatus, error)
	List(ctx context.Context, opts backend.ListOptions) ([]backend.ServiceStatus, error)
	Events(ctx context.Context) (<-chan backend.Event, error)
	Logs(ctx context.Context, h backend.Handle, opts backend.LogOptions) (<-chan backend.LogEntry, error)
}

// Workspace prepares users' workspaces (pluginhost.Workspace in the daemon).
type Workspace interface {
	Prepare(ctx context.Context, u workspace.User) (workspace.Mount, error)
}

// Identities gives an execution's owner as the auth source has them now
// (the API server in the daemon): the role, uid and gid a start is
// admitted with. Current wraps sdk.ErrNotFound when no source knows the
// user any more, and another error (sdk.ErrUnavailable) when none can
// confirm them within the API's bound now; the start then waits.
type Identities interface {
	Current(ctx context.Context, username string) (state.User, error)
}

// OwnerGone is the error of an execution whose owner the auth source no
// longer knows.
const OwnerGone = "the owner no longer exists at the authentication source"

// OwnerDisabled is the error of an execution whose owner an admin disabled
// before it started.
const OwnerDisabled = "the owner is disabled"

// Config is what the engine needs.
type Config struct {
	Store      state.Store
	Backend    Backend
	Workspace  Workspace
	Deployment string
	Policy     scheduler.Policy
	Placement  scheduler.Placement
	Backfill   bool
	// CanPull tells the scheduler that the back-end pulls missing images;
	// a back-end that cannot refuses the start and the execution fails.
	CanPull bool
	// Limits are the per-service limits descriptions are validated against.
	Limits zapp.Limits
	// Containers is the container policy, applied at submission and again
	// before every start; its zero value is the strictest.
	Containers policy.Policy
	// PidsLimit is every service's process limit (containers.pids_limit):
	// 0 is the back-end's default, backend.DefaultPidsLimit; -1 none.
	PidsLimit int64
	// Identities, when not nil, gives the owner's current identity before
	// every start; nil: the store's row of the owner serves (tests).
	Identities Identities
	// ProxyBase prefixes the proxy paths of the services' ports.
	ProxyBase string
	// StopGrace is how long a service has to stop before it is killed;
	// default 10 s.
	StopGrace time.Duration
	// Interval between passes when nothing happens; default 1 s. Run-time
	// limits are enforced with this precision.
	Interval time.Duration
	// Logs keeps the services' output; nil: it is not kept.
	Logs *logs.Store
	// LogDrain bounds the wait for the rest of an ended service's output
	// before its container is removed; default 10 s.
	LogDrain time.Duration
	// StoreID is the store's identity (state.Store.Identity), which labels
	// what the engine creates (LabelStore); "": the engine reads it from
	// the store before its first pass.
	StoreID string
	// BackoffBase is how long an execution whose start or clean-up failed
	// waits before the next attempt, doubled after each further failure
	// up to BackoffMax, plus up to half of it at random; defaults 1 s and
	// 5 min.
	BackoffBase, BackoffMax time.Duration
	// ReplaceLimit is how many times in a row an elastic service may end
	// soon after it was replaced before it is no longer replaced; default
	// 10. ReplaceWindow is that "soon"; default 10 minutes.
	ReplaceLimit  int
	ReplaceWindow time.Duration
}

// Labels the engine puts on every container; LabelDeployment, LabelExecution,
// LabelOwner and LabelStore on every network too.
const (
	LabelDeployment = "zoe.deployment"
	LabelExecution  = "zoe.execution"
	LabelService    = "zoe.service"
	LabelOwner      = "zoe.owner"
	// LabelStore is the identity of the store whose engine created it
	// (see ownership.go).
	LabelStore = "zoe.store"
)

// Engine runs executions. Create it with New and call Run.
type Engine struct {
	cfg   Config
	log   hclog.Logger
	wake  chan struct{}
	ready chan struct{} // closed once Run started
	// runCtx is Run's context, the parent of the workers'.
	runCtx context.Context
	// recoverAll asks the next reconciliation to Recover every stored
	// handle: the back-end plugin (or the daemon) has restarted.
	recoverAll atomic.Bool
	wg         sync.WaitGroup

	mu      sync.Mutex
	workers map[int64]*worker
	// workersGen changes whenever a worker is spawned or ends.
	workersGen uint64
	// waiting is why each queued execution waits; waitingVersion counts
	// its changes (see WaitingVersion). Both change in setWaiting only.
	waiting        map[int64]string
	waitingVersion uint64
	dyn            map[int64]dynState
	held           *scheduler.Hold
	collectors     map[logKey]*collector
	// retries are the executions backing off after a failed attempt.
	retries map[int64]*retry
	// ends are the elastic services (by id) that ended, with their
	// replacement's back-off.
	ends    map[int64]*ends
	backOff backOff
	// insts are the decoded instances of the active services.
	insts instances
	// recoverFailed is the error of each service whose Recover failed on
	// the last pass (by id), so that it is logged once; used by the pass
	// only.
	recoverFailed map[int64]string
	// last is the last snapshot read, kept by read; used by the pass only.
	last *snapshot
	// storeID is the store's identity (Config.StoreID), read once; see
	// identity.
	storeID string
	// watch is what the pass has reported about the back-end and the
	// deployment's other owners; used by the pass only.
	watch watch
	// nodes is the back-end's node list as last read for a submission's
	// fit check, and when; under mu (see configuredNodes).
	nodes   []backend.Node
	nodesAt time.Time
}

type worker struct {
	cancel  context.CancelFunc
	cleanup bool
	// placed is the node of each service (by id) a start worker was given:
	// until the service's row says where it starts, the scheduler counts
	// it there, or a pass could give the same room to another execution.
	placed map[int64]string
}

type dynState struct {
	size      int64
	lastTried time.Time
}

// New checks the configuration and returns an engine.
func New(log hclog.Logger, cfg Config) (*Engine, error) {
	if cfg.Store == nil || cfg.Backend == nil || cfg.Workspace == nil {
		return nil, fmt.Errorf("engine: store, back-end and workspace are required: %w", sdk.ErrInvalidArgument)
	}
	if cfg.Deployment == "" {
		return nil, fmt.Errorf("engine: no deployment name: %w", sdk.ErrInvalidArgument)
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 10 * time.Second
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.LogDrain <= 0 {
		cfg.LogDrain = 10 * time.Second
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 5 * time.Minute
	}
	if cfg.ReplaceLimit <= 0 {
		cfg.ReplaceLimit = 10
	}
	if cfg.ReplaceWindow <= 0 {
		cfg.ReplaceWindow = 10 * time.Minute
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	cfg.Store = WithLifeLog(log, cfg.Store)
	return &Engine{
		cfg: cfg, log: log, storeID: cfg.StoreID, wake: make(chan struct{}, 1), ready: make(chan struct{}),
		workers: map[int64]*worker{}, waiting: map[int64]string{},
		dyn: map[int64]dynState{}, collectors: map[logKey]*collector{}, retries: map[int64]*retry{},
		ends:    map[int64]*ends{},
		backOff: backOff{base: cfg.BackoffBase, limit: cfg.BackoffMax, jitter: rand.Float64},
	}, nil
}

// Run carries out passes until ctx ends, then waits for its workers. The
// services keep running: the next Run takes them back.
func (e *Engine) Run(ctx context.Context) error {
	e.runCtx = ctx
	e.recoverAll.Store(true)
	close(e.ready)
	e.wg.Go(func() { e.watchEvents(ctx) })
	tick := time.NewTicker(e.cfg.Interval)
	defer tick.Stop()
	for {
		if err := e.pass(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("pass failed; trying again", "error", err)
		}
		select {
		case <-ctx.Done():
			e.wg.Wait()
			return nil
		case <-e.wake:
		case <-tick.C:
		}
	}
}

// Trigger asks for a pass soon.
func (e *Engine) Trigger() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// WaitingReason says why a queued execution waits, "" when it does not or
// the engine has not tried it yet.
func (e *Engine) WaitingReason(id int64) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.waiting[id]
}

// WaitingVersion changes whenever a waiting reason does, so that answers
// showing the reasons may be kept while it stays.
func (e *Engine) WaitingVersion() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.waitingVersion
}

// setWaiting records why execution id waits ("": it no longer does); e.mu
// is held.
func (e *Engine) setWaiting(id int64, reason string) {
	if old, ok := e.waiting[id]; ok && old == reason || !ok && reason == "" {
		return
	}
	if reason == "" {
		delete(e.waiting, id)
	} else {
		e.waiting[id] = reason
	}
	e.waitingVersion++
}

// watchEvents subscribes to the back-end's events, again whenever the
// stream closes (the plugin restarted, or the stream broke), and turns
// every event into a pass. After a new subscription the next pass recovers
// every stored handle.
func (e *Engine) watchEvents(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		ch, err := e.cfg.Backend.Events(ctx)
		if err != nil {
			e.log.Debug("cannot subscribe to the back-end's events; trying again", "error", err, "in", backoff)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		e.recoverAll.Store(true)
		e.Trigger()
		for ev := range ch {
			e.log.Debug("back-end event", "kind", ev.Kind, "service", ev.ServiceName, "code", ev.ExitCode, "message", ev.Message)
			if ev.Kind != backend.EventImagePull {
				e.Trigger()
			}
		}
		if ctx.Err() == nil {
			e.log.Info("the back-end's event stream closed; subscribing again")
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// spawn runs f as the execution's only worker, unless it has one. It is
// called by the pass only, so a worker cannot be spawned twice. A worker
// that ends makes the next pass come at once, unless it failed (returned
// an error, and was not cancelled): the execution then backs off, and the
// pass that makes the next attempt comes when the back-off ends. A worker
// that succeeds ends the back-off.
func (e *Engine) spawn(id int64, cleanup bool, placed map[int64]string, f func(ctx context.Context) error) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.workers[id] != nil {
		return false
	}
	ctx, cancel := context.WithCancel(e.runCtx)
	w := &worker{cancel: cancel, cleanup: cleanup, placed: placed}
	e.workers[id] = w
	e.workersGen++
	e.wg.Go(func() {
		err := f(ctx)
		cancelled := ctx.Err() != nil
		cancel()
		e.mu.Lock()
		if e.workers[id] == w {
			delete(e.workers, id)
		}
		e.workersGen++
		// With the worker's removal, or a pass in between would try again
		// at once.
		var reason string
		switch {
		case cancelled:
		case err != nil:
			reason = e.backOffLocked(id, cleanup, err)
		default:
			e.dropRetry(id)
		}
		e.mu.Unlock()
		if reason != "" {
			e.recordRetry(context.WithoutCancel(ctx), id, cleanup, reason, err)
			return
		}
		e.Trigger()
	})
	return true
}

// backOffLocked starts or lengthens the back-off of an execution whose
// worker failed with err: its next attempt is due after the delay, when a
// timer asks for a pass; until then passes skip it. It returns the
// execution's waiting reason, which it sets. e.mu is held.
func (e *Engine) backOffLocked(id int64, cleanup bool, err error) string {
	r := e.retries[id]
	if r != nil && r.cleanup != cleanup {
		e.dropRetry(id)
		r = nil
	}
	if r == nil {
		r = &retry{cleanup: cleanup}
		e.retries[id] = r
	}
	r.failures++
	d := e.backOff.delay(r.failures)
	r.due = time.Now().Add(d)
	if r.timer != nil {
		r.timer.Stop()
	}
	r.timer = time.AfterFunc(d, e.Trigger)
	reason := retryReason(cleanup, d, err)
	e.setWaiting(id, reason)
	return reason
}

// recordRetry logs a failed attempt and records reason as an event of the
// execution, once per attempt: the back-off bounds how many.
func (e *Engine) recordRetry(ctx context.Context, id int64, cleanup bool, reason string, err error) {
	e.log.Warn("an attempt failed; backing off", "execution", id, "cleanup", cleanup, "reason", reason, "error", err)
	ex, err := e.cfg.Store.GetExecution(ctx, id)
	if err != nil || (ex.Status == state.StatusCleaningUp) != cleanup || !ex.Status.Active() {
		return
	}
	_, err = e.cfg.Store.Transition(ctx, id, []state.Status{ex.Status}, ex.Status,
		state.ExecutionChange{Reason: "waiting: " + reason})
	e.logTransition(id, err)
}

// backingOff tells whether the execution's start (or clean-up) is backing
// off at now; a back-off of the other kind is dropped, as the execution
// has moved on (a start that failed, then a Terminate).
func (e *Engine) backingOff(id int64, cleanup bool, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.retries[id]
	if r == nil {
		return false
	}
	if r.cleanup != cleanup {
		e.dropRetry(id)
		e.setWaiting(id, "")
		return false
	}
	return now.Before(r.due)
}

// dropRetry ends an execution's back-off; e.mu is held.
func (e *Engine) dropRetry(id int64) {
	if r := e.retries[id]; r != nil {
		if r.timer != nil {
			r.timer.Stop()
		}
		delete(e.retries, id)
	}
}

func (e *Engine) busy(id int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.workers[id] != nil
}

// stopStarting cancels the execution's start worker, if any.
func (e *Engine) stopStarting(id int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if w := e.workers[id]; w != nil && !w.cleanup {
		w.cancel()
	}
}

// Terminate ends an execution in any active state; for one cleaning up it
// does nothing. Starts in progress are cancelled: the status changes first
// (compare-and-set), so a start that finishes afterwards cannot make the
// execution run. An inactive execution is refused with sdk.ErrConflict.
func (e *Engine) Terminate(ctx context.Context, id int64, reason string) (state.Execution, error) {
	if reason == "" {
		reason = "terminated"
	}
	ex, err := e.cfg.Store.Transition(ctx, id,
		[]state.Status{state.StatusSubmitted, state.StatusQueued, state.StatusStarting, state.StatusRunning},
		state.StatusCleaningUp, state.ExecutionChange{Reason: reason})
	if errors.Is(err, sdk.ErrConflict) {
		cur, gerr := e.cfg.Store.GetExecution(ctx, id)
		if gerr == nil && cur.Status == state.StatusCleaningUp {
			return cur, nil
		}
		if gerr == nil {
			return cur, fmt.Errorf("execution %d is %s, not active: %w", id, cur.Status, sdk.ErrConflict)
		}
	}
	if err != nil {
		return ex, fmt.Errorf("terminate execution %d: %w", id, err)
	}
	e.stopStarting(id)
	e.Trigger()
	return ex, nil
}

// end moves an active execution to cleaning up with c, the way Terminate
// does, from within the engine.
func (e *Engine) end(ctx context.Context, id int64, c state.ExecutionChange) {
	_, err := e.cfg.Store.Transition(ctx, id,
		[]state.Status{state.StatusSubmitted, state.StatusQueued, state.StatusStarting, state.StatusRunning},
		state.StatusCleaningUp, c)
	if err != nil && !errors.Is(err, sdk.ErrConflict) {
		e.log.Warn("cannot end execution", "execution", id, "reason", c.Reason, "error", err)
		return
	}
	e.stopStarting(id)
	e.Trigger()
}

// Recheck applies the container policy to the active executions of owner
// again, for their role now: an execution the policy no longer allows
// them (a host path of a role they lost) ends in error with the reason.
// Queued ones are checked again anyway when they start. It returns how
// many ended.
func (e *Engine) Recheck(ctx context.Context, owner string, role auth.Role) (int, error) {
	execs, err := e.cfg.Store.ActiveExecutions(ctx)
	if err != nil {
		return 0, fmt.Errorf("check the executions of %q again: %w", owner, err)
	}
	n := 0
	for _, ex := range execs {
		if ex.Owner != owner || ex.Status == state.StatusCleaningUp {
			continue
		}
		err := e.admit(ex, state.User{Username: owner, Role: role}, workspace.Mount{})
		if err == nil {
			continue
		}
		msg := "the owner's role is now " + string(role) + ": " + err.Error()
		e.end(ctx, ex.ID, state.ExecutionChange{Reason: msg, ErrorMessage: &msg})
		e.log.Warn("an execution the container policy no longer allows its owner ended", "execution", ex.ID,
			"owner", owner, "role", string(role))
		n++
	}
	return n, nil
}

// EndOwner ends every active execution of owner in error with reason (a
// user the auth source no longer knows runs nothing more); it says how
// many it ended.
func (e *Engine) EndOwner(ctx context.Context, owner, reason string) (int, error) {
	execs, err := e.cfg.Store.ActiveExecutions(ctx)
	if err != nil {
		return 0, fmt.Errorf("end the executions of %q: %w", owner, err)
	}
	n := 0
	for _, ex := range execs {
		if ex.Owner != owner || ex.Status == state.StatusCleaningUp {
			continue
		}
		msg := reason
		e.end(ctx, ex.ID, state.ExecutionChange{Reason: reason, ErrorMessage: &msg})
		n++
	}
	return n, nil
}
