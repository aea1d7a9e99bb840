package docker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/plugins/backend-docker/docker"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// wait bounds every wait for the engine in these tests: a hang bound, not
// a speed requirement (the engine took more than a minute to create a
// network while a new machine's first make test compiled everything).
const wait = 3 * time.Minute

// pluginBinary is the plugin built by TestMain, which the conformance suite
// runs as a process of its own.
var pluginBinary string

// TestMain builds the test images and the plugin. The tests need a Docker
// engine: without one they fail, they do not skip.
func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	// The tests run in parallel, each on a deployment of its own: they
	// wait on the engine rather than compute.
	testutil.RaiseParallel(8)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a hang bound
	cli, err := client.New(client.FromEnv)
	if err == nil {
		err = testimages.Build(ctx, cli)
		_ = cli.Close()
	}
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: the Docker back-end's tests need a reachable Docker engine (DOCKER_HOST or /var/run/docker.sock): %v\n", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "zoe-backend-docker-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := testutil.Build(dir, map[string]string{"zoe-plugin-backend-docker": "plugins/backend-docker"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pluginBinary = filepath.Join(dir, "zoe-plugin-backend-docker")
	return m.Run()
}

// deployment returns a deployment name of its own for t, and removes every
// container and network labelled with it when t ends. t shares the Docker
// engine (testutil.DockerLock) until then.
func deployment(t testing.TB) string {
	t.Helper()
	testutil.DockerLock(t, false)
	return newDeployment(t)
}

// exclusiveDeployment is deployment for a test that needs the engine to
// itself (testutil.DockerLock): no other test using Docker runs meanwhile,
// in this package or another.
func exclusiveDeployment(t testing.TB) string {
	t.Helper()
	testutil.DockerLock(t, true)
	return newDeployment(t)
}

func newDeployment(t testing.TB) string {
	t.Helper()
	dep := "zoe-test-" + testutil.RandomSuffix()
	cli := dockerClient(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		f := client.Filters{}.Add("label", docker.LabelDeployment+"="+dep)
		if list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f}); err == nil {
			for _, c := range list.Items {
				if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
					t.Logf("cleanup: remove container %s: %v", c.ID, err)
				}
			}
		}
		if list, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f}); err == nil {
			for _, n := range list.Items {
				if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
					t.Logf("cleanup: remove network %s: %v", n.Name, err)
				}
			}
		}
	})
	return dep
}

func dockerClient(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatalf("Docker client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// open returns a plugin configured with block (nil for the local engine)
// for deployment dep.
func open(t testing.TB, dep string, block map[string]any) *docker.Plugin {
	t.Helper()
	p := docker.New(testutil.PluginLogger(t))
	var js []byte
	if block != nil {
		var err error
		if js, err = json.Marshal(block); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Configure(context.Background(), sdk.Config{JSON: js, Deployment: dep, APIVersion: backend.APIVersion}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}
