package swarm

import (
	"context"
	"fmt"
	"math"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/dockerapi"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// handleState is what a handle's State holds (Version 1).
type handleState struct {
	ServiceID string `json:"service_id"`
	Name      string `json:"name"`
}

func makeHandle(id, name string) (backend.Handle, error) {
	return backend.EncodeHandle(id, handleVersion, handleState{ServiceID: id, Name: name})
}

// locate finds the service a handle names, by its ID: one that names no
// service of this deployment is sdk.ErrNotFound whatever the State; one
// that does, with a State this plugin cannot read, is DecodeHandle's
// error.
func (p *Plugin) locate(ctx context.Context, h backend.Handle) (*runtime, swarm.Service, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, swarm.Service{}, err
	}
	if h.ID == "" {
		return nil, swarm.Service{}, fmt.Errorf("handle without a service id: %w", sdk.ErrInvalidArgument)
	}
	res, err := rt.cli.ServiceInspect(ctx, h.ID, client.ServiceInspectOptions{})
	if err != nil {
		return nil, swarm.Service{}, dockerapi.Wrap(err, "service %s", h.ID)
	}
	// Found by name or id prefix, another deployment's, or not Zoe's:
	// nothing this handle names.
	if res.Service.ID != h.ID || res.Service.Spec.Labels[LabelDeployment] != rt.deployment {
		return nil, swarm.Service{}, fmt.Errorf("service %s: %w", h.ID, sdk.ErrNotFound)
	}
	var st handleState
	if _, err := backend.DecodeHandle(h, handleVersion, &st); err != nil {
		return nil, swarm.Service{}, err
	}
	return rt, res.Service, nil
}

// Start creates the service and returns once its task runs (or has run
// already and ended). A task the swarm rejects or cannot place removes the
// service and is Start's error, with the swarm's reason.
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
	if err := rt.engine(ctx); err != nil {
		return backend.ServiceStatus{}, err
	}
	nodeID := ""
	if spec.Node != "" {
		if nodeID, err = rt.nodeID(ctx, spec.Node); err != nil {
			return backend.ServiceStatus{}, fmt.Errorf("start %q: %w", spec.Name, err)
		}
	}
	// The whole spec is checked before anything exists on the swarm.
	ss, err := rt.serviceSpec(spec, nodeID)
	if err != nil {
		return backend.ServiceStatus{}, fmt.Errorf("start %q: %w", spec.Name, err)
	}
	if _, err := rt.cli.ServiceInspect(ctx, spec.Name, client.ServiceInspectOptions{}); err == nil {
		return backend.ServiceStatus{}, fmt.Errorf("start %q: a service of that name exists: %w", spec.Name, sdk.ErrAlreadyExists)
	}
	created, err := rt.cli.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: ss})
	if err != nil {
		if cerrdefs.IsConflict(err) || cerrdefs.IsAlreadyExists(err) {
			return backend.ServiceStatus{}, fmt.Errorf("start %q: a service of that name exists: %w", spec.Name, sdk.ErrAlreadyExists)
		}
		return backend.ServiceStatus{}, dockerapi.Wrap(err, "create service %q", spec.Name)
	}
	for _, w := range created.Warnings {
		p.log.Warn("service created with a warning", "service", spec.Name, "warning", w)
	}
	st, err := p.waitStarted(ctx, rt, created.ID, spec.Name)
	if err != nil {
		p.removed.Add(created.ID)
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
		defer cancel()
		if _, rmErr := rt.cli.ServiceRemove(rmCtx, created.ID, client.ServiceRemoveOptions{}); rmErr != nil && !cerrdefs.IsNotFound(rmErr) {
			p.log.Warn("cannot remove a service that failed to start", "service", spec.Name, "error", rmErr)
		}
		return backend.ServiceStatus{}, err
	}
	return st, nil
}

// waitStarted polls the new service's task until it runs or has ended.
// When ctx ends first, the error says where the task was: a task the
// swarm's allocator never took stays "new".
func (p *Plugin) waitStarted(ctx context.Context, rt *runtime, id, name string) (backend.ServiceStatus, error) {
	where := "the swarm made no task for it"
	for {
		res, err := rt.cli.ServiceInspect(ctx, id, client.ServiceInspectOptions{})
		if err != nil {
			return backend.ServiceStatus{}, dockerapi.Wrap(err, "service %q after its creation", name)
		}
		tasks, err := rt.tasks(ctx, id)
		if err != nil {
			return backend.ServiceStatus{}, err
		}
		t := mainTask(tasks)
		if t != nil {
			where = taskWhere(*t)
			switch s := t.Status.State; {
			case s == swarm.TaskStateRejected:
				return backend.ServiceStatus{}, rejected(name, t.Status.Err)
			case s == swarm.TaskStatePending && t.Status.Err != "":
				return backend.ServiceStatus{}, unplaced(name, t.Status.Err)
			case s == swarm.TaskStateRunning || terminal(s):
				nodes, err := rt.nodes(ctx)
				if err != nil {
					return backend.ServiceStatus{}, err
				}
				return p.status(ctx, rt, res.Service, tasks, nodes)
			}
		}
		select {
		case <-ctx.Done():
			return backend.ServiceStatus{}, dockerapi.Wrap(ctx.Err(), "service %q did not start (%s)", name, where)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// taskWhere tells a task's state, its message and since when.
func taskWhere(t swarm.Task) string {
	s := fmt.Sprintf("its task %s is %s", t.ID, t.Status.State)
	if t.Status.Message != "" {
		s += ": " + t.Status.Message
	}
	if t.Status.Err != "" {
		s += ": " + t.Status.Err
	}
	if !t.Status.Timestamp.IsZero() {
		s += ", since " + t.Status.Timestamp.UTC().Format(time.RFC3339)
	}
	return s
}

// rejected is the error of a task the swarm rejected: the spec's fault
// (sdk.ErrInvalidArgument) for a mount, sdk.ErrNotFound for an image no
// node has or can pull.
func rejected(name, reason string) error {
	switch {
	case strings.Contains(reason, "mount") || strings.Contains(reason, "bind source path"):
		return fmt.Errorf("service %q rejected by the swarm: %s: %w", name, reason, sdk.ErrInvalidArgument)
	case strings.Contains(reason, "No such image") || strings.Contains(reason, "pull access denied") || strings.Contains(reason, "not found"):
		return fmt.Errorf("service %q rejected by the swarm: %s: %w", name, reason, sdk.ErrNotFound)
	}
	return fmt.Errorf("service %q rejected by the swarm: %s", name, reason)
}

// unplaced is the error of a task the swarm cannot place: no room
// (retried by the core later), or no node that can take it (drained, down).
func unplaced(name, reason string) error {
	if strings.Contains(reason, "insufficient resources") {
		return fmt.Errorf("service %q: the swarm cannot place it: %s: %w", name, reason, sdk.ErrResourceExhausted)
	}
	return fmt.Errorf("service %q: the swarm cannot place it: %s: %w", name, reason, sdk.ErrUnavailable)
}

// nodeID resolves the scheduler's node name.
func (rt *runtime) nodeID(ctx context.Context, name string) (string, error) {
	nodes, err := rt.nodes(ctx)
	if err != nil {
		return "", err
	}
	for id, n := range nodes {
		if n.name == name {
			return id, nil
		}
	}
	return "", fmt.Errorf("no swarm node %q: %w", name, sdk.ErrInvalidArgument)
}

// nodeInfo is what statuses need of a node.
type nodeInfo struct {
	name, address string
}

// nodes reads the swarm's nodes, by id.
func (rt *runtime) nodes(ctx context.Context) (map[string]nodeInfo, error) {
	list, err := rt.cli.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil, dockerapi.Wrap(err, "list the swarm's nodes")
	}
	names := nodeNames(list.Items)
	out := make(map[string]nodeInfo, len(list.Items))
	for _, n := range list.Items {
		out[n.ID] = nodeInfo{name: names[n.ID], address: nodeAddress(n)}
	}
	return out, nil
}

// serviceSpec translates a service spec into the swarm's terms. The
// container policy (backend.Backend.Start) is set here whole; what the
// engine cannot enforce is refused.
func (rt *runtime) serviceSpec(spec backend.ServiceSpec, nodeID string) (swarm.ServiceSpec, error) {
	if spec.Network == "" || spec.Network == "host" || strings.HasPrefix(spec.Network, "container:") {
		return swarm.ServiceSpec{}, fmt.Errorf("network %q: a service gets its execution's overlay network, never the host's or another container's: %w",
			spec.Network, sdk.ErrInvalidArgument)
	}
	r := spec.Resources
	pids, err := backend.PidsLimit(r)
	if err != nil {
		return swarm.ServiceSpec{}, err
	}
	if !rt.hasCaps {
		return swarm.ServiceSpec{}, fmt.Errorf("the swarm's engine (API %s) cannot drop capabilities nor limit processes per service (API 1.41, Docker 20.10): %w",
			rt.cli.ClientVersion(), sdk.ErrInvalidArgument)
	}
	sec := spec.Security
	switch {
	case !sec.AllowPrivilegeEscalation && !rt.perTaskNN && !rt.engineNoPrivs:
		return swarm.ServiceSpec{}, fmt.Errorf("the swarm's engine (API %s) cannot set no-new-privileges per service (API 1.46, Docker 27), "+
			"and %s is not set (every node's dockerd running with --no-new-privileges): the service would run with privilege escalation: %w",
			rt.cli.ClientVersion(), attrNoNewPrivs, sdk.ErrInvalidArgument)
	case sec.AllowPrivilegeEscalation && rt.engineNoPrivs && !rt.perTaskNN:
		return swarm.ServiceSpec{}, fmt.Errorf("privilege escalation is allowed for this service, but the swarm's engines force no-new-privileges "+
			"on every container (%s): %w", attrNoNewPrivs, sdk.ErrInvalidArgument)
	}
	labels := dockerapi.ServiceLabels(rt.deployment, spec)
	grace := rt.stopGrace
	cs := &swarm.ContainerSpec{
		Image:           spec.Image,
		Labels:          labels,
		Args:            spec.Command,
		Hostname:        spec.Hostname,
		Env:             dockerapi.Env(spec.Environment),
		Dir:             spec.WorkDir,
		User:            spec.User,
		StopGracePeriod: &grace,
		// The policy: no added capabilities, all dropped unless kept;
		// swarm services are never privileged and never in the host's
		// namespaces (their network is the execution's, below).
		CapabilityAdd: nil,
	}
	if !sec.KeepCapabilities {
		cs.CapabilityDrop = []string{"ALL"}
	}
	if !sec.AllowPrivilegeEscalation && rt.perTaskNN {
		cs.Privileges = &swarm.Privileges{NoNewPrivileges: true}
	}
	ms, err := rt.mounts(spec.Volumes)
	if err != nil {
		return swarm.ServiceSpec{}, err
	}
	cs.Mounts = ms
	limits := &swarm.Limit{MemoryBytes: r.MemoryLimit}
	if pids > 0 {
		limits.Pids = pids
	}
	if r.CoresLimit > 0 {
		limits.NanoCPUs = int64(math.Round(r.CoresLimit * 1e9))
	}
	res := &swarm.ResourceRequirements{
		Limits:       limits,
		Reservations: &swarm.Resources{NanoCPUs: int64(math.Round(r.Cores * 1e9)), MemoryBytes: r.MemoryReservation},
	}
	if r.MemoryLimit > 0 && rt.hasSwap {
		none := int64(0) // no swap: the limit is the limit
		res.SwapBytes = &none
	}
	one := uint64(1)
	ss := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: spec.Name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: cs,
			Resources:     res,
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: spec.Network, Aliases: aliases(spec)}},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
		UpdateConfig: &swarm.UpdateConfig{Order: swarm.UpdateOrderStopFirst, Parallelism: 1},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}
	if nodeID != "" {
		ss.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.id==" + nodeID}}
	}
	for _, pt := range spec.Ports {
		proto := pt.Protocol
		if proto == "" {
			proto = "tcp"
		}
		if pt.Port == 0 || (proto != "tcp" && proto != "udp") {
			return swarm.ServiceSpec{}, fmt.Errorf("port %d/%s: %w", pt.Port, proto, sdk.ErrInvalidArgument)
		}
		ss.EndpointSpec.Ports = append(ss.EndpointSpec.Ports, swarm.PortConfig{Name: pt.Name, Protocol: network.IPProtocol(proto),
			TargetPort: uint32(pt.Port), PublishMode: rt.publishMode})
	}
	if rt.publishMode == swarm.PortConfigPublishModeIngress && len(ss.EndpointSpec.Ports) > 0 {
		// The routing mesh needs a virtual IP.
		ss.EndpointSpec.Mode = swarm.ResolutionModeVIP
	}
	return ss, nil
}

// aliases: the execution's other services find this one by its
// Hostname.
func aliases(spec backend.ServiceSpec) []string {
	if spec.Hostname == "" || spec.Hostname == spec.Name {
		return nil
	}
	return []string{spec.Hostname}
}

// mounts translates the volumes. A host path is a bind mount that the
// node's engine refuses (the task is rejected) when the path is missing:
// never created. The workspace's shared filesystem is mounted at the same
// path on every node. A named volume uses volume_driver.
func (rt *runtime) mounts(vols []backend.Volume) ([]mount.Mount, error) {
	var out []mount.Mount
	for _, v := range vols {
		if v.MountPoint == "" || !path.IsAbs(v.MountPoint) || (v.HostPath == "") == (v.VolumeName == "") {
			return nil, fmt.Errorf("volume %+v: needs a host path or a volume name, not both, and an absolute mount point: %w", v, sdk.ErrInvalidArgument)
		}
		m := mount.Mount{Type: mount.TypeVolume, Source: v.VolumeName, Target: v.MountPoint, ReadOnly: v.ReadOnly}
		if v.VolumeName != "" && rt.volumeDriver != "" {
			m.VolumeOptions = &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: rt.volumeDriver}}
		}
		if v.HostPath != "" {
			if !path.IsAbs(v.HostPath) {
				return nil, fmt.Errorf("volume %+v: the host path must be absolute: %w", v, sdk.ErrInvalidArgument)
			}
			m = mount.Mount{Type: mount.TypeBind, Source: v.HostPath, Target: v.MountPoint, ReadOnly: v.ReadOnly}
		}
		out = append(out, m)
	}
	return out, nil
}

// tasks lists a service's tasks.
func (rt *runtime) tasks(ctx context.Context, serviceID string) ([]swarm.Task, error) {
	res, err := rt.cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", serviceID)})
	if err != nil {
		return nil, dockerapi.Wrap(err, "tasks of service %s", serviceID)
	}
	out := res.Items[:0]
	for _, t := range res.Items {
		// The filter takes names and prefixes too.
		if t.ServiceID == serviceID {
			out = append(out, t)
		}
	}
	return out, nil
}

// terminal tells whether a task state is final.
func terminal(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed, swarm.TaskStateRejected,
		swarm.TaskStateRemove, swarm.TaskStateOrphaned:
		return true
	}
	return false
}

// ran tells whether a task got a container.
func ran(t swarm.Task) bool {
	return t.Status.ContainerStatus != nil && t.Status.ContainerStatus.ContainerID != ""
}

// lostContainer tells whether a task failed because its container was
// gone: its exit code is then the one it had while it ran, 0, not the
// container's. An engine stopped with SIGTERM may remove its tasks'
// containers on its way down, and finds them missing when it is back.
func lostContainer(t swarm.Task) bool {
	return t.Status.State == swarm.TaskStateFailed && strings.Contains(t.Status.Err, "No such container")
}

// mainTask is the task that says the service's state: the newest that got
// a container (Stop's replacement never does), else the newest.
func mainTask(tasks []swarm.Task) *swarm.Task {
	var best *swarm.Task
	for i := range tasks {
		t := &tasks[i]
		switch {
		case best == nil:
			best = t
		case ran(*t) != ran(*best):
			if ran(*t) {
				best = t
			}
		case t.CreatedAt.After(best.CreatedAt):
			best = t
		}
	}
	return best
}

// status translates a service and its tasks.
func (p *Plugin) status(ctx context.Context, rt *runtime, s swarm.Service, tasks []swarm.Task, nodes map[string]nodeInfo) (backend.ServiceStatus, error) {
	handle, err := makeHandle(s.ID, s.Spec.Name)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	st := backend.ServiceStatus{Handle: handle, Name: s.Spec.Name, Labels: s.Spec.Labels, State: backend.ServiceCreated}
	t := mainTask(tasks)
	if t == nil || (!ran(*t) && s.Spec.Labels[LabelStopped] != "") {
		if s.Spec.Labels[LabelStopped] != "" {
			st.State, st.ExitCode, st.Message = backend.ServiceExited, -1, "stopped before it ran"
		}
		return st, nil
	}
	n := nodes[t.NodeID]
	st.Node = n.name
	st.Message = strings.TrimSpace(t.Status.Message + " " + t.Status.Err)
	for _, a := range t.NetworksAttachments {
		if len(a.Addresses) > 0 && slices.ContainsFunc(s.Spec.TaskTemplate.Networks, func(c swarm.NetworkAttachmentConfig) bool {
			return c.Target == a.Network.ID || c.Target == a.Network.Spec.Name
		}) {
			st.IP = a.Addresses[0].Addr().String()
		}
	}
	switch {
	case t.Status.State == swarm.TaskStateRunning:
		st.State, st.StartedAt = backend.ServiceRunning, t.Status.Timestamp
	case terminal(t.Status.State):
		st.State, st.FinishedAt, st.ExitCode = backend.ServiceExited, t.Status.Timestamp, -1
		switch {
		case lostContainer(*t):
			st.Message = "its container is gone, how it ended is unknown: " + st.Message
		case ran(*t):
			st.ExitCode = t.Status.ContainerStatus.ExitCode
			st.OOMKilled = p.oomKilled(ctx, rt, *t)
		}
		if t.Status.State == swarm.TaskStateOrphaned {
			st.Message = "orphaned: the swarm lost its node: " + st.Message
		}
	}
	if st.State == backend.ServiceRunning {
		st.Ports = publishedPorts(s, *t, n.address)
	}
	return st, nil
}

// publishedPorts: host mode ports from the task, on its node's address;
// ingress ports from the service, on the same address (any node answers).
func publishedPorts(s swarm.Service, t swarm.Task, address string) []backend.PublishedPort {
	var out []backend.PublishedPort
	seen := map[string]bool{}
	add := func(pc swarm.PortConfig) {
		// An engine publishing on IPv4 and IPv6 reports the port twice.
		key := fmt.Sprint(pc.TargetPort, pc.Protocol)
		if pc.PublishedPort == 0 || seen[key] {
			return
		}
		seen[key] = true
		out = append(out, backend.PublishedPort{Port: uint16(pc.TargetPort), Protocol: string(pc.Protocol), HostAddress: address, HostPort: uint16(pc.PublishedPort)})
	}
	for _, pc := range t.Status.PortStatus.Ports {
		add(pc)
	}
	for _, pc := range s.Endpoint.Ports {
		if pc.PublishMode == swarm.PortConfigPublishModeIngress {
			add(pc)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].Protocol < out[j].Protocol
	})
	return out
}

// oomSettle is how long after a container's end its OOM kill may still be
// unknown: the engine learns of the kill (containerd's TaskOOM) and of the
// exit (TaskExit) apart, in no set order.
const oomSettle = 2 * time.Second

// oomKilled tells whether an ended task's container was OOM-killed. Swarm
// does not say: the container is inspected when it ran on the manager's own
// node (the one engine the plugin reaches) and ended with SIGKILL's code.
// State.OOMKilled is not trusted alone: the engine learns of the kill and of
// the exit apart, and older engines may leave the flag false when the kill
// comes second; the "oom" event is logged whatever the order, so the
// engine's recent events are asked for it too.
func (p *Plugin) oomKilled(ctx context.Context, rt *runtime, t swarm.Task) bool {
	if t.Status.ContainerStatus.ExitCode != dockerapi.ExitKilled || t.NodeID != rt.selfNode {
		return false
	}
	p.mu.Lock()
	v, ok := p.oom[t.ID]
	p.mu.Unlock()
	if ok {
		return v
	}
	id := t.Status.ContainerStatus.ContainerID
	res, err := rt.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil || res.Container.State == nil {
		return false
	}
	s := res.Container.State
	start, end := dockerapi.ParseTime(s.StartedAt), dockerapi.ParseTime(s.FinishedAt)
	v = s.OOMKilled
	if !v && !start.IsZero() {
		v = rt.sawOOM(ctx, id, start)
		if v {
			p.log.Debug("OOM kill known from the engine's oom event only", "container", id)
		}
	}
	// "No" is kept only once the OOM kill would have been known.
	if v || (!end.IsZero() && time.Since(end) > oomSettle) {
		p.mu.Lock()
		p.oom[t.ID] = v
		p.mu.Unlock()
	}
	return v
}

// sawOOM tells whether the engine logged an "oom" event for the container
// since it started (the engine keeps its recent events; the query ends at
// now, so it returns at once).
func (rt *runtime) sawOOM(ctx context.Context, id string, since time.Time) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ev := rt.cli.Events(ctx, client.EventsListOptions{
		Since:   dockerapi.Timestamp(since.Add(-time.Second)),
		Until:   dockerapi.Timestamp(time.Now()),
		Filters: client.Filters{}.Add("type", "container").Add("container", id).Add("event", "oom"),
	})
	for {
		select {
		case m := <-ev.Messages:
			if m.Action == "oom" {
				return true
			}
		case <-ev.Err:
			return false
		}
	}
}

// Stop shuts the service's task down and returns once it has ended.
func (p *Plugin) Stop(ctx context.Context, h backend.Handle, grace time.Duration) error {
	rt, s, err := p.locate(ctx, h)
	if err != nil {
		return err
	}
	tasks, err := rt.tasks(ctx, s.ID)
	if err != nil {
		return err
	}
	t := mainTask(tasks)
	if t != nil && terminal(t.Status.State) {
		return nil
	}
	if t != nil && ran(*t) && t.NodeID == rt.selfNode && !p.viaUpdate {
		// On the manager's own node the container is stopped directly,
		// with the grace asked for: the swarm sees it end, and starts
		// nothing again (restart condition none).
		secs := int(math.Ceil(grace.Seconds()))
		if _, err := rt.cli.ContainerStop(ctx, t.Status.ContainerStatus.ContainerID, client.ContainerStopOptions{Timeout: &secs}); err != nil &&
			!cerrdefs.IsNotFound(err) {
			return dockerapi.Wrap(err, "stop service %s", s.Spec.Name)
		}
	} else if s.Spec.Labels[LabelStopped] == "" {
		if err := rt.markStopped(ctx, s); err != nil {
			return err
		}
	}
	for {
		tasks, err := rt.tasks(ctx, s.ID)
		if err != nil {
			return err
		}
		t := mainTask(tasks)
		if t == nil || terminal(t.Status.State) || (!ran(*t) && t.DesiredState != swarm.TaskStateRunning) {
			return nil
		}
		select {
		case <-ctx.Done():
			return dockerapi.Wrap(ctx.Err(), "stop service %s", s.Spec.Name)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// markStopped updates the service so that its task is shut down and none
// runs again: a placement constraint no node meets.
func (rt *runtime) markStopped(ctx context.Context, s swarm.Service) error {
	for attempt := 0; ; attempt++ {
		spec := s.Spec
		spec.Labels = map[string]string{}
		for k, v := range s.Spec.Labels {
			spec.Labels[k] = v
		}
		spec.Labels[LabelStopped] = "true"
		pl := swarm.Placement{}
		if spec.TaskTemplate.Placement != nil {
			pl = *spec.TaskTemplate.Placement
		}
		pl.Constraints = append(slices.Clone(pl.Constraints), stoppedConstraint)
		spec.TaskTemplate.Placement = &pl
		_, err := rt.cli.ServiceUpdate(ctx, s.ID, client.ServiceUpdateOptions{Version: s.Version, Spec: spec})
		if err == nil {
			return nil
		}
		if attempt >= 3 || !strings.Contains(err.Error(), "out of sequence") {
			return dockerapi.Wrap(err, "stop service %s", s.Spec.Name)
		}
		res, ierr := rt.cli.ServiceInspect(ctx, s.ID, client.ServiceInspectOptions{})
		if ierr != nil {
			return dockerapi.Wrap(ierr, "stop service %s", s.Spec.Name)
		}
		if s = res.Service; s.Spec.Labels[LabelStopped] != "" {
			return nil
		}
	}
}

// Remove deletes the service; without force, a running one is a conflict.
func (p *Plugin) Remove(ctx context.Context, h backend.Handle, force bool) error {
	rt, s, err := p.locate(ctx, h)
	if err != nil {
		return err
	}
	if !force {
		tasks, err := rt.tasks(ctx, s.ID)
		if err != nil {
			return err
		}
		if t := mainTask(tasks); t != nil && !terminal(t.Status.State) && (ran(*t) || t.DesiredState == swarm.TaskStateRunning) {
			return fmt.Errorf("remove service %s: it runs (%s): %w", s.Spec.Name, t.Status.State, sdk.ErrConflict)
		}
	}
	p.removed.Add(s.ID)
	if _, err := rt.cli.ServiceRemove(ctx, s.ID, client.ServiceRemoveOptions{}); err != nil {
		return dockerapi.Wrap(err, "remove service %s", s.Spec.Name)
	}
	return nil
}

// Inspect reports the service's status.
func (p *Plugin) Inspect(ctx context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	rt, s, err := p.locate(ctx, h)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	tasks, err := rt.tasks(ctx, s.ID)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	nodes, err := rt.nodes(ctx)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	return p.status(ctx, rt, s, tasks, nodes)
}

// Recover is Inspect: the swarm keeps everything, the handle finds it.
func (p *Plugin) Recover(ctx context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	return p.Inspect(ctx, h)
}

// List reports the deployment's services, or those with opts' labels (the
// swarm filters on them), with one listing of the swarm's tasks and nodes.
func (p *Plugin) List(ctx context.Context, opts backend.ListOptions) ([]backend.ServiceStatus, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, err
	}
	labels, ok := dockerapi.LabelFilter(rt.deployment, opts.Labels)
	if !ok {
		return nil, nil
	}
	svcs, tasks, err := p.servicesAndTasks(ctx, rt, labels)
	if err != nil || len(svcs) == 0 {
		return nil, err
	}
	if err := rt.engine(ctx); err != nil {
		return nil, err
	}
	byService := map[string][]swarm.Task{}
	for _, t := range tasks {
		byService[t.ServiceID] = append(byService[t.ServiceID], t)
	}
	nodes, err := rt.nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]backend.ServiceStatus, 0, len(svcs))
	for _, s := range svcs {
		if !(backend.ListOptions{Labels: opts.Labels}).Matches(s.Spec.Labels) || s.Spec.Labels[LabelDeployment] != rt.deployment {
			continue
		}
		st, err := p.status(ctx, rt, s, byService[s.ID], nodes)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// servicesAndTasks lists the services with labels and their tasks. A
// service removed between the two listings (an execution cleaned up
// meanwhile) makes the engine refuse the whole task listing as not found:
// both are listed again then, a few times at most.
func (p *Plugin) servicesAndTasks(ctx context.Context, rt *runtime, labels []string) ([]swarm.Service, []swarm.Task, error) {
	for attempt := 1; ; attempt++ {
		svcs, err := rt.cli.ServiceList(ctx, client.ServiceListOptions{Filters: client.Filters{}.Add("label", labels...)})
		if err != nil {
			return nil, nil, dockerapi.Wrap(err, "list services")
		}
		if len(svcs.Items) == 0 {
			return nil, nil, nil
		}
		if p.afterServiceList != nil {
			p.afterServiceList()
		}
		f := client.Filters{}
		for _, s := range svcs.Items {
			f = f.Add("service", s.ID)
		}
		tasks, err := rt.cli.TaskList(ctx, client.TaskListOptions{Filters: f})
		if cerrdefs.IsNotFound(err) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, nil, dockerapi.Wrap(err, "list tasks")
		}
		return svcs.Items, tasks.Items, nil
	}
}
