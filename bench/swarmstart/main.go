// Command swarmstart times, on a Docker swarm of its own (one node: a
// swarm-mode dockerd in a network namespace, internal/testutil) and the
// test images, how long a ZApp of N services takes from its submission to
// `running` through a real `zoe server` on the swarm back-end, against the
// Docker client creating the same swarm services one after another, each
// waited for until its task runs, as `docker service create` does:
//
//	make build && go run ./bench/swarmstart [-sizes 1,4,16] [-reps 3]
//
// as root (the swarm's dockerd and its network namespace need it).
//
// Every service is zoe-test/httpservice:1 with 64 MiB and 0.1 core,
// publishing port 8080 in host mode. The baseline's services are copies of
// the spec Zoe's plugin gave one of its services (image, user, resources,
// capabilities, the workspace's mount, the port, endpoint mode dnsrr,
// placement on the node, restart condition none, one replica), renamed
// and labelled zoe.bench=<the benchmark's deployment>, on an attachable
// overlay network as Zoe's, created first and timed too. `docker service
// create` would then wait 5 s more to see the task stay up (its update
// monitor), and polls every 200 ms: neither is counted here, the baseline
// polls every 10 ms. It prints the median of each and their ratio (Zoe /
// baseline: below 1 Zoe is faster). Each side's services are removed, and
// their containers waited for until gone, before the other side starts;
// the swarm is left and its engine stopped at the end, which removes
// whatever is left.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/bench/internal/startbench"
	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
)

const (
	// labelBench marks the baseline's services and networks; not
	// zoe.deployment, which would make them Zoe's.
	labelBench      = "zoe.bench"
	labelDeployment = "zoe.deployment"
	labelExecution  = "zoe.execution"
	// wait bounds every wait for the swarm.
	wait = 2 * time.Minute
)

func main() {
	zoe := flag.String("zoe", "bin/zoe", "the zoe binary (its plugins next to it: make build)")
	sizes := flag.String("sizes", "1,4,16", "ZApp sizes (services), comma-separated")
	reps := flag.Int("reps", 3, "repetitions of each measure")
	poll := flag.Duration("poll", 500*time.Millisecond, "the swarm plugin's poll_interval (its default)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	if err := run(ctx, *zoe, *sizes, *reps, *poll); err != nil {
		fmt.Fprintln(os.Stderr, "swarmstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, zoeBin, sizeList string, reps int, poll time.Duration) error {
	sizes, err := startbench.ParseSizes(sizeList)
	if err != nil {
		return err
	}
	if reps < 1 {
		return errors.New("-reps must be 1 or more")
	}
	fmt.Printf("load average before: %s\n", startbench.LoadAvg())
	engine, err := testutil.StartSwarm(ctx)
	if err != nil {
		return err
	}
	// Leaving the swarm removes every service and network on it, and
	// Close removes the containers: nothing is left, even after an error.
	defer engine.Close()
	cli, err := engine.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	if err := testimages.Build(ctx, cli); err != nil {
		return fmt.Errorf("build the test images in the swarm's engine: %w", err)
	}
	version, err := cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return fmt.Errorf("engine version: %w", err)
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	dep := "bench-" + hex.EncodeToString(b)

	srv, err := startbench.StartServer(ctx, zoeBin, dep, "swarm", fmt.Sprintf(`  address                  = %q
  engine_no_new_privileges = true
  poll_interval            = %q
`, engine.Host, poll.String()))
	if err != nil {
		return err
	}
	defer srv.Stop()

	fmt.Printf("swarm of one node (Docker engine %s), %d repetitions, medians; services: %s, %d MiB, %.1f core, port 8080 published in host mode; poll_interval %s\n",
		version.Version, reps, startbench.Image, startbench.Memory>>20, startbench.Cores, poll)
	bl := &baseline{cli: cli, dep: dep}
	zoe := func(ctx context.Context, n, _ int) (time.Duration, error) {
		d, err := srv.TimeStart(ctx, n, true, bl.learn)
		if err != nil {
			return 0, fmt.Errorf("%w\n%s", err, srv.Output())
		}
		// The baseline starts on an engine that is done with Zoe's.
		return d, bl.gone(ctx, labelDeployment+"="+dep)
	}
	if err := startbench.Compare(ctx, sizes, reps, "service create ×N", zoe, bl.time); err != nil {
		return err
	}
	fmt.Printf("load average after: %s\n", startbench.LoadAvg())
	return nil
}

// baseline creates swarm services with the Docker client.
type baseline struct {
	cli *client.Client
	dep string
	// tmpl is the spec of one of Zoe's services, from its first
	// execution.
	tmpl *swarm.ServiceSpec
}

// learn keeps the spec of one of execution id's services, the first time.
func (b *baseline) learn(ctx context.Context, id int64) error {
	if b.tmpl != nil {
		return nil
	}
	f := client.Filters{}.Add("label", labelDeployment+"="+b.dep, labelExecution+"="+strconv.FormatInt(id, 10))
	list, err := b.cli.ServiceList(ctx, client.ServiceListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("list execution %d's services: %w", id, err)
	}
	if len(list.Items) == 0 {
		return fmt.Errorf("execution %d runs but has no swarm service", id)
	}
	b.tmpl = &list.Items[0].Spec
	return nil
}

// spec is a copy of Zoe's spec for a service called name on network.
func (b *baseline) spec(name, network string) (swarm.ServiceSpec, error) {
	// Through JSON: a deep copy, the template's pointers stay its own.
	raw, err := json.Marshal(b.tmpl)
	if err != nil {
		return swarm.ServiceSpec{}, err
	}
	var s swarm.ServiceSpec
	if err := json.Unmarshal(raw, &s); err != nil {
		return swarm.ServiceSpec{}, err
	}
	labels := map[string]string{labelBench: b.dep}
	s.Name, s.Labels = name, labels
	if cs := s.TaskTemplate.ContainerSpec; cs != nil {
		cs.Labels, cs.Hostname = labels, name
	}
	// The host name is the service's name: no alias needed.
	s.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: network}}
	return s, nil
}

// time creates an overlay network and n services on it, one after
// another, each waited for until its task runs; then it removes them (not
// measured).
func (b *baseline) time(ctx context.Context, n, rep int) (d time.Duration, err error) {
	if b.tmpl == nil {
		return 0, errors.New("no spec of Zoe's to copy")
	}
	tag := fmt.Sprintf("%d-%d-%s", n, rep, b.dep)
	labels := map[string]string{labelBench: b.dep}
	// Removed whatever happens: the next measure needs the room.
	defer func() { err = errors.Join(err, b.clean(context.WithoutCancel(ctx))) }()
	t0 := time.Now()
	// As the plugin's CreateNetwork makes it.
	net, err := b.cli.NetworkCreate(ctx, "bench-"+tag, client.NetworkCreateOptions{Driver: "overlay", Scope: "swarm",
		Attachable: true, Labels: labels})
	if err != nil {
		return 0, fmt.Errorf("create network: %w", err)
	}
	for i := range n {
		spec, err := b.spec(fmt.Sprintf("web%d-%s", i, tag), net.ID)
		if err != nil {
			return 0, err
		}
		created, err := b.cli.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
		if err != nil {
			return 0, fmt.Errorf("create service %s: %w", spec.Name, err)
		}
		if err := b.awaitRunning(ctx, created.ID, spec.Name); err != nil {
			return 0, err
		}
	}
	return time.Since(t0), nil
}

// awaitRunning polls the service's task until it runs.
func (b *baseline) awaitRunning(ctx context.Context, id, name string) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		res, err := b.cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", id)})
		if err != nil {
			return fmt.Errorf("tasks of %s: %w", name, err)
		}
		for _, t := range res.Items {
			switch s := t.Status.State; {
			case s == swarm.TaskStateRunning:
				return nil
			case s == swarm.TaskStateRejected || s == swarm.TaskStateFailed || (s == swarm.TaskStatePending && t.Status.Err != ""):
				return fmt.Errorf("service %s: task %s: %s", name, s, t.Status.Err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("service %s did not run: %w", name, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// clean removes the baseline's services, waits until their containers are
// gone, and removes its networks (a network is busy until its containers
// left it).
func (b *baseline) clean(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	f := client.Filters{}.Add("label", labelBench+"="+b.dep)
	svcs, err := b.cli.ServiceList(ctx, client.ServiceListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("list the baseline's services: %w", err)
	}
	for _, s := range svcs.Items {
		if _, err := b.cli.ServiceRemove(ctx, s.ID, client.ServiceRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove service %s: %w", s.Spec.Name, err)
		}
	}
	if err := b.gone(ctx, labelBench+"="+b.dep); err != nil {
		return err
	}
	nets, err := b.cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("list the baseline's networks: %w", err)
	}
	for _, n := range nets.Items {
		for {
			_, err := b.cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
			if err == nil || cerrdefs.IsNotFound(err) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("remove network %s: %w", n.Name, err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// gone waits until no container carries label (key=value).
func (b *baseline) gone(ctx context.Context, label string) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		list, err := b.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", label)})
		if err != nil {
			return fmt.Errorf("containers labelled %s: %w", label, err)
		}
		if len(list.Items) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d containers labelled %s still there: %w", len(list.Items), label, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
