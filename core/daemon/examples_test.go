package daemon

// Every example ZApp runs: each entry of examples/shop with its default
// parameters and each ZApp of examples/docker, through a real daemon, on
// the real Docker engine (with the analytics images `make images` builds
// for the shop, and the test images for examples/docker; dask-0 in
// analytics_test.go), on a swarm, on Kubernetes, and on
// backend-sim with the nodes of examples/sim.hcl. A ZApp that can never fit
// the nodes is refused at submission, through the API.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	zoeclient "github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/testutil"
)

// exampleWait bounds each wait of these tests: a loaded machine starts
// containers slowly, and dask-0 starts two orders one after the other.
const exampleWait = 2 * time.Minute

// example is one ZApp to run: a shop entry or a file of examples/docker.
type example struct {
	name string
	shop string // the shop entry's id, or
	file string // the file in examples/docker
	// ends: a batch ZApp, which must end terminated with code 0 on Docker.
	ends bool
}

var examples = []example{
	{name: "hello", file: "hello.json"},
	{name: "cluster", file: "cluster.json"},
	{name: "notebook", shop: "notebook-0"},
	{name: "dask", shop: "dask-0"},
	{name: "batch", shop: "batch-0", ends: true},
}

// TestExamplesCoverEverything: examples lists every shop entry and every
// file of examples/docker, so a new one is run too.
func TestExamplesCoverEverything(t *testing.T) {
	root := moduleRoot(t)
	var want, got []string
	files, err := filepath.Glob(filepath.Join(root, "examples", "docker", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		want = append(want, "docker/"+filepath.Base(f))
	}
	manifests, err := filepath.Glob(filepath.Join(root, "examples", "shop", "*", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range manifests {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		var man struct{ ZApps []json.RawMessage }
		if err := json.Unmarshal(b, &man); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		for i := range man.ZApps {
			want = append(want, fmt.Sprintf("shop/%s-%d", filepath.Base(filepath.Dir(m)), i))
		}
	}
	for _, ex := range examples {
		if ex.shop != "" {
			got = append(got, "shop/"+ex.shop)
		} else {
			got = append(got, "docker/"+ex.file)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("examples run %v, want %v", got, want)
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// submitExample starts ex as c's, through the shop for a shop entry.
func submitExample(t *testing.T, c apiClient, ex example) zoeclient.Execution {
	t.Helper()
	body := map[string]any{"name": ex.name}
	if ex.shop != "" {
		body["shop"] = map[string]any{"id": ex.shop}
	} else {
		body["description"] = exampleApp(t, ex.file)
	}
	var raw json.RawMessage
	if code := c.do("POST", "/executions", body, &raw); code != http.StatusCreated {
		t.Fatalf("start %s: %d %s", ex.name, code, raw)
	}
	var out zoeclient.Execution
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// awaitLong is apiClient.await with exampleWait as its bound.
func awaitLong(t *testing.T, c apiClient, id int64, status ...string) zoeclient.Execution {
	t.Helper()
	var ex zoeclient.Execution
	var last string
	for deadline := time.Now().Add(exampleWait); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ex = c.execution(id)
		if slices.Contains(status, ex.Status) {
			return ex
		}
		if ex.Status == "error" || ex.Status == "terminated" {
			break
		}
		last = fmt.Sprintf("%s %s %s", ex.Status, ex.WaitingReason, ex.ErrorMessage)
	}
	t.Fatalf("execution %d: %s %s (waiting: %s), want %v; last seen: %s", id, ex.Status, ex.ErrorMessage,
		ex.WaitingReason, status, last)
	return ex
}

// TestExamplesOnDocker runs every example, one after the other, through a
// real `zoe server` on the Docker engine, sharing it with the other Docker
// tests (holdCores): all but dask-0, which TestDaskOnDocker runs (with
// much more: a computation, a worker killed and replaced, the dashboard)
// and which reserves 1.75 cores of the 2 here, so would need the engine
// alone.
func TestExamplesOnDocker(t *testing.T) {
	t.Parallel()
	env := newDockerEnv(t)
	testutil.RequireAnalyticsImages(t, env.cli)
	// The backend block of examples/zoe.hcl as it is (the file's last),
	// instead of the test's own.
	cfg, err := os.ReadFile(env.file)
	if err != nil {
		t.Fatal(err)
	}
	block := lastBlock(t, "zoe.hcl", `backend "docker" {`)
	text := strings.Replace(string(cfg), "backend \"docker\" {}\n", block, 1)
	if text == string(cfg) {
		t.Fatal(`the test's configuration has no backend "docker" {} to replace`)
	}
	text += fmt.Sprintf("shop_dir = %q\n", filepath.Join(moduleRoot(t), "examples", "shop"))
	if err := os.WriteFile(env.file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	env.start(t)
	holdCores(t, false)

	for _, ex := range examples {
		if ex.name == "dask" {
			continue // TestDaskOnDocker
		}
		t.Run(ex.name, func(t *testing.T) {
			runExample(t, env, env.user(t, "alice"), ex)
		})
	}
}

// exampleEnv is what runExample needs of a deployment on a Docker engine
// or a swarm: a container's name for an instance (a swarm service's on a
// swarm), what it wrote, the wait for an execution's objects to go, and
// where a user's workspace is.
type exampleEnv interface {
	container(id int64, instance string) string
	logs(name string) string
	gone(t *testing.T, id int64)
	home(user string) string
}

// runExample runs ex as alice and checks it does what it says: a batch
// ends with code 0 and its script's result in the workspace, a notebook
// answers through Zoe's proxy, workers reach their master, Dask's
// scheduler lists its workers on its pages; then it is terminated and
// leaves nothing behind.
func runExample(t *testing.T, env exampleEnv, alice apiUser, ex example) {
	t.Helper()
	if ex.name == "batch" {
		writeBatchScript(t, env.home("alice"))
	}
	started := submitExample(t, alice.apiClient, ex)
	if ex.ends {
		end := awaitLong(t, alice.apiClient, started.ID, "terminated")
		if end.ExitCode == nil || *end.ExitCode != 0 || end.ErrorMessage != "" {
			t.Errorf("ended %s, code %v, error %q; want terminated with code 0", end.Status, end.ExitCode, end.ErrorMessage)
		}
	} else {
		awaitLong(t, alice.apiClient, started.ID, "running")
	}
	run := alice.execution(started.ID)
	switch ex.name {
	case "batch":
		b, err := os.ReadFile(filepath.Join(env.home("alice"), "zoe-batch-result.txt"))
		if err != nil || string(b) != "main.py ran as alice in /mnt/workspace\n" {
			t.Errorf("the batch's result file: %q %v", b, err)
		}
	case "notebook":
		checkNotebook(t, alice, run, "notebook0")
	case "dask":
		checkNotebook(t, alice, run, "notebook0")
		checkDashboard(t, alice, run)
	case "cluster":
		name := env.container(run.ID, "worker0")
		waitUntil(t, "worker0 answered by the master", func() (bool, string) {
			l := env.logs(name)
			return strings.Contains(l, "answer: hello from "+env.container(run.ID, "master0")), l
		})
	}
	if !ex.ends {
		alice.terminate(started.ID)
		awaitLong(t, alice.apiClient, started.ID, "terminated")
	}
	env.gone(t, started.ID)
}

// writeBatchScript puts the main.py that batch-0 runs by default in the
// workspace at dir (made as the workspace plugin makes it, when missing):
// it writes where and as whom it ran.
func writeBatchScript(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	const script = `import getpass, os
with open("zoe-batch-result.txt", "w") as f:
    f.write(f"main.py ran as {getpass.getuser()} in {os.getcwd()}\n")
`
	path := filepath.Join(dir, "main.py")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	// The workspace's owner, 1000:1000 for alice; the script is hers.
	for _, p := range []string{dir, path} {
		if err := os.Chown(p, 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
}

// lastBlock is the block of examples/<file> that starts a line with start:
// from there to the end of the file, of which it must be the last block.
func lastBlock(t *testing.T, file, start string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "examples", file))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), "\n"+start)
	if i < 0 {
		t.Fatalf("examples/%s has no line starting with %s", file, start)
	}
	return string(b[i+1:]) + "\n"
}

// checkNotebook opens the Jupyter notebook of instance through Zoe's
// proxy, the way its endpoint's link leads, as its owner.
func checkNotebook(t *testing.T, alice apiUser, run zoeclient.Execution, instance string) {
	t.Helper()
	i := slices.IndexFunc(run.Endpoints, func(e zoeclient.Endpoint) bool {
		return e.Service == instance && e.Name == "Jupyter Notebook"
	})
	want := fmt.Sprintf("/proxy/%d/%s/8888/tree", run.ID, instance)
	if i < 0 || !strings.HasSuffix(run.Endpoints[i].URL, want) {
		t.Fatalf("no notebook endpoint leading to %s for %s: %+v", want, instance, run.Endpoints)
	}
	nb := notebookThroughProxy(alice.apiClient, run.ID, instance)
	nb.waitReady(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, page, err := nb.do(ctx, "GET", "/tree", nil)
	if err != nil || code != http.StatusOK || !strings.Contains(string(page), "<title>Home Page - Select or create a notebook</title>") {
		t.Errorf("the notebook's page through the proxy: %d %.300s %v", code, page, err)
	}
}

// checkDashboard reads the Dask scheduler's workers page through the
// proxy (its endpoint's link): it lists the four workers.
func checkDashboard(t *testing.T, alice apiUser, run zoeclient.Execution) {
	t.Helper()
	dash := notebookThroughProxy(alice.apiClient, run.ID, "scheduler0")
	dash.base = strings.TrimSuffix(dash.base, "/8888") + "/8787"
	waitUntil(t, "the scheduler's workers page listing 4 workers", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		code, page, err := dash.do(ctx, "GET", "/info/main/workers.html", nil)
		n := 0
		for w := range 4 {
			if strings.Contains(string(page), fmt.Sprintf("worker%d", w)) {
				n++
			}
		}
		return code == http.StatusOK && n == 4, fmt.Sprintf("%d, %d workers named, %v", code, n, err)
	})
}

// TestExamplesOnSim runs every example at once on backend-sim with the
// nodes of examples/sim.hcl (its backend block as it is), and checks that
// what can never fit them is refused with the reason.
func TestExamplesOnSim(t *testing.T) {
	t.Parallel()
	// Its state_file defaults to one under this test's data_dir.
	cfg := strings.Replace(baseConfig, `deployment_name = "unit"`, `deployment_name = "simexamples"`, 1) +
		fmt.Sprintf("shop_dir = %q\n", filepath.Join(moduleRoot(t), "examples", "shop")) +
		lastBlock(t, "sim.hcl", `backend "sim" {`)
	_, opts, _ := setup(t, cfg)
	addr := serveDaemon(t, opts)
	alice := apiClient{t: t, base: "http://" + addr.String() + "/api/v1", user: "alice", pass: "wonderland"}

	ids := map[string]int64{}
	for _, ex := range examples {
		ids[ex.name] = submitExample(t, alice, ex).ID
	}
	for _, ex := range examples {
		// A batch job runs for default_run (1h) on the simulated nodes.
		run := awaitLong(t, alice, ids[ex.name], "running")
		for _, s := range run.Services {
			if s.Status == "running" && s.Node == "old1" {
				t.Errorf("%s: %s placed on the disabled node old1", ex.name, s.Name)
			}
		}
	}

	// Labels no node of examples/sim.hcl has: refused, with where and why.
	desc := strings.Replace(string(exampleApp(t, "hello.json")), `"name": "web",`, `"name": "web", "labels": ["tpu"],`, 1)
	var e zoeclient.Error
	code := alice.do("POST", "/executions", map[string]any{"name": "tpu", "description": json.RawMessage(desc)}, &e)
	want := zoeclient.Detail{Path: "description.services[0].labels", Message: "requires labels [tpu] that no node has (the nodes' labels are gpu, spark, ssd)"}
	if code != http.StatusBadRequest || e.Error.Code != "invalid_argument" || !slices.Contains(e.Error.Details, want) {
		t.Errorf("a ZApp requiring labels no node has: %d %+v, want the detail %+v", code, e, want)
	}
}

// TestShopEntryNeverFits: starting a shop entry goes through the same check
// as a description: an entry asking for nodes labelled spark (dask-0 with
// labels), which the nodes of simConfig are not, is refused.
func TestShopEntryNeverFits(t *testing.T) {
	t.Parallel()
	// The example shop, its Dask entry asking for the label spark.
	shop := t.TempDir()
	if err := os.CopyFS(shop, os.DirFS(filepath.Join(moduleRoot(t), "examples", "shop"))); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(shop, "dask", "manifest.json")
	m, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	labelled := strings.Replace(string(m), `"disabled_for": ["guest"],`, `"disabled_for": ["guest"], "labels": ["spark"],`, 1)
	if labelled == string(m) {
		t.Fatal("examples/shop/dask/manifest.json has no disabled_for line to add labels after")
	}
	if err := os.WriteFile(manifest, []byte(labelled), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := simConfig + fmt.Sprintf("shop_dir = %q\n", shop)
	_, opts, _ := setup(t, cfg)
	addr := serveDaemon(t, opts)
	alice := apiClient{t: t, base: "http://" + addr.String() + "/api/v1", user: "alice", pass: "wonderland"}
	var e zoeclient.Error
	code := alice.do("POST", "/executions", map[string]any{"name": "dask", "shop": map[string]any{"id": "dask-0"}}, &e)
	if code != http.StatusBadRequest || e.Error.Code != "invalid_argument" || !slices.ContainsFunc(e.Error.Details, func(d zoeclient.Detail) bool {
		return strings.HasSuffix(d.Path, "services[0].labels") && d.Message == "requires labels [spark] that no node has (no node has any label)"
	}) {
		t.Errorf("dask-0 with labels, on nodes without them: %d %+v", code, e)
	}
	// What fits is accepted.
	notebook := submitExample(t, alice, example{name: "notebook", shop: "notebook-0"})
	awaitLong(t, alice, notebook.ID, "running")
}
