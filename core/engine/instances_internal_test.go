package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// TestInstancesCache: an instance is decoded once and kept while its
// execution is active; keep drops the others; a description that does not
// decode is an error every time, not kept.
func TestInstancesCache(t *testing.T) {
	desc, err := json.Marshal(zapp.Instance{Name: "alpha0", Image: "zoe/test:1", Cores: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	sv := func(id, exec int64, d string) state.Service {
		return state.Service{ID: id, ExecutionID: exec, Name: fmt.Sprint("s", id), Description: json.RawMessage(d)}
	}
	var c instances
	for _, s := range []state.Service{sv(1, 10, string(desc)), sv(2, 20, string(desc))} {
		if in, err := c.get(s); err != nil || in.Name != "alpha0" || in.Cores != 0.5 {
			t.Fatalf("get %d: %+v, %v", s.ID, in, err)
		}
	}
	// Kept: the description is not decoded again.
	if in, err := c.get(sv(1, 10, "not JSON")); err != nil || in.Name != "alpha0" {
		t.Errorf("get of a kept instance: %+v, %v; want it from the cache", in, err)
	}
	c.keep([]state.Execution{{ID: 20}})
	if n := c.len(); n != 1 {
		t.Errorf("%d executions kept after keep of one, want 1", n)
	}
	for range 2 {
		if _, err := c.get(sv(1, 10, "not JSON")); !errors.Is(err, sdk.ErrInternal) {
			t.Errorf("get of a dropped instance that does not decode: %v, want an internal error", err)
		}
	}
	if in, err := c.get(sv(2, 20, "not JSON")); err != nil || in.Name != "alpha0" {
		t.Errorf("get of an instance kept by keep: %+v, %v", in, err)
	}
	c.keep(nil)
	if n := c.len(); n != 0 {
		t.Errorf("%d executions kept after keep of none", n)
	}
}

// unrecoverable is a back-end whose Recover fails with err.
type unrecoverable struct {
	Backend
	err error
}

func (u *unrecoverable) Recover(context.Context, backend.Handle) (backend.ServiceStatus, error) {
	return backend.ServiceStatus{}, u.err
}

// TestRecoverFailureLoggedOnce: a service that the back-end no longer
// lists and cannot recover is asked about on every pass, but the failure
// is logged once, and again only when it changes or comes back.
func TestRecoverFailureLoggedOnce(t *testing.T) {
	var out bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Warn})
	be := &unrecoverable{err: fmt.Errorf("recover: %w", sdk.ErrUnsupported)}
	e, err := New(log, Config{Store: struct{ state.Store }{}, Backend: be, Workspace: struct{ Workspace }{},
		Deployment: "test"})
	if err != nil {
		t.Fatal(err)
	}
	snap := &snapshot{execs: []state.Execution{{ID: 1, Status: state.StatusRunning}},
		svcs: map[int64][]state.Service{1: {{ID: 10, ExecutionID: 1, Name: "alpha0", Status: state.ServiceRunning,
			Handle: state.Handle{ID: "h1", Version: 1}}}}}
	warnings := func() int { return strings.Count(out.String(), "cannot recover a service") }
	listed := []backend.ServiceStatus{{Name: e.containerName(1, "alpha0"), Handle: backend.Handle{ID: "h1"},
		State: backend.ServiceRunning}}
	steps := []struct {
		name   string
		listed []backend.ServiceStatus
		err    error
		want   int
	}{
		{"first failure", nil, be.err, 1},
		{"the same failure", nil, be.err, 1},
		{"once more", nil, be.err, 1},
		{"another failure", nil, fmt.Errorf("bad handle: %w", sdk.ErrInvalidArgument), 2},
		{"listed again: nothing to recover", listed, nil, 2},
		{"gone again", nil, be.err, 3},
	}
	for _, s := range steps {
		be.err = s.err
		if changed := e.reconcile(t.Context(), snap, "store-1", s.listed); changed {
			t.Errorf("%s: reconcile changed the store", s.name)
		}
		if n := warnings(); n != s.want {
			t.Errorf("%s: %d warnings, want %d:\n%s", s.name, n, s.want, out.String())
		}
	}
}

// versioned is a store of one active execution whose version the test
// sets, counting the reads of the active executions.
type versioned struct {
	state.Store
	version uint64
	ok      bool
	reads   int
}

func (v *versioned) Version(context.Context) (uint64, bool) { return v.version, v.ok }

func (v *versioned) ActiveExecutions(context.Context) ([]state.Execution, error) {
	v.reads++
	return []state.Execution{{ID: 1, Status: state.StatusRunning}}, nil
}

func (v *versioned) ActiveServices(context.Context) (map[int64][]state.Service, error) {
	return map[int64][]state.Service{}, nil
}

// TestReadServesAgain: the pass's snapshot is read again only when the
// store's version or the workers changed, or the version cannot be read.
func TestReadServesAgain(t *testing.T) {
	store := &versioned{version: 7, ok: true}
	e, err := New(nil, Config{Store: store, Backend: struct{ Backend }{}, Workspace: struct{ Workspace }{},
		Deployment: "test"})
	if err != nil {
		t.Fatal(err)
	}
	e.runCtx = t.Context()
	release := make(chan struct{})
	steps := []struct {
		name   string
		change func()
		reads  int
	}{
		{"first", func() {}, 1},
		{"nothing changed", func() {}, 1},
		{"a write", func() { store.version++ }, 2},
		{"a worker spawned", func() {
			e.spawn(1, false, nil, func(context.Context) error { <-release; return nil })
		}, 3},
		{"nothing changed", func() {}, 3},
		{"the worker ended", func() {
			close(release)
			e.wg.Wait()
		}, 4},
		{"the version unknown", func() { store.ok = false }, 5},
		{"unknown again", func() {}, 6},
		{"known again", func() { store.ok = true }, 7},
		{"the snapshot changed by the pass", func() { e.last = nil }, 8},
		{"nothing changed", func() {}, 8},
	}
	for _, s := range steps {
		s.change()
		snap, err := e.read(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if store.reads != s.reads {
			t.Errorf("%s: %d reads, want %d", s.name, store.reads, s.reads)
		}
		if _, busy := snap.workers[1]; busy != (s.reads == 3) {
			t.Errorf("%s: the snapshot has the worker: %v", s.name, busy)
		}
	}
}
