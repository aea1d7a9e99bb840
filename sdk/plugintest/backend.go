package plugintest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// BackendSuite describes a back-end plugin to the conformance suite.
type BackendSuite struct {
	// New returns a configured back-end. Two values returned by New must
	// see the same platform: the suite checks that a second instance
	// recovers what the first started, as after a plugin restart.
	New func(t *testing.T) backend.Backend
	// LongRunning returns a service that writes at least one line to stdout
	// and runs until it is stopped. The suite sets Name, Hostname, Network
	// and ExecutionID, and User to "12345:23456" when it is empty and
	// Security.AllowRoot false: the suite's services run under the
	// strictest container policy.
	LongRunning func() backend.ServiceSpec
	// Exiting returns a service that exits by itself with code 3.
	Exiting func() backend.ServiceSpec
	// Timeout bounds every wait for the platform; 30s when zero.
	Timeout time.Duration
	// ProbeImage is an image of the probe program (internal/testimages,
	// zoe-test/probe:1 in Zoe's tree; its output is described there). The
	// suite runs it to see from inside a container that the back-end
	// honours the container policy: user, no_new_privs, no capabilities,
	// no host namespaces, read-only volumes. A back-end that runs real
	// containers must give it; one that cannot run a program leaves it
	// empty and says why in NoProbe.
	ProbeImage string
	// NoProbe is why there is no ProbeImage (a simulator runs no program).
	NoProbe string
	// ProbeDir returns a host directory of the platform's node that the
	// probe may mount and that uid 12345 may write to; the suite also
	// names a missing path under it, which Start must refuse. Nil: a new
	// temporary directory of this machine open to all, for a platform that
	// runs here (then the suite also checks that the missing path was not
	// created).
	ProbeDir func(t *testing.T) string
}

// RunBackendConformance checks a back-end plugin through the wire.
func RunBackendConformance(t *testing.T, s BackendSuite) {
	if s.Timeout == 0 {
		s.Timeout = 30 * time.Second
	}
	open := func(t *testing.T) backend.Backend { return Backend(t, s.New(t)) }

	t.Run("info and schema", func(t *testing.T) {
		checkBase(t, open(t), sdk.KindBackend, backend.APIVersion)
	})
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
	t.Run("unknown handles are not found", func(t *testing.T) {
		p := open(t)
		ctx := ctxFor(t, s.Timeout)
		h := backend.Handle{ID: "zoe-conformance-no-such-service"}
		if _, err := p.Inspect(ctx, h); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Inspect: %v, want sdk.ErrNotFound", err)
		}
		if err := p.Stop(ctx, h, time.Second); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Stop: %v, want sdk.ErrNotFound", err)
		}
		if err := p.Remove(ctx, h, true); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Remove: %v, want sdk.ErrNotFound", err)
		}
		if _, err := p.Logs(ctx, h, backend.LogOptions{}); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Logs: %v, want sdk.ErrNotFound", err)
		}
		if err := p.RemoveNetwork(ctx, "zoe-conformance-no-such-network"); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("RemoveNetwork: %v, want sdk.ErrNotFound", err)
		}
	})
	t.Run("lifecycle", func(t *testing.T) {
		p := open(t)
		ctx := ctxFor(t, s.Timeout)
		events, err := p.Events(ctx)
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		net, spec := prepare(t, ctx, p, s.LongRunning())
		st, err := p.Start(ctx, spec)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		if st.Handle.ID == "" || st.Name != spec.Name {
			t.Fatalf("Start returned %+v: want a handle and the name %q", st, spec.Name)
		}
		waitEvent(t, ctx, events, spec.Name, backend.EventStarted)
		if st, err = p.Inspect(ctx, st.Handle); err != nil || st.State != backend.ServiceRunning {
			t.Errorf("Inspect = %+v, %v; want running", st, err)
		}
		list, err := p.List(ctx)
		if err != nil || !slices.ContainsFunc(list, func(x backend.ServiceStatus) bool { return x.Name == spec.Name }) {
			t.Errorf("List = %v, %v; want it to hold %q", list, err, spec.Name)
		}
		waitLogs(t, ctx, p, st.Handle)
		if err := p.Stop(ctx, st.Handle, 2*time.Second); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		waitEvent(t, ctx, events, spec.Name, backend.EventExited)
		if got, err := p.Inspect(ctx, st.Handle); err != nil || got.State != backend.ServiceExited {
			t.Errorf("Inspect after Stop = %+v, %v; want exited", got, err)
		}
		if err := p.Remove(ctx, st.Handle, false); err != nil {
			t.Fatalf("Remove: %v", err)
		}
		if _, err := p.Inspect(ctx, st.Handle); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Inspect after Remove: %v, want sdk.ErrNotFound", err)
		}
		if err := p.RemoveNetwork(ctx, net); err != nil {
			t.Errorf("RemoveNetwork: %v", err)
		}
	})
	t.Run("exit code", func(t *testing.T) {
		p := open(t)
		ctx := ctxFor(t, s.Timeout)
		events, err := p.Events(ctx)
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		net, spec := prepare(t, ctx, p, s.Exiting())
		st, err := p.Start(ctx, spec)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		e := waitEvent(t, ctx, events, spec.Name, backend.EventExited)
		if e.ExitCode != 3 {
			t.Errorf("exit event code %d, want 3", e.ExitCode)
		}
		if got, err := p.Inspect(ctx, st.Handle); err != nil || got.State != backend.ServiceExited || got.ExitCode != 3 {
			t.Errorf("Inspect = %+v, %v; want exited with code 3", got, err)
		}
		_ = p.Remove(ctx, st.Handle, true)
		_ = p.RemoveNetwork(ctx, net)
	})
	t.Run("policy: root refused", func(t *testing.T) {
		checkRootRefused(t, open(t), s)
	})
	t.Run("policy: inside the container", func(t *testing.T) {
		checkProbe(t, open, s)
	})
	t.Run("policy: a missing host path", func(t *testing.T) {
		checkMissingHostPath(t, open(t), s)
	})
	t.Run("recover after a restart", func(t *testing.T) {
		first := open(t)
		ctx := ctxFor(t, s.Timeout)
		net, spec := prepare(t, ctx, first, s.LongRunning())
		st, err := first.Start(ctx, spec)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		second := open(t)
		got, err := second.Recover(ctx, st.Handle)
		if err != nil || got.Name != spec.Name || got.State != backend.ServiceRunning {
			t.Errorf("Recover on a new instance = %+v, %v; want %q running", got, err, spec.Name)
		}
		if _, err := second.Recover(ctx, st.Handle); err != nil {
			t.Errorf("second Recover: %v (must be idempotent)", err)
		}
		if err := second.Remove(ctx, st.Handle, true); err != nil {
			t.Errorf("Remove by the new instance: %v", err)
		}
		_ = second.RemoveNetwork(ctx, net)
	})
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// prepare makes a network and names the service uniquely.
func prepare(t *testing.T, ctx context.Context, p backend.Backend, spec backend.ServiceSpec) (string, backend.ServiceSpec) {
	t.Helper()
	suffix := randomSuffix()
	net, err := p.CreateNetwork(ctx, backend.NetworkSpec{Name: "zoe-conformance-" + suffix, Labels: map[string]string{"zoe.conformance": "true"}})
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	spec.Name = "conformance-" + suffix
	spec.Hostname = spec.Name
	spec.Network = net
	spec.ExecutionID = "conformance"
	if spec.User == "" && !spec.Security.AllowRoot {
		spec.User = probeUser
	}
	return net, spec
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

func waitLogs(t *testing.T, ctx context.Context, p backend.Backend, h backend.Handle) {
	t.Helper()
	for {
		ch, err := p.Logs(ctx, h, backend.LogOptions{})
		if err != nil {
			t.Fatalf("Logs: %v", err)
		}
		n := 0
		for range ch {
			n++
		}
		if n > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the service wrote no log line")
		case <-time.After(100 * time.Millisecond):
		}
	}
}
