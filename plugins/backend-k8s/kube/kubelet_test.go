package kube_test

// The Kubernetes back-end on a real node: a kubelet with containerd's CRI
// beside the control plane (testutil.AddRealNode), running the test images
// as containers. Run by make test-kubelet, as root; skipped otherwise.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zoe-project/zoe/core/engine"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/internal/jupyter"
	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/plugintest"
	"github.com/zoe-project/zoe/sdk/workspace"
)

// TestKubelet runs the conformance suite with the probe and the logs, and
// an execution of several services, on one real node; the subtests share
// it and run in order.
func TestKubelet(t *testing.T) {
	c := cluster.Cluster(t)
	node := c.AddRealNode(t)
	id := strings.ToLower(rand.Text()[:8])
	s := &setup{c: c, deployment: "k" + id, namespace: c.Namespace(t), node: node.Name}
	// pod_ip: there is no kube-proxy, so no node port answers; this
	// machine routes to the pods' bridge. The images are those imported
	// into the node's containerd: never pulled.
	s.cfg = map[string]any{"kubeconfig": c.Kubeconfig, "namespace": s.namespace, "pod_pids_limit": node.PodsLimit,
		"pending_timeout": "2m", "endpoint_mode": "pod_ip", "image_pull_policy": "Never",
		"termination_grace_seconds": 5}
	failed := func() {
		if t.Failed() {
			t.Logf("the end of kubelet.log:\n%s", node.LogTail("kubelet", 60))
		}
	}
	t.Cleanup(failed)

	t.Run("conformance", func(t *testing.T) {
		plugintest.RunBackendConformance(t, plugintest.BackendSuite{
			New: func(t *testing.T) backend.Backend { return s.open(t) },
			Process: func(t *testing.T) (string, sdk.Config) {
				return pluginBinary, s.config(t)
			},
			LongRunning: func() backend.ServiceSpec {
				// It prints a line on stdout and one on stderr when it
				// starts, and "terminated" on SIGTERM.
				return backend.ServiceSpec{Image: testimages.HTTPService, Node: node.Name,
					Ports:     []backend.Port{{Port: 8080, Protocol: "tcp", Name: "http"}},
					Resources: backend.Resources{Cores: 0.1, MemoryLimit: 64 << 20, MemoryReservation: 32 << 20}}
			},
			Exiting: func() backend.ServiceSpec {
				return backend.ServiceSpec{Image: testimages.Job, Node: node.Name, Environment: map[string]string{"EXIT_CODE": "3"}}
			},
			Timeout:    2 * wait,
			ProbeImage: testimages.Probe,
			// Checked from this machine's side in "an execution".
			PidsLimitAbove: "the kubelet's podPidsLimit is the pod's cgroup's, above the container's",
		})
	})

	t.Run("an execution", func(t *testing.T) { checkRealExecution(t, s, node) })

	t.Run("the shop's Dask ZApp", func(t *testing.T) { checkDask(t, s, node) })
}

// checkRealExecution runs what an execution of a ZApp makes through the
// back-end: a service with a port, a service reaching it, and a batch job
// writing to the owner's workspace and ending with its exit code.
func checkRealExecution(t *testing.T, s *setup, node *testutil.RealNode) {
	p := s.open(t)
	// A hang bound for the whole execution, its pods' starts included.
	ctx, cancel := context.WithTimeout(context.Background(), 3*wait)
	defer cancel()
	events, err := p.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The services end in any order: the exits seen while waiting for
	// another's are kept.
	exits := map[string]backend.Event{}
	exited := func(t *testing.T, name string) backend.Event {
		t.Helper()
		for {
			if e, ok := exits[name]; ok {
				return e
			}
			select {
			case e, ok := <-events:
				if !ok {
					t.Fatalf("event stream closed before %s exited", name)
				}
				if e.Kind == backend.EventExited {
					exits[e.ServiceName] = e
				}
			case <-ctx.Done():
				t.Fatalf("%s did not exit", name)
			}
		}
	}
	netName := "zoe-" + s.deployment + "-7"
	net, err := p.CreateNetwork(ctx, backend.NetworkSpec{Name: netName, Labels: map[string]string{"zoe.execution": "7"}})
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	ws := ownersWorkspace(t, 12345, 23456)
	spec := func(name, image string, env map[string]string) backend.ServiceSpec {
		return backend.ServiceSpec{Name: name + "-7-" + s.deployment, Hostname: name + "-7-" + s.deployment, Image: image,
			User: "12345:23456", Node: s.node, Network: net, ExecutionID: "7", Environment: env,
			Labels:    map[string]string{"zoe.execution": "7", "zoe.owner": "alice@example.org"},
			Resources: backend.Resources{Cores: 0.1, MemoryReservation: 16 << 20, MemoryLimit: 64 << 20},
			Volumes:   []backend.Volume{{HostPath: ws, MountPoint: "/mnt/workspace"}}}
	}
	start := func(sp backend.ServiceSpec) backend.ServiceStatus {
		t.Helper()
		st, err := p.Start(ctx, sp)
		if err != nil {
			t.Fatalf("Start %s: %v", sp.Name, err)
		}
		t.Cleanup(func() { _ = p.Remove(ctxFor(t), st.Handle, true) })
		return st
	}

	masterSpec := spec("master", testimages.HTTPService, map[string]string{"TICK": "200ms"})
	masterSpec.Ports = []backend.Port{{Port: 8080, Protocol: "tcp", Name: "http"}}
	master := start(masterSpec)
	job := start(spec("job", testimages.Job, map[string]string{"EXIT_CODE": "3", "CONTENT": "from the job",
		"OUTPUT": "/mnt/workspace/job-output.txt"}))
	worker := start(spec("worker", testimages.Worker, map[string]string{"MASTER": masterSpec.Hostname + ":8080", "GIVE_UP": "1m"}))

	t.Run("the endpoint answers at the pod's address", func(t *testing.T) {
		if master.State != backend.ServiceRunning || len(master.Ports) != 1 || master.Ports[0].HostAddress != master.IP ||
			master.Ports[0].HostPort != 8080 || master.IP == "" {
			t.Fatalf("status %+v: want running, port 8080 at its pod's address", master)
		}
		url := fmt.Sprintf("http://%s:%d/", master.Ports[0].HostAddress, master.Ports[0].HostPort)
		page, err := httpGet(url)
		if want := "hello from " + masterSpec.Hostname; err != nil || strings.TrimSpace(page) != want {
			t.Errorf("GET %s: %q %v, want %q", url, page, err, want)
		}
	})

	t.Run("the worker reaches the master by its host name", func(t *testing.T) {
		e := exited(t, worker.Name)
		logs := readLogs(t, p, worker.Handle, backend.LogOptions{})
		if want := "answer: hello from " + masterSpec.Hostname + "\n"; e.ExitCode != 0 || !strings.Contains(logs, want) {
			t.Errorf("worker exited %d with log %q, want 0 and %q", e.ExitCode, logs, want)
		}
	})

	t.Run("the process limit on the pod's cgroup", func(t *testing.T) {
		if got, want := node.PodCgroupValue(t, master.Handle.ID, "pids", "pids.max"), fmt.Sprint(node.PodsLimit); got != want {
			t.Errorf("pids.max of the master's pod: %s, want %s", got, want)
		}
	})

	t.Run("a job's exit code and its file in the workspace, the owner's", func(t *testing.T) {
		e := exited(t, job.Name)
		if e.ExitCode != 3 {
			t.Errorf("exit event %+v: want code 3", e)
		}
		st, err := p.Inspect(ctx, job.Handle)
		if err != nil || st.State != backend.ServiceExited || st.ExitCode != 3 {
			t.Errorf("Inspect: %+v %v: want exited 3", st, err)
		}
		checkOwnedFile(t, filepath.Join(ws, "job-output.txt"), "from the job\n", 12345, 23456)
		logs := readLogs(t, p, job.Handle, backend.LogOptions{})
		if !strings.Contains(logs, "wrote /mnt/workspace/job-output.txt\n") || !strings.Contains(logs, "exiting with 3\n") {
			t.Errorf("the job's log: %q", logs)
		}
	})

	t.Run("logs: tail, then follow", func(t *testing.T) {
		lctx := ctxFor(t)
		ch, err := p.Logs(lctx, master.Handle, backend.LogOptions{Follow: true, Tail: 2})
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		var last time.Time
		// The two last lines so far, then new ticks as they come: the
		// service ticks every 200 ms.
		for len(lines) < 6 {
			select {
			case e, ok := <-ch:
				if !ok {
					t.Fatalf("the stream ended after %q", lines)
				}
				if e.Time.Before(last) {
					t.Errorf("line %q at %s, before the one before it (%s)", e.Line, e.Time, last)
				}
				last = e.Time
				lines = append(lines, strings.TrimSuffix(string(e.Line), "\n"))
			case <-lctx.Done():
				t.Fatalf("following: only %q", lines)
			}
		}
		for _, l := range lines[2:] {
			if !strings.HasPrefix(l, "tick ") {
				t.Errorf("followed %q: want ticks", lines)
				break
			}
		}
	})
}

// readLogs reads a service's log to its end (no Follow).
func readLogs(t *testing.T, p backend.Backend, h backend.Handle, opts backend.LogOptions) string {
	t.Helper()
	ch, err := p.Logs(ctxFor(t), h, opts)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	var b strings.Builder
	for e := range ch {
		b.Write(e.Line)
		if len(e.Line) == 0 || e.Line[len(e.Line)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func httpGet(url string) (string, error) {
	resp, err := (&http.Client{Timeout: wait}).Get(url) // a hang bound
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}

// daskCode runs in a notebook kernel: a Dask array summed on the ZApp's
// workers (the client finds the scheduler by $DASK_SCHEDULER_ADDRESS), the
// workers' names, and the sum written to the workspace.
const daskCode = `from distributed import Client; c = Client(timeout=60); c.wait_for_workers(2, timeout=300); import dask.array as da; s = da.ones((2000,2000), chunks=500).sum().compute(); print("sum", s)
print("workers", sorted(w["name"] for w in c.scheduler_info()["workers"].values()))
import os
with open(os.path.join(os.environ["ZOE_WORKSPACE"], "dask-sum.txt"), "w") as f:
    print("sum", s, file=f)
c.close()
`

// checkDask runs the shop's Dask entry (examples/shop/dask/dask.json) as
// the core would, expanded by core/zapp: the scheduler, two workers (the
// essential one and an elastic one) and the notebook, found by their DNS
// names on the execution's headless Service. It computes on the workers
// from a notebook kernel, through Jupyter's REST and WebSocket API at the
// notebook's pod address, then stops everything.
func checkDask(t *testing.T, s *setup, node *testutil.RealNode) {
	// The images of the shop's Dask entry.
	node.NeedImages(t, "make images", "zoe/dask-scheduler:bookworm-1", "zoe/dask-worker:bookworm-1", "zoe/notebook-dask:bookworm-1")
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	desc, err := os.ReadFile(filepath.Join(root, "examples", "shop", "dask", "dask.json"))
	if err != nil {
		t.Fatalf("the shop's Dask entry: %v", err)
	}
	app, err := zapp.Load(desc, zapp.DefaultLimits())
	if err != nil {
		t.Fatalf("the shop's Dask entry: %v", err)
	}
	const execNum, uid, gid = 8, 12345, 23456
	execID := strconv.Itoa(execNum)
	ws := ownersWorkspace(t, uid, gid)
	u, g := uint32(uid), uint32(gid)
	insts, err := zapp.Expand(app, zapp.ExpandContext{ExecutionID: execID, ExecutionName: "dask", UserName: "alice",
		UID: &u, GID: &g, Deployment: s.deployment, ProxyBase: "/zoe/proxy", Limits: zapp.DefaultLimits()})
	if err != nil {
		t.Fatal(err)
	}
	// The essential instances (scheduler0, worker0, notebook0) and the
	// first elastic worker, in Expand's order, as the engine starts them.
	var run []zapp.Instance
	for _, in := range insts {
		if in.Essential || in.Name == "worker1" {
			run = append(run, in)
		}
	}
	if got := instanceNames(run); got != "scheduler0 worker0 notebook0 worker1" {
		t.Fatalf("instances %s: want scheduler0 worker0 notebook0 worker1", got)
	}

	p := s.open(t)
	// A hang bound: four pods of big images on a loaded machine, Python's
	// imports, then a computation.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	netName := "zoe-" + s.deployment + "-" + execID
	net, err := p.CreateNetwork(ctx, backend.NetworkSpec{Name: netName, Labels: map[string]string{"zoe.execution": execID}})
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	removed := false
	t.Cleanup(func() {
		if !removed {
			_ = p.RemoveNetwork(ctxFor(t), net)
		}
	})
	token := strings.ToLower(rand.Text())
	var started []backend.ServiceStatus
	var notebook backend.ServiceStatus
	var notebookPrefix string
	for _, in := range run {
		// What the core's engine would ask for.
		sp := engine.Spec(in, engine.Placement{Deployment: s.deployment, ExecutionID: execNum, Owner: "alice@example.org",
			Store: "kubelet-test", Node: s.node, Network: net, Workspace: workspace.Mount{HostPath: ws}})
		sp.User = fmt.Sprintf("%d:%d", uid, gid)
		if in.Service == "notebook" {
			// Zoe's proxy token, which the notebook image takes as
			// Jupyter's token; the test presents it as Zoe's proxy
			// would (Authorization: token).
			sp.Environment["ZOE_PROXY_TOKEN"] = token
			notebookPrefix = sp.Environment["REVERSE_PROXY_PATH_8888"]
		}
		st, err := p.Start(ctx, sp)
		if err != nil {
			t.Fatalf("Start %s: %v", sp.Name, err)
		}
		h := st.Handle
		t.Cleanup(func() { _ = p.Remove(ctxFor(t), h, true) })
		started = append(started, st)
		if in.Service == "notebook" {
			notebook = st
		}
	}
	if notebook.IP == "" || len(notebook.Ports) != 1 || notebook.Ports[0].HostPort != 8888 || notebookPrefix == "" {
		t.Fatalf("the notebook's status %+v, prefix %q: want port 8888 at its pod's address, under a prefix", notebook, notebookPrefix)
	}
	dump := func() {
		for _, st := range started {
			t.Logf("the log of %s:\n%s", st.Name, tailLines(readLogs(t, p, st.Handle, backend.LogOptions{}), 30))
		}
	}

	t.Run("a Dask computation from a notebook kernel", func(t *testing.T) {
		base := fmt.Sprintf("http://%s:%d%s", notebook.Ports[0].HostAddress, notebook.Ports[0].HostPort, notebookPrefix)
		out, err := runInNotebook(ctx, base, token, daskCode)
		if err != nil {
			dump()
			t.Fatal(err)
		}
		for _, want := range []string{"sum 4000000.0\n", "workers ['worker0', 'worker1']\n"} {
			if !strings.Contains(out, want) {
				dump()
				t.Fatalf("the kernel printed %q, want a line %q", out, want)
			}
		}
		checkOwnedFile(t, filepath.Join(ws, "dask-sum.txt"), "sum 4000000.0\n", uid, gid)
	})

	t.Run("stopped and removed, nothing left", func(t *testing.T) {
		// As the core ends an execution: each service stopped, then
		// removed, then the network.
		for i := len(started) - 1; i >= 0; i-- {
			st := started[i]
			if err := p.Stop(ctx, st.Handle, 10*time.Second); err != nil {
				t.Errorf("Stop %s: %v", st.Name, err)
			}
			if got, err := p.Inspect(ctx, st.Handle); err != nil || got.State != backend.ServiceExited {
				t.Errorf("%s after Stop: %+v %v, want exited", st.Name, got, err)
			}
			if err := p.Remove(ctx, st.Handle, true); err != nil {
				t.Errorf("Remove %s: %v", st.Name, err)
			}
		}
		if err := p.RemoveNetwork(ctx, net); err != nil {
			t.Errorf("RemoveNetwork: %v", err)
		}
		removed = true
		if list, err := p.List(ctx, backend.ListOptions{Labels: map[string]string{"zoe.execution": execID}}); err != nil || len(list) != 0 {
			t.Errorf("List after the removal: %+v %v, want nothing", list, err)
		}
		for _, st := range started {
			if _, code := s.pod(t, st.Name); code != http.StatusNotFound {
				t.Errorf("pod %s: status %d after its removal, want 404", st.Name, code)
			}
		}
		if _, code := s.c.Do(t, "GET", "/api/v1/namespaces/"+s.namespace+"/services/"+netName, nil); code != http.StatusNotFound {
			t.Errorf("the headless Service %s: status %d after RemoveNetwork, want 404", netName, code)
		}
	})
}

// ownersWorkspace makes the owner's workspace: a directory of this
// machine, which is the node, open to the owner's uid alone.
func ownersWorkspace(t *testing.T, uid, gid int) string {
	t.Helper()
	ws := filepath.Join(t.TempDir(), "alice")
	if err := os.Mkdir(ws, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(ws, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(ws), 0o755); err != nil {
		t.Fatal(err)
	}
	return ws
}

// checkOwnedFile checks a file a service wrote to the workspace: its
// content, and that it belongs to the uid:gid the service ran as (the
// owner's).
func checkOwnedFile(t *testing.T, file, content string, uid, gid uint32) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil || string(b) != content {
		t.Fatalf("%s: %q %v, want %q", file, b, err, content)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || st.Gid != gid {
		t.Errorf("%s belongs to %d:%d, want the owner's %d:%d", file, st.Uid, st.Gid, uid, gid)
	}
}

func instanceNames(ins []zapp.Instance) string {
	names := make([]string, len(ins))
	for i, in := range ins {
		names[i] = in.Name
	}
	return strings.Join(names, " ")
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// jupyterServer is a client of a Jupyter server under its base URL.
type jupyterServer struct {
	base, token string
	hc          *http.Client
}

// runInNotebook starts a kernel on the Jupyter server at base (its URL
// with the proxy's prefix), runs code in it over the kernel's WebSocket
// (internal/jupyter), shuts the kernel down and
// returns what the code printed.
func runInNotebook(ctx context.Context, base, token, code string) (string, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	j := &jupyterServer{base: strings.TrimRight(base, "/"), token: token, hc: &http.Client{Jar: jar, Timeout: wait}}
	// Jupyter answers once Python has imported it: long on a loaded
	// machine. The page sets the _xsrf cookie.
	var last string
	for {
		b, code, err := j.do(ctx, "GET", "/tree", nil)
		if err == nil && code == http.StatusOK {
			break
		}
		last = fmt.Sprint(code, " ", err, " ", tailLines(string(b), 3))
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("Jupyter at %s did not answer: %w; last: %s", j.base, ctx.Err(), last)
		case <-time.After(time.Second):
		}
	}
	b, status, err := j.do(ctx, "POST", "/api/kernels", strings.NewReader(`{"name": "python3"}`))
	if err != nil {
		return "", fmt.Errorf("starting a kernel: %w", err)
	}
	if status != http.StatusCreated {
		return "", fmt.Errorf("starting a kernel: status %d: %s", status, b)
	}
	var kernel struct{ ID string }
	if err := json.Unmarshal(b, &kernel); err != nil {
		return "", fmt.Errorf("starting a kernel: %q: %w", b, err)
	}
	if kernel.ID == "" {
		return "", fmt.Errorf("starting a kernel: no id in %q", b)
	}
	defer func() { _, _, _ = j.do(context.WithoutCancel(ctx), "DELETE", "/api/kernels/"+kernel.ID, nil) }()
	return j.execute(ctx, kernel.ID, code)
}

// do sends a request with the token (Authorization) and the _xsrf
// cookie's value (X-XSRFToken, once the cookie is set): Jupyter takes
// either, depending on whether its token is on.
func (j *jupyterServer) do(ctx context.Context, method, path string, body io.Reader) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, method, j.base+path, body)
	if err != nil {
		return nil, 0, err
	}
	req.Header = j.header(req.URL)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := j.hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

func (j *jupyterServer) header(u *url.URL) http.Header {
	h := http.Header{"Authorization": {"token " + j.token}}
	for _, c := range j.hc.Jar.Cookies(u) {
		if c.Name == "_xsrf" {
			h.Set("X-XSRFToken", c.Value)
		}
	}
	return h
}

// execute runs code in the kernel and returns its output on stdout and
// stderr; a Python exception is an error with its traceback.
func (j *jupyterServer) execute(ctx context.Context, kernel, code string) (string, error) {
	u, err := url.Parse(j.base + "/api/kernels/" + kernel + "/channels")
	if err != nil {
		return "", err
	}
	session := jupyter.NewID()
	u.RawQuery = url.Values{"session_id": {session}}.Encode()
	h := j.header(u)
	u.Scheme = "ws"
	conn, _, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return "", fmt.Errorf("the kernel's WebSocket: %w", err)
	}
	defer func() { _ = conn.CloseNow() }()
	x, err := jupyter.Run(ctx, conn, session, code, nil)
	if err == nil {
		_ = conn.Close(websocket.StatusNormalClosure, "")
	}
	return x.Output(), err
}
