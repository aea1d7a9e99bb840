package plugintest

// memBackend is a back-end double for the suite's own tests. Its platform
// is a JSON file that every instance and every process on it shares (under
// flock), or, without a file, the memory of one process: its services then
// die with the process, as a broken back-end's would. Flaws break one rule
// of the contract each, for the tests that check the suite notices.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

type memState struct {
	Services map[string]*memService `json:"services"` // by handle id
	Networks map[string]memNetwork  `json:"networks"` // by id
}

type memNetwork struct {
	Name       string `json:"name"`
	Deployment string `json:"deployment"`
}

type memService struct {
	Deployment string               `json:"deployment"`
	Spec       backend.ServiceSpec  `json:"spec"`
	State      backend.ServiceState `json:"state"`
	ExitCode   int                  `json:"exit_code"`
	Logs       []backend.LogEntry   `json:"logs"`
	// ExitAt is when it exits by itself with ExitWith; zero: never.
	ExitAt   time.Time `json:"exit_at"`
	ExitWith int       `json:"exit_with"`
}

// memPlatform is the platform as one process sees it.
type memPlatform struct {
	path string // "" keeps it in mem only

	mu   sync.Mutex
	mem  *memState
	subs map[chan backend.Event]string // subscriber → its deployment
}

func newMemPlatform(path string) *memPlatform {
	return &memPlatform{path: path, mem: &memState{Services: map[string]*memService{}, Networks: map[string]memNetwork{}},
		subs: map[chan backend.Event]string{}}
}

type memEvent struct {
	deployment string
	e          backend.Event
}

// do runs fn on the platform, after the exits that are due, under the
// platform's locks, saves the result and hands the events on.
func (p *memPlatform) do(fn func(st *memState, emit func(string, backend.Event)) error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, unlock, err := p.load()
	if err != nil {
		return err
	}
	defer unlock()
	var evs []memEvent
	emit := func(dep string, e backend.Event) {
		e.Time = time.Now()
		evs = append(evs, memEvent{dep, e})
	}
	now := time.Now()
	for id, s := range st.Services {
		if s.State == backend.ServiceRunning && !s.ExitAt.IsZero() && !now.Before(s.ExitAt) {
			s.State, s.ExitCode = backend.ServiceExited, s.ExitWith
			emit(s.Deployment, backend.Event{Kind: backend.EventExited, ServiceName: s.Spec.Name, HandleID: id, ExitCode: s.ExitCode})
		}
	}
	ferr := fn(st, emit)
	if err := p.save(st); err != nil {
		return err
	}
	for _, ev := range evs {
		for ch, dep := range p.subs {
			if dep == ev.deployment {
				select {
				case ch <- ev.e:
				default:
				}
			}
		}
	}
	return ferr
}

func (p *memPlatform) load() (*memState, func(), error) {
	if p.path == "" {
		return p.mem, func() {}, nil
	}
	lock, err := os.OpenFile(p.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		_ = lock.Close()
		return nil, nil, err
	}
	unlock := func() { _ = lock.Close() } // closing releases the flock
	st := &memState{}
	raw, err := os.ReadFile(p.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		unlock()
		return nil, nil, err
	default:
		if err := json.Unmarshal(raw, st); err != nil {
			unlock()
			return nil, nil, err
		}
	}
	if st.Services == nil {
		st.Services = map[string]*memService{}
	}
	if st.Networks == nil {
		st.Networks = map[string]memNetwork{}
	}
	return st, unlock, nil
}

func (p *memPlatform) save(st *memState) error {
	if p.path == "" {
		return nil
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := p.path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p.path)
}

// memFlaws each break one rule of the contract.
type memFlaws struct {
	ListIgnoresLabels bool `json:"list_ignores_labels"`
	StartReplaces     bool `json:"start_replaces"`
	// RecoverReadsFirst refuses a handle it cannot read before it looks
	// its ID up.
	RecoverReadsFirst bool `json:"recover_reads_first"`
	// HandlesCrossDeployments finds another deployment's service by its
	// handle.
	HandlesCrossDeployments bool `json:"handles_cross_deployments"`
}

type memBackend struct {
	mu     sync.Mutex
	p      *memPlatform
	dep    string
	flaws  memFlaws
	closed bool
}

var (
	_ backend.Backend = (*memBackend)(nil)
	_ backend.Updater = (*memBackend)(nil)
	_ backend.Closer  = (*memBackend)(nil)
)

func (*memBackend) Info() sdk.Info { return sdk.Info{Name: "mem", Version: "0.0.1"} }
func (*memBackend) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "state_file", Type: "string", Default: ""},
		{Name: "flaws", Type: "map(bool)", Default: map[string]bool{}},
	}}
}

// Configure is how a plugin process gets its platform: the state file, ""
// for its own memory.
func (b *memBackend) Configure(_ context.Context, cfg sdk.Config) error {
	var c struct {
		StateFile string   `json:"state_file"`
		Flaws     memFlaws `json:"flaws"`
	}
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.p, b.dep, b.flaws = newMemPlatform(c.StateFile), cfg.Deployment, c.Flaws
	return nil
}

func (b *memBackend) platform() (*memPlatform, string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.p == nil || b.closed {
		return nil, "", fmt.Errorf("mem back-end not configured: %w", sdk.ErrUnavailable)
	}
	return b.p, b.dep, nil
}

// do runs fn on the platform of this instance's deployment.
func (b *memBackend) do(fn func(st *memState, dep string, emit func(string, backend.Event)) error) error {
	p, dep, err := b.platform()
	if err != nil {
		return err
	}
	return p.do(func(st *memState, emit func(string, backend.Event)) error { return fn(st, dep, emit) })
}

func (b *memBackend) Capabilities(context.Context) (backend.Capabilities, error) {
	if _, _, err := b.platform(); err != nil {
		return backend.Capabilities{}, err
	}
	return backend.Capabilities{PullsImages: true}, nil
}

func (b *memBackend) Close(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

func (b *memBackend) Nodes(context.Context) ([]backend.Node, error) {
	return []backend.Node{{Name: "node1", Cores: 4, MemoryBytes: 8 << 30, State: backend.NodeReady}}, nil
}

func (b *memBackend) CreateNetwork(_ context.Context, spec backend.NetworkSpec) (string, error) {
	id := "net-" + randomSuffix()
	return id, b.do(func(st *memState, dep string, _ func(string, backend.Event)) error {
		for _, n := range st.Networks {
			if n.Name == spec.Name && n.Deployment == dep {
				return fmt.Errorf("network %q: %w", spec.Name, sdk.ErrAlreadyExists)
			}
		}
		st.Networks[id] = memNetwork{Name: spec.Name, Deployment: dep}
		return nil
	})
}

func (b *memBackend) RemoveNetwork(_ context.Context, id string) error {
	return b.do(func(st *memState, _ string, _ func(string, backend.Event)) error {
		if _, ok := st.Networks[id]; !ok {
			return fmt.Errorf("network %q: %w", id, sdk.ErrNotFound)
		}
		for _, s := range st.Services {
			if s.Spec.Network == id && s.State == backend.ServiceRunning {
				return fmt.Errorf("network %q is in use by %q: %w", id, s.Spec.Name, sdk.ErrConflict)
			}
		}
		delete(st.Networks, id)
		return nil
	})
}

func (b *memBackend) Start(_ context.Context, spec backend.ServiceSpec) (backend.ServiceStatus, error) {
	if err := backend.CheckUser(spec); err != nil {
		return backend.ServiceStatus{}, err
	}
	if err := backend.CheckVolumes(spec.Volumes); err != nil {
		return backend.ServiceStatus{}, err
	}
	exitWith, exits := -1, false
	if code := spec.Environment["EXIT_CODE"]; code != "" {
		n, err := strconv.Atoi(code)
		if err != nil {
			return backend.ServiceStatus{}, fmt.Errorf("EXIT_CODE %q: %w", code, sdk.ErrInvalidArgument)
		}
		exitWith, exits = n, true
	}
	id := "svc-" + randomSuffix()
	var out backend.ServiceStatus
	err := b.do(func(st *memState, dep string, emit func(string, backend.Event)) error {
		if _, ok := st.Networks[spec.Network]; spec.Network != "" && !ok {
			return fmt.Errorf("network %q: %w", spec.Network, sdk.ErrNotFound)
		}
		for old, s := range st.Services {
			if s.Spec.Name == spec.Name && s.Deployment == dep {
				if !b.flaws.StartReplaces {
					return fmt.Errorf("service %q: %w", spec.Name, sdk.ErrAlreadyExists)
				}
				delete(st.Services, old)
			}
		}
		now := time.Now()
		s := &memService{Deployment: dep, Spec: spec, State: backend.ServiceRunning, ExitWith: exitWith, Logs: []backend.LogEntry{
			{Time: now, Stream: backend.Stdout, Line: []byte("hello from " + spec.Name)},
			{Time: now.Add(time.Microsecond), Stream: backend.Stderr, Line: []byte("ready")},
		}}
		if exits {
			s.ExitAt = now.Add(30 * time.Millisecond)
		}
		st.Services[id] = s
		emit(dep, backend.Event{Kind: backend.EventStarted, ServiceName: spec.Name, HandleID: id})
		out = memStatus(id, s)
		return nil
	})
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	if exits {
		p, _, _ := b.platform()
		time.AfterFunc(40*time.Millisecond, func() {
			_ = p.do(func(*memState, func(string, backend.Event)) error { return nil })
		})
	}
	return out, nil
}

func memStatus(id string, s *memService) backend.ServiceStatus {
	state, _ := json.Marshal(s.Spec.Name)
	return backend.ServiceStatus{Handle: backend.Handle{ID: id, Version: 1, State: state}, Name: s.Spec.Name,
		State: s.State, ExitCode: s.ExitCode, Node: "node1", Labels: s.Spec.Labels}
}

// find returns the deployment's service h names.
func (b *memBackend) find(st *memState, dep string, h backend.Handle) (*memService, error) {
	s, ok := st.Services[h.ID]
	if !ok || (s.Deployment != dep && !b.flaws.HandlesCrossDeployments) {
		return nil, fmt.Errorf("service %q: %w", h.ID, sdk.ErrNotFound)
	}
	return s, nil
}

// Stop writes a line, as a service told to stop would, and exits 0.
func (b *memBackend) Stop(_ context.Context, h backend.Handle, _ time.Duration) error {
	return b.do(func(st *memState, dep string, emit func(string, backend.Event)) error {
		s, err := b.find(st, dep, h)
		if err != nil || s.State != backend.ServiceRunning {
			return err
		}
		at := time.Now()
		if last := s.Logs[len(s.Logs)-1].Time; !at.After(last) {
			at = last.Add(time.Microsecond)
		}
		s.Logs = append(s.Logs, backend.LogEntry{Time: at, Stream: backend.Stdout, Line: []byte("stopping")})
		s.State, s.ExitCode = backend.ServiceExited, 0
		emit(dep, backend.Event{Kind: backend.EventExited, ServiceName: s.Spec.Name, HandleID: h.ID})
		return nil
	})
}

func (b *memBackend) Remove(_ context.Context, h backend.Handle, force bool) error {
	return b.do(func(st *memState, dep string, emit func(string, backend.Event)) error {
		s, err := b.find(st, dep, h)
		if err != nil {
			return err
		}
		if s.State == backend.ServiceRunning {
			if !force {
				return fmt.Errorf("service %q is running: %w", s.Spec.Name, sdk.ErrConflict)
			}
			emit(dep, backend.Event{Kind: backend.EventExited, ServiceName: s.Spec.Name, HandleID: h.ID, ExitCode: 137})
		}
		delete(st.Services, h.ID)
		return nil
	})
}

func (b *memBackend) Inspect(_ context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	var out backend.ServiceStatus
	return out, b.do(func(st *memState, dep string, _ func(string, backend.Event)) error {
		s, err := b.find(st, dep, h)
		if err == nil {
			out = memStatus(h.ID, s)
		}
		return err
	})
}

// Recover looks the handle's ID up, then checks the State, when there is
// one: the name of the service.
func (b *memBackend) Recover(ctx context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	var name string
	readErr := json.Unmarshal(h.State, &name)
	if h.Version != 1 {
		readErr = fmt.Errorf("version %d", h.Version)
	}
	if h.Version == 0 && len(h.State) == 0 {
		readErr = nil // only an ID
	}
	if readErr != nil && b.flaws.RecoverReadsFirst {
		return backend.ServiceStatus{}, fmt.Errorf("handle %q: %v: %w", h.ID, readErr, sdk.ErrInvalidArgument)
	}
	st, err := b.Inspect(ctx, h)
	switch {
	case err != nil:
		return backend.ServiceStatus{}, err
	case readErr != nil:
		return backend.ServiceStatus{}, fmt.Errorf("handle %q: %v: %w", h.ID, readErr, sdk.ErrInvalidArgument)
	case len(h.State) > 0 && st.Name != name:
		return backend.ServiceStatus{}, fmt.Errorf("handle of %q names %q: %w", name, st.Name, sdk.ErrInvalidArgument)
	}
	return st, nil
}

func (b *memBackend) List(_ context.Context, opts backend.ListOptions) ([]backend.ServiceStatus, error) {
	var out []backend.ServiceStatus
	return out, b.do(func(st *memState, dep string, _ func(string, backend.Event)) error {
		for id, s := range st.Services {
			if s.Deployment == dep && (b.flaws.ListIgnoresLabels || opts.Matches(s.Spec.Labels)) {
				out = append(out, memStatus(id, s))
			}
		}
		return nil
	})
}

func (b *memBackend) Update(_ context.Context, h backend.Handle, r backend.Resources) error {
	return b.do(func(st *memState, dep string, _ func(string, backend.Event)) error {
		s, err := b.find(st, dep, h)
		if err != nil {
			return err
		}
		if s.State != backend.ServiceRunning {
			return fmt.Errorf("service %q is %s: %w", s.Spec.Name, s.State, sdk.ErrConflict)
		}
		s.Spec.Resources = r
		return nil
	})
}

func (b *memBackend) Events(ctx context.Context) (<-chan backend.Event, error) {
	p, dep, err := b.platform()
	if err != nil {
		return nil, err
	}
	ch := make(chan backend.Event, 64)
	p.mu.Lock()
	p.subs[ch] = dep
	p.mu.Unlock()
	go func() {
		<-ctx.Done()
		p.mu.Lock()
		delete(p.subs, ch)
		close(ch)
		p.mu.Unlock()
	}()
	return ch, nil
}

// lines returns the service's lines from index from on, and whether it
// still runs.
func (b *memBackend) lines(h backend.Handle, from int) ([]backend.LogEntry, bool, error) {
	var out []backend.LogEntry
	running := false
	err := b.do(func(st *memState, dep string, _ func(string, backend.Event)) error {
		s, err := b.find(st, dep, h)
		if err != nil {
			return err
		}
		out, running = slices.Clone(s.Logs[min(from, len(s.Logs)):]), s.State == backend.ServiceRunning
		return nil
	})
	return out, running, err
}

func (b *memBackend) Logs(ctx context.Context, h backend.Handle, opts backend.LogOptions) (<-chan backend.LogEntry, error) {
	all, _, err := b.lines(h, 0)
	if err != nil {
		return nil, err
	}
	from := len(all)
	for i, l := range all {
		if !l.Time.Before(opts.Since) {
			from = i
			break
		}
	}
	if opts.Tail > 0 {
		from = max(from, len(all)-opts.Tail)
	}
	if !opts.Follow {
		ch := make(chan backend.LogEntry, len(all))
		for _, l := range all[from:] {
			ch <- l
		}
		close(ch)
		return ch, nil
	}
	ch := make(chan backend.LogEntry)
	go func() {
		defer close(ch)
		next := from
		for {
			lines, running, err := b.lines(h, next)
			if err != nil {
				return
			}
			for _, l := range lines {
				select {
				case ch <- l:
				case <-ctx.Done():
					return
				}
			}
			next += len(lines)
			if !running {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return ch, nil
}
