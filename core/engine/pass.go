package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zoe-project/zoe/core/scheduler"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// snapshot is the store's active executions with their services.
type snapshot struct {
	execs []state.Execution
	svcs  map[int64][]state.Service
	// workers are the executions with a worker when the snapshot was
	// taken, with the nodes given to each start worker (worker.placed). A
	// worker that ends while the pass runs has changed rows the snapshot
	// shows as they were: its execution counts as busy until the next
	// pass, or its services could be started twice.
	workers map[int64]map[int64]string
	// version is the store's version read before the snapshot (valid
	// when versionOK), and workersGen Engine.workersGen with workers.
	version    uint64
	versionOK  bool
	workersGen uint64
}

// busySince tells whether the execution has a worker, or had one when the
// snapshot was taken.
func (e *Engine) busySince(s *snapshot, id int64) bool {
	_, had := s.workers[id]
	return had || e.busy(id)
}

// read takes a snapshot of the store. The last one serves again when
// nothing changed since: neither the store's version (read before it, so a
// write made while it was read changes it) nor the workers (which the
// snapshot also holds). Under load this saves nothing; idle, with many
// running services, it saves reading them all on every pass. It is the
// pass's alone (Engine.last).
func (e *Engine) read(ctx context.Context) (*snapshot, error) {
	// Before the store: see snapshot.workers.
	e.mu.Lock()
	gen := e.workersGen
	var workers map[int64]map[int64]string
	if e.last == nil || e.last.workersGen != gen {
		workers = make(map[int64]map[int64]string, len(e.workers))
		for id, w := range e.workers {
			workers[id] = w.placed
		}
	}
	e.mu.Unlock()
	v, ok := e.cfg.Store.Version(ctx)
	if last := e.last; ok && last != nil && last.versionOK && last.version == v && last.workersGen == gen {
		return last, nil
	}
	if workers == nil {
		workers = e.last.workers
	}
	e.last = nil
	execs, err := e.cfg.Store.ActiveExecutions(ctx)
	if err != nil {
		return nil, err
	}
	// After the executions: one submitted in between has services here
	// and waits for the next pass; one that ended in between has none
	// here, and no containers either (cleaning up ends once they are
	// removed).
	svcs, err := e.cfg.Store.ActiveServices(ctx)
	if err != nil {
		return nil, err
	}
	e.last = &snapshot{execs: execs, svcs: svcs, workers: workers, version: v, versionOK: ok, workersGen: gen}
	return e.last, nil
}

func (e *Engine) pass(ctx context.Context) error {
	// Before anything is created: it is labelled with it.
	storeID, err := e.identity(ctx)
	if err != nil {
		return err
	}
	snap, err := e.read(ctx)
	if err != nil {
		return err
	}
	// List after reading the store: every service the store says runs was
	// started before the List, so its absence means it is gone.
	listed, err := e.cfg.Backend.List(ctx, backend.ListOptions{})
	down := err != nil
	if down {
		e.backendDown(snap, err)
	} else {
		e.backendUp(snap)
		if e.reconcile(ctx, snap, storeID, listed) {
			if snap, err = e.read(ctx); err != nil {
				return err
			}
		}
	}
	e.insts.keep(snap.execs)
	e.lifecycle(ctx, snap)
	if down {
		// Nothing can be placed on a back-end that does not answer
		// (Nodes fails too): the queued executions wait, with the reason.
		return nil
	}
	return e.schedule(ctx, snap)
}

// reconcile compares the store with the back-end's services and carries
// out what decideReconcile decides; it says whether it changed anything.
func (e *Engine) reconcile(ctx context.Context, snap *snapshot, storeID string, listed []backend.ServiceStatus) bool {
	in := &reconcileInput{execs: snap.execs, svcs: snap.svcs, busy: make(map[int64]bool, len(snap.execs)),
		listed: listed, store: storeID, recoverAll: e.recoverAll.Swap(false), name: e.containerName, following: e.following}
	for _, ex := range snap.execs {
		in.busy[ex.ID] = e.busySince(snap, ex.ID)
	}
	acts, needs := decideReconcile(in, nil)
	if len(needs) == 0 {
		e.recoverFailed = nil
	} else {
		recovered := make(map[int64]recovery, len(needs))
		failed := make(map[int64]string, len(e.recoverFailed))
		for _, r := range needs {
			st, err := e.cfg.Backend.Recover(ctx, toBackendHandle(r.sv.Handle))
			if err != nil && !errors.Is(err, sdk.ErrNotFound) {
				// Asked again on every pass: said once, and again when
				// the answer changes.
				failed[r.sv.ID] = err.Error()
				if prev, ok := e.recoverFailed[r.sv.ID]; !ok || prev != err.Error() {
					e.log.Warn("cannot recover a service; trying again on every pass", "execution", r.ex.ID,
						"service", r.sv.Name, "error", err)
				}
			}
			recovered[r.sv.ID] = recovery{st: st, err: err}
		}
		e.recoverFailed = failed
		acts, _ = decideReconcile(in, recovered)
	}
	e.reportOwners(acts)
	changed := false
	for _, a := range acts {
		changed = changed || a.changes()
		switch a.kind {
		case actDied:
			e.died(ctx, a.ex, a.sv, a.st)
		case actAdopt:
			e.adopt(ctx, a.ex, a.sv, a.st)
		case actCollect:
			e.collect(logKey{a.ex.ID, a.sv.Name}, a.handle)
		case actReset:
			e.reset(ctx, a.sv, a.reason)
		case actRemove:
			e.removeOrphan(ctx, a)
		}
	}
	return changed
}

// removeOrphan removes a container of this store that the store does not
// know (decideReconcile leaves other stores' and unlabelled ones alone).
func (e *Engine) removeOrphan(ctx context.Context, a action) {
	if a.unlessActive != 0 {
		if cur, err := e.cfg.Store.GetExecution(ctx, a.unlessActive); err == nil && cur.Status.Active() {
			return
		}
	}
	e.log.Info("removing a container this deployment's store does not know", "name", a.st.Name, "handle", a.st.Handle.ID)
	if err := e.cfg.Backend.Remove(ctx, a.st.Handle, true); err != nil && !errors.Is(err, sdk.ErrNotFound) {
		e.log.Warn("cannot remove an orphan container", "name", a.st.Name, "error", err)
	}
}

func toBackendHandle(h state.Handle) backend.Handle {
	return backend.Handle{ID: h.ID, Version: h.Version, State: h.Data}
}

func fromBackendHandle(h backend.Handle) state.Handle {
	return state.Handle{ID: h.ID, Version: h.Version, Data: h.State}
}

// adopt records a service the back-end runs as running.
func (e *Engine) adopt(ctx context.Context, ex state.Execution, sv state.Service, st backend.ServiceStatus) {
	in, err := e.insts.get(sv)
	if err != nil {
		e.log.Error("cannot adopt a service", "execution", ex.ID, "service", sv.Name, "error", err)
		return
	}
	// The node's address, from the list the fit check keeps for a few
	// seconds: a pass may adopt many services (their starts had not
	// returned yet), and a Nodes call each was a list of every pod of a
	// Kubernetes cluster each. A node not in it is asked for.
	nodes := e.configuredNodes(ctx)
	if !slices.ContainsFunc(nodes, func(n backend.Node) bool { return n.Name == st.Node }) {
		nodes, _ = e.cfg.Backend.Nodes(ctx)
	}
	if err := e.record(ctx, ex, sv, in, st, addresses(nodes), "adopted: the back-end runs it"); err != nil {
		e.log.Warn("cannot adopt a service", "execution", ex.ID, "service", sv.Name, "error", err)
	}
}

// reset makes a service created again, to be placed anew.
func (e *Engine) reset(ctx context.Context, sv state.Service, reason string) {
	empty := ""
	if _, err := e.cfg.Store.UpdateService(ctx, sv.ID, state.ServiceUpdate{Node: &empty, IP: &empty,
		Handle: &state.Handle{}}); err != nil {
		e.log.Warn("cannot reset a service", "service", sv.Name, "error", err)
		return
	}
	if _, err := e.cfg.Store.TransitionService(ctx, sv.ID,
		[]state.ServiceStatus{state.ServiceStarting, state.ServiceStopped}, state.ServiceCreated,
		state.ServiceChange{Reason: reason}); err != nil {
		e.log.Warn("cannot reset a service", "service", sv.Name, "error", err)
	}
}

// died handles a service that exited or vanished.
func (e *Engine) died(ctx context.Context, ex state.Execution, sv state.Service, st backend.ServiceStatus) {
	var what string
	code := st.ExitCode
	switch {
	case st.State == backend.ServiceVanished:
		what = "vanished"
	case st.OOMKilled:
		what = fmt.Sprintf("was OOM-killed (exit code %d)", code)
	default:
		what = fmt.Sprintf("exited with code %d", code)
	}
	bs := string(st.State)
	change := state.ServiceChange{Reason: what, BackendStatus: &bs}
	now := time.Now()
	var plan endPlan
	if !sv.Essential {
		plan = e.planEnd(sv.ID, now)
		if !plan.replace {
			change.Reason = fmt.Sprintf("%s; not replaced: it ended %d times in a row, each within %s of being replaced",
				what, plan.n, roundDelay(e.cfg.ReplaceWindow))
		}
	}
	if st.State != backend.ServiceVanished {
		change.ExitCode = &code
	}
	if _, err := e.cfg.Store.TransitionService(ctx, sv.ID,
		[]state.ServiceStatus{state.ServiceRunning, state.ServiceStarting}, state.ServiceStopped, change); err != nil {
		if !errors.Is(err, sdk.ErrConflict) {
			e.log.Warn("cannot record a service's end", "service", sv.Name, "error", err)
		}
		return
	}
	e.log.Info("service ended", "execution", ex.ID, "service", sv.Name, "essential", sv.Essential, "how", what)
	if !sv.Essential {
		e.commitEnd(sv.ID, now, plan)
	}
	if !sv.Essential && !plan.replace {
		e.log.Warn("elastic service not replaced: it keeps ending", "execution", ex.ID, "service", sv.Name)
		k := logKey{ex.ID, sv.Name}
		e.drain(k, toBackendHandle(sv.Handle), st.State != backend.ServiceVanished)
		return
	}
	if !sv.Essential {
		// Replaced: removed, then placed again by the scheduler; its
		// output is read to the end first, and the replacement's goes on
		// in the same log.
		k := logKey{ex.ID, sv.Name}
		e.drain(k, toBackendHandle(sv.Handle), st.State != backend.ServiceVanished)
		if st.State != backend.ServiceVanished && sv.Handle.ID != "" {
			if err := e.cfg.Backend.Remove(ctx, toBackendHandle(sv.Handle), true); err != nil && !errors.Is(err, sdk.ErrNotFound) {
				e.log.Warn("cannot remove a dead elastic service", "service", sv.Name, "error", err)
			}
		}
		restarts := sv.RestartCount + 1
		if _, err := e.cfg.Store.UpdateService(ctx, sv.ID, state.ServiceUpdate{RestartCount: &restarts}); err != nil {
			e.log.Warn("cannot count a restart", "service", sv.Name, "error", err)
			return
		}
		e.reset(ctx, sv, fmt.Sprintf("elastic service %s; replacing it in %s (restart %d)", what, roundDelay(plan.wait), restarts))
		return
	}
	c := state.ExecutionChange{Reason: fmt.Sprintf("essential service %s %s", sv.Name, what)}
	app, err := zapp.Decode(ex.Description)
	if err == nil && app.WillEnd {
		in, _ := e.insts.get(sv)
		switch {
		case st.State == backend.ServiceVanished:
			msg := c.Reason
			c.ErrorMessage = &msg
		case code != 0:
			msg := c.Reason
			c.ErrorMessage, c.ExitCode = &msg, &code
		case in.Monitor:
			c.ExitCode = &code
		}
	}
	e.end(ctx, ex.ID, c)
}

// lifecycle queues submitted executions (in snap too: see queue), cleans
// up those that end and enforces run-time limits.
func (e *Engine) lifecycle(ctx context.Context, snap *snapshot) {
	quotas := map[string]time.Duration{}
	now := time.Now()
	e.pruneRetries(snap)
	e.pruneEnds(snap)
	var submitted []int // indexes in snap.execs
	for i, ex := range snap.execs {
		switch ex.Status {
		case state.StatusSubmitted:
			submitted = append(submitted, i)
		case state.StatusCleaningUp:
			if e.backingOff(ex.ID, true, now) {
				continue
			}
			ex := ex
			if e.spawn(ex.ID, true, nil, func(ctx context.Context) error { return e.cleanup(ctx, ex) }) {
				e.mu.Lock()
				e.setWaiting(ex.ID, "")
				e.mu.Unlock()
			}
		case state.StatusRunning:
			if ex.StartedAt == nil {
				continue
			}
			limit, ok := quotas[ex.Owner]
			if !ok {
				q, err := e.cfg.Store.EffectiveQuota(ctx, ex.Owner)
				if err != nil {
					e.log.Warn("cannot read a quota", "user", ex.Owner, "error", err)
					continue
				}
				limit, quotas[ex.Owner] = q.RuntimeLimit, q.RuntimeLimit
			}
			if limit > 0 && now.Sub(*ex.StartedAt) >= limit {
				if _, err := e.Terminate(ctx, ex.ID, fmt.Sprintf("run-time limit of %s exceeded", limit)); err != nil {
					e.log.Warn("cannot enforce a run-time limit", "execution", ex.ID, "error", err)
				}
			}
		}
	}
	e.queue(ctx, snap, submitted)
}

// queue checks the submitted executions snap.execs[i] of each index i
// again and queues them, or ends them in error. The snapshot gets the
// executions as queued, so that this pass schedules them: it is what the
// store has now, the compare-and-set having succeeded. The transitions are
// made concurrently, so that the store commits them together.
func (e *Engine) queue(ctx context.Context, snap *snapshot, submitted []int) {
	if len(submitted) == 0 {
		return
	}
	// The snapshot changes: not to serve again (see read), though the
	// store's version changes too.
	e.last = nil
	var g errgroup.Group
	g.SetLimit(queueConcurrency)
	for _, i := range submitted {
		ex := snap.execs[i]
		g.Go(func() error {
			if _, err := zapp.Load(ex.Description, e.cfg.Limits); err != nil {
				msg := "the description is no longer valid: " + err.Error()
				_, err = e.cfg.Store.Transition(ctx, ex.ID, []state.Status{state.StatusSubmitted}, state.StatusError,
					state.ExecutionChange{Reason: msg, ErrorMessage: &msg, Ended: true})
				e.logTransition(ex.ID, err)
				return nil
			}
			queued, err := e.cfg.Store.Transition(ctx, ex.ID, []state.Status{state.StatusSubmitted}, state.StatusQueued,
				state.ExecutionChange{Reason: fmt.Sprintf("accepted: %d services", len(snap.svcs[ex.ID]))})
			e.logTransition(ex.ID, err)
			if err == nil {
				snap.execs[i] = queued
			}
			return nil
		})
	}
	_ = g.Wait() // the functions return nil
}

// queueConcurrency bounds the transitions queue makes at once: about what
// the store commits together (state's group commit takes 32).
const queueConcurrency = 32

// pruneRetries drops the back-offs of executions that are no longer
// active (ended otherwise than by their clean-up).
func (e *Engine) pruneRetries(snap *snapshot) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.retries) == 0 {
		return
	}
	active := make(map[int64]bool, len(snap.execs))
	for _, ex := range snap.execs {
		active[ex.ID] = true
	}
	for id := range e.retries {
		if !active[id] {
			e.dropRetry(id)
		}
	}
}

// logTransition logs a failed transition, unless the execution changed
// meanwhile (compare-and-set) or the engine stops (its context ended).
func (e *Engine) logTransition(id int64, err error) {
	if err != nil && !errors.Is(err, sdk.ErrConflict) && !errors.Is(err, context.Canceled) {
		e.log.Warn("transition failed", "execution", id, "error", err)
	}
}

func addresses(nodes []backend.Node) map[string]string {
	out := make(map[string]string, len(nodes))
	for _, n := range nodes {
		out[n.Name] = n.Address
	}
	return out
}

// schedule runs the scheduler over the executions that wait for services
// and gives each execution with services to start a worker.
func (e *Engine) schedule(ctx context.Context, snap *snapshot) error {
	type entry struct {
		ex   state.Execution
		svcs []state.Service // parallel to the scheduler's Services
	}
	entries := map[int64]*entry{}
	in := &scheduler.Input{Now: time.Now(), Policy: e.cfg.Policy, Placement: e.cfg.Placement,
		Backfill: e.cfg.Backfill, CanPull: e.cfg.CanPull, Seed: uint64(time.Now().UnixNano())}
	e.mu.Lock()
	in.Held = e.held
	e.mu.Unlock()
	type use struct {
		cores      float64
		memory     int64
		containers int
	}
	uses := map[string]*use{}
	account := func(node string, in zapp.Instance, pending bool) {
		u := uses[node]
		if u == nil {
			u = &use{}
			uses[node] = u
		}
		u.containers++
		if pending {
			// Not yet counted by the back-end.
			u.cores += in.Cores
			u.memory += in.MemoryReservation
		}
	}
	for _, ex := range snap.execs {
		if ex.Status == state.StatusCleaningUp || ex.Status == state.StatusSubmitted {
			continue
		}
		busy := e.busySince(snap, ex.ID)
		placed := snap.workers[ex.ID]
		var svcs []scheduler.Service
		var rows []state.Service
		waits := false
		for _, sv := range snap.svcs[ex.ID] {
			inst, err := e.insts.get(sv)
			if err != nil {
				e.log.Error("bad stored service", "execution", ex.ID, "error", err)
				continue
			}
			node := ""
			switch sv.Status {
			case state.ServiceRunning:
				node = sv.Node
				account(node, inst, false)
			case state.ServiceStarting:
				node = sv.Node
				account(node, inst, sv.Handle.ID == "")
			case state.ServiceCreated:
				if n, ok := placed[sv.ID]; ok {
					// Handed to a start worker after this pass's
					// snapshot was taken: neither the row nor the
					// back-end counts it yet.
					account(n, inst, true)
					continue
				}
				if e.replacementWaits(sv.ID, in.Now) {
					continue // an elastic service's replacement, not due yet
				}
				waits = true
			default: // stopped or error: not to be placed again
				continue
			}
			if node == "" && sv.Status != state.ServiceCreated {
				continue
			}
			svcs = append(svcs, scheduler.ServiceFromInstance(inst, node))
			rows = append(rows, sv)
		}
		if busy || !waits || e.backingOff(ex.ID, false, in.Now) {
			continue
		}
		se := scheduler.Execution{ID: ex.ID, Size: ex.Size, SubmittedAt: ex.SubmittedAt, Services: svcs}
		if e.cfg.Policy == scheduler.DynSize {
			e.mu.Lock()
			d := e.dyn[ex.ID]
			e.mu.Unlock()
			se.Size, se.LastTried = d.size, d.lastTried
		}
		in.Executions = append(in.Executions, se)
		entries[ex.ID] = &entry{ex: ex, svcs: rows}
	}
	if len(in.Executions) == 0 {
		return nil
	}
	nodes, err := e.cfg.Backend.Nodes(ctx)
	if err != nil {
		return fmt.Errorf("back-end nodes: %w", err)
	}
	for _, n := range nodes {
		sn := scheduler.NodeFromBackend(n)
		if u := uses[n.Name]; u != nil {
			sn.Reserved.Cores += u.cores
			sn.Reserved.Memory += u.memory
			sn.Containers = u.containers
		}
		in.Nodes = append(in.Nodes, sn)
	}
	dec, err := scheduler.Schedule(in)
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	e.mu.Lock()
	e.held = dec.Held
	e.mu.Unlock()
	addrs := addresses(nodes)
	starts := map[int64][]scheduler.Start{}
	var order []int64
	for _, s := range dec.Starts {
		if starts[s.Execution] == nil {
			order = append(order, s.Execution)
		}
		starts[s.Execution] = append(starts[s.Execution], s)
	}
	for _, id := range order {
		en := entries[id]
		var jobs []job
		placed := map[int64]string{}
		for _, s := range starts[id] {
			jobs = append(jobs, job{sv: en.svcs[s.Index], node: s.Node})
			placed[en.svcs[s.Index].ID] = s.Node
		}
		ex := en.ex
		e.mu.Lock()
		e.setWaiting(id, "")
		delete(e.dyn, id)
		e.mu.Unlock()
		e.spawn(id, false, placed, func(ctx context.Context) error { return e.start(ctx, ex, jobs, addrs) })
	}
	for _, w := range dec.Waiting {
		en := entries[w.Execution]
		reason := w.Reason.String()
		if w.Unplaceable {
			reason += " (it cannot fit on the platform as it is)"
		}
		e.mu.Lock()
		old := e.waiting[w.Execution]
		if e.cfg.Policy == scheduler.DynSize {
			e.dyn[w.Execution] = dynState{size: w.Size, lastTried: in.Now}
		}
		if en.ex.Status == state.StatusQueued {
			e.setWaiting(w.Execution, reason)
		}
		e.mu.Unlock()
		if en.ex.Status == state.StatusQueued && old != reason {
			e.log.Debug("execution waits", "execution", w.Execution, "reason", reason)
			_, err := e.cfg.Store.Transition(ctx, w.Execution, []state.Status{state.StatusQueued}, state.StatusQueued,
				state.ExecutionChange{Reason: "waiting: " + reason})
			e.logTransition(w.Execution, err)
		}
	}
	return nil
}

// job is one service to start on a node.
type job struct {
	sv   state.Service
	node string
	// in is the service's instance, bound, and cmd its command split
	// (nil: the image's); filled by the start worker.
	in  zapp.Instance
	cmd []string
}

func sortJobs(jobs []job) {
	slices.SortStableFunc(jobs, func(a, b job) int { return cmp.Compare(a.sv.StartupOrder, b.sv.StartupOrder) })
}

func joinNames(jobs []job) string {
	names := make([]string, len(jobs))
	for i, j := range jobs {
		names[i] = j.sv.Name + "@" + j.node
	}
	return strings.Join(names, ", ")
}
