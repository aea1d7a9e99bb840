package engine

import (
	"context"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/state"
)

// lifeLog is the engine's store with a line of the daemon's log, at info,
// for every step of an execution's life: submitted, queued, starting,
// running, cleaning up, terminated or failed (with the reason), removed.
// Every status change goes through the store's compare-and-set, so the
// store is where no step is missed and where a refused change (someone
// else moved the execution first) is not logged as if it happened.
//
// The lines name the execution by id, owner and name and say why; they
// never hold its description, which may carry environment values.
//
// A change and its line are made under one lock, so that the lines come in
// the order of the changes: the goroutine that made an execution running
// could otherwise log it after another had moved it on to cleaning up.
type lifeLog struct {
	state.Store
	log hclog.Logger
	mu  *sync.Mutex
}

// WithLifeLog wraps store so that the lifecycle of executions reaches log;
// the engine wraps its store so, and the daemon the one the API deletes
// executions with. A store wrapped already is returned as it is.
func WithLifeLog(log hclog.Logger, store state.Store) state.Store {
	if _, ok := store.(lifeLog); ok {
		return store
	}
	return lifeLog{Store: store, log: log, mu: &sync.Mutex{}}
}

func (l lifeLog) CreateExecution(ctx context.Context, ne state.NewExecution) (state.Execution, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ex, err := l.Store.CreateExecution(ctx, ne)
	if err == nil {
		l.log.Info("execution submitted", execArgs(ex, "services", len(ne.Services), "cores", ex.Cores, "memory", ex.Memory)...)
	}
	return ex, err
}

func (l lifeLog) Transition(ctx context.Context, id int64, from []state.Status, to state.Status, c state.ExecutionChange) (state.Execution, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ex, err := l.Store.Transition(ctx, id, from, to, c)
	if err != nil {
		return ex, err
	}
	level, msg := hclog.Info, lifeMessage(to)
	args := execArgs(ex)
	if c.Reason != "" {
		args = append(args, "reason", c.Reason)
	}
	switch {
	case len(from) == 1 && from[0] == to:
		// A queued execution's new reason to wait: every pass may give
		// one, which is too many for info.
		level, msg = hclog.Debug, "execution still "+string(to)
	case to == state.StatusError:
		if c.ErrorMessage != nil {
			args = append(args, "error", *c.ErrorMessage)
		} else if ex.ErrorMessage != "" {
			args = append(args, "error", ex.ErrorMessage)
		}
	}
	switch {
	case c.ExitCode != nil:
		args = append(args, "exit_code", *c.ExitCode)
	case !ex.Status.Active() && ex.ExitCode != nil:
		// Recorded with an earlier step (the move to cleaning up).
		args = append(args, "exit_code", *ex.ExitCode)
	}
	l.log.Log(level, msg, args...)
	return ex, err
}

func (l lifeLog) DeleteExecution(ctx context.Context, id int64) error {
	// Read first: once deleted, its owner and name are gone.
	l.mu.Lock()
	defer l.mu.Unlock()
	ex, gerr := l.Store.GetExecution(ctx, id)
	if err := l.Store.DeleteExecution(ctx, id); err != nil {
		return err
	}
	if gerr != nil {
		ex = state.Execution{ID: id}
	}
	l.log.Info("execution removed", execArgs(ex)...)
	return nil
}

// lifeMessage is the line of a move to status to.
func lifeMessage(to state.Status) string {
	switch to {
	case state.StatusQueued:
		return "execution queued"
	case state.StatusStarting:
		return "execution starting"
	case state.StatusRunning:
		return "execution running"
	case state.StatusCleaningUp:
		return "execution ending: cleaning up"
	case state.StatusTerminated:
		return "execution ended"
	case state.StatusError:
		return "execution failed"
	}
	return "execution " + string(to)
}

// execArgs are the attributes that name an execution in the log, then
// more.
func execArgs(ex state.Execution, more ...any) []any {
	return append([]any{"execution", ex.ID, "owner", ex.Owner, "name", ex.Name, "status", string(ex.Status)}, more...)
}
