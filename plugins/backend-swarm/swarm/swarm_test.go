package swarm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
	swarmbackend "github.com/zoe-project/zoe/plugins/backend-swarm/swarm"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

func TestConfigure(t *testing.T) {
	cases := []struct {
		name  string
		block map[string]any
		want  string // in the error; "" for none
	}{
		{"the local engine by default", nil, ""},
		{"every attribute", map[string]any{"address": "tcp://10.0.0.1:2376", "publish_mode": "ingress", "engine_no_new_privileges": true,
			"volume_driver": "rexray", "stop_grace_period": "30s", "poll_interval": "1s"}, ""},
		{"a bad address", map[string]any{"address": "bogus://x y"}, "address"},
		{"a bad publish mode", map[string]any{"publish_mode": "mesh"}, "publish_mode"},
		{"a bad grace period", map[string]any{"stop_grace_period": "soon"}, "stop_grace_period"},
		{"a negative poll interval", map[string]any{"poll_interval": "-1s"}, "poll_interval"},
		{"missing TLS files", map[string]any{"tls": map[string]any{"ca_file": "/nonexistent/ca.pem", "cert_file": "/nonexistent/c.pem", "key_file": "/nonexistent/k.pem"}}, "tls"},
		{"an unknown attribute", map[string]any{"hosts": 1}, "invalid configuration"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var js []byte
			if c.block != nil {
				js, _ = json.Marshal(c.block)
			}
			p := swarmbackend.New(slog.New(slog.DiscardHandler))
			defer func() { _ = p.Close(context.Background()) }()
			err := p.Configure(context.Background(), sdk.Config{JSON: js, Deployment: "d"})
			if c.want == "" {
				if err != nil {
					t.Fatalf("Configure: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Configure = %v, want an error about %s", err, c.want)
			}
		})
	}
}

// TestNodes: the swarm's node with its labels, and drain and pause take
// nothing. Not parallel: it drains the one node the other tests use.
func TestNodes(t *testing.T) {
	dep := deployment(t)
	p := open(t, dep, nil)
	ctx := ctxFor(t)
	cli := engineClient(t)
	update := func(f func(*swarm.NodeSpec)) {
		t.Helper()
		updateNode(t, ctx, cli, engine.NodeID, f)
	}
	t.Cleanup(func() {
		update(func(s *swarm.NodeSpec) {
			s.Availability = swarm.NodeAvailabilityActive
			delete(s.Labels, "zoe-test-gpu")
			delete(s.Labels, "zoe-test-zone")
		})
	})
	update(func(s *swarm.NodeSpec) {
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels["zoe-test-gpu"] = "true"
		s.Labels["zoe-test-zone"] = "eu"
	})
	nodes, err := p.Nodes(ctx)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("Nodes = %+v, %v; want the one node", nodes, err)
	}
	n := nodes[0]
	if n.State != backend.NodeReady || n.Cores <= 0 || n.MemoryBytes <= 0 || n.Address != engine.Address ||
		!slices.Contains(n.Labels, "zoe-test-gpu") || !slices.Contains(n.Labels, "zoe-test-zone=eu") {
		t.Errorf("node %+v: want it ready, with cores, memory, the address %s and the labels zoe-test-gpu and zoe-test-zone=eu", n, engine.Address)
	}
	net := testutil.CreateNetwork(t, ctx, p)
	st := start(t, ctx, p, net, backend.ServiceSpec{Image: testimages.HTTPService, Node: n.Name,
		Resources: backend.Resources{Cores: 0.25, MemoryReservation: 16 << 20}})
	if st.Node != n.Name {
		t.Errorf("the service runs on %q, want %q", st.Node, n.Name)
	}
	svc, err := cli.ServiceInspect(ctx, st.Handle.ID, client.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pl := svc.Service.Spec.TaskTemplate.Placement; pl == nil || !slices.Contains(pl.Constraints, "node.id=="+engine.NodeID) {
		t.Errorf("placement %+v: want the constraint node.id==%s", pl, engine.NodeID)
	}
	if nodes, err := p.Nodes(ctx); err != nil || nodes[0].CoresReserved < 0.25 || nodes[0].MemoryReserved < 16<<20 {
		t.Errorf("Nodes = %+v, %v; want the service's reservations counted", nodes, err)
	}
	for _, avail := range []swarm.NodeAvailability{swarm.NodeAvailabilityDrain, swarm.NodeAvailabilityPause} {
		t.Run(string(avail), func(t *testing.T) {
			update(func(s *swarm.NodeSpec) { s.Availability = avail })
			defer update(func(s *swarm.NodeSpec) { s.Availability = swarm.NodeAvailabilityActive })
			nodes, err := p.Nodes(ctx)
			if err != nil || nodes[0].State != backend.NodeDisabled || !strings.Contains(nodes[0].StateDetail, string(avail)) {
				t.Fatalf("Nodes = %+v, %v; want the node disabled (%s)", nodes, err, avail)
			}
			name := "unplaced-" + testutil.RandomSuffix()
			_, err = p.Start(ctx, backend.ServiceSpec{Name: name, Image: testimages.HTTPService, User: testutil.ServiceUser, Network: net, Node: n.Name})
			if !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), "no suitable node") {
				t.Errorf("Start on a %s node: %v; want sdk.ErrUnavailable with the swarm's reason", avail, err)
			}
			if list, _ := p.List(ctx, backend.ListOptions{}); slices.ContainsFunc(list, func(s backend.ServiceStatus) bool { return s.Name == name }) {
				t.Errorf("a service the swarm could not place was left")
			}
		})
	}
}

// TestDNSNames: three services of an execution find each other by their
// host names on the execution's overlay network.
func TestDNSNames(t *testing.T) {
	t.Parallel()
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	events := subscribe(t, ctx, p)
	net := testutil.CreateNetwork(t, ctx, p)
	start(t, ctx, p, net, backend.ServiceSpec{Hostname: "master", Image: testimages.HTTPService})
	start(t, ctx, p, net, backend.ServiceSpec{Hostname: "relay", Image: testimages.HTTPService})
	for _, target := range []string{"master", "relay"} {
		w := start(t, ctx, p, net, backend.ServiceSpec{Image: testimages.Worker, Environment: map[string]string{"MASTER": target + ":8080"}})
		checkAnswer(t, ctx, p, events, w, target)
	}
}

// TestPublishedPort: a declared port, published in host mode, answers on
// the node's address.
func TestPublishedPort(t *testing.T) {
	t.Parallel()
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	st := start(t, ctx, p, testutil.CreateNetwork(t, ctx, p), backend.ServiceSpec{Image: testimages.HTTPService, Ports: []backend.Port{{Port: 8080, Protocol: "tcp"}}})
	if len(st.Ports) != 1 || st.Ports[0].Port != 8080 || st.Ports[0].HostPort == 0 || st.Ports[0].HostAddress != engine.Address {
		t.Fatalf("Start's ports %+v: want 8080 published on %s", st.Ports, engine.Address)
	}
	if st.IP == "" {
		t.Errorf("Start returned no IP on the execution network")
	}
	waitHello(t, ctx, st.Ports[0], "")
}

// TestBatchExitCodes: a batch service's exit code reaches the event, and
// Inspect and List keep it.
func TestBatchExitCodes(t *testing.T) {
	t.Parallel()
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	events := subscribe(t, ctx, p)
	net := testutil.CreateNetwork(t, ctx, p)
	codes := []int{0, 3, 42}
	sts := map[int]backend.ServiceStatus{}
	for _, code := range codes {
		sts[code] = start(t, ctx, p, net, backend.ServiceSpec{Image: testimages.Job, Environment: map[string]string{"EXIT_CODE": fmt.Sprint(code)}})
	}
	for _, code := range codes {
		st := sts[code]
		if e := testutil.WaitEvent(t, ctx, events, st.Name, backend.EventExited); e.ExitCode != code {
			t.Errorf("exit code %d, want %d", e.ExitCode, code)
		}
		if got, err := p.Inspect(ctx, st.Handle); err != nil || got.State != backend.ServiceExited || got.ExitCode != code {
			t.Errorf("Inspect = %+v, %v; want exited with %d", got, err, code)
		}
	}
	list, err := p.List(ctx, backend.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		for code, st := range sts {
			if s.Name == st.Name && s.ExitCode != code {
				t.Errorf("List: %s exited with %d, want %d", s.Name, s.ExitCode, code)
			}
		}
	}
}

// TestDeath: a service whose container is killed (an essential service's
// death) is reported exited with SIGKILL's code, and not started again.
func TestDeath(t *testing.T) {
	t.Parallel()
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	cli := engineClient(t)
	events := subscribe(t, ctx, p)
	st := start(t, ctx, p, testutil.CreateNetwork(t, ctx, p), backend.ServiceSpec{Image: testimages.HTTPService})
	tasks, err := cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", st.Handle.ID)})
	if err != nil || len(tasks.Items) != 1 || tasks.Items[0].Status.ContainerStatus == nil {
		t.Fatalf("tasks %+v, %v; want one with its container", tasks, err)
	}
	if _, err := cli.ContainerKill(ctx, tasks.Items[0].Status.ContainerStatus.ContainerID, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	if e := testutil.WaitEvent(t, ctx, events, st.Name, backend.EventExited); e.ExitCode != 137 {
		t.Errorf("exit code %d, want 137", e.ExitCode)
	}
	if got, err := p.Inspect(ctx, st.Handle); err != nil || got.State != backend.ServiceExited || got.ExitCode != 137 {
		t.Errorf("Inspect = %+v, %v; want exited with 137", got, err)
	}
	if tasks, err := cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", st.Handle.ID)}); err != nil || len(tasks.Items) != 1 {
		t.Errorf("tasks after the death: %d, %v; want the one (restart condition none)", len(tasks.Items), err)
	}
}

// TestOOM: a service over its memory limit is reported OOM-killed (its
// task ran on the manager's node, whose engine the plugin asks).
func TestOOM(t *testing.T) {
	t.Parallel()
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	events := subscribe(t, ctx, p)
	st := start(t, ctx, p, testutil.CreateNetwork(t, ctx, p), backend.ServiceSpec{Image: testimages.OOM, Resources: backend.Resources{MemoryLimit: 32 << 20}})
	if e := testutil.WaitEvents(t, ctx, events, st.Name, backend.EventOOMKilled, backend.EventExited)[backend.EventExited]; e.ExitCode != 137 {
		t.Errorf("exit code %d, want 137", e.ExitCode)
	}
	if got, err := p.Inspect(ctx, st.Handle); err != nil || !got.OOMKilled || got.State != backend.ServiceExited {
		t.Errorf("Inspect = %+v, %v; want exited and OOM-killed", got, err)
	}
}

// TestKillLeavesNothing: once an execution's services are removed with
// force and its network removed, the swarm holds nothing of it: no
// service, no network, no container.
func TestKillLeavesNothing(t *testing.T) {
	t.Parallel()
	dep := deployment(t)
	p := open(t, dep, nil)
	ctx := ctxFor(t)
	cli := engineClient(t)
	net := testutil.CreateNetwork(t, ctx, p)
	var sts []backend.ServiceStatus
	for range 3 {
		sts = append(sts, start(t, ctx, p, net, backend.ServiceSpec{Image: testimages.HTTPService, Ports: []backend.Port{{Port: 8080}}}))
	}
	for _, st := range sts {
		if err := p.Remove(ctx, st.Handle, true); err != nil {
			t.Fatalf("Remove: %v", err)
		}
	}
	if err := p.RemoveNetwork(ctx, net); err != nil {
		t.Fatalf("RemoveNetwork: %v", err)
	}
	f := client.Filters{}.Add("label", swarmbackend.LabelDeployment+"="+dep)
	testutil.WaitUntil(t, ctx, "nothing of the deployment left", func() (bool, string) {
		svcs, err1 := cli.ServiceList(ctx, client.ServiceListOptions{Filters: f})
		nets, err2 := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
		ctrs, err3 := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err := errors.Join(err1, err2, err3); err != nil {
			return false, err.Error()
		}
		return len(svcs.Items)+len(nets.Items)+len(ctrs.Items) == 0,
			fmt.Sprintf("%d services, %d networks, %d containers", len(svcs.Items), len(nets.Items), len(ctrs.Items))
	})
}

// TestRejected: a task the swarm rejects is Start's error, with the
// swarm's reason, and leaves nothing.
func TestRejected(t *testing.T) {
	t.Parallel()
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	net := testutil.CreateNetwork(t, ctx, p)
	missing := filepath.Join(t.TempDir(), "no", "such", "dir")
	cases := []struct {
		name    string
		spec    backend.ServiceSpec
		wantErr error
		reason  string
	}{
		{"a missing host path", backend.ServiceSpec{Image: testimages.HTTPService, Volumes: []backend.Volume{{HostPath: missing, MountPoint: "/data"}}},
			sdk.ErrInvalidArgument, "bind source path does not exist"},
		{"an image no node has", backend.ServiceSpec{Image: "zoe-test/absent:" + testutil.RandomSuffix()}, sdk.ErrNotFound, "No such image"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := c.spec
			spec.Name, spec.User, spec.Network = "rejected-"+testutil.RandomSuffix(), testutil.ServiceUser, net
			_, err := p.Start(ctx, spec)
			if !errors.Is(err, c.wantErr) || !strings.Contains(err.Error(), "rejected") || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("Start = %v; want %v, rejected by the swarm for %q", err, c.wantErr, c.reason)
			}
			list, err := p.List(ctx, backend.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if slices.ContainsFunc(list, func(s backend.ServiceStatus) bool { return s.Name == spec.Name }) {
				t.Errorf("a rejected service was left")
			}
		})
	}
}

// TestPolicy: the service the swarm holds says what the policy says, and
// what the engine cannot enforce is refused before anything exists.
func TestPolicy(t *testing.T) {
	t.Parallel()
	dep := deployment(t)
	p := open(t, dep, nil)
	ctx := ctxFor(t)
	cli := engineClient(t)
	net := testutil.CreateNetwork(t, ctx, p)
	cases := []struct {
		name     string
		user     string
		sec      backend.Security
		pids     int64
		capDrop  []string
		wantPids int64
	}{
		{"strictest", testutil.ServiceUser, backend.Security{}, 0, []string{"ALL"}, backend.DefaultPidsLimit},
		{"root and capabilities", "0:0", backend.Security{AllowRoot: true, KeepCapabilities: true}, -1, nil, 0},
		{"a process limit", testutil.ServiceUser, backend.Security{}, 300, []string{"ALL"}, 300},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := start(t, ctx, p, net, backend.ServiceSpec{Image: testimages.HTTPService, User: c.user, Security: c.sec,
				Resources: backend.Resources{PidsLimit: c.pids, MemoryLimit: 64 << 20, CoresLimit: 0.5}})
			res, err := cli.ServiceInspect(ctx, st.Handle.ID, client.ServiceInspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ts := res.Service.Spec.TaskTemplate
			cs := ts.ContainerSpec
			if cs.User != c.user || len(cs.CapabilityAdd) > 0 || !slices.Equal(cs.CapabilityDrop, c.capDrop) {
				t.Errorf("User %q, CapabilityAdd %v, CapabilityDrop %v; want %q, none added, %v dropped", cs.User, cs.CapabilityAdd, cs.CapabilityDrop, c.user, c.capDrop)
			}
			if l := ts.Resources.Limits; l.Pids != c.wantPids || l.MemoryBytes != 64<<20 || l.NanoCPUs != 5e8 {
				t.Errorf("limits %+v; want %d processes, 64 MiB, half a core", l, c.wantPids)
			}
			if ts.RestartPolicy == nil || ts.RestartPolicy.Condition != swarm.RestartPolicyConditionNone ||
				res.Service.Spec.EndpointSpec == nil || res.Service.Spec.EndpointSpec.Mode != swarm.ResolutionModeDNSRR {
				t.Errorf("restart %+v, endpoint %+v; want restart condition none, endpoint mode dnsrr", ts.RestartPolicy, res.Service.Spec.EndpointSpec)
			}
		})
	}
	refusals := []struct {
		name  string
		extra map[string]any
		spec  backend.ServiceSpec
	}{
		{"no-new-privileges the engine cannot set", map[string]any{"engine_no_new_privileges": false}, backend.ServiceSpec{}},
		{"escalation the engines forbid", nil, backend.ServiceSpec{Security: backend.Security{AllowPrivilegeEscalation: true}}},
		{"the host's network", nil, backend.ServiceSpec{Network: "host"}},
		{"a negative process limit", nil, backend.ServiceSpec{Resources: backend.Resources{PidsLimit: -2}}},
		{"a relative host path", nil, backend.ServiceSpec{Volumes: []backend.Volume{{HostPath: "data", MountPoint: "/data"}}}},
		{"root without AllowRoot", nil, backend.ServiceSpec{User: "0:0"}},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			q := open(t, dep, c.extra)
			spec := c.spec
			spec.Name, spec.Image = "refused-"+testutil.RandomSuffix(), testimages.HTTPService
			if spec.User == "" {
				spec.User = testutil.ServiceUser
			}
			if spec.Network == "" {
				spec.Network = net
			}
			if _, err := q.Start(ctx, spec); !errors.Is(err, sdk.ErrInvalidArgument) {
				t.Errorf("Start = %v, want sdk.ErrInvalidArgument", err)
			}
			if _, err := cli.ServiceInspect(ctx, spec.Name, client.ServiceInspectOptions{}); err == nil {
				t.Errorf("a refused spec left service %s", spec.Name)
			}
		})
	}
}
