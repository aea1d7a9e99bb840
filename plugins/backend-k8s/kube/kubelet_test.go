package kube_test

// The Kubernetes back-end on a real node: a kubelet with containerd's CRI
// beside the control plane (testutil.AddRealNode), running the test images
// as containers. Run by make test-kubelet, as root; skipped otherwise.

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/plugintest"
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
	// The owner's workspace: a directory of this machine, which is the
	// node, open to the owner's uid alone.
	ws := filepath.Join(t.TempDir(), "alice")
	if err := os.Mkdir(ws, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(ws, 12345, 23456); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(ws), 0o755); err != nil {
		t.Fatal(err)
	}
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
		out := filepath.Join(ws, "job-output.txt")
		b, err := os.ReadFile(out)
		if err != nil || string(b) != "from the job\n" {
			t.Fatalf("%s: %q %v", out, b, err)
		}
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 12345 || st.Gid != 23456 {
			t.Errorf("%s belongs to %d:%d, want the owner's 12345:23456", out, st.Uid, st.Gid)
		}
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
