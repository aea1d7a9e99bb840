package plugintest

// These tests run the conformance suites against small in-memory plugins
// written here. They are test doubles on purpose: what is under test is the
// SDK — the gRPC adapters, streams, error categories and the suites
// themselves — not a platform. Zoe's real plugins run the same suites
// against real files, directories and container engines from their own
// packages.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/backend"
)

type memAuth struct{ users map[string]auth.Identity }

func (memAuth) Info() sdk.Info { return sdk.Info{Name: "mem", Version: "0.0.1"} }
func (memAuth) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{{Name: "realm", Type: "string", Default: "test"}}}
}
func (memAuth) Configure(context.Context, sdk.Config) error { return nil }
func (m memAuth) Authenticate(_ context.Context, user, pw string) (auth.Identity, error) {
	id, ok := m.users[user]
	if !ok || pw != user+"-pw" {
		return auth.Identity{}, fmt.Errorf("wrong username or password: %w", sdk.ErrInvalidCredentials)
	}
	return id, nil
}

func (m memAuth) Lookup(_ context.Context, user string) (auth.Identity, error) {
	id, ok := m.users[user]
	if !ok {
		return auth.Identity{}, fmt.Errorf("no user %q: %w", user, sdk.ErrNotFound)
	}
	return id, nil
}

func (memAuth) Generation(context.Context) (uint64, error) { return 1, nil }

func TestAuthConformanceOfMemoryPlugin(t *testing.T) {
	uid := uint32(1001)
	alice := auth.Identity{Username: "alice", Role: auth.RoleAdmin, Groups: []string{"staff"}, UID: &uid, GID: &uid}
	RunAuthConformance(t, AuthSuite{
		New: func(*testing.T) auth.Authenticator {
			return memAuth{users: map[string]auth.Identity{"alice": alice, "bob": {Username: "bob", Role: auth.RoleGuest}}}
		},
		Accounts: []AuthAccount{
			{Username: "alice", Password: "alice-pw", Want: alice},
			{Username: "bob", Password: "bob-pw", Want: auth.Identity{Username: "bob", Role: auth.RoleGuest}},
		},
	})
}

// memPlatform stands for a container engine shared by several instances of
// the memory back-end.
type memPlatform struct {
	mu       sync.Mutex
	services map[string]*memService
	networks map[string]bool
	subs     []chan backend.Event
}

type memService struct {
	spec     backend.ServiceSpec
	state    backend.ServiceState
	exitCode int
	logs     []backend.LogEntry
}

type memBackend struct{ p *memPlatform }

func (memBackend) Info() sdk.Info                              { return sdk.Info{Name: "mem", Version: "0.0.1"} }
func (memBackend) Schema() sdk.Schema                          { return sdk.Schema{} }
func (memBackend) Configure(context.Context, sdk.Config) error { return nil }

func (b memBackend) Nodes(context.Context) ([]backend.Node, error) {
	return []backend.Node{{Name: "node1", Cores: 4, MemoryBytes: 8 << 30, State: backend.NodeReady}}, nil
}

func (b memBackend) CreateNetwork(_ context.Context, spec backend.NetworkSpec) (string, error) {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	b.p.networks["net-"+spec.Name] = true
	return "net-" + spec.Name, nil
}

func (b memBackend) RemoveNetwork(_ context.Context, id string) error {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	if !b.p.networks[id] {
		return fmt.Errorf("network %q: %w", id, sdk.ErrNotFound)
	}
	delete(b.p.networks, id)
	return nil
}

func (b memBackend) emit(e backend.Event) {
	e.Time = time.Now()
	for _, ch := range b.p.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

func (b memBackend) Start(_ context.Context, spec backend.ServiceSpec) (backend.ServiceStatus, error) {
	if err := backend.CheckUser(spec); err != nil {
		return backend.ServiceStatus{}, err
	}
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	s := &memService{spec: spec, state: backend.ServiceRunning,
		logs: []backend.LogEntry{{Time: time.Now(), Stream: backend.Stdout, Line: []byte("hello from " + spec.Name)}}}
	b.p.services[spec.Name] = s
	b.emit(backend.Event{Kind: backend.EventStarted, ServiceName: spec.Name, HandleID: spec.Name})
	if code := spec.Environment["EXIT_CODE"]; code != "" {
		go func() {
			time.Sleep(20 * time.Millisecond)
			b.p.mu.Lock()
			defer b.p.mu.Unlock()
			fmt.Sscan(code, &s.exitCode)
			s.state = backend.ServiceExited
			b.emit(backend.Event{Kind: backend.EventExited, ServiceName: spec.Name, HandleID: spec.Name, ExitCode: s.exitCode})
		}()
	}
	return b.status(s), nil
}

func (b memBackend) status(s *memService) backend.ServiceStatus {
	state, _ := json.Marshal(s.spec.Name)
	return backend.ServiceStatus{Handle: backend.Handle{ID: s.spec.Name, Version: 1, State: state}, Name: s.spec.Name,
		State: s.state, ExitCode: s.exitCode, Node: "node1"}
}

func (b memBackend) find(h backend.Handle) (*memService, error) {
	s, ok := b.p.services[h.ID]
	if !ok {
		return nil, fmt.Errorf("service %q: %w", h.ID, sdk.ErrNotFound)
	}
	return s, nil
}

func (b memBackend) Stop(_ context.Context, h backend.Handle, _ time.Duration) error {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	s, err := b.find(h)
	if err == nil && s.state == backend.ServiceRunning {
		s.state, s.exitCode = backend.ServiceExited, 137
		b.emit(backend.Event{Kind: backend.EventExited, ServiceName: s.spec.Name, HandleID: h.ID, ExitCode: 137})
	}
	return err
}

func (b memBackend) Remove(_ context.Context, h backend.Handle, force bool) error {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	s, err := b.find(h)
	if err != nil {
		return err
	}
	if s.state == backend.ServiceRunning && !force {
		return fmt.Errorf("service %q is running: %w", h.ID, sdk.ErrConflict)
	}
	delete(b.p.services, h.ID)
	return nil
}

func (b memBackend) Inspect(_ context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	s, err := b.find(h)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	return b.status(s), nil
}

func (b memBackend) Recover(ctx context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	var name string
	if err := json.Unmarshal(h.State, &name); err != nil || name != h.ID {
		return backend.ServiceStatus{}, fmt.Errorf("handle state %q: %w", h.State, sdk.ErrInvalidArgument)
	}
	return b.Inspect(ctx, h)
}

func (b memBackend) List(context.Context) ([]backend.ServiceStatus, error) {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	var out []backend.ServiceStatus
	for _, s := range b.p.services {
		out = append(out, b.status(s))
	}
	return out, nil
}

func (b memBackend) Update(_ context.Context, h backend.Handle, r backend.Resources) error {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	s, err := b.find(h)
	if err == nil {
		s.spec.Resources = r
	}
	return err
}

func (b memBackend) Events(ctx context.Context) (<-chan backend.Event, error) {
	ch := make(chan backend.Event, 16)
	b.p.mu.Lock()
	b.p.subs = append(b.p.subs, ch)
	b.p.mu.Unlock()
	return ch, nil
}

func (b memBackend) Logs(_ context.Context, h backend.Handle, _ backend.LogOptions) (<-chan backend.LogEntry, error) {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	s, err := b.find(h)
	if err != nil {
		return nil, err
	}
	ch := make(chan backend.LogEntry, len(s.logs))
	for _, l := range s.logs {
		ch <- l
	}
	close(ch)
	return ch, nil
}

func TestBackendConformanceOfMemoryPlugin(t *testing.T) {
	platform := &memPlatform{services: map[string]*memService{}, networks: map[string]bool{}}
	RunBackendConformance(t, BackendSuite{
		New: func(*testing.T) backend.Backend { return memBackend{p: platform} },
		LongRunning: func() backend.ServiceSpec {
			return backend.ServiceSpec{Image: "sleeper", Ports: []backend.Port{{Port: 8080, Protocol: "tcp"}}}
		},
		Exiting: func() backend.ServiceSpec {
			return backend.ServiceSpec{Image: "job", Environment: map[string]string{"EXIT_CODE": "3"}}
		},
		Timeout: 5 * time.Second,
		NoProbe: "an in-memory double runs no program",
	})
}

// The conversions must carry every field across the wire.
func TestBackendFieldsSurviveTheWire(t *testing.T) {
	platform := &memPlatform{services: map[string]*memService{}, networks: map[string]bool{}}
	p := Backend(t, memBackend{p: platform})
	spec := backend.ServiceSpec{
		Name: "svc", Hostname: "svc-1-prod", Image: "img", Command: []string{"a", "b c"}, WorkDir: "/w",
		Environment: map[string]string{"K": "V"}, Labels: map[string]string{"zoe.x": "y"},
		Resources: backend.Resources{MemoryReservation: 1, MemoryLimit: 2, Cores: 1.5, ShmSize: 3},
		Volumes:   []backend.Volume{{HostPath: "/h", MountPoint: "/m", ReadOnly: true}},
		Ports:     []backend.Port{{Port: 80, Protocol: "tcp", Name: "http"}}, Network: "n", Node: "node1", ExecutionID: "42", User: "1000:1000",
		Security: backend.Security{AllowRoot: true, AllowPrivilegeEscalation: true, KeepCapabilities: true},
	}
	if _, err := p.Start(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	got := platform.services["svc"].spec
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", spec) {
		t.Errorf("spec after the wire:\n%+v\nwant\n%+v", got, spec)
	}
	if err := p.Update(context.Background(), backend.Handle{ID: "svc"}, backend.Resources{Cores: 3}); err != nil {
		t.Fatal(err)
	}
	if c := platform.services["svc"].spec.Resources.Cores; c != 3 {
		t.Errorf("cores after Update = %v, want 3", c)
	}
}

// Error categories survive the wire; errors without one arrive as internal.
func TestErrorCategoriesSurviveTheWire(t *testing.T) {
	for _, cat := range sdk.Categories() {
		t.Run(strings.ReplaceAll(cat.Error(), " ", "_"), func(t *testing.T) {
			p := Auth(t, failingAuth{err: fmt.Errorf("boom for %s: %w", "x", cat)})
			_, err := p.Authenticate(context.Background(), "u", "p")
			if sdk.Category(err) != cat {
				t.Errorf("category of %v = %v, want %v", err, sdk.Category(err), cat)
			}
			if !strings.Contains(err.Error(), "boom for x") {
				t.Errorf("message %q lost the plugin's text", err)
			}
		})
	}
	p := Auth(t, failingAuth{err: fmt.Errorf("plain")})
	if _, err := p.Authenticate(context.Background(), "u", "p"); sdk.Category(err) != sdk.ErrInternal {
		t.Errorf("uncategorised error arrived as %v", err)
	}
}

type failingAuth struct {
	memAuth
	err error
}

func (f failingAuth) Authenticate(context.Context, string, string) (auth.Identity, error) {
	return auth.Identity{}, f.err
}

// Diagnostics returned by Configure cross the wire with their paths.
func TestConfigureDiagnostics(t *testing.T) {
	p := Auth(t, diagAuth{})
	err := p.Configure(context.Background(), sdk.Config{JSON: []byte(`{}`)})
	d, ok := err.(sdk.Diagnostics)
	if !ok || len(d) != 2 || !d.HasErrors() || d[0].Path[0] != "users_file" || d[1].Severity != sdk.SeverityWarning {
		t.Fatalf("Configure = %#v", err)
	}
}

type diagAuth struct{ memAuth }

func (diagAuth) Configure(context.Context, sdk.Config) error {
	return sdk.Diagnostics{
		sdk.AttributeError("users_file", "Cannot read users file", "no such file"),
		{Severity: sdk.SeverityWarning, Summary: "old format"},
	}
}

// Diagnostics wrapped in another error still cross as diagnostics.
func TestConfigureWrappedDiagnostics(t *testing.T) {
	p := Auth(t, wrappedDiagAuth{})
	err := p.Configure(context.Background(), sdk.Config{JSON: []byte(`{}`)})
	d, ok := err.(sdk.Diagnostics)
	if !ok || len(d) != 1 || d[0].Path[0] != "users_file" {
		t.Fatalf("Configure = %#v, want the wrapped diagnostics", err)
	}
}

type wrappedDiagAuth struct{ memAuth }

func (wrappedDiagAuth) Configure(context.Context, sdk.Config) error {
	return fmt.Errorf("configure: %w", sdk.Diagnostics{sdk.AttributeError("users_file", "Unreadable", "")})
}
