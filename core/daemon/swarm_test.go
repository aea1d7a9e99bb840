package daemon

// End to end through a real `zoe server` with the swarm back-end, on a real
// Docker engine in swarm mode: one of the machine's dockerd binary, started
// by the test in a network namespace of its own (testutil.StartSwarm), with
// --no-new-privileges, which Docker 20.10 cannot set per service. The
// backend block is examples/swarm.hcl's, but for the test engine's address.
// The scenarios are TestDockerEndToEnd's, and every example runs.

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	dockerclient "github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
)

// swarmTests is the package's swarm-mode engine, started on first use and
// stopped by TestMain. Its tests hold it one at a time (hold): dask-0
// takes 1.75 of the node's 2 cores.
type swarmTests struct {
	once   sync.Once
	err    error
	engine *testutil.SwarmEngine
	mu     sync.Mutex
}

var swarmEngine = &swarmTests{}

// hold starts the engine if needed, with the test images built in it and
// the swarm plugin built, and holds it until t ends.
func (s *swarmTests) hold(t *testing.T) *testutil.SwarmEngine {
	t.Helper()
	s.once.Do(func() { s.engine, s.err = startSwarmTests() })
	if s.err != nil {
		// Without root, ip, nsenter or dockerd: fail in CI, skip elsewhere.
		if os.Getenv("CI") == "true" {
			t.Fatalf("swarm-mode engine for the tests (CI): %v", s.err)
		}
		t.Skipf("no swarm-mode engine: %v", s.err)
	}
	s.mu.Lock()
	t.Cleanup(s.mu.Unlock)
	logFrom := s.engine.LogSize()
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.engine.ErrorsSince(logFrom, 60))
		}
	})
	return s.engine
}

func startSwarmTests() (*testutil.SwarmEngine, error) {
	ctx, cancel := contextTimeout(10 * time.Minute)
	defer cancel()
	if err := testutil.Build(binDir, map[string]string{"zoe-plugin-backend-swarm": "plugins/backend-swarm"}); err != nil {
		return nil, fmt.Errorf("building the swarm back-end plugin: %w", err)
	}
	e, err := testutil.StartSwarm(ctx)
	if err != nil {
		return nil, err
	}
	if err := buildSwarmImages(ctx, e); err != nil {
		_ = e.Close()
		return nil, err
	}
	return e, nil
}

func buildSwarmImages(ctx context.Context, e *testutil.SwarmEngine) error {
	cli, err := e.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	if err := testimages.Build(ctx, cli); err != nil {
		return fmt.Errorf("test images in the swarm engine: %w", err)
	}
	return nil
}

// stop stops the engine, if it started.
func (s *swarmTests) stop() {
	s.once.Do(func() { s.err = fmt.Errorf("stopped") })
	if s.engine != nil {
		_ = s.engine.Close()
	}
}

// swarmEnv is a deployment of its own on the test swarm: a dockerEnv whose
// client is the swarm engine's, so that its networks, logs and containers
// are the swarm's.
type swarmEnv struct {
	*dockerEnv
	e *testutil.SwarmEngine
}

// newSwarmEnv holds the engine for t, writes a configuration with
// examples/swarm.hcl's backend block and a users file, and removes every
// service, container and network of the deployment when t ends.
func newSwarmEnv(t *testing.T) *swarmEnv {
	t.Helper()
	e := swarmEngine.hold(t)
	cli, err := e.Client()
	if err != nil {
		t.Fatalf("Docker client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	env := &swarmEnv{dockerEnv: &dockerEnv{t: t, cli: cli, dep: "sw-" + hex.EncodeToString(b)}, e: e}
	t.Cleanup(env.removeAll)

	block := lastBlock(t, "swarm.hcl", `backend "swarm" {`)
	for _, r := range [][2]string{
		{`address = "unix:///var/run/docker.sock"`, fmt.Sprintf("address = %q", e.Host)},
		// The test engine runs with --no-new-privileges (Docker 20.10).
		{`engine_no_new_privileges = false`, `engine_no_new_privileges = true`},
	} {
		if !strings.Contains(block, r[0]) {
			t.Fatalf("examples/swarm.hcl's backend block has no line %s", r[0])
		}
		block = strings.Replace(block, r[0], r[1], 1)
	}
	env.file, env.ws = writeConfig(t, env.dep, block)
	return env
}

// removeAll removes every service of the deployment, then its containers
// and networks once the services' containers have left them.
func (env *swarmEnv) removeAll() {
	ctx, cancel := contextTimeout(time.Minute)
	defer cancel()
	if list, err := env.cli.ServiceList(ctx, dockerclient.ServiceListOptions{Filters: env.filter()}); err == nil {
		for _, s := range list.Items {
			if _, err := env.cli.ServiceRemove(ctx, s.ID, dockerclient.ServiceRemoveOptions{}); err != nil {
				env.t.Logf("cleanup: remove service %s: %v", s.Spec.Name, err)
			}
		}
	}
	for ctx.Err() == nil {
		list, err := env.cli.ContainerList(ctx, dockerclient.ContainerListOptions{All: true, Filters: env.filter()})
		if err != nil || len(list.Items) == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	env.dockerEnv.removeAll()
}

// units maps the names of the deployment's swarm services (of execution
// id when given) to their ids and their running task's container, if any.
func (env *swarmEnv) units(t *testing.T, ids ...int64) map[string]string {
	t.Helper()
	ctx, cancel := contextTimeout(30 * time.Second)
	defer cancel()
	services, err := env.cli.ServiceList(ctx, dockerclient.ServiceListOptions{Filters: env.filter(ids...)})
	if err != nil {
		t.Fatalf("docker service ls: %v", err)
	}
	running, err := env.cli.ContainerList(ctx, dockerclient.ContainerListOptions{Filters: env.filter(ids...)})
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	out := map[string]string{}
	for _, s := range services.Items {
		out[s.Spec.Name] = s.ID + "/"
	}
	for _, c := range running.Items {
		if name := c.Labels["com.docker.swarm.service.name"]; out[name] != "" {
			out[name] += c.ID
		}
	}
	return out
}

// task is the id of the newest container of a swarm service (named as
// container names an instance's), running or not, or "" when it has none.
func (env *swarmEnv) task(service string) string {
	ctx, cancel := contextTimeout(30 * time.Second)
	defer cancel()
	list, err := env.cli.ContainerList(ctx, dockerclient.ContainerListOptions{All: true,
		Filters: dockerclient.Filters{}.Add("label", "com.docker.swarm.service.name="+service)})
	if err != nil || len(list.Items) == 0 {
		return ""
	}
	newest := slices.MaxFunc(list.Items, func(a, b container.Summary) int { return cmp.Compare(a.Created, b.Created) })
	return newest.ID
}

// kill kills the container of a swarm service's task, as a crash would.
func (env *swarmEnv) kill(t *testing.T, service string) {
	t.Helper()
	id := env.task(service)
	if id == "" {
		t.Fatalf("service %s has no container", service)
	}
	env.dockerEnv.kill(t, id)
}

// logs returns what a swarm service's newest container wrote.
func (env *swarmEnv) logs(service string) string {
	id := env.task(service)
	if id == "" {
		return "no container for " + service
	}
	return env.dockerEnv.logs(id)
}

// gone waits until an execution has no service, container or network left.
func (env *swarmEnv) gone(t *testing.T, id int64) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("the services, containers and network of execution %d removed", id), func() (bool, string) {
		s, c, n := env.units(t, id), env.containers(t, id), env.networks(t, id)
		return len(s) == 0 && len(c) == 0 && len(n) == 0, fmt.Sprintf("services %v, containers %v, networks %v", s, c, n)
	})
}

func (env *swarmEnv) nodeAddress() string { return env.e.Address }

// TestSwarmEndToEnd runs TestDockerEndToEnd's scenarios through one `zoe
// server` on the swarm; the subtests share it and run in order.
func TestSwarmEndToEnd(t *testing.T) {
	t.Parallel()
	env := newSwarmEnv(t)
	srv := env.start(t)
	endToEnd(t, env, srv)
}

// TestExamplesOnSwarm runs every example, one after the other, through a
// real `zoe server` on the swarm with examples/swarm.hcl's backend block.
func TestExamplesOnSwarm(t *testing.T) {
	t.Parallel()
	env := newSwarmEnv(t)
	// The shop's analytics images, from the machine's engine (make images
	// builds them there) into the test engine, whose data root keeps them.
	local, err := dockerclient.New(dockerclient.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	refs := testutil.RequireAnalyticsImages(t, local)
	ctx, cancel := contextTimeout(10 * time.Minute)
	defer cancel()
	if err := testutil.CopyImages(ctx, local, env.cli, refs); err != nil {
		t.Fatalf("the analytics images into the swarm engine: %v", err)
	}
	env.start(t)
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			runExample(t, env, env.user(t, "alice"), ex)
		})
	}
}
