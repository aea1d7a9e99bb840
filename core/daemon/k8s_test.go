package daemon

// End to end through a real `zoe server` with the Kubernetes back-end, on a
// real control plane (etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler of make kube-bins) whose nodes kwok simulates: pods go
// Running without containers, and end when the test says so (an annotation
// kwok's stages follow), as a program exiting would. The plugin has only
// the rights examples/k8s/rbac.yaml gives, and the backend block is
// examples/k8s.hcl's. What needs real containers (DNS between services,
// endpoints answering, files in the workspace) is shown by the Docker
// tests, and on Kubernetes by make test-kubelet.

import (
	"crypto/rand"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	zoeclient "github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
)

// k8sSetUp builds the Kubernetes back-end plugin once for every test of
// the package that needs it.
var k8sSetUp = sync.OnceValue(func() error {
	if err := testutil.Build(binDir, map[string]string{"zoe-plugin-backend-k8s": "plugins/backend-k8s"}); err != nil {
		return fmt.Errorf("building the Kubernetes back-end plugin: %w", err)
	}
	return nil
})

// k8sEnv is a deployment of its own on the test control plane: its own
// namespace with the rights of examples/k8s/rbac.yaml, its own kwok node
// (the plugin's node_selector picks it alone, so the package's tests do
// not place pods on each other's nodes), its own users and workspaces.
type k8sEnv struct {
	c    *testutil.KubeCluster
	dep  string
	ns   string
	node string
	file string // the configuration
	ws   string // the workspaces' base path
	addr string // the API's, once started

	logs map[string]*testutil.KubePodLog // by pod name
}

func newK8sEnv(t *testing.T, nodeLabels map[string]string) *k8sEnv {
	t.Helper()
	c := kube.Cluster(t)
	if err := k8sSetUp(); err != nil {
		t.Fatal(err)
	}
	id := strings.ToLower(rand.Text()[:6])
	env := &k8sEnv{c: c, dep: "kt" + id, ns: "zoe-kt" + id, node: "kn" + id, logs: map[string]*testutil.KubePodLog{}}

	rbac, err := os.ReadFile(filepath.Join(moduleRoot(t), "examples", "k8s", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The example's namespace and cluster-wide names, made this test's.
	text := strings.ReplaceAll(string(rbac), "zoe-k8s", env.ns)
	text = strings.ReplaceAll(text, "name: zoe-backend", "name: zoe-backend-"+id)
	c.Apply(t, []byte(text))
	_, kubeconfig := c.ServiceAccount(t, env.ns, "zoe")
	c.AddNode(t, env.node, 8, "16Gi", nodeLabels)

	// examples/k8s.hcl's backend block as it is, but for this test's
	// cluster, namespace and node.
	block := lastBlock(t, "k8s.hcl", `backend "k8s" {`)
	ns := `namespace        = "zoe-k8s"`
	if !strings.Contains(block, ns) {
		t.Fatalf("examples/k8s.hcl's backend block has no line %s", ns)
	}
	block = strings.Replace(block, ns, fmt.Sprintf("namespace = %q", env.ns), 1)
	kc := `kubeconfig = "../.zoe/k8s-kubeconfig"`
	if !strings.Contains(block, kc) {
		t.Fatalf("examples/k8s.hcl's backend block has no line %s", kc)
	}
	block = strings.Replace(block, kc, fmt.Sprintf("kubeconfig = %q\n  node_selector = %q", kubeconfig, "kubernetes.io/hostname="+env.node), 1)
	env.file, env.ws = writeConfig(t, env.dep, block)
	return env
}

// writeConfig writes, in a directory of t's, the users of writeUsers and
// a configuration of deployment dep with the example shop, a users file,
// directory workspaces and backend block; it returns the configuration's
// path and the workspaces' base path.
func writeConfig(t *testing.T, dep, block string) (file, ws string) {
	t.Helper()
	dir := t.TempDir()
	writeUsers(t, dir)
	cfg := fmt.Sprintf("listen = %q\ndeployment_name = %q\ndata_dir = \"data\"\nshop_dir = %q\n", anyPort, dep,
		filepath.Join(moduleRoot(t), "examples", "shop")) +
		"auth \"file\" {\n  users_file = \"users.csv\"\n}\nworkspace \"dir\" {\n  base_path = \"ws\"\n}\n" + block
	file = filepath.Join(dir, "zoe.hcl")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, filepath.Join(dir, "ws")
}

func (env *k8sEnv) start(t *testing.T) *zoeServer {
	t.Helper()
	s := startZoe(t, env.file)
	env.addr = s.addr
	return s
}

func (env *k8sEnv) user(t *testing.T, name string) apiUser {
	return apiUser{apiClient{t: t, base: "http://" + env.addr + "/api/v1", user: name, pass: "pw-" + name}}
}

// k8sObject is what these tests read of a pod or a Service.
type k8sObject struct {
	Metadata struct {
		Name   string            `json:"name"`
		UID    string            `json:"uid"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		NodeName        string `json:"nodeName"`
		SecurityContext struct {
			RunAsUser    *int64 `json:"runAsUser"`
			RunAsGroup   *int64 `json:"runAsGroup"`
			RunAsNonRoot *bool  `json:"runAsNonRoot"`
		} `json:"securityContext"`
		Containers []struct {
			SecurityContext struct {
				AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
				Capabilities             struct {
					Drop []string `json:"drop"`
				} `json:"capabilities"`
			} `json:"securityContext"`
		} `json:"containers"`
		Volumes []k8sVolume `json:"volumes"`
		Ports   []struct {
			Port     int `json:"port"`
			NodePort int `json:"nodePort"`
		} `json:"ports"`
		ClusterIP string `json:"clusterIP"`
	} `json:"spec"`
	Status struct {
		Phase string `json:"phase"`
	} `json:"status"`
}

type k8sVolume struct {
	Name     string `json:"name"`
	HostPath *struct {
		Path string `json:"path"`
	} `json:"hostPath"`
}

// list lists the deployment's objects of a kind ("pods", "services",
// "networkpolicies"), of execution id when given, by name.
func (env *k8sEnv) list(t *testing.T, kind string, ids ...int64) map[string]k8sObject {
	t.Helper()
	sel := "zoe.deployment=" + env.dep
	for _, id := range ids {
		sel += fmt.Sprintf(",zoe.execution=%d", id)
	}
	group := "/api/v1"
	if kind == "networkpolicies" {
		group = "/apis/networking.k8s.io/v1"
	}
	var out struct{ Items []k8sObject }
	env.c.MustDo(t, "GET", group+"/namespaces/"+env.ns+"/"+kind+"?labelSelector="+url.QueryEscape(sel), nil, &out)
	m := map[string]k8sObject{}
	for _, o := range out.Items {
		m[o.Metadata.Name] = o
	}
	return m
}

// pods maps the names of the pods of execution id (of the deployment when
// none) to their UIDs.
func (env *k8sEnv) pods(t *testing.T, ids ...int64) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, p := range env.list(t, "pods", ids...) {
		out[name] = p.Metadata.UID
	}
	return out
}

// submit starts a ZApp as c's (through the shop for a shop entry) and
// gives each of its pods a log, which kwok serves as a kubelet would a
// container's: without one, asking for a pod's output is an error for ever.
// The pods may run before kwok knows their logs; Zoe asks again.
func (env *k8sEnv) submit(t *testing.T, c apiUser, ex example) zoeclient.Execution {
	t.Helper()
	started := submitExample(t, c.apiClient, ex)
	services := c.execution(started.ID).Services
	if len(services) == 0 {
		t.Fatalf("execution %d submitted without services", started.ID)
	}
	for _, s := range services {
		name := env.pod(started.ID, s.Name)
		env.logs[name] = env.c.PodLog(t, env.ns, name)
	}
	return started
}

// pod is the name of an instance's pod.
func (env *k8sEnv) pod(id int64, instance string) string {
	return fmt.Sprintf("%s-%d-%s", instance, id, env.dep)
}

// exit ends a running pod's containers with code, as its program would.
func (env *k8sEnv) exit(t *testing.T, pod string, code int, reason string) {
	t.Helper()
	env.c.ExitPod(t, env.ns, pod, code, reason)
}

// gone waits until an execution has no pod, Service or network policy
// left: none labelled with it, nor named after its pods (a pod's NodePort
// Service and policy carry the pod's name, not the execution's label).
func (env *k8sEnv) gone(t *testing.T, id int64) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("the objects of execution %d removed", id), func() (bool, string) {
		var left []string
		for _, kind := range []string{"pods", "services", "networkpolicies"} {
			for name, o := range env.list(t, kind) {
				if o.Metadata.Labels["zoe.execution"] == fmt.Sprint(id) || strings.Contains(name, fmt.Sprintf("-%d-%s", id, env.dep)) {
					left = append(left, kind+"/"+name)
				}
			}
		}
		return len(left) == 0, strings.Join(left, " ")
	})
}

// TestK8sEndToEnd runs ZApps through one `zoe server` on the Kubernetes
// back-end: the scenarios of TestDockerEndToEnd that need no program
// running in the containers. The subtests share it and run in order.
func TestK8sEndToEnd(t *testing.T) {
	t.Parallel()
	env := newK8sEnv(t, nil)
	srv := env.start(t)
	alice, bob := env.user(t, "alice"), env.user(t, "bob")
	outer := t

	cluster := env.submit(t, alice, example{name: "cluster", file: "cluster.json"})
	hello := env.submit(t, bob, example{name: "hello", file: "hello.json"})
	batches := []struct {
		name, status string
		code         int
		reason       string // the pod's containers' terminated reason
		message      string // in the execution's error message
		id           int64
	}{
		{name: "job exits 0", status: "terminated"},
		{name: "job exits 3", status: "error", code: 3, message: "essential service job0 exited with code 3"},
		{name: "OOM-killed", status: "error", code: 137, reason: "OOMKilled", message: "essential service job0 was OOM-killed"},
	}
	for i := range batches {
		ex := alice.submit(batches[i].name, batchApp(t, testimages.Job, 64*mib))
		env.logs[env.pod(ex.ID, "job0")] = env.c.PodLog(t, env.ns, env.pod(ex.ID, "job0"))
		batches[i].id = ex.ID
	}

	ok := t.Run("three services run", func(t *testing.T) {
		alice := env.user(t, "alice")
		alice.await(cluster.ID, "running")
		waitUntil(t, "every instance running", func() (bool, string) {
			run := alice.execution(cluster.ID)
			var st []string
			for _, s := range run.Services {
				st = append(st, s.Name+":"+s.Status)
			}
			slices.Sort(st)
			return slices.Equal(st, []string{"master0:running", "notebook0:running", "worker0:running", "worker1:running"}) &&
				run.Status == "running", strings.Join(st, " ") + " " + run.Status
		})
		pods := env.list(t, "pods", cluster.ID)
		for _, inst := range []string{"master0", "notebook0", "worker0", "worker1"} {
			p, ok := pods[env.pod(cluster.ID, inst)]
			if !ok || p.Status.Phase != "Running" || p.Spec.NodeName != env.node {
				t.Errorf("pod of %s: %+v, want Running on %s", inst, p, env.node)
			}
		}
		if len(pods) != 4 {
			t.Errorf("%d pods, want 4", len(pods))
		}
		network := fmt.Sprintf("zoe-%s-%d", env.dep, cluster.ID)
		if s, ok := env.list(t, "services", cluster.ID)[network]; !ok || s.Spec.ClusterIP != "None" {
			t.Errorf("the execution's headless Service %s: %+v", network, s)
		}
		if _, ok := env.list(t, "networkpolicies", cluster.ID)[network]; !ok {
			t.Errorf("no network policy %s", network)
		}
	})
	if !ok {
		t.FailNow()
	}

	t.Run("pods run as the owner, without privileges, on the owner's workspace", func(t *testing.T) {
		for name, p := range env.list(t, "pods", cluster.ID) {
			sc := p.Spec.SecurityContext
			if sc.RunAsUser == nil || *sc.RunAsUser != 1000 || sc.RunAsGroup == nil || *sc.RunAsGroup != 1000 ||
				sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				t.Errorf("%s: pod security context %+v, want alice's 1000:1000, non-root", name, sc)
			}
			for _, c := range p.Spec.Containers {
				csc := c.SecurityContext
				if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation || !slices.Equal(csc.Capabilities.Drop, []string{"ALL"}) {
					t.Errorf("%s: container security context %+v, want no privilege escalation, every capability dropped", name, csc)
				}
			}
			want := filepath.Join(env.ws, env.dep, "alice")
			if !slices.ContainsFunc(p.Spec.Volumes, func(v k8sVolume) bool { return v.HostPath != nil && v.HostPath.Path == want }) {
				t.Errorf("%s: no hostPath volume of %s: %+v", name, want, p.Spec.Volumes)
			}
		}
	})

	t.Run("the notebook's endpoint is its NodePort on the node", func(t *testing.T) {
		run := env.user(t, "alice").execution(cluster.ID)
		i := slices.IndexFunc(run.Endpoints, func(e zoeclient.Endpoint) bool { return e.Service == "notebook0" })
		if i < 0 {
			t.Fatalf("no endpoint for notebook0: %+v", run.Endpoints)
		}
		ep := run.Endpoints[i]
		svc, ok := env.list(t, "services")[env.pod(cluster.ID, "notebook0")+"-ports"]
		if !ok || len(svc.Spec.Ports) != 1 {
			t.Fatalf("notebook0's NodePort Service: %+v", svc)
		}
		// Every kwok node's InternalIP is 127.0.0.1.
		if ep.ExternalAddress != "127.0.0.1" || ep.ExternalPort != svc.Spec.Ports[0].NodePort ||
			ep.URL != fmt.Sprintf("http://127.0.0.1:%d/", ep.ExternalPort) {
			t.Errorf("endpoint %+v, want 127.0.0.1 and the Service's node port %d", ep, svc.Spec.Ports[0].NodePort)
		}
	})

	t.Run("a service's output reaches its log", func(t *testing.T) {
		alice := env.user(t, "alice")
		s, _ := service(alice.execution(cluster.ID), "notebook0")
		line := "notebook token: " + strings.ToLower(rand.Text())
		env.logs[env.pod(cluster.ID, "notebook0")].Add(t, time.Now(), "stdout", line)
		waitUntil(t, "the line in notebook0's log", func() (bool, string) {
			l := serviceLog(t, alice.apiClient, s.ID)
			return strings.Contains(l, line), l
		})
	})

	t.Run("batch exit codes and OOM", func(t *testing.T) {
		for _, b := range batches {
			t.Run(b.name, func(t *testing.T) {
				c := env.user(t, "alice")
				c.await(b.id, "running")
				env.exit(t, env.pod(b.id, "job0"), b.code, b.reason)
				checkEnded(t, c.await(b.id, "terminated", "error"), b.status, b.code, b.message)
				env.gone(t, b.id)
			})
		}
	})

	t.Run("terminate removes every pod, Service and policy", func(t *testing.T) {
		c := env.user(t, "bob")
		c.await(hello.ID, "running")
		if n := len(env.pods(t, hello.ID)); n != 1 {
			t.Fatalf("before: %d pods", n)
		}
		c.terminate(hello.ID)
		c.await(hello.ID, "terminated")
		env.gone(t, hello.ID)
	})

	t.Run("a killed elastic worker is replaced", func(t *testing.T) {
		alice := env.user(t, "alice")
		name := env.pod(cluster.ID, "worker1")
		before := env.pods(t, cluster.ID)[name]
		env.exit(t, name, 137, "Error")
		waitUntil(t, "worker1 replaced", func() (bool, string) {
			ex := alice.execution(cluster.ID)
			s, _ := service(ex, "worker1")
			now := env.pods(t, cluster.ID)[name]
			return s.RestartCount == 1 && s.Status == "running" && now != "" && now != before,
				fmt.Sprintf("%s, worker1 %s %q restarts %d, pod %s (before %s)", ex.Status, s.Status, s.ErrorMessage, s.RestartCount, now, before)
		})
		if ex := alice.execution(cluster.ID); ex.Status != "running" {
			t.Errorf("the execution is %s after an elastic worker died", ex.Status)
		}
	})

	t.Run("a daemon killed with SIGKILL adopts what runs", func(t *testing.T) {
		before := env.pods(t)
		if len(before) != 4 {
			t.Fatalf("before: %v, want the cluster's 4 pods", before)
		}
		srv.kill(t)
		srv = env.start(outer) // stopped when the whole test ends
		alice := env.user(t, "alice")
		alice.await(cluster.ID, "running")
		// Several passes of the restarted engine (one a second) change
		// nothing: the same pods, none made again.
		deadline := time.Now().Add(4 * time.Second)
		for time.Now().Before(deadline) {
			if got := env.pods(t); !maps.Equal(got, before) {
				t.Fatalf("pods after the restart: %v, before %v", got, before)
			}
			time.Sleep(200 * time.Millisecond)
		}
		for _, s := range alice.execution(cluster.ID).Services {
			if want := map[bool]int{true: 1}[s.Name == "worker1"]; s.Status != "running" || s.RestartCount != want {
				t.Errorf("%s after the restart: %s, restarts %d", s.Name, s.Status, s.RestartCount)
			}
		}
	})

	t.Run("an essential service killed ends the execution", func(t *testing.T) {
		alice := env.user(t, "alice")
		env.exit(t, env.pod(cluster.ID, "master0"), 137, "Error")
		ex := alice.await(cluster.ID, "terminated", "error")
		const reason = "essential service master0 exited with code 137"
		if ex.Status != "terminated" || !hasEvent(ex, "cleaning_up", reason) {
			t.Errorf("%s %q, events %+v; want terminated because %q", ex.Status, ex.ErrorMessage, ex.Events, reason)
		}
		env.gone(t, cluster.ID)
	})

	for _, kind := range []string{"pods", "services", "networkpolicies"} {
		if left := env.list(t, kind); len(left) != 0 {
			t.Errorf("%s left behind: %v", kind, slices.Collect(maps.Keys(left)))
		}
	}
}

// TestExamplesOnK8s runs every example, one after the other, through a
// real `zoe server` with examples/k8s.hcl's backend block on kwok nodes;
// a batch ends when the test ends its pod with code 0.
func TestExamplesOnK8s(t *testing.T) {
	t.Parallel()
	env := newK8sEnv(t, nil)
	env.start(t)
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			alice := env.user(t, "alice")
			started := env.submit(t, alice, ex)
			run := awaitLong(t, alice.apiClient, started.ID, "running")
			var want []string
			for _, s := range run.Services {
				want = append(want, env.pod(run.ID, s.Name))
				if s.Status != "running" {
					t.Errorf("%s is %s", s.Name, s.Status)
				}
			}
			slices.Sort(want)
			if got := slices.Sorted(maps.Keys(env.pods(t, run.ID))); !slices.Equal(got, want) {
				t.Errorf("pods %v, want %v", got, want)
			}
			for _, e := range run.Endpoints {
				if e.ExternalPort == 0 || e.ExternalAddress != "127.0.0.1" {
					t.Errorf("endpoint %+v, want a node port on 127.0.0.1", e)
				}
			}
			if ex.ends {
				for _, s := range run.Services {
					env.exit(t, env.pod(run.ID, s.Name), 0, "")
				}
				end := awaitLong(t, alice.apiClient, started.ID, "terminated")
				if end.ExitCode == nil || *end.ExitCode != 0 || end.ErrorMessage != "" {
					t.Errorf("ended %s, code %v, error %q; want terminated with code 0", end.Status, end.ExitCode, end.ErrorMessage)
				}
			} else {
				alice.terminate(started.ID)
				awaitLong(t, alice.apiClient, started.ID, "terminated")
			}
			env.gone(t, started.ID)
		})
	}
}

// TestK8sQuotaRefusal: a namespace ResourceQuota that refuses a pod makes
// the execution fail with the cluster's message, and leaves nothing.
func TestK8sQuotaRefusal(t *testing.T) {
	t.Parallel()
	env := newK8sEnv(t, nil)
	env.c.MustDo(t, "POST", "/api/v1/namespaces/"+env.ns+"/resourcequotas", map[string]any{
		"metadata": map[string]any{"name": "small"},
		"spec":     map[string]any{"hard": map[string]string{"requests.memory": "32Mi"}}}, nil)
	env.start(t)
	alice := env.user(t, "alice")
	ex := alice.submit("too big", batchApp(t, testimages.Job, 64*mib))
	env.c.PodLog(t, env.ns, env.pod(ex.ID, "job0"))
	end := alice.await(ex.ID, "error")
	if !strings.Contains(end.ErrorMessage, "exceeded quota: small") {
		t.Errorf("error %q, want the cluster's refusal (exceeded quota: small)", end.ErrorMessage)
	}
	env.gone(t, ex.ID)
	var e zoeclient.Error
	if code := alice.do("GET", fmt.Sprintf("/executions/%d", ex.ID), nil, &e); code != http.StatusOK {
		t.Errorf("GET the failed execution: %d %+v", code, e)
	}
}
