package sim

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// handleVersion is the version of handleState.
const handleVersion = 1

// handleState is what a handle carries: enough to recognise the service on
// the platform after a restart, and to tell a human which one it was.
type handleState struct {
	Name       string `json:"name"`
	Node       string `json:"node"`
	Deployment string `json:"deployment"`
}

// Nodes lists the configured nodes with what their running services
// reserve, of every deployment on the platform.
func (p *Plugin) Nodes(ctx context.Context) ([]backend.Node, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, err
	}
	out := make([]backend.Node, 0, len(rt.set.nodes))
	err = rt.read(ctx, func(pl *platform) {
		for _, n := range rt.set.nodes {
			cores, mem := pl.reserved(n.name)
			bn := backend.Node{
				Name: n.name, Address: n.address, Cores: n.cores, MemoryBytes: n.memory,
				Labels: slices.Clone(n.labels), Images: slices.Compact(slices.Sorted(slices.Values(slices.Concat(n.images, pl.pulled[n.name])))),
				State: backend.NodeReady, CoresReserved: cores, MemoryReserved: mem,
			}
			if n.disabled {
				bn.State, bn.StateDetail = backend.NodeDisabled, "disabled in the configuration"
			}
			out = append(out, bn)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CreateNetwork creates a network; names are unique in a deployment.
func (p *Plugin) CreateNetwork(ctx context.Context, spec backend.NetworkSpec) (string, error) {
	rt, err := p.runtime()
	if err != nil {
		return "", err
	}
	if spec.Name == "" {
		return "", fmt.Errorf("network without a name: %w", sdk.ErrInvalidArgument)
	}
	id, err := randomID(8)
	if err != nil {
		return "", err
	}
	id = "net-" + id
	err = rt.transact(ctx, nil, func(t *tx) error {
		if old := t.pl.netByName[nameKey{rt.set.deployment, spec.Name}]; old != "" {
			return fmt.Errorf("network %q exists (%s): %w", spec.Name, old, sdk.ErrAlreadyExists)
		}
		t.putNetwork(&network{ID: id, Name: spec.Name, Deployment: rt.set.deployment,
			Labels: maps.Clone(spec.Labels), Subnet: t.pl.nextSubnet})
		t.pl.nextSubnet++
		t.counters = true
		return nil
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// RemoveNetwork removes a network that no running service uses.
func (p *Plugin) RemoveNetwork(ctx context.Context, id string) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	err = rt.transact(ctx, nil, func(t *tx) error {
		if t.pl.networks[id] == nil {
			return fmt.Errorf("network %q: %w", id, sdk.ErrNotFound)
		}
		if n := t.pl.netRunning[id]; n > 0 {
			return fmt.Errorf("network %q is in use by %d running services: %w", id, n, sdk.ErrConflict)
		}
		t.dropNetwork(id)
		return nil
	})
	return err
}

// Start places the service (on spec.Node, else on the first node in name
// order that fits), pulls its image when needed and allowed, and starts it.
func (p *Plugin) Start(ctx context.Context, spec backend.ServiceSpec) (backend.ServiceStatus, error) {
	rt, err := p.runtime()
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	if err := checkSpec(spec); err != nil {
		return backend.ServiceStatus{}, err
	}
	// The contract's rule on root, as a real back-end applies it, so that
	// what the simulator runs a real platform would run too.
	if err := backend.CheckUser(spec); err != nil {
		return backend.ServiceStatus{}, err
	}
	k, err := parseKnobs(spec, rt.set)
	if err != nil {
		return backend.ServiceStatus{}, fmt.Errorf("service %q: %w", spec.Name, err)
	}
	if k.startDelay > 0 {
		select {
		case <-ctx.Done():
			return backend.ServiceStatus{}, fmt.Errorf("start %q: %v: %w", spec.Name, ctx.Err(), sdk.ErrDeadlineExceeded)
		case <-time.After(k.startDelay):
		}
	}
	id, err := randomID(8)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	var started backend.ServiceStatus
	var gone bool
	// lns are the listeners of a service serving pages, closed unless the
	// service runs and p.webs took them over.
	var lns []net.Listener
	handed := false
	defer func() {
		if !handed {
			closeAll(lns)
		}
	}()
	err = rt.transact(ctx, nil, func(t *tx) error {
		pl, now := t.pl, t.now
		if spec.Network != "" && pl.networks[spec.Network] == nil {
			return fmt.Errorf("service %q: network %q: %w", spec.Name, spec.Network, sdk.ErrNotFound)
		}
		if s := pl.named(rt.set.deployment, spec.Name); s != nil {
			return fmt.Errorf("service %q exists (%s, %s): %w", spec.Name, s.ID, s.State, sdk.ErrAlreadyExists)
		}
		n, err := rt.place(pl, spec)
		if err != nil {
			return fmt.Errorf("service %q: %w", spec.Name, err)
		}
		var bind func(uint16) bool
		if k.http && isLoopback(n.address) {
			bind = listen(n.address, &lns)
		}
		ports, err := pl.hostPorts(n, spec.Ports, bind)
		if err != nil {
			return fmt.Errorf("service %q: %w", spec.Name, err)
		}
		if k.failStart {
			return fmt.Errorf("service %q: simulated start failure on node %q (ZOE_SIM_FAIL=start): %w", spec.Name, n.name, sdk.ErrInternal)
		}
		// Checks are over: from here on the platform changes.
		if !pl.hasImage(n, spec.Image) {
			t.pull(n.name, spec.Image)
			for _, msg := range []string{"pulling image %s on node %s", "pulled image %s on node %s"} {
				t.emit(rt.set.deployment, backend.Event{Kind: backend.EventImagePull, ServiceName: spec.Name, HandleID: id,
					Time: now, Message: fmt.Sprintf(msg, spec.Image, n.name)})
			}
		}
		s := &service{
			ID: id, Name: spec.Name, Deployment: rt.set.deployment, ExecutionID: spec.ExecutionID, Node: n.name,
			Network: spec.Network, Image: spec.Image, Hostname: spec.Hostname, Labels: maps.Clone(spec.Labels),
			Resources: spec.Resources, IP: t.address(spec.Network), Ports: ports,
			State: backend.ServiceRunning, StartedAt: now, IgnoreTerm: k.ignoreTerm, TermTime: k.termTime,
		}
		if bind != nil {
			s.HTTP, s.ProxyPaths = true, proxyPaths(spec)
		}
		if !k.runForever {
			s.EndAt, s.EndCode, s.EndMessage = now.Add(k.run), k.exit, fmt.Sprintf("exited with code %d", k.exit)
		}
		if k.oom > 0 {
			s.OOMAt = now.Add(k.oom)
		}
		if k.vanish > 0 {
			s.VanishAt = now.Add(k.vanish)
		}
		// A nanosecond apart, after the first line ("started <name> on
		// <node>", see lines), as a real engine's lines would be, so that
		// a reader can resume after any of them (LogOptions.Since).
		for i, l := range k.logs {
			s.Logs = append(s.Logs, logLine{Time: now.Add(time.Duration(i + 1)), Stream: backend.Stdout, Line: l})
		}
		t.put(s)
		t.emit(rt.set.deployment, backend.Event{Kind: backend.EventStarted, ServiceName: s.Name, HandleID: id,
			Time: now, Message: "started on node " + n.name})
		// What is due already (ZOE_SIM_RUN=0s) happens at once.
		t.advance()
		if cur := pl.services[id]; cur != nil {
			started = status(cur)
			if cur.HTTP && cur.State == backend.ServiceRunning {
				p.webs.serve(cur, lns)
				handed = true
			}
		} else {
			started, gone = status(s), true
		}
		return nil
	})
	if err != nil {
		if handed {
			p.webs.stop(id)
		}
		return backend.ServiceStatus{}, err
	}
	if gone {
		// Gone already (ZOE_SIM_VANISH=0s).
		started.State = backend.ServiceVanished
	}
	return started, nil
}

// proxyPaths are the REVERSE_PROXY_PATH_<port> Zoe gives the service, by
// port, for the page of a service serving one.
func proxyPaths(spec backend.ServiceSpec) map[string]string {
	var out map[string]string
	for _, p := range spec.Ports {
		port := strconv.Itoa(int(p.Port))
		if v, ok := spec.Environment["REVERSE_PROXY_PATH_"+port]; ok {
			if out == nil {
				out = map[string]string{}
			}
			out[port] = v
		}
	}
	return out
}

func checkSpec(spec backend.ServiceSpec) error {
	var problems []string
	if spec.Name == "" {
		problems = append(problems, "no name")
	}
	if spec.Image == "" {
		problems = append(problems, "no image")
	}
	r := spec.Resources
	if r.Cores < 0 || r.MemoryReservation < 0 || r.MemoryLimit < 0 || r.ShmSize < 0 {
		problems = append(problems, fmt.Sprintf("negative resources %+v", r))
	}
	if r.PidsLimit < -1 {
		problems = append(problems, fmt.Sprintf("pids limit %d: want a positive number, 0 or -1", r.PidsLimit))
	}
	if len(problems) > 0 {
		return fmt.Errorf("service %q: %s: %w", spec.Name, strings.Join(problems, ", "), sdk.ErrInvalidArgument)
	}
	// What a real back-end would refuse to mount, though nothing is.
	if err := backend.CheckVolumes(spec.Volumes); err != nil {
		return fmt.Errorf("service %q: %w", spec.Name, err)
	}
	return nil
}

// place picks the node for a service. Labels are the scheduler's business,
// not the platform's, so they are not checked.
func (rt *runtime) place(pl *platform, spec backend.ServiceSpec) (node, error) {
	if spec.Node != "" {
		n, ok := rt.set.node(spec.Node)
		switch {
		case !ok:
			return node{}, fmt.Errorf("node %q is not in the simulated cluster: %w", spec.Node, sdk.ErrNotFound)
		case n.disabled:
			return node{}, fmt.Errorf("node %q is disabled and takes no new services: %w", n.name, sdk.ErrUnavailable)
		case !rt.set.pullImages && !pl.hasImage(n, spec.Image):
			return node{}, fmt.Errorf("image %s is not on node %s (pull_images is off): %w", spec.Image, n.name, sdk.ErrNotFound)
		}
		return n, pl.fits(n, spec.Resources, nil)
	}
	ready, withImage := 0, 0
	for _, n := range rt.set.nodes {
		if n.disabled {
			continue
		}
		ready++
		if !rt.set.pullImages && !pl.hasImage(n, spec.Image) {
			continue
		}
		withImage++
		if pl.fits(n, spec.Resources, nil) == nil {
			return n, nil
		}
	}
	switch {
	case ready == 0:
		return node{}, fmt.Errorf("every node is disabled: %w", sdk.ErrResourceExhausted)
	case withImage == 0:
		return node{}, fmt.Errorf("image %s is on no enabled node (pull_images is off): %w", spec.Image, sdk.ErrNotFound)
	}
	return node{}, fmt.Errorf("no node has %.4g cores and %s free: %w",
		spec.Resources.Cores, formatSize(memoryOf(spec.Resources)), sdk.ErrResourceExhausted)
}

// Stop sends the service SIGTERM and waits until it exits: at once with
// code 0 if it handles SIGTERM (after ZOE_SIM_TERM_TIME), else killed with
// code 137 when the grace period is over. Stopping a service that is not
// running does nothing. If ctx ends first, the service still ends as
// planned, the plugin running or not.
func (p *Plugin) Stop(ctx context.Context, h backend.Handle, grace time.Duration) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	err = rt.transact(ctx, nil, func(t *tx) error {
		s, err := find(t.pl, rt.set.deployment, h.ID)
		if err != nil {
			return err
		}
		if s.State != backend.ServiceRunning {
			return errUnchanged
		}
		t.update(s, func(s *service) { s.stop(t.now, max(grace, 0)) })
		return nil
	})
	if err != nil {
		return err
	}
	err = rt.waitFor(ctx, h.ID, func(s *service) bool { return s == nil || s.State != backend.ServiceRunning })
	if err != nil {
		return fmt.Errorf("stop %s: still running: %v: %w", h.ID, err, sdk.ErrDeadlineExceeded)
	}
	return nil
}

// stop plans the service's answer to SIGTERM, unless it ends earlier anyway.
func (s *service) stop(now time.Time, grace time.Duration) {
	at, code, msg := now.Add(grace), 137, fmt.Sprintf("killed when the grace period of %s was over", grace)
	switch {
	case !s.IgnoreTerm && s.TermTime <= grace:
		at, code, msg = now.Add(s.TermTime), 0, "stopped"
		s.Logs = append(s.Logs, logLine{Time: now, Stream: backend.Stdout, Line: "received SIGTERM, exiting"})
	case !s.IgnoreTerm:
		s.Logs = append(s.Logs, logLine{Time: now, Stream: backend.Stdout, Line: "received SIGTERM, shutting down"})
	}
	if s.EndAt.IsZero() || at.Before(s.EndAt) {
		s.EndAt, s.EndCode, s.EndMessage = at, code, msg
	}
}

// Remove deletes a service; force kills a running one first (exited, 137).
func (p *Plugin) Remove(ctx context.Context, h backend.Handle, force bool) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	err = rt.transact(ctx, nil, func(t *tx) error {
		s, err := find(t.pl, rt.set.deployment, h.ID)
		if err != nil {
			return err
		}
		if s.State == backend.ServiceRunning {
			if !force {
				return fmt.Errorf("service %q is running; stop it or force the removal: %w", s.Name, sdk.ErrConflict)
			}
			s = t.update(s, func(s *service) { s.EndCode, s.EndMessage = 137, "killed: removed by force" })
			t.carryOut(s, t.now, fateExit)
		}
		t.drop(s.ID)
		return nil
	})
	return err
}

// Inspect reports a service as the platform has it now.
func (p *Plugin) Inspect(ctx context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	rt, err := p.runtime()
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	s, err := rt.service(ctx, h.ID)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	if s == nil || s.Deployment != rt.set.deployment {
		return backend.ServiceStatus{}, fmt.Errorf("service %q: %w", h.ID, sdk.ErrNotFound)
	}
	return status(s), nil
}

// Recover takes a service back from its handle. The platform lives in the
// state file, so there is nothing to reattach: it looks the ID up, checks
// the State when there is one, and reports the service, as often as asked.
func (p *Plugin) Recover(ctx context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	st, err := p.Inspect(ctx, h)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	var hs handleState
	v, err := backend.DecodeHandle(h, handleVersion, &hs)
	switch {
	case err != nil:
		return backend.ServiceStatus{}, err
	case v == 0:
		return st, nil // only an ID
	case hs.Name == "":
		return backend.ServiceStatus{}, fmt.Errorf("handle %q: no service name in its state %q: %w", h.ID, h.State, sdk.ErrInvalidArgument)
	case st.Name != hs.Name:
		return backend.ServiceStatus{}, fmt.Errorf("handle %q names service %q but the platform has %q under that id: %w",
			h.ID, hs.Name, st.Name, sdk.ErrInvalidArgument)
	}
	return st, nil
}

// List reports every service of this deployment, running or exited, by
// name (with opts' labels, those that carry them). It is the one call that costs the platform's size, so it copies
// nothing it need not: the statuses share their labels, ports and handle
// state with the platform's services, which never change, and the caller
// must not change them either.
func (p *Plugin) List(ctx context.Context, opts backend.ListOptions) ([]backend.ServiceStatus, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, err
	}
	var mine []*service
	err = rt.read(ctx, func(pl *platform) {
		for _, s := range pl.services {
			if s.Deployment == rt.set.deployment && opts.Matches(s.Labels) {
				mine = append(mine, s)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(mine, func(a, b *service) int { return cmp.Compare(a.Name, b.Name) })
	out := make([]backend.ServiceStatus, len(mine))
	for i, s := range mine {
		out[i] = shared(s)
	}
	return out, nil
}

// Update changes a running service's resources if its node has room.
func (p *Plugin) Update(ctx context.Context, h backend.Handle, r backend.Resources) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	err = rt.transact(ctx, nil, func(t *tx) error {
		s, err := find(t.pl, rt.set.deployment, h.ID)
		if err != nil {
			return err
		}
		if s.State != backend.ServiceRunning {
			return fmt.Errorf("service %q is %s, not running: %w", s.Name, s.State, sdk.ErrConflict)
		}
		if err := checkSpec(backend.ServiceSpec{Name: s.Name, Image: s.Image, Resources: r}); err != nil {
			return err
		}
		n, ok := rt.set.node(s.Node)
		if !ok {
			return fmt.Errorf("service %q runs on node %q, which is not configured: %w", s.Name, s.Node, sdk.ErrNotFound)
		}
		if err := t.pl.fits(n, r, s); err != nil {
			return fmt.Errorf("update %q: %w", s.Name, err)
		}
		t.update(s, func(s *service) { s.Resources = r })
		return nil
	})
	return err
}

// Events streams this deployment's events until ctx ends.
func (p *Plugin) Events(ctx context.Context) (<-chan backend.Event, error) {
	if _, err := p.runtime(); err != nil {
		return nil, err
	}
	return p.events.subscribe(ctx)
}

// Logs streams a service's output: the last opts.Tail lines (all with 0),
// then, with opts.Follow, new lines until the service stops running.
func (p *Plugin) Logs(ctx context.Context, h backend.Handle, opts backend.LogOptions) (<-chan backend.LogEntry, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, err
	}
	s, err := rt.service(ctx, h.ID)
	if err != nil {
		return nil, err
	}
	if s == nil || s.Deployment != rt.set.deployment {
		return nil, fmt.Errorf("service %q: %w", h.ID, sdk.ErrNotFound)
	}
	lines := s.lines()
	from := 0
	if !opts.Since.IsZero() {
		from = len(lines)
		for i, l := range lines {
			if !l.Time.Before(opts.Since) {
				from = i
				break
			}
		}
	}
	if opts.Tail > 0 {
		from = max(len(lines)-opts.Tail, from)
	}
	if !opts.Follow {
		ch := make(chan backend.LogEntry, len(lines)-from)
		for _, l := range lines[from:] {
			ch <- entry(l)
		}
		close(ch)
		return ch, nil
	}
	f, ok := rt.follow(ctx, h.ID, from)
	if !ok {
		return nil, fmt.Errorf("service %q: %w", h.ID, sdk.ErrNotFound)
	}
	return f.ch, nil
}

func entry(l logLine) backend.LogEntry {
	return backend.LogEntry{Time: l.Time, Stream: l.Stream, Line: []byte(l.Line)}
}

// Kill kills a running service of this deployment by name as `docker kill`
// would: it exits at once with code 137, its last line "Killed" on stderr. It is the simulation's failure on
// demand, for tests.
func (p *Plugin) Kill(ctx context.Context, name string) error {
	return p.byName(ctx, name, func(s *service, now time.Time) {
		s.EndAt, s.EndCode, s.EndMessage = now, 137, "killed (SIGKILL)"
		s.Logs = append(s.Logs, logLine{Time: now, Stream: backend.Stderr, Line: "Killed"})
	})
}

// Vanish makes a running service of this deployment disappear from the
// platform, as if removed behind Zoe's back: a vanished event, and its
// handle is not found any more.
func (p *Plugin) Vanish(ctx context.Context, name string) error {
	return p.byName(ctx, name, func(s *service, now time.Time) { s.VanishAt = now })
}

func (p *Plugin) byName(ctx context.Context, name string, plan func(*service, time.Time)) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	err = rt.transact(ctx, nil, func(t *tx) error {
		s := t.pl.named(rt.set.deployment, name)
		if s == nil || s.State != backend.ServiceRunning {
			return fmt.Errorf("no running service %q: %w", name, sdk.ErrNotFound)
		}
		t.update(s, func(s *service) { plan(s, t.now) })
		return nil
	})
	return err
}

// find returns the deployment's service of that handle ID: the file may
// hold other deployments' services, which no handle of this one names.
func find(pl *platform, deployment, id string) (*service, error) {
	s := pl.services[id]
	if s == nil || s.Deployment != deployment {
		return nil, fmt.Errorf("service %q: %w", id, sdk.ErrNotFound)
	}
	return s, nil
}

// status reports a service; it copies what the caller could modify.
func status(s *service) backend.ServiceStatus {
	st := shared(s)
	st.Handle.State, st.Ports, st.Labels = slices.Clone(st.Handle.State), slices.Clone(st.Ports), maps.Clone(st.Labels)
	return st
}

// shared reports a service sharing its labels, ports and handle state,
// which the caller must not modify.
func shared(s *service) backend.ServiceStatus {
	return backend.ServiceStatus{
		Handle: backend.Handle{ID: s.ID, Version: handleVersion, State: s.handle},
		Name:   s.Name, State: s.State, ExitCode: s.ExitCode, OOMKilled: s.OOMKilled,
		Node: s.Node, IP: s.IP, Ports: s.Ports,
		StartedAt: s.StartedAt, FinishedAt: s.FinishedAt, Message: s.Message, Labels: s.Labels,
	}
}
