// Package swarm is Zoe's "swarm" back-end: every service instance is a
// replicated Docker swarm-mode service of one replica (restart condition
// none), every execution an attachable overlay network.
//
// # The swarm
//
// The plugin talks to one manager's engine (address, or DOCKER_HOST, or the
// local socket). Nodes come from the swarm: cores and memory as the nodes
// report them, labels from the node labels (docker node update
// --label-add), drain and pause nodes disabled, nodes that are not ready
// unreachable. Zoe's scheduler picks the node; the service gets the
// placement constraint node.id == that node.
//
// # Services
//
// A service is named after the spec's Name (unique in the swarm), carries
// Zoe's labels (plus zoe.deployment and zoe.cores) on the service and on
// its containers, and joins the execution's network with the spec's
// Hostname as its alias, in endpoint mode dnsrr: the execution's other
// services reach it by that name, without the IPVS the VIP mode needs.
// Ports are published in host mode (the endpoint is the node's address
// and the port the node picked), or through the routing mesh with
// publish_mode = "ingress".
//
// Swarm has no "stop": Stop updates the service with a placement
// constraint no node meets, so the swarm shuts its task down (SIGTERM,
// then SIGKILL after the service's stop grace period) and keeps it, with
// its exit code and its output, until Remove; the replacement task stays
// pending and is never run.
//
// # Policy
//
// The run-as user, capabilities (all dropped unless KeepCapabilities), the
// pids limit and the memory limit are the service's own. no_new_privs is
// per service only from API 1.46 (Docker 27); an older engine enforces it
// only when every node's dockerd runs with --no-new-privileges, which the
// administrator says with engine_no_new_privileges = true: without either,
// a spec that forbids privilege escalation (every spec, unless the
// administrator allows escalation) is refused.
//
// # Handles
//
// A handle's ID is the swarm service's id; its State (Version 1) is the
// JSON {"service_id", "name"}. The ID decides, as the contract says.
//
// # Events
//
// Swarm has no task events: Events polls the deployment's services and
// their tasks (poll_interval) and reports the changes: started, exited with
// the exit code (preceded by oom_killed when the task ran on the manager's
// own node and its container was OOM-killed), vanished for a service
// removed by someone else.
package swarm

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/dockerapi"
	"github.com/zoe-project/zoe/plugins/internal/removals"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

const (
	// Name is the plugin's name in Zoe's configuration.
	Name = "swarm"
	// Version is the plugin's version.
	Version = "0.1.0"

	// LabelDeployment is the label every service and network carries.
	LabelDeployment = dockerapi.LabelDeployment
	// LabelCores holds a service's reservation, Resources.Cores, as Zoe
	// counted it.
	LabelCores = dockerapi.LabelCores
	// LabelStopped marks a service that Stop stopped.
	LabelStopped = "zoe.swarm.stopped"
	// LabelAddress on a swarm node overrides the address users reach its
	// published ports at (the node's swarm address by default).
	LabelAddress = "zoe.address"

	handleVersion = 1

	attrPublishMode  = "publish_mode"
	attrNoNewPrivs   = "engine_no_new_privileges"
	attrVolumeDriver = "volume_driver"
	attrStopGrace    = "stop_grace_period"
	attrPoll         = "poll_interval"

	publishHost    = "host"
	publishIngress = "ingress"

	// stoppedConstraint is a placement constraint no node meets.
	stoppedConstraint = "node.id==zoe-stopped-service"

	defaultStopGrace = 10 * time.Second
	defaultPoll      = 500 * time.Millisecond
	callTimeout      = 10 * time.Second
	removedRemember  = 5 * time.Minute
)

var (
	_ backend.Backend = (*Plugin)(nil)
	_ backend.Closer  = (*Plugin)(nil)
)

// Plugin is the swarm back-end. The zero value is not usable; call New. It
// is safe for concurrent use.
type Plugin struct {
	log *slog.Logger

	mu      sync.Mutex
	rt      *runtime
	removed *removals.Set   // what this instance removed itself, by id
	oom     map[string]bool // task id -> OOM-killed, read once

	// viaUpdate makes Stop update the service even for a task on the
	// manager's own node, as it does for the other nodes' (for tests).
	viaUpdate bool
	// afterServiceList, when set (by a test), runs between List's
	// listing of the services and that of their tasks.
	afterServiceList func()
}

// runtime is a configured plugin.
type runtime struct {
	deployment    string
	cli           *client.Client
	publishMode   swarm.PortConfigPublishMode
	engineNoPrivs bool
	volumeDriver  string
	stopGrace     time.Duration
	poll          time.Duration

	once      sync.Once
	perTaskNN bool // the engine sets no_new_privs per service (API >= 1.46)
	hasCaps   bool // CapabilityDrop and Limits.Pids (API >= 1.41)
	hasSwap   bool // ResourceRequirements.SwapBytes (API >= 1.52)
	selfNode  string
}

// New returns an unconfigured back-end that logs to log.
func New(log *slog.Logger) *Plugin {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Plugin{log: log, removed: removals.New(removedRemember), oom: map[string]bool{}}
}

// Info names the plugin.
func (p *Plugin) Info() sdk.Info {
	return sdk.Info{
		Name:        Name,
		Version:     Version,
		Description: "Runs services as Docker swarm-mode services (one replica each) on overlay networks, placed on the node Zoe's scheduler picks.",
	}
}

// Schema describes the plugin's configuration block.
func (p *Plugin) Schema() sdk.Schema {
	return sdk.Schema{
		Attributes: []sdk.Attribute{
			{Name: dockerapi.AttrAddress, Type: "string", Default: "", Help: `A swarm manager's engine: "tcp://host:2376", "unix:///var/run/docker.sock"; empty for DOCKER_HOST or the local socket.`},
			{Name: attrPublishMode, Type: "string", Default: publishHost, Help: `How ports are published: "host" (on the service's node; works everywhere) or "ingress" (the routing mesh, on every node; needs IPVS in the nodes' kernels).`},
			{Name: attrNoNewPrivs, Type: "bool", Default: false, Help: "Every node's dockerd runs with --no-new-privileges: needed to run services without privilege escalation on engines older than API 1.46 (Docker 27), which cannot set it per service."},
			{Name: attrVolumeDriver, Type: "string", Default: "", Help: "Volume driver of named volumes (a cluster volume plugin, say); empty for each node's local driver."},
			{Name: attrStopGrace, Type: "string", Default: defaultStopGrace.String(), Help: "How long a stopped service has between SIGTERM and SIGKILL (swarm fixes it when the service is created)."},
			{Name: attrPoll, Type: "string", Default: defaultPoll.String(), Help: "How often Events reads the tasks' states (swarm has no task events)."},
		},
		Blocks: []sdk.Block{dockerapi.TLSBlock("Client certificates for a manager engine that requires TLS.")},
	}
}

type blockConfig struct {
	Address       string         `json:"address"`
	PublishMode   string         `json:"publish_mode"`
	EngineNoPrivs bool           `json:"engine_no_new_privileges"`
	VolumeDriver  string         `json:"volume_driver"`
	StopGrace     string         `json:"stop_grace_period"`
	Poll          string         `json:"poll_interval"`
	TLS           *dockerapi.TLS `json:"tls"`
}

// Configure checks the block and makes the client (lazily connected: an
// engine that does not answer is no configuration error).
func (p *Plugin) Configure(_ context.Context, cfg sdk.Config) error {
	var bc blockConfig
	if err := cfg.Decode(&bc); err != nil {
		return sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: "invalid configuration", Detail: err.Error()}}
	}
	if cfg.Deployment == "" {
		return fmt.Errorf("configure: no deployment name: %w", sdk.ErrInvalidArgument)
	}
	var diags sdk.Diagnostics
	at := func(path []string, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: path})
	}
	rt := &runtime{deployment: cfg.Deployment, engineNoPrivs: bc.EngineNoPrivs, volumeDriver: bc.VolumeDriver,
		stopGrace: defaultStopGrace, poll: defaultPoll}
	switch bc.PublishMode {
	case "", publishHost:
		rt.publishMode = swarm.PortConfigPublishModeHost
	case publishIngress:
		rt.publishMode = swarm.PortConfigPublishModeIngress
	default:
		at([]string{attrPublishMode}, "invalid publish mode", fmt.Sprintf("%q: want %q or %q", bc.PublishMode, publishHost, publishIngress))
	}
	for _, d := range []struct {
		attr, v string
		to      *time.Duration
	}{{attrStopGrace, bc.StopGrace, &rt.stopGrace}, {attrPoll, bc.Poll, &rt.poll}} {
		if d.v == "" {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil || v <= 0 {
			at([]string{d.attr}, "invalid duration", fmt.Sprintf("%q: want a positive duration such as 10s", d.v))
			continue
		}
		*d.to = v
	}
	opts, more := dockerapi.ClientOptions(bc.Address, bc.TLS)
	diags = append(diags, more...)
	if diags.HasErrors() {
		return diags
	}
	if cfg.ValidateOnly {
		return nil
	}
	cli, err := client.New(opts...)
	if err != nil {
		return sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: "cannot make a Docker client", Detail: err.Error(), Path: []string{dockerapi.AttrAddress}}}
	}
	rt.cli = cli
	p.mu.Lock()
	old := p.rt
	p.rt = rt
	p.mu.Unlock()
	if old != nil {
		_ = old.cli.Close()
	}
	return nil
}

// Capabilities: the swarm pulls the images its nodes lack.
func (p *Plugin) Capabilities(context.Context) (backend.Capabilities, error) {
	if _, err := p.runtime(); err != nil {
		return backend.Capabilities{}, err
	}
	return backend.Capabilities{PullsImages: true}, nil
}

// Close releases the client; services and networks stay.
func (p *Plugin) Close(context.Context) error {
	p.mu.Lock()
	rt := p.rt
	p.rt = nil
	p.mu.Unlock()
	if rt != nil {
		return rt.cli.Close()
	}
	return nil
}

func (p *Plugin) runtime() (*runtime, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rt == nil {
		return nil, fmt.Errorf("swarm back-end not configured: %w", sdk.ErrUnavailable)
	}
	return p.rt, nil
}

// engine reads, once it answers, what the engine can do: its API version
// and whether it is a swarm manager.
func (rt *runtime) engine(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	info, err := rt.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return dockerapi.Wrap(err, "swarm manager")
	}
	if !info.Info.Swarm.ControlAvailable {
		return fmt.Errorf("the engine is not a swarm manager (swarm state %q): %w", info.Info.Swarm.LocalNodeState, sdk.ErrUnavailable)
	}
	rt.once.Do(func() {
		v := rt.cli.ClientVersion()
		rt.perTaskNN = apiAtLeast(v, 1, 46)
		rt.hasCaps = apiAtLeast(v, 1, 41)
		rt.hasSwap = apiAtLeast(v, 1, 52)
		rt.selfNode = info.Info.Swarm.NodeID
	})
	return nil
}

// apiAtLeast tells whether API version v ("1.41") is at least major.minor.
func apiAtLeast(v string, major, minor int) bool {
	a, b, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	ma, err1 := strconv.Atoi(a)
	mi, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || (ma == major && mi >= minor)
}

// nodeNames names the swarm's nodes: by hostname, by id where two share
// one.
func nodeNames(nodes []swarm.Node) map[string]string {
	count := map[string]int{}
	for _, n := range nodes {
		count[n.Description.Hostname]++
	}
	names := make(map[string]string, len(nodes))
	for _, n := range nodes {
		name := n.Description.Hostname
		if name == "" || count[name] > 1 {
			name = n.ID
		}
		names[n.ID] = name
	}
	return names
}

// nodeAddress is where users reach a node's published ports.
func nodeAddress(n swarm.Node) string {
	if a := n.Spec.Labels[LabelAddress]; a != "" {
		return a
	}
	return n.Status.Addr
}

// Nodes lists the swarm's nodes with what their running tasks reserve.
func (p *Plugin) Nodes(ctx context.Context) ([]backend.Node, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, err
	}
	if err := rt.engine(ctx); err != nil {
		return nil, err
	}
	list, err := rt.cli.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil, dockerapi.Wrap(err, "list the swarm's nodes")
	}
	tasks, err := rt.cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("desired-state", "running")})
	if err != nil {
		return nil, dockerapi.Wrap(err, "list the swarm's tasks")
	}
	type res struct {
		cores float64
		mem   int64
	}
	reserved := map[string]res{}
	for _, t := range tasks.Items {
		if t.NodeID == "" || terminal(t.Status.State) || t.Spec.Resources == nil || t.Spec.Resources.Reservations == nil {
			continue
		}
		r := reserved[t.NodeID]
		r.cores += float64(t.Spec.Resources.Reservations.NanoCPUs) / 1e9
		r.mem += t.Spec.Resources.Reservations.MemoryBytes
		reserved[t.NodeID] = r
	}
	names := nodeNames(list.Items)
	out := make([]backend.Node, 0, len(list.Items))
	for _, n := range list.Items {
		bn := backend.Node{Name: names[n.ID], Address: nodeAddress(n), Cores: float64(n.Description.Resources.NanoCPUs) / 1e9,
			MemoryBytes: n.Description.Resources.MemoryBytes, Labels: nodeLabels(n.Spec.Labels), State: backend.NodeReady,
			CoresReserved: reserved[n.ID].cores, MemoryReserved: reserved[n.ID].mem}
		switch {
		case n.Status.State != swarm.NodeStateReady:
			bn.State, bn.StateDetail = backend.NodeUnreachable, strings.TrimSpace(fmt.Sprintf("swarm node %s %s", n.Status.State, n.Status.Message))
		case n.Spec.Availability != swarm.NodeAvailabilityActive && n.Spec.Availability != "":
			bn.State, bn.StateDetail = backend.NodeDisabled, fmt.Sprintf("swarm node availability %s", n.Spec.Availability)
		}
		out = append(out, bn)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// nodeLabels turns node labels into Zoe's: "gpu" for gpu=true or gpu=,
// "zone=eu" for the others. zoe.address is no label for services.
func nodeLabels(labels map[string]string) []string {
	var out []string
	for k, v := range labels {
		switch {
		case k == LabelAddress:
		case v == "" || v == "true":
			out = append(out, k)
		default:
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return out
}

// CreateNetwork creates the execution's attachable overlay network and
// returns its id.
func (p *Plugin) CreateNetwork(ctx context.Context, spec backend.NetworkSpec) (string, error) {
	rt, err := p.runtime()
	if err != nil {
		return "", err
	}
	if spec.Name == "" {
		return "", fmt.Errorf("create network: no name: %w", sdk.ErrInvalidArgument)
	}
	if err := rt.engine(ctx); err != nil {
		return "", err
	}
	if _, err := rt.cli.NetworkInspect(ctx, spec.Name, client.NetworkInspectOptions{}); err == nil {
		return "", fmt.Errorf("create network %q: %w", spec.Name, sdk.ErrAlreadyExists)
	}
	res, err := rt.cli.NetworkCreate(ctx, spec.Name, client.NetworkCreateOptions{Driver: "overlay", Scope: "swarm", Attachable: true,
		Labels: dockerapi.Labels(rt.deployment, spec.Labels)})
	if err != nil {
		return "", dockerapi.Wrap(err, "create network %q", spec.Name)
	}
	return res.ID, nil
}

// RemoveNetwork removes a network of this deployment: sdk.ErrConflict
// while a service of the swarm is attached to it. The containers of a
// service just removed leave the network a moment later: that wait is
// here, not a conflict.
func (p *Plugin) RemoveNetwork(ctx context.Context, id string) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	res, err := rt.cli.NetworkInspect(ctx, id, client.NetworkInspectOptions{})
	if err != nil {
		return dockerapi.Wrap(err, "network %q", id)
	}
	if res.Network.Labels[LabelDeployment] != rt.deployment {
		return fmt.Errorf("network %q is not this deployment's: %w", id, sdk.ErrNotFound)
	}
	netID := res.Network.ID
	for {
		_, err := rt.cli.NetworkRemove(ctx, netID, client.NetworkRemoveOptions{})
		if err == nil {
			return nil
		}
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("network %q: %w", id, sdk.ErrNotFound)
		}
		users, lerr := rt.servicesOn(ctx, netID)
		if lerr != nil {
			return lerr
		}
		if len(users) > 0 {
			return fmt.Errorf("remove network %q: services %s use it: %v: %w", id, strings.Join(users, ", "), err, sdk.ErrConflict)
		}
		select {
		case <-ctx.Done():
			return dockerapi.Wrap(ctx.Err(), "remove network %q: %v", id, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// servicesOn names the swarm's services attached to network id.
func (rt *runtime) servicesOn(ctx context.Context, id string) ([]string, error) {
	list, err := rt.cli.ServiceList(ctx, client.ServiceListOptions{})
	if err != nil {
		return nil, dockerapi.Wrap(err, "list services")
	}
	var out []string
	for _, s := range list.Items {
		for _, n := range s.Spec.TaskTemplate.Networks {
			if n.Target == id {
				out = append(out, s.Spec.Name)
			}
		}
	}
	return out, nil
}
