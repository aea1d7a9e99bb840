package engine

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zoe-project/zoe/core/policy"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/workspace"
)

// start is the worker that starts an execution's services: the owner's
// workspace first, the network, then the services one startup_order after
// the other, the services of one order in parallel. It returns an error
// when something failed that is worth trying again (a plugin unavailable,
// the store failing): the execution then backs off (see spawn). Failures
// that trying again cannot mend end the execution instead.
func (e *Engine) start(ctx context.Context, snap state.Execution, jobs []job, addrs map[string]string) error {
	store := e.cfg.Store
	// Writes that record what was done must not be lost to a cancel.
	wctx := context.WithoutCancel(ctx)
	ex, err := store.GetExecution(ctx, snap.ID)
	if err != nil {
		return fmt.Errorf("cannot read the execution: %w", err)
	}
	if ex.Status != state.StatusQueued && ex.Status != state.StatusStarting && ex.Status != state.StatusRunning {
		return nil
	}
	// The owner as the auth source has them now: a demotion or new ids
	// apply to this start, and a removed owner starts nothing.
	user, err := e.owner(ctx, ex.Owner)
	if errors.Is(err, sdk.ErrNotFound) && e.cfg.Identities != nil {
		msg := OwnerGone
		e.end(wctx, ex.ID, state.ExecutionChange{Reason: msg, ErrorMessage: &msg})
		e.log.Warn("an execution's owner no longer exists at the authentication source", "execution", ex.ID,
			"owner", ex.Owner)
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot confirm the owner %s: %w", ex.Owner, err)
	}
	if !user.Enabled && ex.Status == state.StatusQueued {
		// Disabled while it waited: a disabled user starts nothing.
		msg := OwnerDisabled
		e.end(wctx, ex.ID, state.ExecutionChange{Reason: msg, ErrorMessage: &msg})
		return nil
	}
	runAs, sec, err := e.cfg.Containers.Run(user.UID, user.GID)
	if err != nil {
		msg := err.Error()
		e.end(wctx, ex.ID, state.ExecutionChange{Reason: msg, ErrorMessage: &msg})
		return nil
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
			e.log.Warn("cannot prepare a workspace", "execution", ex.ID, "user", user.Username, "error", err)
			return nil
		}
		return fmt.Errorf("cannot prepare the workspace: %w", err)
	}
	if err := e.admit(ex, user, mount); err != nil {
		msg := err.Error()
		e.end(wctx, ex.ID, state.ExecutionChange{Reason: msg, ErrorMessage: &msg})
		e.log.Warn("the container policy refuses an execution", "execution", ex.ID, "error", err)
		return nil
	}
	// What depends on the execution's id and its owner's ids is added to
	// the stored instances now (see "Descriptions and ids").
	if err := e.bind(ex, user, jobs); err != nil {
		msg := err.Error()
		e.end(wctx, ex.ID, state.ExecutionChange{Reason: msg, ErrorMessage: &msg})
		return nil
	}
	sortJobs(jobs)
	netID := ex.NetworkID
	created := "" // the network created here, to record with the move to starting
	if netID == "" {
		// A queued execution records the network's id with its move to
		// starting, in one transaction; a starting one at once.
		netID, err = e.createNetwork(ctx, ex, ex.Status != state.StatusQueued)
		switch {
		case errors.Is(err, errEnded):
			return nil // nothing was started; the clean-up ends it
		case err != nil && ctx.Err() == nil && !transient(err):
			msg := "cannot create the execution's network: " + err.Error()
			e.end(wctx, ex.ID, state.ExecutionChange{Reason: msg, ErrorMessage: &msg})
			return nil
		case err != nil:
			return fmt.Errorf("cannot create the execution's network: %w", err)
		}
		if ex.Status == state.StatusQueued {
			created = netID
		}
	}
	if ex.Status == state.StatusQueued {
		// Recorded before any service is started on it (see "Networks"
		// in the package documentation).
		_, err = store.Transition(wctx, ex.ID, []state.Status{state.StatusQueued}, state.StatusStarting,
			state.ExecutionChange{Reason: fmt.Sprintf("placed %s on network %s", joinNames(jobs), netID),
				NetworkID: created})
		if err != nil && created != "" {
			// Not recorded: no clean-up would find it.
			e.removeNetwork(wctx, ex.ID, created)
		}
		if errors.Is(err, sdk.ErrConflict) {
			// Terminated meanwhile: nothing was started; the clean-up
			// removes a network recorded before.
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot record the start: %w", err)
		}
		ex.Status = state.StatusStarting
	}
	for i := 0; i < len(jobs); {
		j := i
		for j < len(jobs) && jobs[j].sv.StartupOrder == jobs[i].sv.StartupOrder {
			j++
		}
		// The services of one order are placed together, in one
		// transaction: all or none (a conflict means something else
		// changed one of them; the next pass sees what).
		if err := e.place(ctx, ex.ID, jobs[i:j]); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("cannot place %s: %w", joinNames(jobs[i:j]), err)
		}
		var wg sync.WaitGroup
		errs := make([]error, j-i)
		sts := make([]backend.ServiceStatus, j-i)
		for k := i; k < j; k++ {
			wg.Go(func() {
				sts[k-i], errs[k-i] = e.startOne(ctx, ex, jobs[k], netID, mount, runAs, sec)
			})
		}
		wg.Wait()
		// The services that started are recorded together, in one
		// transaction, even when ctx is cancelled: they run.
		var (
			idx  []int
			recs []startedService
		)
		for k, err := range errs {
			if err == nil {
				jb := jobs[i+k]
				idx = append(idx, k)
				recs = append(recs, startedService{sv: jb.sv, in: jb.in, st: sts[k], reason: "started on node " + sts[k].Node})
			}
		}
		for n, err := range e.recordMany(wctx, ex, recs, addrs) {
			errs[idx[n]] = err
		}
		if ctx.Err() != nil {
			return nil
		}
		var retry error
		for k, err := range errs {
			var r refusedError
			switch {
			case err == nil:
			case errors.As(err, &r) && jobs[i+k].sv.Essential:
				msg := fmt.Sprintf("essential service %s could not start: %v", jobs[i+k].sv.Name, r.err)
				e.end(wctx, ex.ID, state.ExecutionChange{Reason: msg, ErrorMessage: &msg})
				return nil
			case errors.As(err, &r):
				// An elastic service the back-end refused is in error, for
				// good; the next pass starts the later orders.
				e.log.Warn("elastic service could not start: left in error", "execution", ex.ID, "owner", ex.Owner,
					"service", jobs[i+k].sv.Name, "error", r.err)
				if retry == nil {
					retry = errRefusedElastic
				}
			case retry == nil || retry == errRefusedElastic:
				retry = fmt.Errorf("service %s could not start: %w", jobs[i+k].sv.Name, err)
			}
		}
		if retry == errRefusedElastic {
			return nil
		}
		if retry != nil {
			// Later orders wait until the failed ones are placed again.
			return retry
		}
		i = j
	}
	if ex.Status != state.StatusStarting {
		return nil
	}
	svcs, err := store.Services(wctx, ex.ID)
	if err != nil {
		return fmt.Errorf("cannot read the services: %w", err)
	}
	n := 0
	for _, sv := range svcs {
		if sv.Essential {
			if sv.Status != state.ServiceRunning {
				return nil
			}
			n++
		}
	}
	_, err = store.Transition(wctx, ex.ID, []state.Status{state.StatusStarting}, state.StatusRunning,
		state.ExecutionChange{Reason: fmt.Sprintf("its %d essential services run", n), Started: true})
	e.logTransition(ex.ID, err)
	return nil
}

// errRefusedElastic stands for elastic services the back-end refused:
// no reason to back off.
var errRefusedElastic = errors.New("an elastic service could not start")

// refusedError is a start the back-end refused for good (not transient):
// the service is in error.
type refusedError struct{ err error }

func (r refusedError) Error() string { return r.err.Error() }
func (r refusedError) Unwrap() error { return r.err }

// errEnded: the execution ended while it was being started (the store
// refused a change with sdk.ErrConflict). A back-end's sdk.ErrConflict is
// not this: it is an ordinary failure.
var errEnded = errors.New("the execution ended meanwhile")

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

// createNetwork creates the execution's network and, with record,
// records its id before anything else can use it (without, the caller
// records it before any service starts on it). When the execution ended
// meanwhile (the store refuses the id with sdk.ErrConflict) the network is
// removed again and errEnded returned; the back-end's errors are returned
// as they are.
func (e *Engine) createNetwork(ctx context.Context, ex state.Execution, record bool) (string, error) {
	wctx := context.WithoutCancel(ctx)
	storeID, err := e.identity(ctx)
	if err != nil {
		return "", err
	}
	spec := backend.NetworkSpec{Name: e.networkName(ex.ID), Labels: map[string]string{
		LabelDeployment: e.cfg.Deployment, LabelExecution: strconv.FormatInt(ex.ID, 10), LabelOwner: ex.Owner,
		LabelStore: storeID}}
	id, err := e.cfg.Backend.CreateNetwork(ctx, spec)
	if errors.Is(err, sdk.ErrAlreadyExists) {
		// Created by a daemon that died before recording its id (see
		// "Networks" in the package documentation), or by another store's
		// daemon of this deployment name (see ownership.go): without the
		// id it cannot be removed, and it may not be this store's, so it
		// is left alone and the execution gets a network of another name.
		e.log.Warn("an execution's network name is taken: by a network whose id was never recorded, or by "+
			"another daemon of this deployment; leaving it alone", "execution", ex.ID, "network", spec.Name)
		spec.Name += "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		id, err = e.cfg.Backend.CreateNetwork(ctx, spec)
	}
	if err != nil || !record {
		return id, err
	}
	// Recorded even when ctx is cancelled: the network exists.
	if err := e.cfg.Store.SetNetwork(wctx, ex.ID, id); err != nil {
		e.removeNetwork(wctx, ex.ID, id)
		if errors.Is(err, sdk.ErrConflict) {
			return "", errEnded
		}
		return "", fmt.Errorf("record network %s: %w", id, err)
	}
	return id, nil
}

// removeNetwork removes a network of execution exID whose id could not be
// recorded.
func (e *Engine) removeNetwork(ctx context.Context, exID int64, id string) {
	if err := e.cfg.Backend.RemoveNetwork(ctx, id); err != nil && !errors.Is(err, sdk.ErrNotFound) {
		e.log.Warn("cannot remove a network whose id could not be recorded", "execution", exID, "network", id,
			"error", err)
	}
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
	if err := checkWorkspacePath(mount.HostPath); err != nil {
		return err
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

// checkWorkspacePath refuses a workspace the workspace plugin put where
// no user's files belong: every container of the execution mounts it
// read-write, so a faulty or hostile plugin answering "/" or "/etc"
// would hand them the host. "" (a volume the platform manages) is fine.
// A workspace may lie under /root (an admin's checkout there, with make
// run), not hold it.
func checkWorkspacePath(p string) error {
	if p == "" {
		return nil
	}
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("the workspace plugin gave the workspace path %q: not a clean absolute path below /", p)
	}
	for _, r := range policy.Reserved() {
		if policy.Within(r.Path, p) || (r.Path != "/root" && policy.Within(p, r.Path)) {
			return fmt.Errorf("the workspace plugin gave the workspace path %q, which holds or lies in %s (%s)", p, r.Path, r.Why)
		}
	}
	return nil
}

// bind completes the stored instance of every job for execution ex of
// user, and splits its command.
func (e *Engine) bind(ex state.Execution, user state.User, jobs []job) error {
	c := zapp.ExpandContext{ExecutionID: strconv.FormatInt(ex.ID, 10), ExecutionName: ex.Name, UserName: ex.Owner,
		UID: user.UID, GID: user.GID, Deployment: e.cfg.Deployment, ProxyBase: e.cfg.ProxyBase}
	for i := range jobs {
		j := &jobs[i]
		in, err := e.insts.get(j.sv)
		if err == nil {
			j.in, err = zapp.Bind(in, c)
		}
		if err == nil && j.in.Command != nil {
			if j.cmd, err = zapp.SplitCommand(*j.in.Command); err != nil {
				err = fmt.Errorf("the command of service %s: %w", j.sv.Name, err)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// place moves the services of jobs from created to starting on their
// nodes, in one call.
func (e *Engine) place(ctx context.Context, id int64, jobs []job) error {
	ps := make([]state.Placement, len(jobs))
	for i, j := range jobs {
		ps[i] = state.Placement{ServiceID: j.sv.ID, Node: j.node, Reason: "placed on node " + j.node}
	}
	_, err := e.cfg.Store.PlaceServices(ctx, id, ps)
	return err
}

// startOne starts one service, placed already (place); the caller records
// it (recordMany). Starting a service the back-end has already (a start
// whose answer was lost) adopts it. A start the back-end refuses for good
// is recorded and returned as a refusedError; other errors are worth
// trying again.
func (e *Engine) startOne(ctx context.Context, ex state.Execution, j job, netID string, mount workspace.Mount, runAs string, sec backend.Security) (backend.ServiceStatus, error) {
	store := e.cfg.Store
	wctx := context.WithoutCancel(ctx)
	storeID, err := e.identity(ctx)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	spec := e.spec(ex, j, netID, mount, storeID)
	spec.User, spec.Security = runAs, sec
	st, err := e.cfg.Backend.Start(ctx, spec)
	if errors.Is(err, sdk.ErrAlreadyExists) {
		st, err = e.find(wctx, ex.ID, spec.Name, storeID)
	}
	if err != nil {
		if ctx.Err() != nil {
			// Terminated: the clean-up finds what may have started.
			return st, err
		}
		if transient(err) {
			e.reset(wctx, j.sv, "could not start, will try again: "+err.Error())
			return st, err
		}
		msg := err.Error()
		_, terr := store.TransitionService(wctx, j.sv.ID, []state.ServiceStatus{state.ServiceStarting}, state.ServiceError,
			state.ServiceChange{Reason: "could not start: " + msg, ErrorMessage: &msg})
		if terr != nil {
			e.log.Warn("cannot record a failed start", "service", j.sv.Name, "error", terr)
		}
		return st, refusedError{err}
	}
	return st, nil
}

// find looks for a service of execution id by name, to adopt after the
// back-end said the name is taken. One that another store created (see
// ownership.go) is not this execution's: another daemon runs the
// deployment name, and the start fails with sdk.ErrAlreadyExists, saying
// so, rather than adopt it.
func (e *Engine) find(ctx context.Context, id int64, name, storeID string) (backend.ServiceStatus, error) {
	list, err := e.cfg.Backend.List(ctx, executionServices(id))
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	for _, st := range list {
		if st.Name != name {
			continue
		}
		if owner := st.Labels[LabelStore]; owner != "" && owner != storeID {
			e.log.Error("a service's name is taken by another store's service: another Zoe daemon runs this "+
				"deployment on the back-end", "execution", id, "name", name, "store", owner,
				"deployment", e.cfg.Deployment)
			return backend.ServiceStatus{}, fmt.Errorf("the name %s is taken on the back-end by a service of "+
				"another Zoe store (%s): another daemon runs deployment %q there; one of them needs another "+
				"deployment_name: %w", name, owner, e.cfg.Deployment, sdk.ErrAlreadyExists)
		}
		return st, nil
	}
	return backend.ServiceStatus{}, fmt.Errorf("service %s: %w", name, sdk.ErrNotFound)
}

// record stores a started service: handle, node, address, endpoints and
// running, in one transaction.
func (e *Engine) record(ctx context.Context, ex state.Execution, sv state.Service, in zapp.Instance, st backend.ServiceStatus, addrs map[string]string, reason string) error {
	return e.recordMany(ctx, ex, []startedService{{sv: sv, in: in, st: st, reason: reason}}, addrs)[0]
}

// startedService is a service the back-end runs, to record (recordMany).
type startedService struct {
	sv     state.Service
	in     zapp.Instance
	st     backend.ServiceStatus
	reason string
}

// recordMany stores services the back-end started, as record does, all in
// one transaction; it returns each one's error, in the order of ss.
func (e *Engine) recordMany(ctx context.Context, ex state.Execution, ss []startedService, addrs map[string]string) []error {
	errs := make([]error, len(ss))
	if len(ss) == 0 {
		return errs
	}
	recs := make([]state.StartedService, len(ss))
	for i, s := range ss {
		st := s.st
		recs[i] = state.StartedService{ServiceID: s.sv.ID, Started: state.Started{Handle: fromBackendHandle(st.Handle),
			Node: st.Node, IP: st.IP, BackendStatus: string(st.State), Endpoints: e.endpoints(ex, s.in, st, addrs),
			Reason: s.reason}}
	}
	_, res, err := e.cfg.Store.RecordStartedMany(ctx, recs)
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	var again []int
	for i, err := range res {
		if errors.Is(err, sdk.ErrInvalidArgument) {
			// Endpoints the store refuses do not keep a running service
			// from being recorded.
			e.log.Warn("cannot record endpoints", "service", ss[i].sv.Name, "error", err)
			again = append(again, i)
		}
		errs[i] = err
	}
	if len(again) == 0 {
		return errs
	}
	retry := make([]state.StartedService, len(again))
	for n, i := range again {
		retry[n] = recs[i]
		retry[n].Endpoints = nil
	}
	_, res, err = e.cfg.Store.RecordStartedMany(ctx, retry)
	for n, i := range again {
		if err != nil {
			errs[i] = err
		} else {
			errs[i] = res[n]
		}
	}
	return errs
}

// spec is what the back-end is asked to start for job j.
func (e *Engine) spec(ex state.Execution, j job, netID string, mount workspace.Mount, storeID string) backend.ServiceSpec {
	return Spec(j.in, Placement{Deployment: e.cfg.Deployment, ExecutionID: ex.ID, Owner: ex.Owner, Store: storeID,
		Node: j.node, Network: netID, Command: j.cmd, Workspace: mount, PidsLimit: e.cfg.PidsLimit})
}

// Placement is what the engine decides for an instance's container
// besides what the ZApp says: where it runs, with what, under which
// labels.
type Placement struct {
	// Deployment, ExecutionID, Owner and Store go into the container's
	// name and labels (Store: the identity of the engine's store, which
	// orphan removal checks).
	Deployment  string
	ExecutionID int64
	Owner       string
	Store       string
	// Node and Network are the back-end's node and the execution's
	// network.
	Node, Network string
	// Command is the instance's command split (nil: the image's).
	Command []string
	// Workspace is the owner's workspace, mounted at zapp.WorkspacePath.
	Workspace workspace.Mount
	PidsLimit int64
}

// Spec is what the back-end is asked to start for instance in, placed by
// p (the run-as user and the security options are the policy's, set by
// the caller). Exported for the back-ends' tests, which start what the
// engine would.
func Spec(in zapp.Instance, p Placement) backend.ServiceSpec {
	env := make(map[string]string, len(in.Environment))
	for _, v := range in.Environment {
		env[v.Name] = v.Value
	}
	vols := []backend.Volume{{HostPath: p.Workspace.HostPath, VolumeName: p.Workspace.VolumeName, MountPoint: zapp.WorkspacePath,
		ReadOnly: p.Workspace.ReadOnly}}
	for _, v := range in.Volumes {
		vols = append(vols, backend.Volume{HostPath: v.Path, MountPoint: "/mnt/" + v.Name, ReadOnly: v.ReadOnly})
	}
	ports := make([]backend.Port, 0, len(in.Ports))
	for _, pt := range in.Ports {
		ports = append(ports, backend.Port{Port: uint16(pt.PortNumber), Protocol: protocol(pt.Protocol), Name: pt.Name})
	}
	id := strconv.FormatInt(p.ExecutionID, 10)
	return backend.ServiceSpec{
		Name: containerName(p.Deployment, p.ExecutionID, in.Name), Hostname: in.DNSName, Image: in.Image, Command: p.Command,
		WorkDir: in.WorkDir, Environment: env,
		Labels: map[string]string{LabelDeployment: p.Deployment, LabelExecution: id, LabelService: in.Name,
			LabelOwner: p.Owner, LabelStore: p.Store},
		Resources: backend.Resources{MemoryReservation: in.MemoryReservation, MemoryLimit: in.MemoryLimit,
			Cores: in.Cores, CoresLimit: in.CoresLimit, ShmSize: in.Shm, PidsLimit: p.PidsLimit},
		Volumes: vols, Ports: ports, Network: p.Network, Node: p.Node, ExecutionID: id,
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
// removes its network and ends it. It returns an error when something
// failed, to be tried again after a back-off (see spawn).
func (e *Engine) cleanup(ctx context.Context, ex state.Execution) error {
	store, be := e.cfg.Store, e.cfg.Backend
	svcs, err := store.Services(ctx, ex.ID)
	if err != nil {
		return fmt.Errorf("cannot read the services: %w", err)
	}
	listed, err := be.List(ctx, executionServices(ex.ID))
	if err != nil {
		return fmt.Errorf("cannot list the back-end's services: %w", err)
	}
	storeID, err := e.identity(ctx)
	if err != nil {
		return err
	}
	mine := map[string]backend.ServiceStatus{}
	// Checked again: a plugin older than List's labels lists the whole
	// deployment. Another store's services of the same execution number
	// are not this execution's (see ownership.go).
	for _, st := range listed {
		if owner := st.Labels[LabelStore]; owner != "" && owner != storeID {
			continue
		}
		if st.Labels[LabelExecution] == strconv.FormatInt(ex.ID, 10) || strings.HasSuffix(st.Name, "-"+strconv.FormatInt(ex.ID, 10)+"-"+strings.ToLower(e.cfg.Deployment)) {
			mine[st.Name] = st
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error // the first failure
	fail := func(err error) {
		mu.Lock()
		if failed == nil {
			failed = err
		}
		mu.Unlock()
	}
	for _, sv := range svcs {
		name := e.containerName(ex.ID, sv.Name)
		st, ok := mine[name]
		delete(mine, name)
		k := logKey{ex.ID, sv.Name}
		wg.Go(func() {
			if ok {
				if err := e.removeContainer(ctx, st.Handle, &k); err != nil {
					e.log.Warn("cannot remove a service", "execution", ex.ID, "service", sv.Name, "error", err)
					fail(fmt.Errorf("cannot remove service %s: %w", sv.Name, err))
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
		if st.Labels[LabelStore] != storeID {
			// Without a store label, and not named as one of the
			// execution's services: nothing says it is this store's.
			e.log.Warn("leaving alone a container of this execution's number without a store label", "execution", ex.ID,
				"name", st.Name)
			continue
		}
		wg.Go(func() {
			if err := e.removeContainer(ctx, st.Handle, nil); err != nil {
				e.log.Warn("cannot remove a container", "execution", ex.ID, "name", st.Name, "error", err)
				fail(fmt.Errorf("cannot remove container %s: %w", st.Name, err))
			}
		})
	}
	wg.Wait()
	if failed != nil || ctx.Err() != nil {
		return failed
	}
	cur, err := store.GetExecution(ctx, ex.ID)
	if err != nil {
		return fmt.Errorf("cannot read the execution: %w", err)
	}
	if cur.NetworkID != "" {
		if err := be.RemoveNetwork(ctx, cur.NetworkID); err != nil && !errors.Is(err, sdk.ErrNotFound) {
			e.log.Warn("cannot remove a network", "execution", ex.ID, "network", cur.NetworkID, "error", err)
			return fmt.Errorf("cannot remove the network: %w", err)
		}
	}
	to := state.StatusTerminated
	if cur.ErrorMessage != "" {
		to = state.StatusError
	}
	_, err = store.Transition(ctx, ex.ID, []state.Status{state.StatusCleaningUp}, to,
		state.ExecutionChange{Reason: "every service and the network removed", Ended: true})
	if err != nil && !errors.Is(err, sdk.ErrConflict) {
		return fmt.Errorf("cannot record the end: %w", err)
	}
	if err == nil {
		e.mu.Lock()
		e.setWaiting(ex.ID, "")
		delete(e.dyn, ex.ID)
		e.mu.Unlock()
	}
	return nil
}

// executionServices selects the back-end's services of execution id.
func executionServices(id int64) backend.ListOptions {
	return backend.ListOptions{Labels: map[string]string{LabelExecution: strconv.FormatInt(id, 10)}}
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
