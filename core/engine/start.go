package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/workspace"
)

// start is the worker that starts an execution's services: the owner's
// workspace first, the network, then the services one startup_order after
// the other, the services of one order in parallel.
func (e *Engine) start(ctx context.Context, snap state.Execution, jobs []job, addrs map[string]string) {
	store := e.cfg.Store
	// Writes that record what was done must not be lost to a cancel.
	wctx := context.WithoutCancel(ctx)
	ex, err := store.GetExecution(ctx, snap.ID)
	if err != nil || (ex.Status != state.StatusQueued && ex.Status != state.StatusStarting && ex.Status != state.StatusRunning) {
		return
	}
	// The owner as the auth source has them now: a demotion or new ids
	// apply to this start, and a removed owner starts nothing.
	user, err := e.owner(ctx, ex.Owner)
	if errors.Is(err, sdk.ErrNotFound) && e.cfg.Identities != nil {
		msg := OwnerGone
		e.end(wctx, ex.ID, state.ExecutionChange{Reason: msg, ErrorMessage: &msg})
		e.log.Warn("an execution's owner no longer exists at the authentication source", "execution", ex.ID,
			"owner", ex.Owner)
		return
	}
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("cannot confirm an execution's owner; its start waits", "execution", ex.ID, "owner", ex.Owner,
				"error", err)
			// The next pass places it again: not at once.
			sleep(ctx, e.cfg.Interval)
		}
		return
	}
	if !user.Enabled && ex.Status == state.StatusQueued {
		// Disabled while it waited: a disabled user starts nothing.
		msg := OwnerDisabled
		e.end(wctx, ex.ID, state.ExecutionChange{Reason: msg, ErrorMessage: &msg})
		return
	}
	runAs, sec, err := e.cfg.Containers.Run(user.UID, user.GID)
	if err != nil {
		msg := err.Error()
		e.end(wctx, ex.ID, state.ExecutionChange{Reason: msg, ErrorMessage: &msg})
		return
	}
	// The services run as these ids, so the workspace is theirs; they are
	// the owner's when the auth source gives them, else run_as.
	if ids := e.cfg.Containers.IDs(user.UID, user.GID); ids != nil {
		user.UID, user.GID = &ids.UID, &ids.GID
	}
	mount, err := e.cfg.Workspace.Prepare(ctx, workspace.User{Username: user.Username, UID: user.UID, GID: user.GID})
	if err != nil {
		if ctx.Err() == nil && !transient(err) {
			msg := "cannot prepare the workspace of " + user.Username + ": " + err.Error()
			e.end(wctx, ex.ID, state.ExecutionChange{Reason: msg, ErrorMessage: &msg})
		}
		e.log.Warn("cannot prepare a workspace", "execution", ex.ID, "user", user.Username, "error", err)
		return
	}
	if err := e.admit(ex, user, mount); err != nil {
		msg := err.Error()
		e.end(wctx, ex.ID, state.ExecutionChange{Reason: msg, ErrorMessage: &msg})
		e.log.Warn("the container policy refuses an execution", "execution", ex.ID, "error", err)
		return
	}
	sortJobs(jobs)
	netID := ex.NetworkID
	if netID == "" {
		if netID, err = e.createNetwork(ctx, ex); err != nil {
			if errors.Is(err, sdk.ErrConflict) {
				return // ended meanwhile: nothing was started
			}
			e.log.Warn("cannot create an execution's network", "execution", ex.ID, "error", err)
			return
		}
	}
	if ex.Status == state.StatusQueued {
		_, err = store.Transition(wctx, ex.ID, []state.Status{state.StatusQueued}, state.StatusStarting,
			state.ExecutionChange{Reason: fmt.Sprintf("placed %s on network %s", joinNames(jobs), netID)})
		if err != nil {
			// Terminated meanwhile: nothing was started; the clean-up
			// removes the recorded network.
			e.logTransition(ex.ID, err)
			return
		}
		ex.Status = state.StatusStarting
	}
	insts, err := e.expand(ex, user)
	if err != nil {
		msg := err.Error()
		e.end(wctx, ex.ID, state.ExecutionChange{Reason: msg, ErrorMessage: &msg})
		return
	}
	for i := 0; i < len(jobs); {
		j := i
		for j < len(jobs) && jobs[j].sv.StartupOrder == jobs[i].sv.StartupOrder {
			j++
		}
		var wg sync.WaitGroup
		errs := make([]error, j-i)
		for k := i; k < j; k++ {
			wg.Go(func() {
				errs[k-i] = e.startOne(ctx, ex, jobs[k], insts[jobs[k].sv.Name], netID, mount, runAs, sec, addrs)
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			return
		}
		for k, err := range errs {
			if err != nil && jobs[i+k].sv.Essential && !transient(err) {
				msg := fmt.Sprintf("essential service %s could not start: %v", jobs[i+k].sv.Name, err)
				e.end(wctx, ex.ID, state.ExecutionChange{Reason: msg, ErrorMessage: &msg})
				return
			}
		}
		if slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
			// Later orders wait until the failed ones are placed again.
			return
		}
		i = j
	}
	if ex.Status != state.StatusStarting {
		return
	}
	svcs, err := store.Services(wctx, ex.ID)
	if err != nil {
		return
	}
	n := 0
	for _, sv := range svcs {
		if sv.Essential {
			if sv.Status != state.ServiceRunning {
				return
			}
			n++
		}
	}
	_, err = store.Transition(wctx, ex.ID, []state.Status{state.StatusStarting}, state.StatusRunning,
		state.ExecutionChange{Reason: fmt.Sprintf("its %d essential services run", n), Started: true})
	e.logTransition(ex.ID, err)
}

// owner is the execution owner's identity to start with.
func (e *Engine) owner(ctx context.Context, name string) (state.User, error) {
	if e.cfg.Identities == nil {
		return e.cfg.Store.GetUser(ctx, name)
	}
	return e.cfg.Identities.Current(ctx, name)
}

// transient errors are worth trying again later.
func transient(err error) bool {
	return errors.Is(err, sdk.ErrUnavailable) || errors.Is(err, sdk.ErrResourceExhausted) ||
		errors.Is(err, sdk.ErrDeadlineExceeded)
}

// createNetwork creates the execution's network and records its id before
// anything else can use it. When the execution ended meanwhile (the store
// refuses the id with sdk.ErrConflict) the network is removed again.
func (e *Engine) createNetwork(ctx context.Context, ex state.Execution) (string, error) {
	wctx := context.WithoutCancel(ctx)
	spec := backend.NetworkSpec{Name: e.networkName(ex.ID), Labels: map[string]string{
		LabelDeployment: e.cfg.Deployment, LabelExecution: strconv.FormatInt(ex.ID, 10), LabelOwner: ex.Owner}}
	id, err := e.cfg.Backend.CreateNetwork(ctx, spec)
	if errors.Is(err, sdk.ErrAlreadyExists) {
		// Created by a daemon that died before recording its id (see
		// "Networks" in the package documentation): without the id it
		// cannot be removed, so it is left to the operator and the
		// execution gets a network of another name.
		e.log.Warn("an execution's network exists but its id was never recorded; leaving it behind",
			"execution", ex.ID, "network", spec.Name)
		spec.Name += "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		id, err = e.cfg.Backend.CreateNetwork(ctx, spec)
	}
	if err != nil {
		return "", err
	}
	// Recorded even when ctx is cancelled: the network exists.
	if err := e.cfg.Store.SetNetwork(wctx, ex.ID, id); err != nil {
		if rerr := e.cfg.Backend.RemoveNetwork(wctx, id); rerr != nil && !errors.Is(rerr, sdk.ErrNotFound) {
			e.log.Warn("cannot remove a network whose id could not be recorded", "execution", ex.ID, "network", id,
				"error", rerr)
		}
		return "", fmt.Errorf("record network %s: %w", id, err)
	}
	return id, nil
}

// admit applies the container policy again just before a start: the
// description may have been stored under a policy since tightened, the
// owner's role may have changed, and the host paths may have become
// symbolic links since the submission.
func (e *Engine) admit(ex state.Execution, user state.User, mount workspace.Mount) error {
	app, err := zapp.Load(ex.Description, e.cfg.Limits)
	if err != nil {
		return fmt.Errorf("the description is no longer valid: %w", err)
	}
	// The owner's workspace is mounted at /mnt/workspace; a ZApp volume
	// holding it would hold the other users' too.
	if probs := e.cfg.Containers.Check(app, user.Role, mount.HostPath); probs != nil {
		msgs := make([]string, len(probs))
		for i, p := range probs {
			msgs[i] = p.String()
		}
		return fmt.Errorf("the container policy refuses the ZApp: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// expand expands the stored description with the execution's id.
func (e *Engine) expand(ex state.Execution, user state.User) (map[string]zapp.Instance, error) {
	app, err := zapp.Load(ex.Description, e.cfg.Limits)
	if err != nil {
		return nil, fmt.Errorf("the description is no longer valid: %w", err)
	}
	list, err := zapp.Expand(app, zapp.ExpandContext{
		ExecutionID: strconv.FormatInt(ex.ID, 10), ExecutionName: ex.Name, UserName: ex.Owner,
		UID: user.UID, GID: user.GID, Deployment: e.cfg.Deployment, ProxyBase: e.cfg.ProxyBase, Limits: e.cfg.Limits,
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]zapp.Instance, len(list))
	for _, in := range list {
		out[in.Name] = in
	}
	return out, nil
}

// startOne starts one service and records it. Starting a service the
// back-end has already (a start whose answer was lost) adopts it.
func (e *Engine) startOne(ctx context.Context, ex state.Execution, j job, in zapp.Instance, netID string, mount workspace.Mount, runAs string, sec backend.Security, addrs map[string]string) error {
	store := e.cfg.Store
	wctx := context.WithoutCancel(ctx)
	if in.Name == "" {
		return fmt.Errorf("service %s is not in the description: %w", j.sv.Name, sdk.ErrInternal)
	}
	node := j.node
	if _, err := store.PlaceServices(ctx, ex.ID, []state.Placement{{ServiceID: j.sv.ID, Node: node,
		Reason: "placed on node " + node}}); err != nil {
		return err
	}
	spec := e.spec(ex, in, node, netID, mount)
	spec.User, spec.Security = runAs, sec
	st, err := e.cfg.Backend.Start(ctx, spec)
	if errors.Is(err, sdk.ErrAlreadyExists) {
		st, err = e.find(wctx, spec.Name)
	}
	if err != nil {
		if ctx.Err() != nil {
			// Terminated: the clean-up finds what may have started.
			return err
		}
		if transient(err) {
			e.reset(wctx, j.sv, "could not start, will try again: "+err.Error())
			return err
		}
		msg := err.Error()
		_, terr := store.TransitionService(wctx, j.sv.ID, []state.ServiceStatus{state.ServiceStarting}, state.ServiceError,
			state.ServiceChange{Reason: "could not start: " + msg, ErrorMessage: &msg})
		if terr != nil {
			e.log.Warn("cannot record a failed start", "service", j.sv.Name, "error", terr)
		}
		return err
	}
	return e.record(wctx, ex, j.sv, in, st, addrs, "started on node "+st.Node)
}

// find looks for a service of this deployment by name.
func (e *Engine) find(ctx context.Context, name string) (backend.ServiceStatus, error) {
	list, err := e.cfg.Backend.List(ctx)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	for _, st := range list {
		if st.Name == name {
			return st, nil
		}
	}
	return backend.ServiceStatus{}, fmt.Errorf("service %s: %w", name, sdk.ErrNotFound)
}

// record stores a started service: handle, node, address, endpoints and
// running, in one transaction.
func (e *Engine) record(ctx context.Context, ex state.Execution, sv state.Service, in zapp.Instance, st backend.ServiceStatus, addrs map[string]string, reason string) error {
	s := state.Started{Handle: fromBackendHandle(st.Handle), Node: st.Node, IP: st.IP, BackendStatus: string(st.State),
		Endpoints: e.endpoints(ex, in, st, addrs), Reason: reason}
	_, err := e.cfg.Store.RecordStarted(ctx, sv.ID, s)
	if errors.Is(err, sdk.ErrInvalidArgument) {
		// Endpoints the store refuses do not keep a running service from
		// being recorded.
		e.log.Warn("cannot record endpoints", "service", sv.Name, "error", err)
		s.Endpoints = nil
		_, err = e.cfg.Store.RecordStarted(ctx, sv.ID, s)
	}
	return err
}

func (e *Engine) spec(ex state.Execution, in zapp.Instance, node, netID string, mount workspace.Mount) backend.ServiceSpec {
	env := make(map[string]string, len(in.Environment))
	for _, v := range in.Environment {
		env[v.Name] = v.Value
	}
	var cmd []string
	if in.Command != nil {
		cmd = strings.Fields(*in.Command)
	}
	vols := []backend.Volume{{HostPath: mount.HostPath, VolumeName: mount.VolumeName, MountPoint: zapp.WorkspacePath,
		ReadOnly: mount.ReadOnly}}
	for _, v := range in.Volumes {
		vols = append(vols, backend.Volume{HostPath: v.Path, MountPoint: "/mnt/" + v.Name, ReadOnly: v.ReadOnly})
	}
	ports := make([]backend.Port, 0, len(in.Ports))
	for _, p := range in.Ports {
		ports = append(ports, backend.Port{Port: uint16(p.PortNumber), Protocol: protocol(p.Protocol), Name: p.Name})
	}
	id := strconv.FormatInt(ex.ID, 10)
	return backend.ServiceSpec{
		Name: e.containerName(ex.ID, in.Name), Hostname: in.DNSName, Image: in.Image, Command: cmd, WorkDir: in.WorkDir,
		Environment: env,
		Labels: map[string]string{LabelDeployment: e.cfg.Deployment, LabelExecution: id, LabelService: in.Name,
			LabelOwner: ex.Owner},
		Resources: backend.Resources{MemoryReservation: in.MemoryReservation, MemoryLimit: in.MemoryLimit,
			Cores: in.Cores, ShmSize: in.Shm, PidsLimit: e.cfg.PidsLimit},
		Volumes: vols, Ports: ports, Network: netID, Node: node, ExecutionID: id,
	}
}

func protocol(p string) string {
	if p == "" {
		return "tcp"
	}
	return p
}

// endpoints are the service's ports where the back-end published them;
// url_template's {ip_port} is the published address and {proxy_path} the
// path through Zoe's proxy.
func (e *Engine) endpoints(ex state.Execution, in zapp.Instance, st backend.ServiceStatus, addrs map[string]string) []state.Endpoint {
	out := make([]state.Endpoint, 0, len(in.Ports))
	seen := map[string]bool{}
	for _, p := range in.Ports {
		proto := protocol(p.Protocol)
		ep := state.Endpoint{Name: p.Name, Port: p.PortNumber, Protocol: proto}
		if ep.Name == "" || seen[ep.Name] {
			ep.Name = fmt.Sprintf("%s %d/%s", p.Name, p.PortNumber, proto)
		}
		seen[ep.Name] = true
		ipPort := ""
		for _, pp := range st.Ports {
			if int(pp.Port) == p.PortNumber && protocol(pp.Protocol) == proto {
				ep.ExternalAddress = pp.HostAddress
				if ep.ExternalAddress == "" || ep.ExternalAddress == "0.0.0.0" {
					ep.ExternalAddress = addrs[st.Node]
				}
				ep.ExternalPort = int(pp.HostPort)
				ipPort = fmt.Sprintf("%s:%d", ep.ExternalAddress, pp.HostPort)
			}
		}
		if p.URLTemplate != "" {
			proxy := strings.TrimRight(e.cfg.ProxyBase, "/") + "/" + strconv.FormatInt(ex.ID, 10) + "/" + in.Name + "/" +
				strconv.Itoa(p.PortNumber)
			ep.URL = strings.NewReplacer("{ip_port}", ipPort, "{proxy_path}", proxy).Replace(p.URLTemplate)
		}
		out = append(out, ep)
	}
	return out
}

// cleanup stops and removes every container of an execution that ends,
// removes its network and ends it.
func (e *Engine) cleanup(ctx context.Context, ex state.Execution) {
	store, be := e.cfg.Store, e.cfg.Backend
	svcs, err := store.Services(ctx, ex.ID)
	if err != nil {
		return
	}
	listed, err := be.List(ctx)
	if err != nil {
		e.log.Debug("cannot list services to clean up; trying again", "execution", ex.ID, "error", err)
		sleep(ctx, e.cfg.Interval)
		return
	}
	mine := map[string]backend.ServiceStatus{}
	for _, st := range listed {
		if st.Labels[LabelExecution] == strconv.FormatInt(ex.ID, 10) || strings.HasSuffix(st.Name, "-"+strconv.FormatInt(ex.ID, 10)+"-"+strings.ToLower(e.cfg.Deployment)) {
			mine[st.Name] = st
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := false
	for _, sv := range svcs {
		name := e.containerName(ex.ID, sv.Name)
		st, ok := mine[name]
		delete(mine, name)
		k := logKey{ex.ID, sv.Name}
		wg.Go(func() {
			if ok {
				if err := e.removeContainer(ctx, st.Handle, &k); err != nil {
					e.log.Warn("cannot remove a service", "execution", ex.ID, "service", sv.Name, "error", err)
					mu.Lock()
					failed = true
					mu.Unlock()
					return
				}
			}
			e.closeLog(k)
			if sv.Status != state.ServiceStopped && sv.Status != state.ServiceError {
				_, err := store.TransitionService(ctx, sv.ID, []state.ServiceStatus{sv.Status}, state.ServiceStopped,
					state.ServiceChange{Reason: "its execution ended"})
				if err != nil && !errors.Is(err, sdk.ErrConflict) {
					e.log.Warn("cannot record a service's end", "service", sv.Name, "error", err)
				}
			}
		})
	}
	for _, st := range mine {
		wg.Go(func() {
			if err := e.removeContainer(ctx, st.Handle, nil); err != nil {
				e.log.Warn("cannot remove a container", "execution", ex.ID, "name", st.Name, "error", err)
				mu.Lock()
				failed = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failed || ctx.Err() != nil {
		sleep(ctx, e.cfg.Interval)
		return
	}
	cur, err := store.GetExecution(ctx, ex.ID)
	if err != nil {
		return
	}
	if cur.NetworkID != "" {
		if err := be.RemoveNetwork(ctx, cur.NetworkID); err != nil && !errors.Is(err, sdk.ErrNotFound) {
			e.log.Warn("cannot remove a network", "execution", ex.ID, "network", cur.NetworkID, "error", err)
			sleep(ctx, e.cfg.Interval)
			return
		}
	}
	to := state.StatusTerminated
	if cur.ErrorMessage != "" {
		to = state.StatusError
	}
	_, err = store.Transition(ctx, ex.ID, []state.Status{state.StatusCleaningUp}, to,
		state.ExecutionChange{Reason: "every service and the network removed", Ended: true})
	e.logTransition(ex.ID, err)
	if err == nil {
		e.mu.Lock()
		e.setWaiting(ex.ID, "")
		delete(e.dyn, ex.ID)
		e.mu.Unlock()
	}
}

// removeContainer stops a container with the grace period and removes it;
// the output of a service's container (k) is read to its end in between.
func (e *Engine) removeContainer(ctx context.Context, h backend.Handle, k *logKey) error {
	if err := e.cfg.Backend.Stop(ctx, h, e.cfg.StopGrace); err != nil && !errors.Is(err, sdk.ErrNotFound) {
		e.log.Debug("stop failed; removing by force", "handle", h.ID, "error", err)
	}
	if k != nil {
		e.drain(*k, h, true)
	}
	if err := e.cfg.Backend.Remove(ctx, h, true); err != nil && !errors.Is(err, sdk.ErrNotFound) {
		return err
	}
	return nil
}
