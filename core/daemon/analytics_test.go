package daemon

// The example shop's Dask entry, dask-0, on the real analytics images
// (make images) through a real `zoe server` on the Docker engine: a Dask
// computation run from a notebook kernel reached through Zoe's proxy (REST
// and WebSocket), against the scheduler by its DNS name, writing its
// result to the owner's workspace as the owner; an elastic worker killed
// in the middle of a computation, replaced by Zoe, and the computation
// finishing; the scheduler's dashboard through the proxy; the proxy's
// doors; nothing left after the end.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dockerclient "github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testutil"
)

// daskCell is what a user's first cell does: connect to the cluster Zoe
// made (Client() reads DASK_SCHEDULER_ADDRESS), wait for its four workers,
// compute, and save the result in the workspace.
const daskCell = `
import os, pwd
import dask.array as da
from distributed import Client
client = Client(timeout=60)
client.wait_for_workers(4, timeout=300)
print("scheduler", client.scheduler.address)
total = da.ones((4000, 4000), chunks=500).sum().compute()
with open("dask-result.txt", "w") as f:
    f.write(f"{total}\n")
print("sum", total, "workers", len(client.scheduler_info()["workers"]), "user", pwd.getpwuid(os.getuid()).pw_name)
`

// slowCell spreads 80 tasks of a second each over the workers' threads;
// it says when they are all submitted, so that a worker can be killed
// while they run.
const slowCell = `
import time
def slow(i):
    time.sleep(1)
    return i * i
futures = client.map(slow, range(80), pure=False)
print("submitted", flush=True)
print("slow total", sum(client.gather(futures)))
`

func TestDaskOnDocker(t *testing.T) {
	t.Parallel()
	env := newDockerEnv(t)
	testutil.RequireAnalyticsImages(t, env.cli)
	f, err := os.OpenFile(env.file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(f, "shop_dir = %q\n", filepath.Join(moduleRoot(t), "examples", "shop"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	env.start(t)
	holdCores(t, true) // the cluster reserves 1.75 cores of the 2 here
	alice, bob := env.user(t, "alice"), env.user(t, "bob")

	ex := submitExample(t, alice.apiClient, example{name: "dask", shop: "dask-0"})
	awaitLong(t, alice.apiClient, ex.ID, "running")
	// The elastic workers start as soon as they fit, after the rest.
	waitUntil(t, "the four workers running", func() (bool, string) {
		run := alice.execution(ex.ID)
		n, states := 0, []string{}
		for _, s := range run.Services {
			states = append(states, s.Name+" "+s.Status)
			if strings.HasPrefix(s.Name, "worker") && s.Status == "running" {
				n++
			}
		}
		return n == 4, strings.Join(states, ", ")
	})
	checkDashboard(t, alice, alice.execution(ex.ID))

	nb := notebookThroughProxy(alice.apiClient, ex.ID, "notebook0")
	version := nb.waitReady(t)
	t.Logf("Jupyter %s answers through the proxy", version)
	checkDoors(t, env, ex.ID, nb, bob)
	checkNoTokenArgs(t, env, env.container(ex.ID, "notebook0"))

	kernel := nb.startKernel(t)
	k := nb.connect(t, kernel)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	out, err := k.execute(ctx, daskCell, nil)
	if err != nil {
		t.Fatalf("the Dask cell: %v", err)
	}
	// An instance's DNS name is its container's name.
	scheduler := fmt.Sprintf("tcp://%s:8786", env.container(ex.ID, "scheduler0"))
	for _, want := range []string{"scheduler " + scheduler, "sum 16000000.0 workers 4 user alice"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("the Dask cell printed %q, want the line %q", out, want)
		}
	}
	// The result is in alice's workspace, hers.
	path := filepath.Join(env.home("alice"), "dask-result.txt")
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "16000000.0\n" {
		t.Errorf("%s: %q %v", path, b, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 1000 || fi.Sys().(*syscall.Stat_t).Gid != 1000 {
		t.Errorf("%s is not alice's (1000:1000): %v", path, err)
	}

	// An elastic worker killed while the tasks run: Zoe starts it again,
	// and Dask computes what it lost on the others.
	victim := env.container(ex.ID, "worker3")
	before := env.containers(t, ex.ID)[victim]
	killed := make(chan error, 1)
	out, err = k.execute(ctx, slowCell, func(text string) {
		if strings.Contains(text, "submitted") {
			// Let every worker take tasks first.
			time.Sleep(2 * time.Second)
			_, err := env.cli.ContainerKill(ctx, victim, dockerclient.ContainerKillOptions{Signal: "KILL"})
			killed <- err
		}
	})
	if err != nil {
		t.Fatalf("the slow cell: %v", err)
	}
	select {
	case err := <-killed:
		if err != nil {
			t.Fatalf("docker kill %s: %v", victim, err)
		}
	default:
		t.Fatal("the slow cell never said its tasks were submitted")
	}
	if want := "slow total 167480\n"; !strings.Contains(out, want) {
		t.Errorf("the slow cell printed %q, want %q", out, want)
	}
	waitUntil(t, "worker3 replaced and running", func() (bool, string) {
		id := env.containers(t, ex.ID)[victim]
		run := alice.execution(ex.ID)
		for _, s := range run.Services {
			if s.Name == "worker3" {
				return id != "" && id != before && s.Status == "running" && run.Status == "running",
					fmt.Sprintf("container %s (was %s), service %s, execution %s", id, before, s.Status, run.Status)
			}
		}
		return false, "no worker3"
	})
	// The replacement joins the cluster.
	out, err = k.execute(ctx, `client.wait_for_workers(4, timeout=300); print("workers", len(client.scheduler_info()["workers"]))`, nil)
	if err != nil || !strings.Contains(out, "workers 4\n") {
		t.Errorf("after the replacement: %q %v", out, err)
	}

	alice.terminate(ex.ID)
	awaitLong(t, alice.apiClient, ex.ID, "terminated")
	env.gone(t, ex.ID)
	// Once terminated, the proxy's path is gone at once.
	if code, _, err := nb.do(context.Background(), "GET", "/api", nil); err != nil || code != http.StatusNotFound {
		t.Errorf("the notebook after the end: %d %v, want 404", code, err)
	}
}

// checkDoors: the notebook answers only its owner through the proxy, and
// does not let in whoever reaches its published port without Zoe.
func checkDoors(t *testing.T, env *dockerEnv, id int64, nb jupyterServer, bob apiUser) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	anonymous := nb
	anonymous.user = ""
	if code, b, err := anonymous.do(ctx, "GET", "/api/contents", nil); err != nil || code != http.StatusUnauthorized {
		t.Errorf("anonymous through the proxy: %d %.200s %v, want 401", code, b, err)
	}
	other := notebookThroughProxy(bob.apiClient, id, "notebook0")
	if code, b, err := other.do(ctx, "GET", "/api/contents", nil); err != nil || code != http.StatusForbidden {
		t.Errorf("bob through the proxy: %d %.200s %v, want 403", code, b, err)
	}
	if code, b, err := nb.do(ctx, "GET", "/api/contents", nil); err != nil || code != http.StatusOK {
		t.Errorf("alice's contents through the proxy: %d %.200s %v", code, b, err)
	}
	// The published port, without Zoe's proxy: Jupyter wants the token
	// only Zoe's proxy presents.
	run := env.user(t, "alice").execution(id)
	for _, ep := range run.Endpoints {
		if ep.Service != "notebook0" || ep.ExternalPort == 0 {
			continue
		}
		direct := jupyterServer{base: fmt.Sprintf("http://%s:%d%s", ep.ExternalAddress, ep.ExternalPort,
			strings.TrimPrefix(nb.base, strings.TrimSuffix(env.user(t, "alice").base, "/api/v1")))}
		code, b, err := direct.do(ctx, "GET", "/api/contents", nil)
		if err != nil || code != http.StatusForbidden {
			t.Errorf("the notebook's published port without the token: %d %.200s %v, want 403", code, b, err)
		}
		return
	}
	t.Errorf("no published port of notebook0: %+v", run.Endpoints)
}

// checkNoTokenArgs: no process of the container has a token on its
// command line, which every user of the host reads (ps): Jupyter gets its
// token (Zoe's proxy token) in its environment.
func checkNoTokenArgs(t *testing.T, env *dockerEnv, container string) {
	t.Helper()
	top, err := env.cli.ContainerTop(context.Background(), container, dockerclient.ContainerTopOptions{})
	if err != nil {
		t.Fatalf("the processes of %s: %v", container, err)
	}
	cmd := slices.Index(top.Titles, "CMD")
	if cmd < 0 || len(top.Processes) == 0 {
		t.Fatalf("the processes of %s: no CMD column or no process: %+v", container, top)
	}
	for _, p := range top.Processes {
		if strings.Contains(strings.ToLower(p[cmd]), "token") {
			t.Errorf("%s runs %q: a token on a command line", container, p[cmd])
		}
	}
}
