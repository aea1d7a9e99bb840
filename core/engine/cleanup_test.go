package engine_test

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/zoe-project/zoe/core/engine"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk/backend"
)

// listFilters records the label filters of the engine's List calls.
type listFilters struct {
	engine.Backend
	mu      sync.Mutex
	filters []map[string]string
}

func (l *listFilters) List(ctx context.Context, opts backend.ListOptions) ([]backend.ServiceStatus, error) {
	l.mu.Lock()
	l.filters = append(l.filters, maps.Clone(opts.Labels))
	l.mu.Unlock()
	return l.Backend.List(ctx, opts)
}

func (l *listFilters) all() []map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.filters)
}

// The clean-up of an execution lists only its services, by their label,
// and leaves the other executions' running.
func TestCleanupListsItsExecutionOnly(t *testing.T) {
	t.Parallel()
	var lf *listFilters
	e := newEnv(t, options{wrap: func(b engine.Backend) engine.Backend {
		lf = &listFilters{Backend: b}
		return lf
	}})
	ended := e.submit(zappJSON(t, false, svc{name: "main", ess: 1, total: 1, monitor: true, env: forever()}))
	kept := e.submit(zappJSON(t, false, svc{name: "main", ess: 1, total: 1, monitor: true, env: forever()}))
	e.waitStatus(ended.ID, state.StatusRunning)
	e.waitStatus(kept.ID, state.StatusRunning)
	if _, err := e.eng.Terminate(t.Context(), ended.ID, "done"); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(ended.ID, state.StatusTerminated)
	want := map[string]string{engine.LabelExecution: strconv.FormatInt(ended.ID, 10)}
	if asked := lf.all(); !slices.ContainsFunc(asked, func(f map[string]string) bool { return maps.Equal(f, want) }) {
		t.Errorf("the clean-up never listed by the execution's label %v; filters asked: %v", want, asked)
	}
	if sv := e.services(kept.ID)["main0"]; sv.Status != state.ServiceRunning {
		t.Errorf("the other execution's service is %s, want running", sv.Status)
	}
}
