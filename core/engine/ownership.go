package engine

// # One deployment per platform
//
// A deployment name is meant to be run by one daemon (or several sharing
// one store) on a back-end. Two daemons with stores of their own and the
// same deployment_name (two copies of one example configuration) would see
// each other's services as theirs: each would remove the other's
// containers as orphans, and adopt them after a name clash (container
// names are <service>-<execution>-<deployment>, and both stores number
// their executions from 1).
//
// So every service and network the engine creates carries the store's
// identity (LabelStore, state.Store.Identity) with the deployment, and:
//
//   - the daemon checks before its engine's first pass (CheckOwnership):
//     services of the deployment labelled with another store mean that
//     another daemon runs it, or ran it and left them; the daemon refuses to
//     start and says what to do. TakeOver, for an operator who knows that
//     store is gone for good, removes them instead.
//   - the reconciliation never removes, adopts or counts another store's
//     services, and the pass reports each other store it sees, once;
//   - a start whose name is taken adopts what has that name only when it
//     is this store's (see find): another store's is a conflict, reported
//     on the execution.
//
// Services without a store label were made by a Zoe from before the
// labels, by this daemon or by another one of the same name; nothing tells
// which. They are adopted as before when this store has them (by handle,
// or by name for a service left starting: what an upgrade in place
// needs), and otherwise left alone with one warning each, never removed:
// removing them is what killed another daemon's containers, and one left
// behind costs an operator a command.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// watch is what the pass has reported, so that it says each thing once.
type watch struct {
	// foreign are the other stores reported.
	foreign map[string]bool
	// unlabelled are the handles of services without a store label
	// reported.
	unlabelled map[string]bool
	// down is when List first failed, while it fails (zero: it answers).
	down time.Time
}

// identity is the store's identity, read once.
func (e *Engine) identity(ctx context.Context) (string, error) {
	e.mu.Lock()
	id := e.storeID
	e.mu.Unlock()
	if id != "" {
		return id, nil
	}
	id, err := e.cfg.Store.Identity(ctx)
	if err != nil {
		return "", fmt.Errorf("read the store's identity: %w", err)
	}
	if id == "" {
		return "", fmt.Errorf("the store has no identity: %w", sdk.ErrInternal)
	}
	e.mu.Lock()
	e.storeID = id
	e.mu.Unlock()
	return id, nil
}

// ForeignStore is another store's services in this deployment.
type ForeignStore struct {
	// ID is the other store's identity (LabelStore).
	ID       string
	Services []backend.ServiceStatus
}

// OwnershipError says that another store's daemon runs this deployment on
// the back-end. It wraps sdk.ErrConflict.
type OwnershipError struct {
	Deployment string
	Stores     []ForeignStore
}

func (o *OwnershipError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "another Zoe daemon, with a store of its own, runs deployment %q on this back-end:", o.Deployment)
	for i, f := range o.Stores {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " store %s has %d services of it (%s)", f.ID, len(f.Services), someNames(f.Services, 3))
	}
	b.WriteString(". Give this daemon another deployment_name, or stop the other daemon; if that store is gone " +
		"for good, start this daemon with -take-over to remove its services of this deployment")
	return b.String()
}

func (o *OwnershipError) Unwrap() error { return sdk.ErrConflict }

// someNames lists the first n names of sts, and how many more.
func someNames(sts []backend.ServiceStatus, n int) string {
	names := make([]string, 0, n)
	for _, st := range sts[:min(n, len(sts))] {
		names = append(names, st.Name)
	}
	s := strings.Join(names, ", ")
	if len(sts) > n {
		s += fmt.Sprintf(" and %d more", len(sts)-n)
	}
	return s
}

// owners lists the deployment's services and sorts out the other stores'
// (by store, ordered by identity) and those without a store label.
func (e *Engine) owners(ctx context.Context) (foreign []ForeignStore, unlabelled []backend.ServiceStatus, err error) {
	id, err := e.identity(ctx)
	if err != nil {
		return nil, nil, err
	}
	listed, err := e.cfg.Backend.List(ctx, backend.ListOptions{Labels: map[string]string{LabelDeployment: e.cfg.Deployment}})
	if err != nil {
		return nil, nil, fmt.Errorf("list the services of deployment %q: %w", e.cfg.Deployment, err)
	}
	byStore := map[string][]backend.ServiceStatus{}
	for _, st := range listed {
		switch owner := st.Labels[LabelStore]; owner {
		case id:
		case "":
			unlabelled = append(unlabelled, st)
		default:
			byStore[owner] = append(byStore[owner], st)
		}
	}
	for owner, sts := range byStore {
		slices.SortFunc(sts, func(a, b backend.ServiceStatus) int { return strings.Compare(a.Name, b.Name) })
		foreign = append(foreign, ForeignStore{ID: owner, Services: sts})
	}
	slices.SortFunc(foreign, func(a, b ForeignStore) int { return strings.Compare(a.ID, b.ID) })
	return foreign, unlabelled, nil
}

// CheckOwnership is the daemon's check before Run: it returns an
// *OwnershipError when the back-end has services of this deployment that
// another store created, and logs a warning about services without a store
// label. An error of the back-end or the store is returned as it is.
func (e *Engine) CheckOwnership(ctx context.Context) error {
	foreign, unlabelled, err := e.owners(ctx)
	if err != nil {
		return err
	}
	if len(unlabelled) > 0 {
		e.log.Warn("services of this deployment carry no store label (made by a Zoe before store labels); "+
			"they are adopted when this store has them and otherwise left alone, never removed",
			"deployment", e.cfg.Deployment, "count", len(unlabelled), "services", someNames(unlabelled, 5))
	}
	if len(foreign) > 0 {
		return &OwnershipError{Deployment: e.cfg.Deployment, Stores: foreign}
	}
	return nil
}

// takeOverAtOnce bounds the removals TakeOver makes at once.
const takeOverAtOnce = 8

// TakeOver removes the services of this deployment that other stores
// created, for an operator who knows those stores are gone for good, and
// says how many it removed. Their networks cannot be listed through the
// back-end's interface: each execution's network is asked to be removed by
// its usual name (zoe-<deployment>-<execution>), which back-ends that
// accept a name for an id (Docker) do, unless this store has an execution
// of that number (the name may be its). What remains is logged, for the
// operator to remove on the back-end.
func (e *Engine) TakeOver(ctx context.Context) (int, error) {
	foreign, _, err := e.owners(ctx)
	if err != nil {
		return 0, err
	}
	var (
		mu      sync.Mutex
		removed int
		errs    []error
		wg      sync.WaitGroup
	)
	sem := make(chan struct{}, takeOverAtOnce)
	execs := map[int64]string{} // the other stores' executions, to their store
	for _, f := range foreign {
		e.log.Warn("taking over the deployment: removing the services of another store", "deployment", e.cfg.Deployment,
			"store", f.ID, "count", len(f.Services), "services", someNames(f.Services, 5))
		for _, st := range f.Services {
			if id, err := strconv.ParseInt(st.Labels[LabelExecution], 10, 64); err == nil {
				execs[id] = f.ID
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				err := e.removeContainer(ctx, st.Handle, nil)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("remove %s of store %s: %w", st.Name, f.ID, err))
					return
				}
				removed++
			})
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return removed, err
	}
	ids := make([]int64, 0, len(execs))
	for id := range execs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		name := e.networkName(id)
		if _, err := e.cfg.Store.GetExecution(ctx, id); !errors.Is(err, sdk.ErrNotFound) {
			e.log.Warn("taking over: a network of the other store may remain; this store has an execution of the "+
				"same number, so it is not removed by name", "network", name, "store", execs[id])
			continue
		}
		switch err := e.cfg.Backend.RemoveNetwork(ctx, name); {
		case err == nil:
			e.log.Info("taking over: removed the network of another store", "network", name, "store", execs[id])
		case errors.Is(err, sdk.ErrNotFound):
			e.log.Warn("taking over: the back-end does not find the other store's network by name; remove it on "+
				"the back-end if it remains", "network", name, "store", execs[id])
		default:
			e.log.Warn("taking over: cannot remove the network of another store", "network", name,
				"store", execs[id], "error", err)
		}
	}
	return removed, nil
}

// reportOwners logs, once each, the other stores and the services without
// a store label that a reconciliation found (actForeign, actUnlabelled):
// those seen on the last pass are not reported again. Used by the pass
// only.
func (e *Engine) reportOwners(acts []action) {
	foreign := map[string][]backend.ServiceStatus{}
	var owners []string
	unlabelled := map[string]bool{}
	for _, a := range acts {
		switch a.kind {
		case actForeign:
			owner := a.st.Labels[LabelStore]
			if foreign[owner] == nil {
				owners = append(owners, owner)
			}
			foreign[owner] = append(foreign[owner], a.st)
		case actUnlabelled:
			unlabelled[a.st.Handle.ID] = true
			if e.watch.unlabelled[a.st.Handle.ID] {
				continue
			}
			e.log.Warn("a service of this deployment without a store label (made by a Zoe before store labels) "+
				"is not in this store; it is left alone: remove it on the back-end if no other daemon runs it",
				"deployment", e.cfg.Deployment, "name", a.st.Name, "handle", a.st.Handle.ID)
		}
	}
	seen := make(map[string]bool, len(owners))
	for _, owner := range owners {
		seen[owner] = true
		if e.watch.foreign[owner] {
			continue
		}
		sts := foreign[owner]
		e.log.Error(fmt.Sprintf("another Zoe daemon (store %s) runs deployment %s on this back-end; its services are "+
			"left alone, and executions whose names clash with them fail: give one of the daemons another "+
			"deployment_name", owner, e.cfg.Deployment),
			"store", owner, "count", len(sts), "services", someNames(sts, 5))
	}
	e.watch.foreign, e.watch.unlabelled = seen, unlabelled
}

// backendDown records that the back-end cannot be listed (err): said
// once, with what happens to the executions, which are kept as they are
// and whose queued ones wait with the reason. Used by the pass only.
func (e *Engine) backendDown(snap *snapshot, err error) {
	reason := "the back-end cannot be reached: " + err.Error()
	if e.watch.down.IsZero() {
		e.watch.down = time.Now()
		counts := map[string]int{}
		for _, ex := range snap.execs {
			counts[string(ex.Status)]++
		}
		e.log.Warn("the back-end cannot be reached; its executions are kept as they are, not failed: running "+
			"ones are checked again, and queued ones placed, once it answers", "error", err,
			"running", counts["running"], "starting", counts["starting"],
			"queued", counts["queued"]+counts["submitted"], "cleaning_up", counts["cleaning_up"])
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ex := range snap.execs {
		if ex.Status == state.StatusQueued && e.retries[ex.ID] == nil {
			e.setWaiting(ex.ID, reason)
		}
	}
}

// backendUp records that the back-end answers List again: said once, and
// every stored handle is recovered. Used by the pass only.
func (e *Engine) backendUp(snap *snapshot) {
	if e.watch.down.IsZero() {
		return
	}
	e.log.Info("the back-end answers again; checking its executions", "unreachable_for",
		time.Since(e.watch.down).Round(time.Second).String(), "active_executions", len(snap.execs))
	e.watch.down = time.Time{}
	e.recoverAll.Store(true)
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, reason := range e.waiting {
		if strings.HasPrefix(reason, "the back-end cannot be reached: ") {
			e.setWaiting(id, "")
		}
	}
}
