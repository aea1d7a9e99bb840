package swarm_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	swarmtypes "github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/plugins/backend-swarm/swarm"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// addWorker joins a second engine to the tests' swarm as a worker until t
// ends; like needEngine, it fails t under CI=true when it cannot, and skips
// it otherwise.
func addWorker(t *testing.T) *testutil.SwarmEngine {
	t.Helper()
	needEngine(t)
	// Longer than wait: a new worker's data root gets the test images.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	w, err := engine.AddWorker(ctx)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no second swarm node (CI): ", err)
		}
		t.Skip("no second swarm node: ", err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("close the worker: %v", err)
		}
	})
	return w
}

// TestTwoNodes: with a worker in the swarm, the plugin sees two nodes; a
// service runs on the node Zoe chose; services on different nodes find each
// other by name over the execution's overlay network; a port published on
// the worker answers at the worker's address; Stop of a task on the worker
// (a service update) keeps its exit code; a drained worker takes nothing.
// Not parallel: the other tests' services must not land on the worker, nor
// lose their node when it leaves.
func TestTwoNodes(t *testing.T) {
	w := addWorker(t) // first: its Close runs after the deployment's cleanup
	p := open(t, deployment(t), nil)
	// A dozen steps on two engines: 19 s alone, over 90 s at a load
	// average of 50.
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	t.Cleanup(cancel)
	cli := engineClient(t)
	wcli, err := w.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wcli.Close() })
	events := subscribe(t, ctx, p)

	nodes, err := p.Nodes(ctx)
	if err != nil {
		t.Fatalf("Nodes: %v", err)
	}
	byAddress := map[string]backend.Node{}
	for _, n := range nodes {
		byAddress[n.Address] = n
	}
	var manager, worker swarmNode
	for _, n := range []struct {
		to *swarmNode
		e  *testutil.SwarmEngine
		c  *client.Client
	}{{&manager, engine, cli}, {&worker, w, wcli}} {
		bn, ok := byAddress[n.e.Address]
		if !ok || bn.State != backend.NodeReady {
			t.Fatalf("Nodes = %+v; want two ready nodes, at %s and %s", nodes, engine.Address, w.Address)
		}
		*n.to = swarmNode{name: bn.Name, id: n.e.NodeID, address: n.e.Address, cli: n.c}
	}
	if len(nodes) != 2 {
		t.Fatalf("Nodes = %+v; want two", nodes)
	}

	net := testutil.CreateNetwork(t, ctx, p)
	// A master on each node, and on the other node a worker asking it by
	// its name.
	cases := []struct {
		master, asker swarmNode
		hostname      string
	}{
		{worker, manager, "master-on-worker"},
		{manager, worker, "master-on-manager"},
	}
	var stopped backend.ServiceStatus // the master Stop stopped on the worker
	for _, c := range cases {
		master := start(t, ctx, p, net, backend.ServiceSpec{Hostname: c.hostname, Image: testimages.HTTPService, Node: c.master.name,
			Ports: []backend.Port{{Port: 8080, Protocol: "tcp"}}})
		ranOn(t, ctx, master, c.master)
		if len(master.Ports) != 1 || master.Ports[0].HostAddress != c.master.address {
			t.Errorf("%s's ports %+v: want 8080 published on its node's address %s", c.hostname, master.Ports, c.master.address)
		} else {
			waitHello(t, ctx, master.Ports[0], c.hostname)
		}
		asker := start(t, ctx, p, net, backend.ServiceSpec{Image: testimages.Worker, Node: c.asker.name,
			Environment: map[string]string{"MASTER": c.hostname + ":8080"}})
		ranOn(t, ctx, asker, c.asker)
		checkAnswer(t, ctx, p, events, asker, c.hostname)
		if c.master.name != worker.name {
			continue
		}
		// Stop on another node than the manager's: a service update.
		if err := p.Stop(ctx, master.Handle, 5*time.Second); err != nil {
			t.Fatalf("Stop of %s on the worker: %v", c.hostname, err)
		}
		if e := testutil.WaitEvent(t, ctx, events, master.Name, backend.EventExited); e.ExitCode != 0 {
			t.Errorf("%s exited with %d, want 0 (it exits so on SIGTERM)", c.hostname, e.ExitCode)
		}
		svc, err := cli.ServiceInspect(ctx, master.Handle.ID, client.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if svc.Service.Spec.Labels[swarm.LabelStopped] == "" {
			t.Errorf("the service of %s on the worker was stopped without an update (labels %v)", c.hostname, svc.Service.Spec.Labels)
		}
		if got, err := p.Inspect(ctx, master.Handle); err != nil || got.State != backend.ServiceExited || got.ExitCode != 0 {
			t.Errorf("Inspect right after Stop = %+v, %v; want exited with 0", got, err)
		}
		stopped = master
	}

	// Drained, the worker takes nothing.
	updateNode(t, ctx, cli, worker.id, func(s *swarmtypes.NodeSpec) { s.Availability = swarmtypes.NodeAvailabilityDrain })
	nodes, err = p.Nodes(ctx)
	if err != nil {
		t.Fatalf("Nodes: %v", err)
	}
	for _, n := range nodes {
		wantState := backend.NodeReady
		if n.Name == worker.name {
			wantState = backend.NodeDisabled
		}
		if n.State != wantState {
			t.Errorf("node %s: %s (%s), want %s", n.Name, n.State, n.StateDetail, wantState)
		}
	}
	_, err = p.Start(ctx, backend.ServiceSpec{Name: "unplaced-" + testutil.RandomSuffix(), Image: testimages.HTTPService, User: testutil.ServiceUser, Network: net, Node: worker.name})
	if !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), "no suitable node") {
		t.Errorf("Start on the drained worker: %v; want sdk.ErrUnavailable with the swarm's reason", err)
	}
	// The stopped service's task stays, with its exit code, drained or not.
	if got, err := p.Inspect(ctx, stopped.Handle); err != nil || got.State != backend.ServiceExited || got.ExitCode != 0 {
		t.Errorf("Inspect of the service stopped on the worker = %+v, %v; want exited with 0", got, err)
	}
}

// swarmNode is a node of the tests' swarm.
type swarmNode struct {
	name, id, address string
	cli               *client.Client // its engine's
}

// ranOn checks that st runs on n: the plugin says so, and n's engine holds
// the service's container.
func ranOn(t *testing.T, ctx context.Context, st backend.ServiceStatus, n swarmNode) {
	t.Helper()
	if st.Node != n.name {
		t.Errorf("%s runs on %q, want %q", st.Name, st.Node, n.name)
	}
	list, err := n.cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", "com.docker.swarm.service.id="+st.Handle.ID)})
	if err != nil || len(list.Items) != 1 {
		t.Errorf("containers of %s on node %s's engine: %+v, %v; want one", st.Name, n.name, list.Items, err)
	}
}
