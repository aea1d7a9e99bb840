// Package docker is Zoe's "docker" back-end: every service instance is a
// container on a Docker engine, every execution a bridge network.
//
// # Hosts
//
// Without host blocks the plugin drives the local engine (DOCKER_HOST or the
// unix socket), as the node "local". Each `host "NAME" {}` block names an
// engine instead; the node's name is the block's label.
//
// # Handles
//
// A handle's ID is the container id; its State (Version 1) is the JSON
// {"host", "container_id", "name"}, so a restarted plugin asks the right
// engine (backend.EncodeHandle and DecodeHandle). The ID decides: a handle
// is looked up by it, on the State's host or, without a State it can read,
// on every host; an ID that names no container of this deployment is
// sdk.ErrNotFound, and only then is a State it cannot read an error
// (sdk.ErrUnsupported when a newer version wrote it).
//
// # Events
//
// The engine's event stream, filtered on the label zoe.deployment, is turned
// into backend events: start → started, oom → oom_killed, die → exited with
// the exit code (preceded by oom_killed when the container was OOM-killed
// and the engine sent no oom event), destroy → vanished, unless this plugin
// instance removed the container itself in the last few minutes. A broken
// stream is subscribed again from the time of the last event seen. Image
// pulls report their progress as image_pull events.
package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/dockerapi"
	"github.com/zoe-project/zoe/plugins/internal/removals"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

const (
	// Name is the plugin's name in Zoe's configuration.
	Name = "docker"
	// Version is the plugin's version.
	Version = "0.1.0"

	// LocalHost is the node name of the default, local engine.
	LocalHost = "local"

	// LabelDeployment is the label every container and network carries.
	LabelDeployment = dockerapi.LabelDeployment

	// LabelCores holds a container's reservation, Resources.Cores: Docker
	// has no field for it (CPU shares are relative, NanoCPUs the cap).
	LabelCores = dockerapi.LabelCores

	handleVersion = 1

	blockHost        = "host"
	attrExternal     = "external_address"
	attrLabels       = "labels"
	attrDisabled     = "disabled"
	attrCores        = "cores"
	attrPullImages   = "pull_images"
	defaultExternal  = "127.0.0.1"
	nodeCallTimeout  = 5 * time.Second
	removedRemember  = 5 * time.Minute
	resubscribeDelay = 500 * time.Millisecond
)

var (
	_ backend.Backend = (*Plugin)(nil)
	_ backend.Updater = (*Plugin)(nil)
	_ backend.Closer  = (*Plugin)(nil)
)

// Plugin is the Docker back-end. The zero value is not usable; call New. It
// is safe for concurrent use.
type Plugin struct {
	log *slog.Logger

	mu      sync.Mutex
	rt      *runtime
	subs    map[int]chan backend.Event
	next    int
	removed *removals.Set // what this instance removed itself, by id
	// ooms are the containers the engine's events said were OOM-killed,
	// by id: a loaded Docker 20.10 can clear a container's OOMKilled when
	// it handles the exit after the OOM, and a status read after that
	// would report a plain exit with code 137.
	ooms *removals.Set
}

// runtime is a configured plugin.
type runtime struct {
	deployment string
	pull       bool
	hosts      map[string]*host
	order      []string // host names, sorted
}

// host is one Docker engine.
type host struct {
	name     string
	cli      *client.Client
	external string
	labels   []string
	disabled bool
	// cores is what Zoe may reserve, when set (> 0): the node's Cores
	// instead of the engine's CPUs.
	cores float64
	cache *hostCache
}

// New returns an unconfigured back-end that logs to log.
func New(log *slog.Logger) *Plugin {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Plugin{log: log, subs: map[int]chan backend.Event{}, removed: removals.New(removedRemember), ooms: removals.New(removedRemember)}
}

// Info names the plugin.
func (p *Plugin) Info() sdk.Info {
	return sdk.Info{
		Name:        Name,
		Version:     Version,
		Description: "Runs services as containers on Docker engines: the local one by default, or the engines of host blocks.",
	}
}

// Schema describes the plugin's configuration block.
func (p *Plugin) Schema() sdk.Schema {
	return sdk.Schema{
		Attributes: []sdk.Attribute{{
			Name: attrPullImages, Type: "bool", Default: true,
			Help: "Pull images missing on a host (with image_pull events) instead of failing the service.",
		}},
		Blocks: []sdk.Block{{
			Name:    blockHost,
			Nesting: sdk.NestingMap,
			Help: `One block per Docker engine, labelled with the node's name: host "node1" { address = "tcp://10.0.0.1:2376" }. ` +
				`Without any, the local engine (DOCKER_HOST or the unix socket) is the node "local".`,
			Schema: sdk.Schema{
				Attributes: []sdk.Attribute{
					{Name: dockerapi.AttrAddress, Type: "string", Default: "", Help: `Engine address: "tcp://host:2376", "unix:///var/run/docker.sock"; empty for DOCKER_HOST or the local socket.`},
					{Name: attrExternal, Type: "string", Default: defaultExternal, Help: "Address on which users reach the ports published on this host."},
					{Name: attrLabels, Type: "list(string)", Default: []string{}, Help: "Labels services may ask for, e.g. gpu."},
					{Name: attrDisabled, Type: "bool", Default: false, Help: "A disabled host keeps what it runs but takes nothing new."},
					{Name: attrCores, Type: "number", Default: 0, Help: "Cores Zoe may reserve on this host, instead of the engine's CPUs (0): fewer to keep some for other work, " +
						"more to overcommit (reservations are shares, not caps: services of mostly idle notebooks can share a core)."},
				},
				Blocks: []sdk.Block{dockerapi.TLSBlock("Client certificates for an engine that requires TLS.")},
			},
		}},
	}
}

type blockConfig struct {
	PullImages *bool                 `json:"pull_images"`
	Hosts      map[string]hostConfig `json:"host"`
}

type hostConfig struct {
	Address  string         `json:"address"`
	External string         `json:"external_address"`
	Labels   []string       `json:"labels"`
	Disabled bool           `json:"disabled"`
	Cores    float64        `json:"cores"`
	TLS      *dockerapi.TLS `json:"tls"`
}

// Configure checks the block and connects (lazily) to the engines. An engine
// that cannot be reached is no configuration error: its node is unreachable.
func (p *Plugin) Configure(_ context.Context, cfg sdk.Config) error {
	var bc blockConfig
	if err := cfg.Decode(&bc); err != nil {
		return sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: "invalid configuration", Detail: err.Error()}}
	}
	if cfg.Deployment == "" {
		return fmt.Errorf("configure: no deployment name: %w", sdk.ErrInvalidArgument)
	}
	rt := &runtime{deployment: cfg.Deployment, pull: bc.PullImages == nil || *bc.PullImages, hosts: map[string]*host{}}
	if len(bc.Hosts) == 0 {
		bc.Hosts = map[string]hostConfig{LocalHost: {}}
	}
	var diags sdk.Diagnostics
	for name, hc := range bc.Hosts {
		h, d := newHost(name, hc, cfg.ValidateOnly)
		diags = append(diags, d...)
		if h != nil {
			rt.hosts[name] = h
			rt.order = append(rt.order, name)
		}
	}
	sort.Strings(rt.order)
	if diags.HasErrors() {
		rt.closeAll()
		return diags
	}
	if cfg.ValidateOnly {
		rt.closeAll()
		return nil
	}
	p.mu.Lock()
	old := p.rt
	p.rt = rt
	p.mu.Unlock()
	if old != nil {
		old.closeAll()
	}
	return nil
}

func newHost(name string, hc hostConfig, validateOnly bool) (*host, sdk.Diagnostics) {
	opts, diags := dockerapi.ClientOptions(hc.Address, hc.TLS)
	for i := range diags {
		diags[i].Path = append([]string{blockHost, name}, diags[i].Path...)
	}
	if hc.External == "" {
		hc.External = defaultExternal
	}
	if hc.Cores < 0 || math.IsNaN(hc.Cores) || math.IsInf(hc.Cores, 0) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "invalid cores",
			Detail: fmt.Sprintf("%v: the cores Zoe may reserve on host %q must be 0 or more (0: the engine's CPUs)", hc.Cores, name),
			Path:   []string{blockHost, name, attrCores}})
	}
	if diags.HasErrors() || validateOnly {
		return nil, diags
	}
	cli, err := client.New(opts...)
	if err != nil {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "cannot make a Docker client", Detail: err.Error(),
			Path: []string{blockHost, name, dockerapi.AttrAddress}})
		return nil, diags
	}
	return &host{name: name, cli: cli, external: hc.External, labels: slices.Clone(hc.Labels), disabled: hc.Disabled, cores: hc.Cores,
		cache: newHostCache()}, diags
}

func (rt *runtime) closeAll() {
	for _, h := range rt.hosts {
		_ = h.cli.Close()
	}
}

// Capabilities: the plugin pulls images unless pull_images is off.
func (p *Plugin) Capabilities(context.Context) (backend.Capabilities, error) {
	rt, err := p.runtime()
	if err != nil {
		return backend.Capabilities{}, err
	}
	return backend.Capabilities{PullsImages: rt.pull}, nil
}

// Close releases the engines' connections; the containers and networks
// stay. The plugin is unusable after, until Configure.
func (p *Plugin) Close(context.Context) error {
	p.mu.Lock()
	rt := p.rt
	p.rt = nil
	p.mu.Unlock()
	if rt != nil {
		rt.closeAll()
	}
	return nil
}

func (p *Plugin) runtime() (*runtime, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rt == nil {
		return nil, fmt.Errorf("docker back-end not configured: %w", sdk.ErrUnavailable)
	}
	return p.rt, nil
}

// Nodes lists one node per host.
func (p *Plugin) Nodes(ctx context.Context) ([]backend.Node, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, err
	}
	nodes := make([]backend.Node, len(rt.order))
	var wg sync.WaitGroup
	for i, name := range rt.order {
		wg.Go(func() { nodes[i] = p.node(ctx, rt.hosts[name]) })
	}
	wg.Wait()
	return nodes, nil
}

func (p *Plugin) node(ctx context.Context, h *host) backend.Node {
	n := backend.Node{Name: h.name, Address: h.external, Labels: slices.Clone(h.labels), State: backend.NodeReady}
	ctx, cancel := context.WithTimeout(ctx, nodeCallTimeout)
	defer cancel()
	info, err := h.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		n.State, n.StateDetail = backend.NodeUnreachable, err.Error()
		return n
	}
	n.Cores, n.MemoryBytes = float64(info.Info.NCPU), info.Info.MemTotal
	if h.cores > 0 {
		n.Cores = h.cores
	}
	if h.disabled {
		n.State, n.StateDetail = backend.NodeDisabled, "disabled in the configuration"
	}
	if imgs, err := h.cli.ImageList(ctx, client.ImageListOptions{}); err == nil {
		for _, im := range imgs.Items {
			for _, tag := range im.RepoTags {
				if tag == "<none>:<none>" {
					continue
				}
				n.Images = append(n.Images, tag)
				if short, ok := strings.CutSuffix(tag, ":latest"); ok {
					n.Images = append(n.Images, short)
				}
			}
		}
		sort.Strings(n.Images)
	} else {
		p.log.Warn("cannot list images", "host", h.name, "error", err)
	}
	// Reservations of every Zoe container running on the host, whatever
	// its deployment.
	list, err := h.cli.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.Add("label", LabelDeployment)})
	if err != nil {
		p.log.Warn("cannot list containers", "host", h.name, "error", err)
		return n
	}
	ids := make(map[string]bool, len(list.Items))
	for _, c := range list.Items {
		ids[c.ID] = true
		r, ok := h.cache.reservation(c.ID)
		if !ok {
			// The resources are not in the summary: inspected once.
			h.cache.inspected()
			ins, err := h.cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
			if err != nil || ins.Container.HostConfig == nil {
				continue
			}
			r = reservationOf(c.Labels, ins.Container.HostConfig.Resources)
			h.cache.storeReservation(c.ID, r)
		}
		n.CoresReserved += r.cores
		n.MemoryReserved += r.memory
	}
	h.cache.keepReservations(ids)
	return n
}

// reservationOf is what a container reserves: its cores (reservedCores),
// its memory reservation, else its limit.
func reservationOf(labels map[string]string, r container.Resources) reservation {
	mem := r.MemoryReservation
	if mem <= 0 {
		mem = r.Memory
	}
	return reservation{cores: reservedCores(labels, r.NanoCPUs), memory: mem}
}

// CreateNetwork creates the execution's bridge network, named spec.Name, on
// every enabled host that answers, and returns its name.
func (p *Plugin) CreateNetwork(ctx context.Context, spec backend.NetworkSpec) (string, error) {
	rt, err := p.runtime()
	if err != nil {
		return "", err
	}
	if spec.Name == "" {
		return "", fmt.Errorf("create network: no name: %w", sdk.ErrInvalidArgument)
	}
	labels := dockerapi.Labels(rt.deployment, spec.Labels)
	var errs []error
	created := 0
	for _, name := range rt.order {
		h := rt.hosts[name]
		if h.disabled {
			continue
		}
		if _, err := h.cli.NetworkInspect(ctx, spec.Name, client.NetworkInspectOptions{}); err == nil {
			return "", fmt.Errorf("create network %q on %s: %w", spec.Name, name, sdk.ErrAlreadyExists)
		}
		if _, err := h.cli.NetworkCreate(ctx, spec.Name, client.NetworkCreateOptions{Driver: "bridge", Labels: labels}); err != nil {
			errs = append(errs, dockerapi.Wrap(err, "create network %q on %s", spec.Name, name))
			continue
		}
		created++
	}
	if created == 0 {
		if len(errs) == 0 {
			return "", fmt.Errorf("create network %q: no enabled host: %w", spec.Name, sdk.ErrUnavailable)
		}
		return "", errors.Join(errs...)
	}
	for _, e := range errs {
		p.log.Warn("network not created on every host", "network", spec.Name, "error", e)
	}
	return spec.Name, nil
}

// RemoveNetwork removes the network from every host; sdk.ErrNotFound when
// no host has it, sdk.ErrConflict while a container uses it (the engine
// says 403, "has active endpoints").
func (p *Plugin) RemoveNetwork(ctx context.Context, id string) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	removed := 0
	var errs []error
	for _, name := range rt.order {
		_, err := rt.hosts[name].cli.NetworkRemove(ctx, id, client.NetworkRemoveOptions{})
		switch {
		case err == nil:
			removed++
		case cerrdefs.IsNotFound(err):
		default:
			if res, ierr := rt.hosts[name].cli.NetworkInspect(ctx, id, client.NetworkInspectOptions{}); ierr == nil && len(res.Network.Containers) > 0 {
				errs = append(errs, fmt.Errorf("remove network %q on %s: %d containers use it: %v: %w", id, name,
					len(res.Network.Containers), err, sdk.ErrConflict))
				continue
			}
			errs = append(errs, dockerapi.Wrap(err, "remove network %q on %s", id, name))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if removed == 0 {
		return fmt.Errorf("network %q: %w", id, sdk.ErrNotFound)
	}
	return nil
}

// reservedCores is a container's reservation: its label zoe.cores, or, for a
// container created before the label, its cap.
func reservedCores(labels map[string]string, nanoCPUs int64) float64 {
	if v, err := strconv.ParseFloat(labels[LabelCores], 64); err == nil && v >= 0 && !math.IsInf(v, 0) {
		return v
	}
	return float64(nanoCPUs) / 1e9
}
