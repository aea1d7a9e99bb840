package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/zoe-project/zoe/core/engine"
	"github.com/zoe-project/zoe/core/pluginhost"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// TestCategoriesCrossTheWire: through the plugin host, the back-end's
// "already exists" and "conflict" stay apart, as the engine needs: it
// adopts what exists and treats a conflict as a failure.
func TestCategoriesCrossTheWire(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	ctx := t.Context()
	be := pluginhost.Backend{Plugin: e.backend}
	ex := e.submit(zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}))
	running := e.waitStatus(ex.ID, state.StatusRunning)
	_, err := be.CreateNetwork(ctx, backend.NetworkSpec{Name: fmt.Sprintf("zoe-%s-%d", deployment, ex.ID)})
	if !errors.Is(err, sdk.ErrAlreadyExists) || errors.Is(err, sdk.ErrConflict) {
		t.Errorf("creating a network of a taken name: %v, want already exists only", err)
	}
	err = be.RemoveNetwork(ctx, running.NetworkID)
	if !errors.Is(err, sdk.ErrConflict) || errors.Is(err, sdk.ErrAlreadyExists) {
		t.Errorf("removing a network in use: %v, want conflict only", err)
	}
}

// TestStartAdoptsWhatExists: a service the back-end runs already under the
// name the engine starts it with (a start whose answer was lost) is adopted,
// not started twice: Start's sdk.ErrAlreadyExists crossed the wire.
func TestStartAdoptsWhatExists(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{noEngine: true})
	ctx := t.Context()
	ex := e.submit(zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}))
	st, err := e.ctl.Start(ctx, backend.ServiceSpec{Name: containerName(ex.ID, "alpha0"), Image: "zoe/test:1",
		User: "1000:1000", Environment: forever(), Labels: map[string]string{engine.LabelExecution: fmt.Sprint(ex.ID)}})
	if err != nil {
		t.Fatal(err)
	}
	e.run()
	e.waitStatus(ex.ID, state.StatusRunning)
	if s := e.services(ex.ID)["alpha0"]; s.Handle.ID != st.Handle.ID {
		t.Errorf("alpha0 has the handle %q, want the existing service's %q", s.Handle.ID, st.Handle.ID)
	}
	if n := e.startsOf(containerName(ex.ID, "alpha0")); n != 1 {
		t.Errorf("started %d times", n)
	}
}

// conflicting is a back-end whose CreateNetwork answers conflict.
type conflicting struct{ engine.Backend }

func (conflicting) CreateNetwork(context.Context, backend.NetworkSpec) (string, error) {
	return "", fmt.Errorf("create network: address pools overlap: %w", sdk.ErrConflict)
}

// TestBackendConflictIsAFailure: a back-end's sdk.ErrConflict is an ordinary
// failure, which ends the execution in error with the reason, not a sign that
// the execution ended meanwhile.
func TestBackendConflictIsAFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{wrap: func(b engine.Backend) engine.Backend { return conflicting{b} }})
	ex := e.submit(zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}))
	end := e.waitStatus(ex.ID, state.StatusError)
	if want := "cannot create the execution's network: create network: address pools overlap"; !strings.HasPrefix(end.ErrorMessage, want) {
		t.Errorf("error %q, want %q", end.ErrorMessage, want)
	}
	if n := e.startsOf(containerName(ex.ID, "alpha0")); n != 0 {
		t.Errorf("started %d times", n)
	}
}

// recorder records the networks the back-end created and removed.
type recorder struct {
	engine.Backend
	mu               sync.Mutex
	created, removed []string
}

func (r *recorder) RemoveNetwork(ctx context.Context, id string) error {
	err := r.Backend.RemoveNetwork(ctx, id)
	if err == nil {
		r.mu.Lock()
		r.removed = append(r.removed, id)
		r.mu.Unlock()
	}
	return err
}

func (r *recorder) networks() (created, removed []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.created), slices.Clone(r.removed)
}

func (r *recorder) CreateNetwork(ctx context.Context, spec backend.NetworkSpec) (string, error) {
	id, err := r.Backend.CreateNetwork(ctx, spec)
	r.mu.Lock()
	r.created = append(r.created, id)
	r.mu.Unlock()
	return id, err
}

// endingStore ends every execution whose network is being recorded, alone
// or with the move to starting, as another daemon could have meanwhile: the
// store then refuses the id with sdk.ErrConflict.
type endingStore struct{ state.Store }

func (s endingStore) end(ctx context.Context, id int64) error {
	if _, err := s.Store.Transition(ctx, id, []state.Status{state.StatusQueued}, state.StatusCleaningUp,
		state.ExecutionChange{Reason: "ended elsewhere"}); err != nil {
		return err
	}
	_, err := s.Store.Transition(ctx, id, []state.Status{state.StatusCleaningUp}, state.StatusTerminated,
		state.ExecutionChange{Reason: "ended elsewhere", Ended: true})
	return err
}

func (s endingStore) SetNetwork(ctx context.Context, id int64, networkID string) error {
	if err := s.end(ctx, id); err != nil {
		return err
	}
	return s.Store.SetNetwork(ctx, id, networkID)
}

func (s endingStore) Transition(ctx context.Context, id int64, from []state.Status, to state.Status, c state.ExecutionChange) (state.Execution, error) {
	if c.NetworkID != "" {
		if err := s.end(ctx, id); err != nil {
			return state.Execution{}, err
		}
	}
	return s.Store.Transition(ctx, id, from, to, c)
}

// TestEndedWhileCreatingNetwork: the store refuses the id of an execution's
// new network as the execution ended meanwhile (the store's
// sdk.ErrConflict): the network is removed, nothing is started, no error is
// recorded and nothing is retried.
func TestEndedWhileCreatingNetwork(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	e := newEnv(t, options{noEngine: true, wrap: func(b engine.Backend) engine.Backend { rec.Backend = b; return rec }})
	e.cfg.Store = endingStore{e.store}
	var err error
	if e.eng, err = engine.New(testutil.Logger(t).Named("engine"), e.cfg); err != nil {
		t.Fatal(err)
	}
	ex := e.submit(zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}))
	e.run()
	end := e.waitStatus(ex.ID, state.StatusTerminated)
	waitFor(t, "the network removed", func() (bool, string) {
		created, removed := rec.networks()
		return len(created) == 1 && slices.Equal(created, removed), fmt.Sprint(created, removed)
	})
	if created, _ := rec.networks(); end.NetworkID != "" || end.ErrorMessage != "" ||
		!errors.Is(e.ctl.RemoveNetwork(t.Context(), created[0]), sdk.ErrNotFound) {
		t.Errorf("the execution's network %q, error %q; the created network is still there", end.NetworkID,
			end.ErrorMessage)
	}
	if n := e.startsOf(containerName(ex.ID, "alpha0")); n != 0 {
		t.Errorf("started %d times", n)
	}
	if r := e.eng.WaitingReason(ex.ID); r != "" {
		t.Errorf("waiting reason %q", r)
	}
}

// TestStartSpec: the instance stored at submission is bound at the start
// with the execution's id (DNS name, templates, Zoe's variables), and the
// command is split with the shell's quoting.
func TestStartSpec(t *testing.T) {
	t.Parallel()
	var rec *specs
	e := newEnv(t, options{noEngine: true, wrap: func(b engine.Backend) engine.Backend {
		rec = &specs{Backend: b}
		return rec
	}})
	e.cfg.ProxyBase = "/zoe/proxy"
	var err error
	if e.eng, err = engine.New(testutil.Logger(t).Named("engine"), e.cfg); err != nil {
		t.Fatal(err)
	}
	desc := zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, ports: []int{8888},
		env: forever("SELF", "{dns_name#self}", "RUN", "{execution_id}/{{x}}")})
	var m map[string]any
	if err := json.Unmarshal(desc, &m); err != nil {
		t.Fatal(err)
	}
	m["services"].([]any)[0].(map[string]any)["command"] = `sh -c 'echo "a b" {execution_id}' \$HOME`
	if desc, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	ex := e.submit(desc)
	stored := e.services(ex.ID)["alpha0"].Description
	if strings.Contains(string(stored), "EXECUTION_ID") || !strings.Contains(string(stored), `"dns_name":""`) {
		t.Errorf("stored instance %s, want it unbound", stored)
	}
	e.run()
	e.waitStatus(ex.ID, state.StatusRunning)
	list := rec.started()
	if len(list) != 1 {
		t.Fatalf("started %d services", len(list))
	}
	spec, id := list[0], fmt.Sprint(ex.ID)
	if want := []string{"sh", "-c", `echo "a b" {execution_id}`, "$HOME"}; !slices.Equal(spec.Command, want) {
		t.Errorf("command %q, want %q", spec.Command, want)
	}
	self := containerName(ex.ID, "alpha0")
	for k, want := range map[string]string{"SELF": self, "RUN": id + "/{x}", "EXECUTION_ID": id, "ZOE_USER": "alice",
		"SERVICE_NAME": "alpha0", "REVERSE_PROXY_PATH_8888": "/zoe/proxy/" + id + "/alpha0/8888"} {
		if spec.Environment[k] != want {
			t.Errorf("%s=%q, want %q", k, spec.Environment[k], want)
		}
	}
	if spec.Hostname != self || spec.Name != self {
		t.Errorf("name %q, host name %q, want %q", spec.Name, spec.Hostname, self)
	}
}

// TestStartProxyToken: every instance with a proxied port, the elastic
// ones too, starts with a ZOE_PROXY_TOKEN of its own, the one stored with
// it at submission (so a later start of it, after a restart of the daemon,
// gives the container the same), and the others with none.
func TestStartProxyToken(t *testing.T) {
	t.Parallel()
	var rec *specs
	e := newEnv(t, options{wrap: func(b engine.Backend) engine.Backend {
		rec = &specs{Backend: b}
		return rec
	}})
	ex := e.submit(zappJSON(t, false,
		svc{name: "notebook", ess: 1, total: 2, monitor: true, ports: []int{8888}, proxied: true, env: forever()},
		svc{name: "database", ess: 1, total: 1, ports: []int{5432}, env: forever()}))
	stored := map[string]zapp.Instance{}
	for name, sv := range e.services(ex.ID) {
		var in zapp.Instance
		if err := json.Unmarshal(sv.Description, &in); err != nil {
			t.Fatal(err)
		}
		stored[name] = in
	}
	waitFor(t, "three services started", func() (bool, string) { return len(rec.started()) == 3, fmt.Sprint(len(rec.started())) })
	seen := map[string]bool{}
	for _, spec := range rec.started() {
		name := spec.Labels[engine.LabelService]
		tok, set := spec.Environment["ZOE_PROXY_TOKEN"]
		switch want := stored[name].ProxyToken; {
		case name == "database0":
			if set || want != "" {
				t.Errorf("database0 has no proxied port, yet a token %q (stored %q)", tok, want)
			}
		case tok != want || len(tok) < 26 || seen[tok]:
			t.Errorf("%s: ZOE_PROXY_TOKEN %q, stored %q: want the stored one, of 128 bits or more, unique", name, tok, want)
		}
		seen[tok] = true
	}
}

// placing records the services of each PlaceServices call, and refuses
// the first conflicts calls with sdk.ErrConflict, changing nothing, as if
// something else had changed a service meanwhile.
type placing struct {
	state.Store
	mu        sync.Mutex
	conflicts int
	calls     [][]string // the services placed, by name
}

func (p *placing) PlaceServices(ctx context.Context, id int64, ps []state.Placement) ([]state.Service, error) {
	p.mu.Lock()
	if p.conflicts > 0 {
		p.conflicts--
		p.mu.Unlock()
		return nil, fmt.Errorf("a service changed status concurrently: %w", sdk.ErrConflict)
	}
	p.mu.Unlock()
	svcs, err := p.Store.PlaceServices(ctx, id, ps)
	if err == nil {
		names := make([]string, len(svcs))
		for i, sv := range svcs {
			names[i] = sv.Name
		}
		slices.Sort(names)
		p.mu.Lock()
		p.calls = append(p.calls, names)
		p.mu.Unlock()
	}
	return svcs, err
}

func (p *placing) placed() [][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// TestOrderPlacedTogether: the services of one startup order are placed in
// one PlaceServices call, an order after the other; a conflict places none
// of them, and the start is tried again after a back-off.
func TestOrderPlacedTogether(t *testing.T) {
	t.Parallel()
	for _, conflicts := range []int{0, 1} {
		t.Run(fmt.Sprint(conflicts, " conflicts"), func(t *testing.T) {
			e := newEnv(t, options{noEngine: true})
			store := &placing{Store: e.store, conflicts: conflicts}
			e.cfg.Store = store
			var err error
			if e.eng, err = engine.New(testutil.Logger(t).Named("engine"), e.cfg); err != nil {
				t.Fatal(err)
			}
			ex := e.submit(zappJSON(t, false,
				svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()},
				svc{name: "beta", ess: 2, total: 2, env: forever()},
				svc{name: "gamma", order: 1, ess: 1, total: 1, env: forever()}))
			e.run()
			e.waitStatus(ex.ID, state.StatusRunning)
			want := [][]string{{"alpha0", "beta0", "beta1"}, {"gamma0"}}
			if got := store.placed(); !slices.EqualFunc(got, want, slices.Equal) {
				t.Errorf("placed %v, want %v", got, want)
			}
			evs, err := e.store.Events(t.Context(), ex.ID)
			if err != nil {
				t.Fatal(err)
			}
			starts := map[string]int{}
			retried := false
			for _, ev := range evs {
				if ev.ServiceName != "" && ev.To == string(state.ServiceStarting) {
					starts[ev.ServiceName]++
				}
				retried = retried || ev.ServiceName == "" && strings.Contains(ev.Reason, "retrying the start")
			}
			if want := map[string]int{"alpha0": 1, "beta0": 1, "beta1": 1, "gamma0": 1}; !maps.Equal(starts, want) {
				t.Errorf("services moved to starting %v times, want %v", starts, want)
			}
			if retried != (conflicts > 0) {
				t.Errorf("a start retried after a back-off: %v, want %v", retried, conflicts > 0)
			}
		})
	}
}
