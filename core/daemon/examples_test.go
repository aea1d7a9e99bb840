package daemon

// Every example ZApp runs: each entry of examples/shop with its default
// parameters and each ZApp of examples/docker, through a real daemon, on
// the real Docker engine (with the images `make test-images` builds) and on
// backend-sim with the nodes of examples/sim.hcl. A ZApp that can never fit
// the nodes is refused at submission, through the API.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	zoeclient "github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/testutil"
)

// exampleWait bounds each wait of these tests: a loaded machine starts
// containers slowly, and spark-0 starts three orders one after the other.
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
	{name: "spark", shop: "spark-0"},
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
// real `zoe server` on the Docker engine, while no other Docker test runs
// (holdCores).
func TestExamplesOnDocker(t *testing.T) {
	t.Parallel()
	env := newDockerEnv(t)
	// The backend block of examples/zoe.hcl as it is (the file's last),
	// which labels the local engine for spark-0, instead of the test's own.
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
	holdCores(t, true) // spark-0 takes every core left

	for _, ex := range examples {
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
// ends with code 0 and its result in the workspace, a notebook answers on
// its endpoint, workers reach their master; then it is terminated and
// leaves nothing behind.
func runExample(t *testing.T, env exampleEnv, alice apiUser, ex example) {
	t.Helper()
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
		if err != nil || !strings.Contains(string(b), `would have run "python3 main.py" with 4 threads`) {
			t.Errorf("the batch's result file: %q %v", b, err)
		}
	case "notebook":
		checkNotebook(t, env, run, "notebook0")
	case "spark":
		want := "answer: hello from " + env.container(run.ID, "spark-master0")
		name := env.container(run.ID, "spark-worker0")
		waitUntil(t, "spark-worker0 answered by the master", func() (bool, string) {
			l := env.logs(name)
			return strings.Contains(l, want), l
		})
		checkNotebook(t, env, run, "spark-notebook0")
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

var tokenLine = regexp.MustCompile(`token: ([0-9a-f]{32})`)

// checkNotebook asks the notebook stand-in's published page without its
// token (refused) and with the one in its log (the stand-in's page).
func checkNotebook(t *testing.T, env exampleEnv, run zoeclient.Execution, instance string) {
	t.Helper()
	i := slices.IndexFunc(run.Endpoints, func(e zoeclient.Endpoint) bool {
		return e.Service == instance && e.Name == "Jupyter Notebook"
	})
	if i < 0 || run.Endpoints[i].ExternalPort == 0 {
		t.Fatalf("no published notebook endpoint for %s: %+v", instance, run.Endpoints)
	}
	url := run.Endpoints[i].URL
	// Running is when the container started, not when it listens: the
	// page is asked for until it answers, and must answer with a refusal.
	waitUntil(t, "the notebook refusing a request without the token", func() (bool, string) {
		page, err := httpGet(url)
		return err != nil && strings.Contains(page, "Notebook stand-in: open this page with ?token="), fmt.Sprintf("%q %v", page, err)
	})
	var token string
	waitUntil(t, "the notebook's token in its log", func() (bool, string) {
		l := env.logs(env.container(run.ID, instance))
		m := tokenLine.FindStringSubmatch(l)
		if m != nil {
			token = m[1]
		}
		return m != nil, l
	})
	page, err := httpGet(url + "?token=" + token)
	if err != nil || !strings.Contains(page, "This is a stand-in for a Jupyter notebook") {
		t.Errorf("GET %s with the token: %q %v", url, page, err)
	}
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
// as a description: spark-0 asks for nodes labelled spark, which the nodes
// of simConfig are not.
func TestShopEntryNeverFits(t *testing.T) {
	t.Parallel()
	cfg := simConfig + fmt.Sprintf("shop_dir = %q\n", filepath.Join(moduleRoot(t), "examples", "shop"))
	_, opts, _ := setup(t, cfg)
	addr := serveDaemon(t, opts)
	alice := apiClient{t: t, base: "http://" + addr.String() + "/api/v1", user: "alice", pass: "wonderland"}
	var e zoeclient.Error
	code := alice.do("POST", "/executions", map[string]any{"name": "spark", "shop": map[string]any{"id": "spark-0"}}, &e)
	if code != http.StatusBadRequest || e.Error.Code != "invalid_argument" || !slices.ContainsFunc(e.Error.Details, func(d zoeclient.Detail) bool {
		return strings.HasSuffix(d.Path, "services[0].labels") && d.Message == "requires labels [spark] that no node has (no node has any label)"
	}) {
		t.Errorf("spark-0 on nodes without the label: %d %+v", code, e)
	}
	// What fits is accepted.
	notebook := submitExample(t, alice, example{name: "notebook", shop: "notebook-0"})
	awaitLong(t, alice, notebook.ID, "running")
}
