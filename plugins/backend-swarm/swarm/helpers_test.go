package swarm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	swarmtypes "github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/plugins/backend-swarm/swarm"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// wait bounds a whole test (ctxFor) and each wait for the swarm: a bound
// against a hang, not a timing. Alone, a test here takes 5–35 s; under
// make test, with every package's tests beside it, four to six times that
// (90 s, the bound before, ended TestKillLeavesNothing and
// TestBatchExitCodes mid-way in CI while their services were starting).
const wait = 5 * time.Minute

var (
	// pluginBinary is the plugin built by TestMain, which the conformance
	// suite runs as a process of its own.
	pluginBinary string
	// engine is the swarm-mode engine of these tests
	// (testutil.StartSwarm).
	engine *testutil.SwarmEngine
	// noEngine says why there is none, outside CI.
	noEngine string
)

// TestMain starts a swarm-mode engine of the tests' own, builds the test
// images in it and the plugin. Without the engine the tests fail under
// CI=true, and skip otherwise.
func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	testutil.RaiseParallel(6)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e, err := testutil.StartSwarm(ctx)
	if err == nil {
		defer e.Close()
		var cli *client.Client
		if cli, err = e.Client(); err == nil {
			err = testimages.Build(ctx, cli)
			_ = cli.Close()
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "FAIL: the swarm back-end's tests need a swarm-mode engine: %v\n", err)
			return 1
		}
		noEngine = err.Error()
	}
	engine = e
	dir, err := os.MkdirTemp("", "zoe-backend-swarm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := testutil.Build(dir, map[string]string{"zoe-plugin-backend-swarm": "plugins/backend-swarm"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pluginBinary = filepath.Join(dir, "zoe-plugin-backend-swarm")
	return m.Run()
}

// needEngine skips t when there is no engine, and fails it under CI=true
// (where TestMain has failed already).
func needEngine(t testing.TB) {
	t.Helper()
	if noEngine != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no swarm-mode engine (CI): " + noEngine)
		}
		t.Skip("no swarm-mode engine: " + noEngine)
	}
}

// config is the plugin's block for the tests' engine, with extra
// attributes.
func config(extra map[string]any) []byte {
	block := map[string]any{"address": engine.Host, "engine_no_new_privileges": true, "poll_interval": "200ms", "stop_grace_period": "5s"}
	for k, v := range extra {
		block[k] = v
	}
	js, err := json.Marshal(block)
	if err != nil {
		panic(err)
	}
	return js
}

// deployment returns a deployment name of its own for t, and removes every
// service and network labelled with it when t ends.
func deployment(t testing.TB) string {
	t.Helper()
	needEngine(t)
	dep := "zoe-test-" + testutil.RandomSuffix()
	cli := engineClient(t)
	logFrom := engine.LogSize()
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(engine.ErrorsSince(logFrom, 60))
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		f := client.Filters{}.Add("label", swarm.LabelDeployment+"="+dep)
		if list, err := cli.ServiceList(ctx, client.ServiceListOptions{Filters: f}); err == nil {
			for _, s := range list.Items {
				if _, err := cli.ServiceRemove(ctx, s.ID, client.ServiceRemoveOptions{}); err != nil {
					t.Logf("cleanup: remove service %s: %v", s.Spec.Name, err)
				}
			}
		}
		if list, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f}); err == nil {
			for _, n := range list.Items {
				// The containers of services just removed leave the
				// network a moment later.
				began := time.Now()
				for {
					_, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
					if err == nil || cerrdefs.IsNotFound(err) {
						break
					}
					if time.Since(began) > 10*time.Second {
						// Worth knowing why: the test's time goes here.
						t.Logf("cleanup: network %s still not removed after %s: %v", n.Name, time.Since(began).Round(time.Second), err)
						began = time.Now()
					}
					if ctx.Err() != nil {
						t.Logf("cleanup: remove network %s: %v", n.Name, err)
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
		}
	})
	return dep
}

func engineClient(t testing.TB) *client.Client {
	t.Helper()
	cli, err := engine.Client()
	if err != nil {
		t.Fatalf("Docker client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// open returns a plugin configured for deployment dep, with extra
// attributes.
func open(t testing.TB, dep string, extra map[string]any) *swarm.Plugin {
	t.Helper()
	p := swarm.New(testutil.PluginLogger(t))
	if err := p.Configure(context.Background(), sdk.Config{JSON: config(extra), Deployment: dep, APIVersion: backend.APIVersion}); err != nil {
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

// start is testutil.StartService with a small reservation of cores when
// spec has none.
func start(t *testing.T, ctx context.Context, p backend.Backend, net string, spec backend.ServiceSpec) backend.ServiceStatus {
	t.Helper()
	if spec.Resources.Cores == 0 {
		spec.Resources.Cores = 0.01
	}
	return testutil.StartService(t, ctx, p, net, spec)
}

// subscribe opens an event stream until ctx ends.
func subscribe(t *testing.T, ctx context.Context, p backend.Backend) <-chan backend.Event {
	t.Helper()
	events, err := p.Events(ctx)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	return events
}

// updateNode changes swarm node id's spec with f. The swarm updates its
// node objects too (the allocator, as tasks come and go on the node): an
// update of a version read before one of those is "out of sequence", and
// is made again on the node as it is now, as the swarm's versioned
// updates are meant to be used (the plugin's markStopped does the same).
func updateNode(t testing.TB, ctx context.Context, cli *client.Client, id string, f func(*swarmtypes.NodeSpec)) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		res, err := cli.NodeInspect(ctx, id, client.NodeInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		spec := res.Node.Spec
		f(&spec)
		_, err = cli.NodeUpdate(ctx, id, client.NodeUpdateOptions{Version: res.Node.Version, Spec: spec})
		if err == nil {
			return
		}
		if attempt >= 5 || !strings.Contains(err.Error(), "out of sequence") {
			t.Fatalf("update node %s (attempt %d): %v", id, attempt, err)
		}
	}
}

// checkAnswer checks that w, a testimages.Worker asking target, got its
// answer: it exited with 0, having written "answer: hello from <target>".
func checkAnswer(t *testing.T, ctx context.Context, p backend.Backend, events <-chan backend.Event, w backend.ServiceStatus, target string) {
	t.Helper()
	if e := testutil.WaitEvent(t, ctx, events, w.Name, backend.EventExited); e.ExitCode != 0 {
		t.Errorf("the worker asking %s exited with %d: %q", target, e.ExitCode, testutil.LogLines(t, ctx, p, w.Handle))
		return
	}
	want := "answer: hello from " + target
	if lines := testutil.LogLines(t, ctx, p, w.Handle); !slices.ContainsFunc(lines, func(e backend.LogEntry) bool { return string(e.Line) == want }) {
		t.Errorf("the worker's output %q: want a line %q", lines, want)
	}
}

// waitHello waits until a testimages.HTTPService answers at a published
// port, "hello from <host>" (any host when host is empty).
func waitHello(t *testing.T, ctx context.Context, pp backend.PublishedPort, host string) {
	t.Helper()
	url := fmt.Sprintf("http://%s:%d/", pp.HostAddress, pp.HostPort)
	hc := &http.Client{Timeout: 2 * time.Second}
	testutil.WaitUntil(t, ctx, url+" to answer", func() (bool, string) {
		resp, err := hc.Get(url)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.HasPrefix(string(body), "hello from "+host), string(body)
	})
}
