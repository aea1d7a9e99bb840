package docker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/zoe-project/zoe/internal/dockerapi"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// handleState is what a handle's State holds (Version 1).
type handleState struct {
	Host        string `json:"host"`
	ContainerID string `json:"container_id"`
	Name        string `json:"name"`
}

func makeHandle(hostName, id, name string) (backend.Handle, error) {
	return backend.EncodeHandle(id, handleVersion, handleState{Host: hostName, ContainerID: id, Name: name})
}

// locate finds the container a handle names: by its ID, on the host its
// State names when it can be read, else on every host. An ID that names no
// container of this deployment is sdk.ErrNotFound whatever the State; one
// that does, with a State this plugin cannot read, is DecodeHandle's error.
func (p *Plugin) locate(ctx context.Context, h backend.Handle) (*runtime, *host, container.InspectResponse, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, nil, container.InspectResponse{}, err
	}
	if h.ID == "" {
		return nil, nil, container.InspectResponse{}, fmt.Errorf("handle without a container id: %w", sdk.ErrInvalidArgument)
	}
	var st handleState
	v, decodeErr := backend.DecodeHandle(h, handleVersion, &st)
	candidates := rt.order
	if _, ok := rt.hosts[st.Host]; ok && v > 0 && decodeErr == nil {
		candidates = []string{st.Host}
	}
	var errs []error
	for _, name := range candidates {
		hst := rt.hosts[name]
		res, err := hst.cli.ContainerInspect(ctx, h.ID, client.ContainerInspectOptions{})
		if err == nil && (res.Container.ID != h.ID || res.Container.Config == nil ||
			res.Container.Config.Labels[LabelDeployment] != rt.deployment) {
			// Found by name or id prefix, another deployment's, or not
			// Zoe's: nothing this handle names.
			continue
		}
		if err == nil {
			if decodeErr != nil {
				return nil, nil, container.InspectResponse{}, decodeErr
			}
			return rt, hst, res.Container, nil
		}
		if !cerrdefs.IsNotFound(err) {
			errs = append(errs, dockerapi.Wrap(err, "inspect container %s on %s", h.ID, name))
		}
	}
	if len(errs) > 0 {
		return nil, nil, container.InspectResponse{}, errors.Join(errs...)
	}
	return nil, nil, container.InspectResponse{}, fmt.Errorf("container %s: %w", h.ID, sdk.ErrNotFound)
}

// pickHost is where a service goes: the node the scheduler chose, or the
// first enabled host.
func (rt *runtime) pickHost(node string) (*host, error) {
	if node != "" {
		h, ok := rt.hosts[node]
		if !ok {
			return nil, fmt.Errorf("no host %q: %w", node, sdk.ErrInvalidArgument)
		}
		return h, nil
	}
	for _, name := range rt.order {
		if !rt.hosts[name].disabled {
			return rt.hosts[name], nil
		}
	}
	return nil, fmt.Errorf("every host is disabled: %w", sdk.ErrUnavailable)
}

// Start creates and starts the service's container.
func (p *Plugin) Start(ctx context.Context, spec backend.ServiceSpec) (backend.ServiceStatus, error) {
	rt, err := p.runtime()
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	if spec.Name == "" || spec.Image == "" {
		return backend.ServiceStatus{}, fmt.Errorf("start: a service needs a name and an image: %w", sdk.ErrInvalidArgument)
	}
	if err := backend.CheckUser(spec); err != nil {
		return backend.ServiceStatus{}, fmt.Errorf("start: %w", err)
	}
	if err := backend.CheckVolumes(spec.Volumes); err != nil {
		return backend.ServiceStatus{}, fmt.Errorf("start %q: %w", spec.Name, err)
	}
	h, err := rt.pickHost(spec.Node)
	if err != nil {
		return backend.ServiceStatus{}, fmt.Errorf("start %q: %w", spec.Name, err)
	}
	// Every check of the spec before the pull: a refused spec changes
	// nothing on the host.
	cfg, hc, nc, err := containerConfig(rt.deployment, spec, h.external)
	if err != nil {
		return backend.ServiceStatus{}, fmt.Errorf("start %q: %w", spec.Name, err)
	}
	if err := p.ensureImage(ctx, rt, h, spec); err != nil {
		return backend.ServiceStatus{}, err
	}
	created, err := h.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: spec.Name, Config: cfg, HostConfig: hc, NetworkingConfig: nc})
	if err != nil {
		if cerrdefs.IsConflict(err) || cerrdefs.IsAlreadyExists(err) {
			return backend.ServiceStatus{}, fmt.Errorf("start %q: a container of that name exists: %w", spec.Name, sdk.ErrAlreadyExists)
		}
		return backend.ServiceStatus{}, dockerapi.Wrap(err, "create container %q on %s", spec.Name, h.name)
	}
	for _, w := range created.Warnings {
		p.log.Warn("container created with a warning", "service", spec.Name, "warning", w)
	}
	if _, err := h.cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		p.removed.Add(created.ID)
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, rmErr := h.cli.ContainerRemove(rmCtx, created.ID, client.ContainerRemoveOptions{Force: true}); rmErr != nil {
			p.log.Warn("cannot remove a container that failed to start", "service", spec.Name, "error", rmErr)
		}
		return backend.ServiceStatus{}, dockerapi.Wrap(err, "start container %q on %s", spec.Name, h.name)
	}
	res, err := h.cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		return backend.ServiceStatus{}, dockerapi.Wrap(err, "inspect container %q", spec.Name)
	}
	return p.status(h, res.Container)
}

// ensureImage pulls the image when the host lacks it.
func (p *Plugin) ensureImage(ctx context.Context, rt *runtime, h *host, spec backend.ServiceSpec) error {
	_, err := h.cli.ImageInspect(ctx, spec.Image)
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return dockerapi.Wrap(err, "inspect image %q on %s", spec.Image, h.name)
	}
	if !rt.pull {
		return fmt.Errorf("image %q is not on host %s and pulls are off: %w", spec.Image, h.name, sdk.ErrNotFound)
	}
	p.publish(backend.Event{Kind: backend.EventImagePull, ServiceName: spec.Name, Time: time.Now(), Message: "pulling " + spec.Image + " on " + h.name})
	resp, err := h.cli.ImagePull(ctx, spec.Image, client.ImagePullOptions{})
	if err != nil {
		return dockerapi.Wrap(err, "service %q: pull image %q on %s", spec.Name, spec.Image, h.name)
	}
	last := ""
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return dockerapi.Wrap(err, "service %q: pull image %q on %s", spec.Name, spec.Image, h.name)
		}
		if msg.Error != nil {
			return fmt.Errorf("service %q: pull image %q on %s: %s: %w", spec.Name, spec.Image, h.name, msg.Error.Message, sdk.ErrNotFound)
		}
		line := strings.TrimSpace(msg.ID + " " + msg.Status)
		if line != last && line != "" {
			last = line
			p.publish(backend.Event{Kind: backend.EventImagePull, ServiceName: spec.Name, Time: time.Now(), Message: spec.Image + ": " + line})
		}
	}
	if _, err := h.cli.ImageInspect(ctx, spec.Image); err != nil {
		return dockerapi.Wrap(err, "service %q: image %q after its pull on %s", spec.Name, spec.Image, h.name)
	}
	return nil
}

// containerConfig translates a service spec into the engine's terms. Ports
// are published on the host's external address when it is an IP address
// (127.0.0.1 for the local engine), so that they are not open on every
// interface of the host. The container policy (backend.Backend.Start) is
// set here whole, every field explicitly, so that no default of the engine
// or of this code decides it.
func containerConfig(deployment string, spec backend.ServiceSpec, external string) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	cfg := &container.Config{
		Hostname:   spec.Hostname,
		Image:      spec.Image,
		Cmd:        spec.Command,
		User:       spec.User,
		WorkingDir: spec.WorkDir,
		Env:        dockerapi.Env(spec.Environment),
		// Docker has no field for a reservation: the label zoe.cores
		// keeps it for Nodes' CoresReserved.
		Labels:       dockerapi.ServiceLabels(deployment, spec),
		ExposedPorts: network.PortSet{},
	}
	r := spec.Resources
	// A process limit always: Docker's default is none, so one service's
	// fork bomb would exhaust the host's pids.
	pids, err := backend.PidsLimit(r)
	if err != nil {
		return nil, nil, nil, err
	}
	res := cpuResources(r)
	res.Memory, res.MemoryReservation, res.PidsLimit = r.MemoryLimit, r.MemoryReservation, &pids
	hc := &container.HostConfig{
		Resources:     res,
		ShmSize:       r.ShmSize,
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		PortBindings:  network.PortMap{},
		// The policy: never privileged, no added capabilities, the
		// container's own PID, IPC and UTS namespaces (the network is the
		// execution's, below).
		Privileged: false,
		CapAdd:     nil,
		PidMode:    "",
		IpcMode:    container.IPCModePrivate,
		UTSMode:    "",
	}
	if !spec.Security.KeepCapabilities {
		hc.CapDrop = []string{"ALL"}
	}
	if !spec.Security.AllowPrivilegeEscalation {
		hc.SecurityOpt = []string{"no-new-privileges:true"}
	}
	if r.MemoryLimit > 0 {
		hc.MemorySwap = r.MemoryLimit // no swap: the limit is the limit
	}
	ms, err := mounts(spec.Volumes)
	if err != nil {
		return nil, nil, nil, err
	}
	hc.Mounts = ms
	for _, pt := range spec.Ports {
		proto := pt.Protocol
		if proto == "" {
			proto = "tcp"
		}
		port, ok := network.PortFrom(pt.Port, network.IPProtocol(proto))
		if !ok || pt.Port == 0 {
			return nil, nil, nil, fmt.Errorf("port %d/%s: %w", pt.Port, proto, sdk.ErrInvalidArgument)
		}
		cfg.ExposedPorts[port] = struct{}{}
		binding := network.PortBinding{HostPort: ""}
		if ip, err := netip.ParseAddr(external); err == nil {
			binding.HostIP = ip
		}
		hc.PortBindings[port] = []network.PortBinding{binding}
	}
	var nc *network.NetworkingConfig
	if spec.Network == "host" || strings.HasPrefix(spec.Network, "container:") {
		return nil, nil, nil, fmt.Errorf("network %q: a service gets its execution's network, never the host's or another container's: %w",
			spec.Network, sdk.ErrInvalidArgument)
	}
	if spec.Network != "" {
		hc.NetworkMode = container.NetworkMode(spec.Network)
		ep := &network.EndpointSettings{}
		if spec.Hostname != "" {
			ep.Aliases = []string{spec.Hostname}
		}
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{spec.Network: ep}}
	}
	return cfg, hc, nc, nil
}

// cpuResources: Cores is a reservation, a relative weight (CPU shares, 1024
// a core, at least the engine's minimum of 2), never a cap; only
// CoresLimit caps (NanoCPUs; none for 0).
func cpuResources(r backend.Resources) container.Resources {
	out := container.Resources{CPUShares: max(2, int64(math.Round(r.Cores*1024)))}
	if r.CoresLimit > 0 {
		out.NanoCPUs = int64(math.Round(r.CoresLimit * 1e9))
	}
	return out
}

// mounts translates the volumes. Host paths are bind mounts of type
// "bind", not Binds entries: with Binds the engine creates a missing host
// path as an empty root-owned directory, with a mount it refuses to create
// the container ("bind source path does not exist"), so a host path is
// mounted exactly as the core checked it or not at all. A named volume is
// the engine's own and is created when missing, as with docker run -v.
func mounts(vols []backend.Volume) ([]mount.Mount, error) {
	var out []mount.Mount
	for _, v := range vols {
		if v.MountPoint == "" || !path.IsAbs(v.MountPoint) || (v.HostPath == "") == (v.VolumeName == "") {
			return nil, fmt.Errorf("volume %+v: needs a host path or a volume name, not both, and an absolute mount point: %w", v, sdk.ErrInvalidArgument)
		}
		m := mount.Mount{Type: mount.TypeVolume, Source: v.VolumeName, Target: v.MountPoint, ReadOnly: v.ReadOnly}
		if v.HostPath != "" {
			if !path.IsAbs(v.HostPath) {
				return nil, fmt.Errorf("volume %+v: the host path must be absolute: %w", v, sdk.ErrInvalidArgument)
			}
			m = mount.Mount{Type: mount.TypeBind, Source: v.HostPath, Target: v.MountPoint, ReadOnly: v.ReadOnly,
				BindOptions: &mount.BindOptions{CreateMountpoint: false}}
		}
		out = append(out, m)
	}
	return out, nil
}

// status is the package's status with rememberOOM.
func (p *Plugin) status(h *host, c container.InspectResponse) (backend.ServiceStatus, error) {
	st, err := status(h, c)
	if err == nil {
		p.rememberOOM(&st)
	}
	return st, err
}

// rememberOOM marks a service that exited with SIGKILL's code OOM-killed
// when the engine's events said so (Plugin.ooms) and the container says
// otherwise. Another code is another end (an oom event also comes when
// the kernel kills a child process and the container lives on).
func (p *Plugin) rememberOOM(st *backend.ServiceStatus) {
	if st.State == backend.ServiceExited && dockerapi.MaybeOOMKilled(st.ExitCode, st.OOMKilled) && p.ooms.Has(st.Handle.ID) {
		st.OOMKilled = true
	}
}

// status translates an inspected container.
func status(h *host, c container.InspectResponse) (backend.ServiceStatus, error) {
	name := strings.TrimPrefix(c.Name, "/")
	handle, err := makeHandle(h.name, c.ID, name)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	st := backend.ServiceStatus{Handle: handle, Name: name, Node: h.name}
	if c.Config != nil {
		st.Labels = c.Config.Labels
	}
	if s := c.State; s != nil {
		st.State = serviceState(s.Status)
		d := detailsOf(c)
		st.ExitCode, st.OOMKilled, st.Message, st.StartedAt, st.FinishedAt = d.exitCode, d.oomKilled, d.message, d.startedAt, d.finishedAt
	}
	if ns := c.NetworkSettings; ns != nil {
		mode := ""
		if c.HostConfig != nil {
			mode = string(c.HostConfig.NetworkMode)
		}
		st.IP = ipOf(mode, ns.Networks)
		for port, bindings := range ns.Ports {
			for _, b := range bindings {
				hp, err := strconv.ParseUint(b.HostPort, 10, 16)
				if err != nil || hp == 0 || !reachable(b.HostIP) {
					continue
				}
				st.Ports = append(st.Ports, backend.PublishedPort{Port: port.Num(), Protocol: string(port.Proto()), HostAddress: h.external, HostPort: uint16(hp)})
				break
			}
		}
		sortPorts(st.Ports)
	}
	return st, nil
}

// summaryStatus translates a listed container, with the details its
// summary lacks. It says what status says of the same container.
func summaryStatus(h *host, c container.Summary, d details) (backend.ServiceStatus, error) {
	name := ""
	for _, n := range c.Names {
		// A name with a second slash is a legacy link's alias.
		if n = strings.TrimPrefix(n, "/"); !strings.Contains(n, "/") {
			name = n
			break
		}
	}
	handle, err := makeHandle(h.name, c.ID, name)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	st := backend.ServiceStatus{Handle: handle, Name: name, Node: h.name, Labels: c.Labels, State: serviceState(c.State),
		ExitCode: d.exitCode, OOMKilled: d.oomKilled, Message: d.message, StartedAt: d.startedAt, FinishedAt: d.finishedAt}
	if c.NetworkSettings != nil {
		st.IP = ipOf(c.HostConfig.NetworkMode, c.NetworkSettings.Networks)
	}
	seen := map[backend.PublishedPort]bool{}
	for _, pt := range c.Ports {
		key := backend.PublishedPort{Port: pt.PrivatePort, Protocol: pt.Type}
		if pt.PublicPort == 0 || !reachable(pt.IP) || seen[key] {
			continue
		}
		seen[key] = true
		st.Ports = append(st.Ports, backend.PublishedPort{Port: pt.PrivatePort, Protocol: pt.Type, HostAddress: h.external, HostPort: pt.PublicPort})
	}
	sortPorts(st.Ports)
	return st, nil
}

// detailsOf reads what a summary lacks from an inspected container.
func detailsOf(c container.InspectResponse) details {
	s := c.State
	if s == nil {
		return details{}
	}
	return details{exitCode: s.ExitCode, oomKilled: s.OOMKilled, message: s.Error,
		startedAt: dockerapi.ParseTime(s.StartedAt), finishedAt: dockerapi.ParseTime(s.FinishedAt)}
}

func serviceState(s container.ContainerState) backend.ServiceState {
	switch s {
	case container.StateCreated:
		return backend.ServiceCreated
	case container.StateExited, container.StateDead:
		return backend.ServiceExited
	}
	return backend.ServiceRunning
}

// ipOf is the container's address on its own network (mode), else on the
// first network, by name, that gave it one.
func ipOf(mode string, networks map[string]*network.EndpointSettings) string {
	keys := make([]string, 0, len(networks))
	for k := range networks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ip := ""
	for _, k := range keys {
		ep := networks[k]
		if ep == nil || !ep.IPAddress.IsValid() {
			continue
		}
		if ip == "" || k == mode || ep.NetworkID == mode {
			ip = ep.IPAddress.String()
		}
	}
	return ip
}

// reachable: a binding on any address or an IPv4 one; users are given the
// host's external address, which is IPv4.
func reachable(ip netip.Addr) bool {
	return !ip.IsValid() || !ip.Is6() || ip.Is4In6()
}

func sortPorts(ps []backend.PublishedPort) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Port != ps[j].Port {
			return ps[i].Port < ps[j].Port
		}
		return ps[i].Protocol < ps[j].Protocol
	})
}

// Stop stops the container, killing it when grace is over.
func (p *Plugin) Stop(ctx context.Context, h backend.Handle, grace time.Duration) error {
	_, hst, c, err := p.locate(ctx, h)
	if err != nil {
		return err
	}
	secs := int(math.Ceil(grace.Seconds()))
	if _, err := hst.cli.ContainerStop(ctx, c.ID, client.ContainerStopOptions{Timeout: &secs}); err != nil {
		return dockerapi.Wrap(err, "stop container %s", c.ID)
	}
	return nil
}

// Remove deletes the container; without force a running one is a conflict.
func (p *Plugin) Remove(ctx context.Context, h backend.Handle, force bool) error {
	_, hst, c, err := p.locate(ctx, h)
	if err != nil {
		return err
	}
	p.removed.Add(c.ID)
	if _, err := hst.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: force}); err != nil {
		return dockerapi.Wrap(err, "remove container %s", c.ID)
	}
	return nil
}

// Inspect reports the container's status.
func (p *Plugin) Inspect(ctx context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	_, hst, c, err := p.locate(ctx, h)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	if oomWait(c.State, time.Now()) > 0 {
		if res, err := hst.inspect(ctx, c.ID); err == nil {
			c = res.Container
		}
	}
	return p.status(hst, c)
}

// Recover is Inspect: the engine keeps everything, the handle finds it.
func (p *Plugin) Recover(ctx context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	return p.Inspect(ctx, h)
}

// List reports every container of the deployment on every host, in all
// states, or those with opts' labels (the engine filters on them). A host
// that cannot be asked is an error: a partial list would make the core
// believe services vanished. Statuses come from the engine's listing; a
// container is inspected only for what its summary lacks (exit code, OOM,
// times), and only when its summary's state changed since it was last.
func (p *Plugin) List(ctx context.Context, opts backend.ListOptions) ([]backend.ServiceStatus, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, err
	}
	labels, ok := dockerapi.LabelFilter(rt.deployment, opts.Labels)
	if !ok {
		return nil, nil
	}
	var out []backend.ServiceStatus
	for _, name := range rt.order {
		h := rt.hosts[name]
		list, err := h.cli.ContainerList(ctx, client.ContainerListOptions{All: true,
			Filters: client.Filters{}.Add("label", labels...)})
		if err != nil {
			return nil, dockerapi.Wrap(err, "list containers on %s", name)
		}
		sts, err := h.statuses(ctx, list.Items, len(opts.Labels) == 0)
		if err != nil {
			return nil, err
		}
		out = append(out, sts...)
	}
	for i := range out {
		p.rememberOOM(&out[i])
	}
	return out, nil
}

// inspectsAtOnce bounds the inspects List makes at once on a host: the
// first listing of a restarted plugin inspects every container.
const inspectsAtOnce = 8

// statuses translates a host's listing, inspecting the containers whose
// details are not cached for their summary's state. whole says the listing
// is the whole deployment's: the cache then forgets the containers not in
// it.
func (h *host) statuses(ctx context.Context, items []container.Summary, whole bool) ([]backend.ServiceStatus, error) {
	sts := make([]backend.ServiceStatus, len(items))
	found := make([]bool, len(items)) // false: removed since the listing
	ids := make(map[string]bool, len(items))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(inspectsAtOnce)
	for i, c := range items {
		ids[c.ID] = true
		key := summaryKey(c)
		if d, ok := h.cache.lookup(c.ID, key); ok {
			st, err := summaryStatus(h, c, d)
			if err != nil {
				return nil, err
			}
			sts[i], found[i] = st, true
			continue
		}
		g.Go(func() error {
			var err error
			sts[i], found[i], err = h.inspectStatus(gctx, c, key)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make([]backend.ServiceStatus, 0, len(items))
	for i, st := range sts {
		if found[i] {
			out = append(out, st)
		}
	}
	if whole {
		h.cache.keepDetails(ids)
	}
	return out, nil
}

// inspectStatus inspects a listed container for what its summary lacks,
// and keeps it for key; false when the container is gone.
func (h *host) inspectStatus(ctx context.Context, c container.Summary, key string) (backend.ServiceStatus, bool, error) {
	h.cache.inspected()
	res, err := h.inspect(ctx, c.ID)
	if cerrdefs.IsNotFound(err) {
		return backend.ServiceStatus{}, false, nil
	}
	if err != nil {
		return backend.ServiceStatus{}, false, dockerapi.Wrap(err, "inspect container %s on %s", c.ID, h.name)
	}
	if res.Container.State == nil || res.Container.State.Status != c.State {
		// It changed between the listing and the inspect: the inspect
		// is newer, and its details are not the key's.
		st, err := status(h, res.Container)
		return st, err == nil, err
	}
	d := detailsOf(res.Container)
	d.key = key
	h.cache.store(c.ID, d)
	st, err := summaryStatus(h, c, d)
	return st, err == nil, err
}

// Update changes a container's memory and CPU (shares and cap). A cap of 0
// leaves the container's cap as it was (0 is "unchanged" to Docker's
// update).
// The reservation Nodes counts stays the one of Start (a label, which
// Docker cannot change).
func (p *Plugin) Update(ctx context.Context, h backend.Handle, r backend.Resources) error {
	_, hst, c, err := p.locate(ctx, h)
	if err != nil {
		return err
	}
	cpu := cpuResources(r)
	res := &cpu
	res.MemoryReservation = r.MemoryReservation
	if r.MemoryLimit > 0 {
		res.Memory, res.MemorySwap = r.MemoryLimit, r.MemoryLimit
	}
	// Forgotten after the update, failed or not, so that Nodes reads the
	// resources again.
	defer hst.cache.forget(c.ID)
	if _, err := hst.cli.ContainerUpdate(ctx, c.ID, client.ContainerUpdateOptions{Resources: res}); err != nil {
		return dockerapi.Wrap(err, "update container %s", c.ID)
	}
	return nil
}
