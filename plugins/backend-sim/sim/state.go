package sim

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

const (
	// stateFormat is the version of the state file's layout.
	stateFormat = 1
	// maxEvents is how many recent events the state file keeps for the
	// instances that follow it, polling every pollInterval: far more than
	// can happen in that time, as every event costs a write of the file.
	// An instance that falls behind anyway says so in the log.
	maxEvents = 1024
	// firstHostPort is where published ports start on every node, as
	// Kubernetes' node ports do; lastHostPort bounds them.
	firstHostPort = 30000
	lastHostPort  = 60999
)

// platform is the whole simulated platform: the state file's content. A
// value that has been saved or published to readers is never modified again;
// transactions work on a fresh copy read from the file.
type platform struct {
	Format int `json:"format"`
	// ID tells a platform from another one created later at the same path,
	// whose event numbers start again.
	ID string `json:"id"`
	// Rev counts the saves; Seq numbers the events.
	Rev uint64 `json:"rev"`
	Seq uint64 `json:"seq"`
	// Services by handle ID, of every deployment sharing the file.
	Services map[string]*service `json:"services"`
	Networks map[string]*network `json:"networks"`
	// Pulled lists the images pulled onto each node, besides those the
	// configuration says it has.
	Pulled     map[string][]string `json:"pulled"`
	NextSubnet int                 `json:"next_subnet"`
	// BridgeHosts counts the addresses given to services without a network.
	BridgeHosts int           `json:"bridge_hosts"`
	Events      []eventRecord `json:"events"`
}

type eventRecord struct {
	Seq        uint64        `json:"seq"`
	Deployment string        `json:"deployment"`
	Event      backend.Event `json:"event"`
}

type network struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Deployment string            `json:"deployment"`
	Labels     map[string]string `json:"labels,omitempty"`
	Subnet     int               `json:"subnet"`
	Hosts      int               `json:"hosts"`
}

// service is one simulated container. Its fate is planned when it starts
// (EndAt, OOMAt, VanishAt) and carried out by whoever loads the state after
// the time has come.
type service struct {
	ID          string                  `json:"id"`
	Name        string                  `json:"name"`
	Deployment  string                  `json:"deployment"`
	ExecutionID string                  `json:"execution_id,omitempty"`
	Node        string                  `json:"node"`
	Network     string                  `json:"network,omitempty"`
	Image       string                  `json:"image"`
	Hostname    string                  `json:"hostname,omitempty"`
	Labels      map[string]string       `json:"labels,omitempty"`
	Resources   backend.Resources       `json:"resources"`
	IP          string                  `json:"ip"`
	Ports       []backend.PublishedPort `json:"ports,omitempty"`
	State       backend.ServiceState    `json:"state"`
	StartedAt   time.Time               `json:"started_at"`
	FinishedAt  time.Time               `json:"finished_at,omitzero"`
	ExitCode    int                     `json:"exit_code"`
	OOMKilled   bool                    `json:"oom_killed,omitempty"`
	Message     string                  `json:"message,omitempty"`

	// EndAt is when the service exits (zero: never by itself), with EndCode
	// and EndMessage; Stop and Kill bring it forward.
	EndAt      time.Time `json:"end_at,omitzero"`
	EndCode    int       `json:"end_code"`
	EndMessage string    `json:"end_message,omitempty"`
	OOMAt      time.Time `json:"oom_at,omitzero"`
	VanishAt   time.Time `json:"vanish_at,omitzero"`
	// IgnoreTerm and TermTime say how the service takes SIGTERM.
	IgnoreTerm bool          `json:"ignore_term,omitempty"`
	TermTime   time.Duration `json:"term_time,omitempty"`

	Logs []logLine `json:"logs"`
}

type logLine struct {
	Time   time.Time      `json:"time"`
	Stream backend.Stream `json:"stream"`
	Line   string         `json:"line"`
}

// fate is what happens to a running service next.
type fate int

const (
	fateExit fate = iota + 1
	fateOOM
	fateVanish
)

// next returns the service's next planned change, if any.
func (s *service) next() (time.Time, fate, bool) {
	var at time.Time
	var f fate
	for _, c := range []struct {
		at time.Time
		f  fate
	}{{s.EndAt, fateExit}, {s.OOMAt, fateOOM}, {s.VanishAt, fateVanish}} {
		if !c.at.IsZero() && (f == 0 || c.at.Before(at)) {
			at, f = c.at, c.f
		}
	}
	return at, f, f != 0
}

// memoryOf is the memory a service reserves on its node: its reservation,
// else its limit.
func memoryOf(r backend.Resources) int64 {
	if r.MemoryReservation > 0 {
		return r.MemoryReservation
	}
	return r.MemoryLimit
}

func newPlatform() (*platform, error) {
	id, err := randomID(8)
	if err != nil {
		return nil, err
	}
	return &platform{Format: stateFormat, ID: id, Services: map[string]*service{},
		Networks: map[string]*network{}, Pulled: map[string][]string{}, NextSubnet: 1}, nil
}

// due tells whether a running service has a change planned at or before now.
func (pl *platform) due(now time.Time) bool {
	at, ok := pl.nextChange()
	return ok && !at.After(now)
}

// nextChange returns the earliest planned change of any running service.
func (pl *platform) nextChange() (time.Time, bool) {
	var first time.Time
	found := false
	for _, s := range pl.Services {
		if s.State != backend.ServiceRunning {
			continue
		}
		if at, _, ok := s.next(); ok && (!found || at.Before(first)) {
			first, found = at, true
		}
	}
	return first, found
}

// advance carries out, in time order, every change planned at or before now,
// each stamped with the time it was due: time runs on while no plugin is up.
// It tells whether anything changed.
func (pl *platform) advance(now time.Time) bool {
	type change struct {
		s  *service
		at time.Time
		f  fate
	}
	var due []change
	for _, s := range pl.Services {
		if s.State != backend.ServiceRunning {
			continue
		}
		if at, f, ok := s.next(); ok && !at.After(now) {
			due = append(due, change{s, at, f})
		}
	}
	slices.SortFunc(due, func(a, b change) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.s.Name, b.s.Name), cmp.Compare(a.s.ID, b.s.ID))
	})
	for _, c := range due {
		pl.carryOut(c.s, c.at, c.f)
	}
	return len(due) > 0
}

func (pl *platform) carryOut(s *service, at time.Time, f fate) {
	ev := backend.Event{ServiceName: s.Name, HandleID: s.ID, Time: at}
	switch f {
	case fateExit:
		s.State, s.FinishedAt, s.ExitCode, s.Message = backend.ServiceExited, at, s.EndCode, s.EndMessage
		ev.Kind, ev.ExitCode, ev.Message = backend.EventExited, s.EndCode, s.EndMessage
		pl.emit(s.Deployment, ev)
	case fateOOM:
		s.State, s.FinishedAt, s.ExitCode, s.OOMKilled = backend.ServiceExited, at, 137, true
		s.Message = "killed: out of memory"
		s.Logs = append(s.Logs, logLine{Time: at, Stream: backend.Stderr, Line: "Killed"})
		ev.Kind, ev.Message = backend.EventOOMKilled, s.Message
		pl.emit(s.Deployment, ev)
		ev.Kind, ev.ExitCode = backend.EventExited, 137
		pl.emit(s.Deployment, ev)
	case fateVanish:
		delete(pl.Services, s.ID)
		ev.Kind, ev.Message = backend.EventVanished, "the platform no longer knows the service"
		pl.emit(s.Deployment, ev)
	}
}

// emit appends an event to the window of recent events.
func (pl *platform) emit(deployment string, e backend.Event) {
	pl.Seq++
	pl.Events = append(pl.Events, eventRecord{Seq: pl.Seq, Deployment: deployment, Event: e})
	if n := len(pl.Events) - maxEvents; n > 0 {
		pl.Events = slices.Delete(pl.Events, 0, n)
	}
}

// reserved sums what the running services on a node reserve, leaving out
// the service skip.
func (pl *platform) reserved(nodeName, skip string) (float64, int64) {
	var cores float64
	var mem int64
	for _, s := range pl.Services {
		if s.Node == nodeName && s.State == backend.ServiceRunning && s.ID != skip {
			cores += s.Resources.Cores
			mem += memoryOf(s.Resources)
		}
	}
	return cores, mem
}

// fits tells whether r fits on n beside what runs there (but skip), and
// why not.
func (pl *platform) fits(n node, r backend.Resources, skip string) error {
	cores, mem := pl.reserved(n.name, skip)
	want := memoryOf(r)
	if cores+r.Cores > n.cores+1e-9 || mem+want > n.memory {
		return fmt.Errorf("node %q has %.4g of %.4g cores and %s of %s memory free; the service asks for %.4g cores and %s: %w",
			n.name, max(n.cores-cores, 0), n.cores, formatSize(max(n.memory-mem, 0)), formatSize(n.memory),
			r.Cores, formatSize(want), sdk.ErrResourceExhausted)
	}
	return nil
}

// hasImage tells whether the image is on the node, configured or pulled.
func (pl *platform) hasImage(n node, image string) bool {
	return slices.Contains(n.images, image) || slices.Contains(pl.Pulled[n.name], image)
}

// hostPorts picks free host ports on a node for the given ports.
func (pl *platform) hostPorts(n node, ports []backend.Port) ([]backend.PublishedPort, error) {
	used := map[uint16]bool{}
	for _, s := range pl.Services {
		if s.Node == n.name && s.State == backend.ServiceRunning {
			for _, p := range s.Ports {
				used[p.HostPort] = true
			}
		}
	}
	out := make([]backend.PublishedPort, 0, len(ports))
	next := firstHostPort
	for _, p := range ports {
		for next <= lastHostPort && used[uint16(next)] {
			next++
		}
		if next > lastHostPort {
			return nil, fmt.Errorf("node %q has no free host port left: %w", n.name, sdk.ErrResourceExhausted)
		}
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		out = append(out, backend.PublishedPort{Port: p.Port, Protocol: proto, HostAddress: n.address, HostPort: uint16(next)})
		used[uint16(next)] = true
	}
	return out, nil
}

// address gives a service an address on its network: 10.<subnet>.x.y, or
// 172.17.x.y without one. Subnets wrap after 255 networks, which does not
// matter to a simulation whose networks are isolated anyway.
func (pl *platform) address(netID string) string {
	if n := pl.Networks[netID]; n != nil {
		n.Hosts++
		h := n.Hosts + 1
		return fmt.Sprintf("10.%d.%d.%d", n.Subnet%256, (h>>8)%256, h%256)
	}
	pl.BridgeHosts++
	h := pl.BridgeHosts + 1
	return fmt.Sprintf("172.17.%d.%d", (h>>8)%256, h%256)
}

func randomID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random id: %w", sdk.ErrInternal)
	}
	return hex.EncodeToString(b), nil
}

// readPlatform reads a state file; a missing one is fs.ErrNotExist.
func readPlatform(path string) (*platform, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return decodePlatform(path, b)
}

func decodePlatform(path string, b []byte) (*platform, error) {
	var pl platform
	if err := json.Unmarshal(b, &pl); err != nil {
		return nil, fmt.Errorf("state file %s is corrupt: %v: %w", path, err, sdk.ErrInternal)
	}
	if pl.Format != stateFormat {
		return nil, fmt.Errorf("state file %s has format %d; this plugin reads format %d: %w", path, pl.Format, stateFormat, sdk.ErrUnsupported)
	}
	if pl.Services == nil {
		pl.Services = map[string]*service{}
	}
	if pl.Networks == nil {
		pl.Networks = map[string]*network{}
	}
	if pl.Pulled == nil {
		pl.Pulled = map[string][]string{}
	}
	return &pl, nil
}

// clone returns a deep copy of pl, which a transaction may modify: cheaper
// than decoding the file again when it has not changed.
func (pl *platform) clone() *platform {
	c := *pl
	c.Services = make(map[string]*service, len(pl.Services))
	for id, s := range pl.Services {
		sc := *s
		sc.Labels, sc.Ports, sc.Logs = maps.Clone(s.Labels), slices.Clone(s.Ports), slices.Clone(s.Logs)
		c.Services[id] = &sc
	}
	c.Networks = make(map[string]*network, len(pl.Networks))
	for id, n := range pl.Networks {
		nc := *n
		nc.Labels = maps.Clone(n.Labels)
		c.Networks[id] = &nc
	}
	c.Pulled = make(map[string][]string, len(pl.Pulled))
	for n, imgs := range pl.Pulled {
		c.Pulled[n] = slices.Clone(imgs)
	}
	c.Events = slices.Clone(pl.Events)
	return &c
}

// writePlatform replaces the state file atomically: readers see the old
// file or the new one, never half of one, even if the plugin is killed
// mid-write. There is no fsync: the platform must survive the plugin, not
// the machine, and large simulations would become disk-bound.
func writePlatform(path string, pl *platform) ([]byte, error) {
	b, err := json.Marshal(pl)
	if err != nil {
		return nil, fmt.Errorf("encode state: %v: %w", err, sdk.ErrInternal)
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("write state: %v: %w", err, sdk.ErrInternal)
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("write state %s: %v: %w", f.Name(), err, sdk.ErrInternal)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("replace state %s: %v: %w", path, err, sdk.ErrInternal)
	}
	return b, nil
}

// lockFile takes the exclusive flock of path, waiting until ctx ends. Each
// call opens the file anew: flock excludes open file descriptions, so this
// excludes other instances in this process as well as other processes.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %v: %w", path, err, sdk.ErrInternal)
	}
	wait := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			// Closing the descriptor releases the lock.
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %v: %w", path, err, sdk.ErrInternal)
		}
		// Polled rather than blocking so that a hung holder cannot hang
		// the caller past its deadline.
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("waiting for the lock of %s: %v: %w", path, ctx.Err(), sdk.ErrDeadlineExceeded)
		case <-time.After(wait):
		}
		wait = min(wait*2, 20*time.Millisecond)
	}
}

// isNotExist tells a missing state file from a broken one.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
