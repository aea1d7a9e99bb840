package plugintest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// BackendSuite describes a back-end plugin to the conformance suite.
type BackendSuite struct {
	// New returns a configured back-end: the implementation itself, which
	// the suite serves over real gRPC in the test's process. Values
	// returned by New see the same platform.
	New func(t *testing.T) backend.Backend
	// Process runs the plugin as a process of its own, as the core does:
	// it returns the plugin's binary (built by the test) and the
	// configuration every process of it is given (JSON, Deployment,
	// DataDir, ConfigDir; the suite fills in APIVersion). The suite kills a
	// process with SIGKILL and checks that a new one takes the running
	// services back, so a back-end whose services die with its process
	// fails; it also starts one with another Deployment and checks that the
	// two see only their own services. It is called for every process the
	// suite starts: build the binary once, in TestMain. Required.
	Process func(t *testing.T) (binary string, cfg sdk.Config)
	// LongRunning returns a service that writes at least two lines when it
	// starts, one more when it is asked to stop (SIGTERM), and runs until
	// it is stopped. The suite sets Name, Hostname, Network and ExecutionID,
	// adds labels, and sets User to "12345:23456" when it is empty and
	// Security.AllowRoot false: the suite's services run under the
	// strictest container policy, as a user no image knows, so the
	// back-end must be able to run processes as any uid:gid where the
	// suite runs (as root, for one that runs processes on its host).
	LongRunning func() backend.ServiceSpec
	// Exiting returns a service that exits by itself with code 3.
	Exiting func() backend.ServiceSpec
	// Timeout bounds every wait for the platform; 30s when zero.
	Timeout time.Duration
	// ProbeImage is an image of the probe program, built from
	// github.com/zoe-project/zoe/sdk/plugintest/probe (zoe-test/probe:1 in
	// Zoe's tree), whose documentation gives its output. The suite runs it
	// to see from inside a service that the back-end honours the container
	// policy: user, groups, no_new_privs, capabilities, namespaces of its
	// own, read-only volumes, the process and memory limits; and it asks
	// for a missing host path. A back-end that runs programs gives it.
	ProbeImage string
	// NoProbe, when there is no ProbeImage, says why: a simulator runs no
	// program; a back-end that isolates nothing (see backend.Backend's
	// Start) cannot pass the probe's namespace checks. The suite then skips
	// "policy: inside the container" and "policy: a missing host path":
	// check what applies of them in the back-end's own tests.
	NoProbe string
	// PidsLimitAbove, when set, says why the process limit is enforced on a
	// cgroup above the container's own, out of the probe's sight: a
	// Kubernetes kubelet's podPidsLimit is the pod's cgroup's. The suite
	// then does not read pids.max from the probe: check the limit from the
	// platform's side, in the back-end's own tests.
	PidsLimitAbove string
	// NoLogs, when set, says why the platform's services write no output
	// the back-end can read: a cluster of simulated nodes runs no program
	// (the Kubernetes back-end's kwok nodes). The suite then skips "logs"
	// and every check of a service's output, and checks Logs only where it
	// must say sdk.ErrNotFound: check the output on a platform that runs
	// programs, in the back-end's own tests.
	NoLogs string
	// ProbeDir returns a host directory of the platform's node that the
	// probe may mount and that uid 12345 may write to; the suite also
	// names a missing path under it, which Start must refuse. Nil: a new
	// temporary directory of this machine open to all, for a platform that
	// runs here (then the suite also checks that the missing path was not
	// created).
	ProbeDir func(t *testing.T) string
}

// RunBackendConformance checks through the wire every rule of the
// back-end contract (sdk/backend) that the core relies on.
func RunBackendConformance(t *testing.T, s BackendSuite) {
	if s.Timeout == 0 {
		s.Timeout = 30 * time.Second
	}
	if s.New == nil || s.LongRunning == nil || s.Exiting == nil {
		t.Fatal("BackendSuite: New, LongRunning and Exiting are required")
	}
	open := func(t *testing.T) backend.Backend { return Backend(t, s.New(t)) }

	t.Run("info and schema", func(t *testing.T) {
		checkBase(t, open(t), sdk.KindBackend, backend.APIVersion)
	})
	t.Run("capabilities", func(t *testing.T) { checkCapabilities(t, open, s) })
	t.Run("nodes", func(t *testing.T) {
		nodes, err := open(t).Nodes(ctxFor(t, s.Timeout))
		if err != nil || len(nodes) == 0 {
			t.Fatalf("Nodes = %v, %v; want at least one node", nodes, err)
		}
		for _, n := range nodes {
			if n.Name == "" || n.Cores <= 0 || n.MemoryBytes <= 0 {
				t.Errorf("node %+v: want a name, cores and memory", n)
			}
			if !slices.Contains([]backend.NodeState{backend.NodeReady, backend.NodeUnreachable, backend.NodeDisabled}, n.State) {
				t.Errorf("node %q: unknown state %q", n.Name, n.State)
			}
		}
	})
	t.Run("unknown handles are not found", func(t *testing.T) { checkUnknownHandles(t, open(t), s) })
	t.Run("lifecycle", func(t *testing.T) { checkLifecycle(t, open(t), s) })
	t.Run("exit code", func(t *testing.T) {
		p := open(t)
		ctx := ctxFor(t, s.Timeout)
		events, err := p.Events(ctx)
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		_, spec := prepare(t, ctx, p, s.Exiting())
		st := start(t, ctx, p, spec)
		e := waitEvent(t, ctx, events, spec.Name, backend.EventExited)
		if e.ExitCode != 3 {
			t.Errorf("exit event code %d, want 3", e.ExitCode)
		}
		if got, err := p.Inspect(ctx, st.Handle); err != nil || got.State != backend.ServiceExited || got.ExitCode != 3 {
			t.Errorf("Inspect = %+v, %v; want exited with code 3", got, err)
		}
		if got := listed(t, ctx, p, backend.ListOptions{}, spec.Name); got == nil || got.State != backend.ServiceExited || got.ExitCode != 3 {
			t.Errorf("List has %+v; want %q exited with code 3 until it is removed", got, spec.Name)
		}
	})
	t.Run("names are unique", func(t *testing.T) { checkUniqueNames(t, open(t), s) })
	t.Run("networks", func(t *testing.T) { checkNetworks(t, open(t), s) })
	t.Run("remove without force", func(t *testing.T) { checkRemoveRunning(t, open(t), s) })
	t.Run("list by labels", func(t *testing.T) { checkListLabels(t, open(t), s) })
	t.Run("logs", func(t *testing.T) { checkLogs(t, open(t), s) })
	t.Run("volumes", func(t *testing.T) { checkVolumes(t, open(t), s) })
	t.Run("policy: root refused", func(t *testing.T) {
		checkRootRefused(t, open(t), s)
	})
	t.Run("policy: inside the container", func(t *testing.T) {
		checkProbe(t, open, s)
	})
	t.Run("policy: a missing host path", func(t *testing.T) {
		checkMissingHostPath(t, open(t), s)
	})
	t.Run("restart as a separate process", func(t *testing.T) { checkRestart(t, s) })
	t.Run("deployments are apart", func(t *testing.T) { checkDeployments(t, s) })
}

// checkCapabilities: the capabilities come through the wire, and an
// optional interface a back-end claims answers, one it does not claim says
// sdk.ErrUnsupported. A back-end that does not pull lists the suite's images
// on a node, or the core could place nothing.
func checkCapabilities(t *testing.T, open func(*testing.T) backend.Backend, s BackendSuite) {
	p := open(t)
	ctx := ctxFor(t, s.Timeout)
	caps, err := p.Capabilities(ctx)
	if err != nil {
		t.Fatalf("Capabilities: %v", err)
	}
	t.Logf("capabilities: %+v", caps)
	if !caps.PullsImages {
		nodes, err := p.Nodes(ctx)
		if err != nil {
			t.Fatalf("Nodes: %v", err)
		}
		for _, img := range []string{s.LongRunning().Image, s.Exiting().Image} {
			if !slices.ContainsFunc(nodes, func(n backend.Node) bool { return slices.Contains(n.Images, img) }) {
				t.Errorf("the back-end does not pull images, and no node lists %q: the core would place it nowhere", img)
			}
		}
	}
	t.Run("update", func(t *testing.T) {
		p := open(t)
		ctx := ctxFor(t, s.Timeout)
		_, spec := prepare(t, ctx, p, s.LongRunning())
		st := start(t, ctx, p, spec)
		err := p.(backend.Updater).Update(ctx, st.Handle, spec.Resources)
		switch {
		case caps.Updater && err != nil:
			t.Errorf("Update of a running service to its own resources: %v; the back-end says it is an Updater", err)
		case !caps.Updater && !errors.Is(err, sdk.ErrUnsupported):
			t.Errorf("Update: %v; want sdk.ErrUnsupported from a back-end that is no Updater", err)
		}
	})
	t.Run("close", func(t *testing.T) {
		// A fresh instance: Close is the last call it gets.
		err := open(t).(backend.Closer).Close(ctxFor(t, s.Timeout))
		switch {
		case caps.Closer && err != nil:
			t.Errorf("Close: %v", err)
		case !caps.Closer && !errors.Is(err, sdk.ErrUnsupported):
			t.Errorf("Close: %v; want sdk.ErrUnsupported from a back-end that is no Closer", err)
		}
	})
}

// checkLifecycle: start, the started event, the status everywhere with the
// spec's labels, Stop that returns once the service exited, the exited
// event, Remove, and then nothing knows the handle.
func checkLifecycle(t *testing.T, p backend.Backend, s BackendSuite) {
	ctx := ctxFor(t, s.Timeout)
	events, err := p.Events(ctx)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	net, spec := prepare(t, ctx, p, s.LongRunning())
	st := start(t, ctx, p, spec)
	checkStatus(t, "Start", st, spec, backend.ServiceRunning)
	waitEvent(t, ctx, events, spec.Name, backend.EventStarted)
	got, err := p.Inspect(ctx, st.Handle)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	checkStatus(t, "Inspect", got, spec, backend.ServiceRunning)
	if got, err = p.Recover(ctx, st.Handle); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	checkStatus(t, "Recover", got, spec, backend.ServiceRunning)
	if l := listed(t, ctx, p, backend.ListOptions{}, spec.Name); l == nil {
		t.Errorf("List does not hold %q", spec.Name)
	} else {
		checkStatus(t, "List", *l, spec, backend.ServiceRunning)
	}
	if s.NoLogs == "" {
		waitLines(t, ctx, p, st.Handle, 1)
	}
	if err := p.Stop(ctx, st.Handle, 5*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	// Stop returns once the service has exited: no wait here.
	if got, err := p.Inspect(ctx, st.Handle); err != nil || got.State != backend.ServiceExited {
		t.Errorf("Inspect right after Stop returned = %+v, %v; want exited", got, err)
	}
	if l := listed(t, ctx, p, backend.ListOptions{}, spec.Name); l == nil || l.State != backend.ServiceExited {
		t.Errorf("List right after Stop returned has %+v; want %q exited", l, spec.Name)
	}
	waitEvent(t, ctx, events, spec.Name, backend.EventExited)
	if err := p.Stop(ctx, st.Handle, time.Second); err != nil {
		t.Errorf("Stop of an exited service: %v, want nothing done", err)
	}
	if s.NoLogs == "" {
		if lines := readLogs(t, ctx, p, st.Handle, backend.LogOptions{}); len(lines) == 0 {
			t.Error("Logs of an exited service: none; its output stays until Remove")
		}
	}
	if err := p.Remove(ctx, st.Handle, false); err != nil {
		t.Fatalf("Remove of an exited service: %v", err)
	}
	checkGone(t, ctx, p, st.Handle, "a removed service")
	if err := p.Remove(ctx, st.Handle, true); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("second Remove: %v, want sdk.ErrNotFound", err)
	}
	if l := listed(t, ctx, p, backend.ListOptions{}, spec.Name); l != nil {
		t.Errorf("List after Remove still has %+v", l)
	}
	if err := p.RemoveNetwork(ctx, net); err != nil {
		t.Errorf("RemoveNetwork: %v", err)
	}
}

// checkUnknownHandles: the ID decides. A handle whose ID names no service
// is sdk.ErrNotFound on every call, whatever its Version and State: only
// an ID, a State no plugin wrote, a version from the future.
func checkUnknownHandles(t *testing.T, p backend.Backend, s BackendSuite) {
	ctx := ctxFor(t, s.Timeout)
	id := "zoe-conformance-no-such-service"
	for what, h := range map[string]backend.Handle{
		"only an ID":          {ID: id},
		"an unreadable state": {ID: id, Version: 1, State: []byte("\x00 not what any plugin wrote")},
		"a newer version":     {ID: id, Version: math.MaxUint32, State: []byte(`{}`)},
	} {
		t.Run(what, func(t *testing.T) {
			checkGone(t, ctx, p, h, "an unknown handle with "+what)
			if err := p.Remove(ctx, h, true); !errors.Is(err, sdk.ErrNotFound) {
				t.Errorf("Remove of an unknown handle with %s: %v, want sdk.ErrNotFound", what, err)
			}
		})
	}
	if err := p.RemoveNetwork(ctx, "zoe-conformance-no-such-network"); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("RemoveNetwork: %v, want sdk.ErrNotFound", err)
	}
}

// checkGone: every call on a handle the platform does not know says
// sdk.ErrNotFound; the core counts a service vanished on Recover's.
func checkGone(t *testing.T, ctx context.Context, p backend.Backend, h backend.Handle, what string) {
	t.Helper()
	if _, err := p.Inspect(ctx, h); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Inspect of %s: %v, want sdk.ErrNotFound", what, err)
	}
	if _, err := p.Recover(ctx, h); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Recover of %s: %v, want sdk.ErrNotFound", what, err)
	}
	if err := p.Stop(ctx, h, time.Second); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Stop of %s: %v, want sdk.ErrNotFound", what, err)
	}
	if _, err := p.Logs(ctx, h, backend.LogOptions{}); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Logs of %s: %v, want sdk.ErrNotFound", what, err)
	}
}

// checkStatus: a status names the service, has a handle, the spec's labels
// and the state expected.
func checkStatus(t *testing.T, from string, st backend.ServiceStatus, spec backend.ServiceSpec, want backend.ServiceState) {
	t.Helper()
	if st.Handle.ID == "" || st.Name != spec.Name || st.State != want {
		t.Errorf("%s: %+v; want a handle, the name %q and the state %s", from, st, spec.Name, want)
	}
	for k, v := range spec.Labels {
		if st.Labels[k] != v {
			t.Errorf("%s: label %s = %q, want %q: the core finds its services by their labels", from, k, st.Labels[k], v)
		}
	}
}

// checkUniqueNames: a second Start of a name in use is
// sdk.ErrAlreadyExists and leaves the first service as it was; the core
// then adopts it by name.
func checkUniqueNames(t *testing.T, p backend.Backend, s BackendSuite) {
	ctx := ctxFor(t, s.Timeout)
	_, spec := prepare(t, ctx, p, s.LongRunning())
	first := start(t, ctx, p, spec)
	again := spec
	again.Labels = maps.Clone(spec.Labels)
	again.Labels["zoe.conformance.second"] = "true"
	if st, err := p.Start(ctx, again); !errors.Is(err, sdk.ErrAlreadyExists) {
		if err == nil {
			removeLater(t, p, st.Handle)
		}
		t.Fatalf("second Start of %q = %+v, %v; want sdk.ErrAlreadyExists", spec.Name, st, err)
	}
	got, err := p.Inspect(ctx, first.Handle)
	if err != nil || got.State != backend.ServiceRunning || got.Handle.ID != first.Handle.ID {
		t.Errorf("the first service after the second Start: %+v, %v; want it running as before", got, err)
	}
	if _, ok := got.Labels["zoe.conformance.second"]; ok {
		t.Error("the second Start changed the first service's labels")
	}
	list, err := p.List(ctx, backend.ListOptions{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var same []backend.ServiceStatus
	for _, x := range list {
		if x.Name == spec.Name {
			same = append(same, x)
		}
	}
	if len(same) != 1 || same[0].Handle.ID != first.Handle.ID {
		t.Errorf("List has %+v under %q; want the first service only", same, spec.Name)
	}
}

// checkNetworks: a name in use is sdk.ErrAlreadyExists; a network a
// running service uses is not removed (sdk.ErrConflict), and is once the
// service is gone.
func checkNetworks(t *testing.T, p backend.Backend, s BackendSuite) {
	ctx := ctxFor(t, s.Timeout)
	name := "zoe-conformance-" + randomSuffix()
	spec := backend.NetworkSpec{Name: name, Labels: map[string]string{"zoe.conformance": "true"}}
	net, err := p.CreateNetwork(ctx, spec)
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	removeNetworkLater(t, p, net)
	if id, err := p.CreateNetwork(ctx, spec); !errors.Is(err, sdk.ErrAlreadyExists) {
		if err == nil && id != net {
			removeNetworkLater(t, p, id)
		}
		t.Errorf("second CreateNetwork of %q = %q, %v; want sdk.ErrAlreadyExists", name, id, err)
	}
	_, svc := prepare(t, ctx, p, s.LongRunning())
	svc.Network = net
	st := start(t, ctx, p, svc)
	if err := p.RemoveNetwork(ctx, net); !errors.Is(err, sdk.ErrConflict) {
		t.Errorf("RemoveNetwork of a network a running service uses: %v, want sdk.ErrConflict", err)
	}
	if got, err := p.Inspect(ctx, st.Handle); err != nil || got.State != backend.ServiceRunning {
		t.Errorf("the service after RemoveNetwork of its network: %+v, %v; want it running", got, err)
	}
	if err := p.Remove(ctx, st.Handle, true); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := p.RemoveNetwork(ctx, net); err != nil {
		t.Errorf("RemoveNetwork once its service is removed: %v (it must have been kept)", err)
	}
	if err := p.RemoveNetwork(ctx, net); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("second RemoveNetwork: %v, want sdk.ErrNotFound", err)
	}
}

// checkRemoveRunning: Remove without force refuses a running service with
// sdk.ErrConflict and leaves it running; with force it goes.
func checkRemoveRunning(t *testing.T, p backend.Backend, s BackendSuite) {
	ctx := ctxFor(t, s.Timeout)
	_, spec := prepare(t, ctx, p, s.LongRunning())
	st := start(t, ctx, p, spec)
	if err := p.Remove(ctx, st.Handle, false); !errors.Is(err, sdk.ErrConflict) {
		t.Errorf("Remove of a running service without force: %v, want sdk.ErrConflict", err)
	}
	if got, err := p.Inspect(ctx, st.Handle); err != nil || got.State != backend.ServiceRunning {
		t.Errorf("the service after Remove without force: %+v, %v; want it running", got, err)
	}
	if err := p.Remove(ctx, st.Handle, true); err != nil {
		t.Fatalf("Remove with force: %v", err)
	}
	checkGone(t, ctx, p, st.Handle, "a service removed by force")
}

// checkListLabels: List with labels reports exactly the services carrying
// all of them; the core's clean-up of an execution lists by its label.
func checkListLabels(t *testing.T, p backend.Backend, s BackendSuite) {
	ctx := ctxFor(t, s.Timeout)
	group := "zoe.conformance.group-" + randomSuffix()
	names := map[string]string{}
	for _, g := range []string{"a", "b"} {
		_, spec := prepare(t, ctx, p, s.LongRunning())
		spec.Labels[group] = g
		start(t, ctx, p, spec)
		names[g] = spec.Name
	}
	cases := []struct {
		labels map[string]string
		want   []string
	}{
		{nil, []string{names["a"], names["b"]}},
		{map[string]string{group: "a"}, []string{names["a"]}},
		{map[string]string{group: "b", "zoe.conformance.name": names["b"]}, []string{names["b"]}},
		{map[string]string{group: "a", "zoe.conformance.name": names["b"]}, nil},
		{map[string]string{group: "c"}, nil},
	}
	for _, c := range cases {
		list, err := p.List(ctx, backend.ListOptions{Labels: c.labels})
		if err != nil {
			t.Fatalf("List(%v): %v", c.labels, err)
		}
		var got []string
		for _, x := range list {
			if _, ours := x.Labels[group]; ours || len(c.labels) > 0 {
				got = append(got, x.Name)
			}
		}
		slices.Sort(got)
		slices.Sort(c.want)
		if !slices.Equal(got, c.want) {
			t.Errorf("List(%v) = %v; want %v", c.labels, got, c.want)
		}
	}
}

// checkVolumes: relative paths and volumes with no source or two are
// refused with sdk.ErrInvalidArgument, and leave nothing.
func checkVolumes(t *testing.T, p backend.Backend, s BackendSuite) {
	cases := map[string]backend.Volume{
		"a relative mount point": {VolumeName: "zoe-conformance-vol", MountPoint: "data"},
		"a relative host path":   {HostPath: "data", MountPoint: "/data"},
		"no source":              {MountPoint: "/data"},
		"two sources":            {HostPath: "/tmp", VolumeName: "zoe-conformance-vol", MountPoint: "/data"},
	}
	for what, v := range cases {
		t.Run(what, func(t *testing.T) {
			ctx := ctxFor(t, s.Timeout)
			_, spec := prepare(t, ctx, p, s.LongRunning())
			spec.Volumes = append(slices.Clone(spec.Volumes), v)
			st, err := p.Start(ctx, spec)
			if err == nil {
				removeLater(t, p, st.Handle)
			}
			if !errors.Is(err, sdk.ErrInvalidArgument) {
				t.Errorf("Start with %s (%+v) = %+v, %v; want sdk.ErrInvalidArgument", what, v, st, err)
			}
			checkNothingLeft(t, ctx, p, spec.Name)
		})
	}
}

// checkNothingLeft: a refused spec left no service on the platform.
func checkNothingLeft(t *testing.T, ctx context.Context, p backend.Backend, name string) {
	t.Helper()
	if x := listed(t, ctx, p, backend.ListOptions{}, name); x != nil {
		t.Errorf("a refused spec left %+v on the platform", x)
		_ = p.Remove(ctx, x.Handle, true)
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// prepare makes a network and names and labels the service uniquely.
func prepare(t *testing.T, ctx context.Context, p backend.Backend, spec backend.ServiceSpec) (string, backend.ServiceSpec) {
	t.Helper()
	suffix := randomSuffix()
	net, err := p.CreateNetwork(ctx, backend.NetworkSpec{Name: "zoe-conformance-" + suffix, Labels: map[string]string{"zoe.conformance": "true"}})
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	removeNetworkLater(t, p, net)
	spec.Name = "conformance-" + suffix
	spec.Hostname = spec.Name
	spec.Network = net
	spec.ExecutionID = "conformance"
	spec.Labels = maps.Clone(spec.Labels)
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels["zoe.conformance"] = "true"
	spec.Labels["zoe.conformance.name"] = spec.Name
	if spec.User == "" && !spec.Security.AllowRoot {
		spec.User = probeUser
	}
	return net, spec
}

// start starts spec, and removes the service when t ends.
func start(t *testing.T, ctx context.Context, p backend.Backend, spec backend.ServiceSpec) backend.ServiceStatus {
	t.Helper()
	st, err := p.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start %q: %v", spec.Name, err)
	}
	removeLater(t, p, st.Handle)
	return st
}

// removeLater removes a service when t ends, whatever happened. Cleanups
// run last first: the service goes before its network.
func removeLater(t *testing.T, p backend.Backend, h backend.Handle) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Remove(ctx, h, true); err != nil && !errors.Is(err, sdk.ErrNotFound) {
			t.Logf("clean-up: remove %s: %v", h.ID, err)
		}
	})
}

func removeNetworkLater(t *testing.T, p backend.Backend, id string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.RemoveNetwork(ctx, id); err != nil && !errors.Is(err, sdk.ErrNotFound) {
			t.Logf("clean-up: remove network %s: %v", id, err)
		}
	})
}

// listed returns the service named name in the back-end's List, nil when
// it is not there.
func listed(t *testing.T, ctx context.Context, p backend.Backend, opts backend.ListOptions, name string) *backend.ServiceStatus {
	t.Helper()
	list, err := p.List(ctx, opts)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, x := range list {
		if x.Name == name {
			return &x
		}
	}
	return nil
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func waitEvent(t *testing.T, ctx context.Context, events <-chan backend.Event, name string, kind backend.EventKind) backend.Event {
	t.Helper()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("event stream closed before %s of %q", kind, name)
			}
			if e.ServiceName == name && e.Kind == kind {
				return e
			}
		case <-ctx.Done():
			t.Fatalf("no %s event for %q: %v", kind, name, ctx.Err())
		}
	}
}

// readLogs reads what Logs streams without Follow.
func readLogs(t *testing.T, ctx context.Context, p backend.Backend, h backend.Handle, opts backend.LogOptions) []backend.LogEntry {
	t.Helper()
	opts.Follow = false
	ch, err := p.Logs(ctx, h, opts)
	if err != nil {
		t.Fatalf("Logs(%+v): %v", opts, err)
	}
	var out []backend.LogEntry
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, e)
		case <-ctx.Done():
			t.Fatalf("Logs(%+v) without Follow did not end: %v", opts, ctx.Err())
		}
	}
}

// waitLines waits until the service has written at least n lines and
// returns them.
func waitLines(t *testing.T, ctx context.Context, p backend.Backend, h backend.Handle, n int) []backend.LogEntry {
	t.Helper()
	for {
		lines := readLogs(t, ctx, p, h, backend.LogOptions{})
		if len(lines) >= n {
			return lines
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the service wrote %d lines, want at least %d", len(lines), n)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func formatLines(lines []backend.LogEntry) string {
	out := ""
	for _, l := range lines {
		out += fmt.Sprintf("\n\t%s %s %q", l.Time.Format(time.RFC3339Nano), l.Stream, l.Line)
	}
	return out
}
