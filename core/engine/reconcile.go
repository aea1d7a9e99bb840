package engine

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// The reconciliation compares the store with the back-end and decides,
// without doing any of it, what to do about each difference:
// decideReconcile is a pure function of what was read (reconcileInput)
// and of the answers of Recover, which it asks for. Engine.reconcile
// reads, asks Recover, and carries the actions out.

// reconcileInput is what the reconciliation decides from.
type reconcileInput struct {
	// execs and svcs are the store's snapshot.
	execs []state.Execution
	svcs  map[int64][]state.Service
	// busy are the executions with a worker, or that had one when the
	// snapshot was taken (Engine.busySince): their starting services are
	// the worker's business.
	busy map[int64]bool
	// listed is the back-end's List, taken after the snapshot.
	listed []backend.ServiceStatus
	// store is the identity of this engine's store (LabelStore): a listed
	// service labelled with another store's is another daemon's.
	store string
	// recoverAll asks to Recover every stored handle, listed or not: the
	// back-end (or the daemon) restarted, and the listing may show what
	// the plugin has not taken back yet.
	recoverAll bool
	// name is the back-end's name of a service (Engine.containerName).
	name func(execID int64, service string) string
	// following, when set, tells whether the service's output is followed
	// from the container of handle already (or not kept at all): there is
	// then nothing to collect.
	following func(execID int64, service, handle string) bool
}

// recoverReq asks for the back-end's Recover of a stored service's handle.
type recoverReq struct {
	ex state.Execution
	sv state.Service
}

// recovery is what Recover answered.
type recovery struct {
	st  backend.ServiceStatus
	err error
}

type actionKind int

const (
	// actDied: the service exited or vanished (st says how); record it
	// and replace it or end its execution (Engine.died).
	actDied actionKind = iota + 1
	// actAdopt: the back-end runs a service the store has starting;
	// record it as running with st (Engine.adopt).
	actAdopt
	// actCollect: follow the logs of the service's container, handle.
	actCollect
	// actReset: a start was interrupted before the back-end had the
	// service; make it created again, to be placed anew (Engine.reset).
	actReset
	// actRemove: st is a container of this deployment that the store does
	// not know; remove it, unless unlessActive is an execution that is
	// active now (it may be newer than the snapshot).
	actRemove
	// actForeign: st is a service of this deployment that another store
	// created (another daemon runs the deployment name on this back-end):
	// never removed, adopted or counted; the pass reports the other store.
	actForeign
	// actUnlabelled: st is a service of this deployment without a store
	// label (made by a Zoe before store labels) that the store does not
	// know: left alone, with a warning (see ownership.go).
	actUnlabelled
)

// action is one thing the reconciliation does.
type action struct {
	kind actionKind
	// ex and sv are the stored execution and service (all but actRemove).
	ex state.Execution
	sv state.Service
	// st is the back-end's view of the service (actDied, actAdopt) or the
	// orphan (actRemove).
	st backend.ServiceStatus
	// handle is the container whose logs to follow (actCollect).
	handle backend.Handle
	// reason is recorded with actReset.
	reason string
	// unlessActive, for actRemove: see actRemove; 0 for none.
	unlessActive int64
}

// changes says whether the action changes the store: the snapshot is then
// read again before scheduling.
func (a action) changes() bool {
	return a.kind == actDied || a.kind == actAdopt || a.kind == actReset
}

// String is for tests and logs.
func (a action) String() string {
	svc := a.sv.Name + "@" + strconv.FormatInt(a.ex.ID, 10)
	switch a.kind {
	case actDied:
		return fmt.Sprintf("died %s: %s code %d oom %v", svc, a.st.State, a.st.ExitCode, a.st.OOMKilled)
	case actAdopt:
		return fmt.Sprintf("adopt %s: %s %s on %s", svc, a.st.State, a.st.Handle.ID, a.st.Node)
	case actCollect:
		return fmt.Sprintf("collect %s: %s", svc, a.handle.ID)
	case actReset:
		return fmt.Sprintf("reset %s: %s", svc, a.reason)
	case actForeign:
		return fmt.Sprintf("foreign %s (%s) of store %s: left alone", a.st.Name, a.st.Handle.ID, a.st.Labels[LabelStore])
	case actUnlabelled:
		return fmt.Sprintf("unlabelled %s (%s): left alone", a.st.Name, a.st.Handle.ID)
	case actRemove:
		if a.unlessActive != 0 {
			return fmt.Sprintf("remove %s (%s) unless execution %d is active", a.st.Name, a.st.Handle.ID, a.unlessActive)
		}
		return fmt.Sprintf("remove %s (%s)", a.st.Name, a.st.Handle.ID)
	}
	return fmt.Sprintf("action %d", a.kind)
}

// decideReconcile returns the actions, in the order to carry them out, and
// the services whose handles it needs Recover's answers about (in
// recovered, by service id). A service whose answer is missing from
// recovered, or failed for another reason than sdk.ErrNotFound, is left for
// the next pass. The needs do not depend on recovered: asked first with
// nil, it says which answers to get, and is then asked again with them
// (when it needs none, the first actions are the ones).
func decideReconcile(in *reconcileInput, recovered map[int64]recovery) ([]action, []recoverReq) {
	byHandle := make(map[string]backend.ServiceStatus, len(in.listed))
	byName := make(map[string]backend.ServiceStatus, len(in.listed))
	var (
		acts    []action
		needs   []recoverReq
		foreign []action
	)
	for _, st := range in.listed {
		// Another store's services are not this store's, whatever their
		// names: with a clash (two stores' execution 1) the name would
		// otherwise make one daemon adopt the other's container.
		if owner := st.Labels[LabelStore]; owner != "" && owner != in.store {
			foreign = append(foreign, action{kind: actForeign, st: st})
			continue
		}
		byHandle[st.Handle.ID] = st
		byName[st.Name] = st
	}
	known := map[string]bool{}
	active := make(map[int64]bool, len(in.execs))
	for _, ex := range in.execs {
		active[ex.ID] = true
		// Services of executions queued or cleaning up are the
		// scheduler's and the clean-up's.
		mine := ex.Status == state.StatusStarting || ex.Status == state.StatusRunning
		busy := in.busy[ex.ID]
		for _, sv := range in.svcs[ex.ID] {
			name := in.name(ex.ID, sv.Name)
			known[name] = true
			if !mine {
				continue
			}
			switch {
			case sv.Status == state.ServiceRunning || (sv.Status == state.ServiceStarting && !busy && sv.Handle.ID != ""):
				// The back-end has had it: what is it doing?
				st, ok := byHandle[sv.Handle.ID]
				if !ok {
					st, ok = byName[name]
				}
				if in.recoverAll || !ok {
					needs = append(needs, recoverReq{ex: ex, sv: sv})
					r, asked := recovered[sv.ID]
					switch {
					case !asked:
						continue
					case errors.Is(r.err, sdk.ErrNotFound):
						st = backend.ServiceStatus{State: backend.ServiceVanished}
					case r.err != nil:
						continue // the next pass asks again
					default:
						st = r.st
					}
				}
				switch st.State {
				case backend.ServiceExited, backend.ServiceVanished:
					acts = append(acts, action{kind: actDied, ex: ex, sv: sv, st: st})
				case backend.ServiceRunning, backend.ServiceCreated:
					if sv.Status == state.ServiceStarting {
						acts = append(acts, action{kind: actAdopt, ex: ex, sv: sv, st: st})
					}
					h := st.Handle
					if h.ID == "" {
						h = toBackendHandle(sv.Handle)
					}
					// Most passes find every running service followed
					// already: no action for each.
					if in.following == nil || !in.following(ex.ID, sv.Name, h.ID) {
						acts = append(acts, action{kind: actCollect, ex: ex, sv: sv, handle: h})
					}
				}
			case sv.Status == state.ServiceStarting && !busy:
				// Left starting, without a handle, by a daemon that died:
				// adopt what the back-end has, start again what it has not.
				if st, ok := byName[name]; ok {
					acts = append(acts, action{kind: actAdopt, ex: ex, sv: sv, st: st},
						action{kind: actCollect, ex: ex, sv: sv, handle: st.Handle})
				} else {
					acts = append(acts, action{kind: actReset, ex: ex, sv: sv,
						reason: "its start was interrupted; it will be started again"})
				}
			}
		}
	}
	// The back-end lists only this deployment's services: one of this
	// store that the store does not know is an orphan. One without a store
	// label was made by a Zoe before store labels, by this daemon or by
	// another of the same deployment name: nothing tells which, so it is
	// never removed (see unlabelled in ownership.go).
	for _, st := range in.listed {
		if known[st.Name] {
			continue
		}
		switch owner := st.Labels[LabelStore]; {
		case owner == "":
			acts = append(acts, action{kind: actUnlabelled, st: st})
			continue
		case owner != in.store:
			continue // in foreign
		}
		a := action{kind: actRemove, st: st}
		if id, err := strconv.ParseInt(st.Labels[LabelExecution], 10, 64); err == nil && !active[id] {
			// Its execution may be newer than the snapshot: checked again
			// right before the removal.
			a.unlessActive = id
		}
		acts = append(acts, a)
	}
	return append(acts, foreign...), needs
}
