package sim

import (
	"cmp"
	"container/heap"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

const (
	// maxEvents is how many recent events the state file's snapshot keeps,
	// for instances in other processes that had not read the last changes
	// when the file was compacted. An instance that falls behind anyway says
	// so in the log.
	maxEvents = 1024
	// firstHostPort is where published ports start on every node, as
	// Kubernetes' node ports do; lastHostPort bounds them.
	firstHostPort = 30000
	lastHostPort  = 60999
)

// platform is the whole simulated platform, in memory, with the indexes
// that make every change cost what it changes rather than what the
// platform holds. Services and networks are immutable values: a change
// replaces them (put), so that a reader may keep one after letting the
// platform go.
type platform struct {
	// id tells a platform from another one created later at the same path,
	// whose event numbers start again.
	id string
	// seq numbers the events.
	seq uint64
	// services by handle ID, of every deployment sharing the file.
	services map[string]*service
	networks map[string]*network
	// pulled lists the images pulled onto each node, besides those the
	// configuration says it has.
	pulled     map[string][]string
	nextSubnet int
	// bridgeHosts counts the addresses given to services without a network.
	bridgeHosts int
	// events are the recent events, oldest first: at least the last
	// maxEvents, at most twice that.
	events []eventRecord

	// The indexes, kept by put and drop.
	byName     map[nameKey]string  // service ID by deployment and name
	netByName  map[nameKey]string  // network ID by deployment and name
	nodes      map[string]*nodeUse // what the running services use, by node
	netRunning map[string]int      // running services by network ID
	plans      plans               // planned changes of running services
	planned    int                 // running services with a planned change
}

type nameKey struct{ deployment, name string }

// nodeUse is what the running services on a node reserve and publish.
type nodeUse struct {
	// nanoCores is in billionths of a core: whole numbers add and subtract
	// without drift.
	nanoCores int64
	memory    int64
	ports     map[uint16]bool
	// freeFrom is a port at or below the lowest free one.
	freeFrom int
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
// (EndAt, OOMAt, VanishAt) and carried out when the time comes, by whichever
// instance is up then.
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
	// HTTP says the service serves a page on its tcp ports while it runs
	// (ZOE_SIM_HTTP); ProxyPaths are its REVERSE_PROXY_PATH_<port>, by
	// port, which the page shows; HTTPLogged counts the requests it logged.
	HTTP       bool              `json:"http,omitempty"`
	ProxyPaths map[string]string `json:"proxy_paths,omitempty"`
	HTTPLogged int               `json:"http_logged,omitempty"`

	// Logs are the lines after the first, "started <name> on <node>", which
	// is made from the service when read rather than stored: a service that
	// says nothing else costs nothing.
	Logs []logLine `json:"logs,omitempty"`

	// handle is the handle's state, made once by put.
	handle []byte
}

type logLine struct {
	Time   time.Time      `json:"time"`
	Stream backend.Stream `json:"stream"`
	Line   string         `json:"line"`
}

// lines returns the service's output, its first line included.
func (s *service) lines() []logLine {
	return append([]logLine{{Time: s.StartedAt, Stream: backend.Stdout, Line: fmt.Sprintf("started %s on %s", s.Name, s.Node)}},
		s.Logs...)
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

func nanoCores(c float64) int64 { return int64(math.Round(c * 1e9)) }

func newPlatform() (*platform, error) {
	id, err := randomID(8)
	if err != nil {
		return nil, err
	}
	pl := emptyPlatform()
	pl.id = id
	return pl, nil
}

func emptyPlatform() *platform {
	return &platform{services: map[string]*service{}, networks: map[string]*network{}, pulled: map[string][]string{},
		nextSubnet: 1, byName: map[nameKey]string{}, netByName: map[nameKey]string{}, nodes: map[string]*nodeUse{},
		netRunning: map[string]int{}}
}

// put adds or replaces a service. s must not be modified afterwards.
func (pl *platform) put(s *service) {
	if old := pl.services[s.ID]; old != nil {
		pl.unindex(old)
	}
	if s.handle == nil {
		// A struct of strings always encodes.
		s.handle, _ = json.Marshal(handleState{Name: s.Name, Node: s.Node, Deployment: s.Deployment})
	}
	pl.services[s.ID] = s
	pl.byName[nameKey{s.Deployment, s.Name}] = s.ID
	if s.State != backend.ServiceRunning {
		return
	}
	n := pl.node(s.Node)
	n.nanoCores += nanoCores(s.Resources.Cores)
	n.memory += memoryOf(s.Resources)
	for _, p := range s.Ports {
		n.ports[p.HostPort] = true
	}
	if s.Network != "" {
		pl.netRunning[s.Network]++
	}
	if at, _, ok := s.next(); ok {
		pl.planned++
		heap.Push(&pl.plans, plan{at: at, s: s})
		if len(pl.plans) > 2*pl.planned+1024 {
			// Mostly stale plans of services changed since: drop them, so
			// that the heap stays as big as what it plans.
			pl.plans = slices.DeleteFunc(pl.plans, func(p plan) bool { return pl.services[p.s.ID] != p.s })
			heap.Init(&pl.plans)
		}
	}
}

// drop removes a service.
func (pl *platform) drop(id string) {
	if old := pl.services[id]; old != nil {
		pl.unindex(old)
		delete(pl.services, id)
	}
}

// unindex takes a service out of the indexes; its planned change is left
// in the heap, where it is recognised as stale.
func (pl *platform) unindex(s *service) {
	if k := (nameKey{s.Deployment, s.Name}); pl.byName[k] == s.ID {
		delete(pl.byName, k)
	}
	if s.State != backend.ServiceRunning {
		return
	}
	n := pl.node(s.Node)
	n.nanoCores -= nanoCores(s.Resources.Cores)
	n.memory -= memoryOf(s.Resources)
	for _, p := range s.Ports {
		delete(n.ports, p.HostPort)
		n.freeFrom = min(n.freeFrom, int(p.HostPort))
	}
	if s.Network != "" {
		if pl.netRunning[s.Network]--; pl.netRunning[s.Network] <= 0 {
			delete(pl.netRunning, s.Network)
		}
	}
	if _, _, ok := s.next(); ok {
		pl.planned--
	}
}

func (pl *platform) node(name string) *nodeUse {
	n := pl.nodes[name]
	if n == nil {
		n = &nodeUse{ports: map[uint16]bool{}, freeFrom: firstHostPort}
		pl.nodes[name] = n
	}
	return n
}

// putNetwork adds or replaces a network; dropNetwork removes one.
func (pl *platform) putNetwork(n *network) {
	if old := pl.networks[n.ID]; old != nil {
		delete(pl.netByName, nameKey{old.Deployment, old.Name})
	}
	pl.networks[n.ID] = n
	pl.netByName[nameKey{n.Deployment, n.Name}] = n.ID
}

func (pl *platform) dropNetwork(id string) {
	if old := pl.networks[id]; old != nil {
		if k := (nameKey{old.Deployment, old.Name}); pl.netByName[k] == id {
			delete(pl.netByName, k)
		}
		delete(pl.networks, id)
	}
}

// named returns a deployment's service by name.
func (pl *platform) named(deployment, name string) *service {
	return pl.services[pl.byName[nameKey{deployment, name}]]
}

// nextChange returns the earliest planned change of any running service,
// dropping the stale plans on the way.
func (pl *platform) nextChange() (plan, bool) {
	for len(pl.plans) > 0 {
		p := pl.plans[0]
		if pl.services[p.s.ID] == p.s {
			return p, true
		}
		heap.Pop(&pl.plans)
	}
	return plan{}, false
}

// appendEvent numbers an event and keeps it among the recent ones.
func (pl *platform) appendEvent(deployment string, e backend.Event) eventRecord {
	pl.seq++
	r := eventRecord{Seq: pl.seq, Deployment: deployment, Event: e}
	pl.keepEvents(r)
	return r
}

// keepEvents adds records to the recent events, dropping the oldest in
// batches so that each costs O(1).
func (pl *platform) keepEvents(rs ...eventRecord) {
	pl.events = append(pl.events, rs...)
	if len(pl.events) > 2*maxEvents {
		pl.events = slices.Clone(pl.events[len(pl.events)-maxEvents:])
	}
}

// recentEvents returns the last maxEvents events.
func (pl *platform) recentEvents() []eventRecord {
	return pl.events[max(len(pl.events)-maxEvents, 0):]
}

// reserved returns what the running services on a node reserve.
func (pl *platform) reserved(nodeName string) (float64, int64) {
	n := pl.nodes[nodeName]
	if n == nil {
		return 0, 0
	}
	return float64(n.nanoCores) / 1e9, n.memory
}

// fits tells whether r fits on n beside what runs there (but skip, a
// service whose reservation r would replace), and why not.
func (pl *platform) fits(n node, r backend.Resources, skip *service) error {
	cores, mem := pl.reserved(n.name)
	if skip != nil && skip.State == backend.ServiceRunning && skip.Node == n.name {
		cores = float64(pl.nodes[n.name].nanoCores-nanoCores(skip.Resources.Cores)) / 1e9
		mem -= memoryOf(skip.Resources)
	}
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
	return slices.Contains(n.images, image) || slices.Contains(pl.pulled[n.name], image)
}

// hostPorts picks free host ports on a node for the given ports.
//
// bind, when not nil, is asked about each tcp port before it is given: a
// service serving pages (ZOE_SIM_HTTP) takes only ports it could listen
// on, since the host's are not the platform's alone.
func (pl *platform) hostPorts(n node, ports []backend.Port, bind func(port uint16) bool) ([]backend.PublishedPort, error) {
	if len(ports) == 0 {
		return nil, nil
	}
	use := pl.node(n.name)
	out := make([]backend.PublishedPort, 0, len(ports))
	next := use.freeFrom
	taken := map[uint16]bool{}
	free := func() {
		for next <= lastHostPort && (use.ports[uint16(next)] || taken[uint16(next)]) {
			next++
		}
	}
	for _, p := range ports {
		free()
		if len(taken) == 0 && next <= lastHostPort {
			// Every port below the first one free on the platform is in use.
			use.freeFrom = next
		}
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		if bind != nil && proto == "tcp" {
			for next <= lastHostPort && !bind(uint16(next)) {
				next++
				free()
			}
		}
		if next > lastHostPort {
			return nil, fmt.Errorf("node %q has no free host port left: %w", n.name, sdk.ErrResourceExhausted)
		}
		out = append(out, backend.PublishedPort{Port: p.Port, Protocol: proto, HostAddress: n.address, HostPort: uint16(next)})
		taken[uint16(next)] = true
	}
	return out, nil
}

// plan is a planned change of a running service; plans is a heap of
// them, earliest first. A plan whose service has since been replaced or
// removed is stale and skipped.
type plan struct {
	at time.Time
	s  *service
}

type plans []plan

func (h plans) Len() int { return len(h) }
func (h plans) Less(i, j int) bool {
	return cmp.Or(h[i].at.Compare(h[j].at), cmp.Compare(h[i].s.Name, h[j].s.Name), cmp.Compare(h[i].s.ID, h[j].s.ID)) < 0
}
func (h plans) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *plans) Push(x any)   { *h = append(*h, x.(plan)) }
func (h *plans) Pop() any {
	old := *h
	p := old[len(old)-1]
	*h = old[:len(old)-1]
	return p
}

func randomID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random id: %w", sdk.ErrInternal)
	}
	return hex.EncodeToString(b), nil
}

// cloneService returns a copy of s that a change may modify: nothing
// modifiable is shared.
func cloneService(s *service) *service {
	c := *s
	c.Labels, c.Ports, c.Logs = maps.Clone(s.Labels), slices.Clone(s.Ports), slices.Clone(s.Logs)
	return &c
}
