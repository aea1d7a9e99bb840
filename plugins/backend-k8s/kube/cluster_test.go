package kube_test

// The Kubernetes back-end against a real control plane: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler built from
// their Go modules (make kube-bins), with kwok's simulated nodes, on which
// pods run without containers (internal/testutil.Kube). What kwok cannot
// show, a program's output and the policy seen from inside a container,
// needs a real kubelet: make test-kubelet (kubelet_test.go).

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/plugins/backend-k8s/kube"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/plugintest"
)

// wait bounds every wait for the cluster: a hang bound.
const wait = time.Minute

var (
	cluster      = testutil.NewKube()
	pluginBinary string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	defer cluster.Stop()
	dir, err := os.MkdirTemp("", "zoe-backend-k8s-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := testutil.Build(dir, map[string]string{"zoe-plugin-backend-k8s": "plugins/backend-k8s"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pluginBinary = filepath.Join(dir, "zoe-plugin-backend-k8s")
	return m.Run()
}

// setup is one test's corner of the cluster: a deployment of its own, in a
// namespace of its own, with a node of its own.
type setup struct {
	c          *testutil.KubeCluster
	deployment string
	namespace  string
	node       string
	cfg        map[string]any
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	c := cluster.Cluster(t)
	id := strings.ToLower(rand.Text()[:8])
	s := &setup{c: c, deployment: "d" + id, namespace: c.Namespace(t), node: "n" + id}
	c.AddNode(t, s.node, 8, "16Gi", map[string]string{"zoe.label/ssd": "true", "zoe.label/zone": "eu"})
	s.cfg = map[string]any{"kubeconfig": c.Kubeconfig, "namespace": s.namespace, "pod_pids_limit": 1024, "pending_timeout": "5s"}
	return s
}

func (s *setup) config(t *testing.T) sdk.Config {
	t.Helper()
	b, err := json.Marshal(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sdk.Config{JSON: b, Deployment: s.deployment, DataDir: t.TempDir(), ConfigDir: t.TempDir()}
}

// open configures a plugin in this process.
func (s *setup) open(t *testing.T) backend.Backend {
	t.Helper()
	p := kube.New(nil)
	if err := p.Configure(t.Context(), s.config(t)); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	// Its informers' watches end with the test.
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func service(name string) backend.ServiceSpec {
	return backend.ServiceSpec{Name: name, Hostname: name, Image: testimages.HTTPService, User: "12345:23456",
		Labels:    map[string]string{"zoe.execution": "1", "zoe.owner": "alice@example.org"},
		Resources: backend.Resources{Cores: 0.5, MemoryReservation: 32 << 20, MemoryLimit: 64 << 20},
		Ports:     []backend.Port{{Port: 8080, Protocol: "tcp"}}}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	plugintest.RunBackendConformance(t, plugintest.BackendSuite{
		New: func(t *testing.T) backend.Backend { return s.open(t) },
		Process: func(t *testing.T) (string, sdk.Config) {
			return pluginBinary, s.config(t)
		},
		// Every pod on this test's own node: the other tests' nodes go
		// when those tests end, and the cluster deletes the pods of a node
		// that is gone.
		LongRunning: func() backend.ServiceSpec {
			return backend.ServiceSpec{Image: testimages.HTTPService, Node: s.node,
				Ports:     []backend.Port{{Port: 8080, Protocol: "tcp", Name: "http"}},
				Resources: backend.Resources{Cores: 0.5, MemoryLimit: 64 << 20, MemoryReservation: 32 << 20}}
		},
		Exiting: func() backend.ServiceSpec {
			// kwok's stage of Zoe's tests ends a pod with the code of this
			// label, as the program would.
			return backend.ServiceSpec{Image: testimages.Job, Node: s.node, Environment: map[string]string{"EXIT_CODE": "3"},
				Labels: map[string]string{testutil.KubeExitCodeLabel: "3"}}
		},
		Timeout: wait,
		NoProbe: "kwok's nodes run no container; the policy is checked in the pod spec (TestPodPolicy)",
		NoLogs:  "kwok's nodes run no program, so there is no output",
	})
}

// pod reads a pod through the API server, as kubectl would.
func (s *setup) pod(t *testing.T, name string) (map[string]any, int) {
	t.Helper()
	b, code := s.c.Do(t, "GET", "/api/v1/namespaces/"+s.namespace+"/pods/"+name, nil)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out, code
}

func waitEvent(t *testing.T, ctx context.Context, events <-chan backend.Event, name string, kind backend.EventKind) backend.Event {
	t.Helper()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("event stream closed before %s of %s", kind, name)
			}
			if e.ServiceName == name && e.Kind == kind {
				return e
			}
		case <-ctx.Done():
			t.Fatalf("no %s event for %s", kind, name)
		}
	}
}

// TestLifecycle: a pod placed on the chosen node, its NodePort endpoint,
// exits with their codes and OOM, stop, remove.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	p := s.open(t)
	ctx := ctxFor(t)
	events, err := p.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	net, err := p.CreateNetwork(ctx, backend.NetworkSpec{Name: "zoe-" + s.deployment + "-1", Labels: map[string]string{"zoe.execution": "1"}})
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	start := func(name string) backend.ServiceStatus {
		t.Helper()
		spec := service(name + "-1-" + s.deployment)
		spec.Network, spec.Node = net, s.node
		st, err := p.Start(ctx, spec)
		if err != nil {
			t.Fatalf("Start %s: %v", name, err)
		}
		return st
	}

	web := start("web")
	t.Run("placed and published", func(t *testing.T) {
		if web.State != backend.ServiceRunning || web.Node != s.node || web.IP == "" {
			t.Errorf("status %+v: want running on %s with an address", web, s.node)
		}
		if len(web.Ports) != 1 || web.Ports[0].Port != 8080 || web.Ports[0].HostPort < 30000 || web.Ports[0].HostAddress == "" {
			t.Errorf("ports %+v: want 8080 on a node port of the node's address", web.Ports)
		}
		if web.Labels["zoe.owner"] != "alice@example.org" {
			t.Errorf("labels %v: want Zoe's, whole", web.Labels)
		}
		// The execution's pods reach each other; anyone its published
		// ports.
		for _, pol := range []string{net, web.Name + "-ports"} {
			if b, code := s.c.Do(t, "GET", "/apis/networking.k8s.io/v1/namespaces/"+s.namespace+"/networkpolicies/"+pol, nil); code != http.StatusOK {
				t.Errorf("network policy %s: %d %s", pol, code, b)
			}
		}
		pod, _ := s.pod(t, web.Name)
		spec, _ := pod["spec"].(map[string]any)
		if spec["subdomain"] != net || spec["hostname"] != web.Name {
			t.Errorf("pod spec: subdomain %v, hostname %v; want %s and %s", spec["subdomain"], spec["hostname"], net, web.Name)
		}
	})

	cases := []struct {
		name   string
		code   int
		reason string
		oom    bool
	}{
		{"done", 0, "", false},
		{"failed", 3, "", false},
		{"oom", 137, "OOMKilled", true},
	}
	for _, c := range cases {
		t.Run("exit "+c.name, func(t *testing.T) {
			st := start(c.name)
			s.c.ExitPod(t, s.namespace, st.Name, c.code, c.reason)
			if c.oom {
				waitEvent(t, ctx, events, st.Name, backend.EventOOMKilled)
			}
			if e := waitEvent(t, ctx, events, st.Name, backend.EventExited); e.ExitCode != c.code {
				t.Errorf("exit event %+v: want code %d", e, c.code)
			}
			got, err := p.Inspect(ctx, st.Handle)
			if err != nil || got.State != backend.ServiceExited || got.ExitCode != c.code || got.OOMKilled != c.oom {
				t.Errorf("Inspect = %+v, %v; want exited %d, OOM %t", got, err, c.code, c.oom)
			}
			if err := p.Remove(ctx, st.Handle, false); err != nil {
				t.Errorf("Remove: %v", err)
			}
		})
	}

	t.Run("stop keeps the pod", func(t *testing.T) {
		if err := p.Stop(ctx, web.Handle, time.Second); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		waitEvent(t, ctx, events, web.Name, backend.EventExited)
		got, err := p.Inspect(ctx, web.Handle)
		if err != nil || got.State != backend.ServiceExited {
			t.Errorf("Inspect after Stop = %+v, %v; want exited, still there", got, err)
		}
		if err := p.RemoveNetwork(ctx, net); err != nil {
			t.Errorf("RemoveNetwork once its pods ended: %v", err)
		}
		if _, code := s.c.Do(t, "GET", "/apis/networking.k8s.io/v1/namespaces/"+s.namespace+"/networkpolicies/"+net, nil); code != http.StatusNotFound {
			t.Errorf("the network's policy after RemoveNetwork: %d, want 404", code)
		}
	})

	t.Run("remove leaves nothing", func(t *testing.T) {
		if err := p.Remove(ctx, web.Handle, false); err != nil {
			t.Fatalf("Remove: %v", err)
		}
		if _, code := s.pod(t, web.Name); code != http.StatusNotFound {
			t.Errorf("the pod after Remove: %d, want 404", code)
		}
		// The NodePort Service goes with the pod.
		for _, kind := range []string{"/api/v1/namespaces/" + s.namespace + "/services", "/apis/networking.k8s.io/v1/namespaces/" + s.namespace + "/networkpolicies"} {
			if b, code := s.c.Do(t, "GET", kind, nil); code != http.StatusOK || strings.Contains(string(b), web.Name) {
				t.Errorf("%s after Remove (%d): %s", kind, code, b)
			}
		}
		if _, err := p.Inspect(ctx, web.Handle); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Inspect after Remove: %v, want not found", err)
		}
	})

	t.Run("deleted by someone else", func(t *testing.T) {
		st := start("gone")
		s.c.MustDo(t, "DELETE", "/api/v1/namespaces/"+s.namespace+"/pods/"+st.Name+"?gracePeriodSeconds=0", nil, nil)
		waitEvent(t, ctx, events, st.Name, backend.EventVanished)
		if _, err := p.Inspect(ctx, st.Handle); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Inspect: %v, want not found", err)
		}
	})
}

// TestLogs: a pod's output from the API server, which asks the node (kwok
// serves a file in a kubelet's format): every line with its time, tail,
// since, and a followed stream that ends once the pod has ended with every
// line sent, although kwok's own never ends.
func TestLogs(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	p := s.open(t)
	ctx := ctxFor(t)
	spec := service("logs-1-" + s.deployment)
	spec.Node, spec.Ports = s.node, nil
	log := s.c.PodLog(t, s.namespace, spec.Name)
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	for i := range 3 {
		log.Add(t, t0.Add(time.Duration(i)*time.Second), "stdout", fmt.Sprint("line ", i))
	}
	st, err := p.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	read := func(opts backend.LogOptions) []string {
		t.Helper()
		ch, err := p.Logs(ctx, st.Handle, opts)
		if err != nil {
			t.Fatalf("Logs(%+v): %v", opts, err)
		}
		var got []string
		for e := range ch {
			got = append(got, e.Time.Sub(t0).String()+" "+string(e.Line))
		}
		return got
	}
	// kwok learns of the pod's log by a watch of its own, maybe after the
	// pod runs: until then there is none to read.
	testutil.WaitFor(t, wait, "every line", func() (bool, string) {
		got, want := read(backend.LogOptions{}), []string{"0s line 0", "1s line 1", "2s line 2"}
		return slices.Equal(got, want), fmt.Sprintf("%q, want %q", got, want)
	})
	if got, want := read(backend.LogOptions{Tail: 1}), []string{"2s line 2"}; !slices.Equal(got, want) {
		t.Errorf("tail 1: %q, want %q", got, want)
	}
	if got, want := read(backend.LogOptions{Since: t0.Add(time.Second)}), []string{"1s line 1", "2s line 2"}; !slices.Equal(got, want) {
		t.Errorf("since line 1: %q, want %q", got, want)
	}

	ch, err := p.Logs(ctx, st.Handle, backend.LogOptions{Follow: true})
	if err != nil {
		t.Fatalf("Logs(follow): %v", err)
	}
	var got []string
	next := func() string {
		t.Helper()
		select {
		case e, ok := <-ch:
			if !ok {
				return "(closed)"
			}
			return e.Time.Sub(t0).String() + " " + string(e.Line)
		case <-ctx.Done():
			t.Fatal("the followed stream neither sent nor ended")
			return ""
		}
	}
	for range 3 {
		got = append(got, next())
	}
	// A line written while it follows, then one more in the same second
	// and the pod's end: both arrive, once each, and the stream ends.
	log.Add(t, t0.Add(3*time.Second), "stdout", "line 3")
	got = append(got, next())
	log.Add(t, t0.Add(3*time.Second), "stdout", "line 4")
	s.c.ExitPod(t, s.namespace, st.Name, 3, "")
	for {
		l := next()
		got = append(got, l)
		if l == "(closed)" {
			break
		}
	}
	if want := []string{"0s line 0", "1s line 1", "2s line 2", "3s line 3", "3s line 4", "(closed)"}; !slices.Equal(got, want) {
		t.Errorf("followed: %q, want %q", got, want)
	}

	// A service that writes nothing: the API server answers a follow only
	// with its first byte, which must hold neither Logs nor the stream's
	// end.
	quiet := service("quiet-1-" + s.deployment)
	quiet.Node, quiet.Ports = s.node, nil
	s.c.PodLog(t, s.namespace, quiet.Name)
	qs, err := p.Start(ctx, quiet)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	ch, err = p.Logs(ctx, qs.Handle, backend.LogOptions{Follow: true})
	if err != nil {
		t.Fatalf("Logs(follow) of a silent pod: %v", err)
	}
	s.c.ExitPod(t, s.namespace, qs.Name, 0, "")
	select {
	case e, ok := <-ch:
		if ok {
			t.Errorf("a silent pod's stream sent %+v", e)
		}
	case <-ctx.Done():
		t.Error("a silent pod's followed stream did not end after the pod ended")
	}
}

// TestNodes: the cluster's nodes with what Zoe needs of them: capacity,
// what other pods request, labels, cordoned and not ready.
func TestNodes(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	p := s.open(t)
	ctx := ctxFor(t)
	node := func() backend.Node {
		t.Helper()
		nodes, err := p.Nodes(ctx)
		if err != nil {
			t.Fatalf("Nodes: %v", err)
		}
		for _, n := range nodes {
			if n.Name == s.node {
				return n
			}
		}
		t.Fatalf("no node %s in %+v", s.node, nodes)
		return backend.Node{}
	}
	n := node()
	if n.Cores != 8 || n.MemoryBytes != 16<<30 || n.State != backend.NodeReady || n.Address == "" {
		t.Errorf("node %+v: want 8 cores, 16 GiB, ready, its InternalIP", n)
	}
	if !slices.Equal(n.Labels, []string{"ssd", "zone=eu"}) {
		t.Errorf("labels %q, want [ssd zone=eu]", n.Labels)
	}

	// Another workload's pod, not Zoe's, on the node.
	other := map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "other"},
		"spec": map[string]any{"nodeName": s.node, "containers": []any{map[string]any{"name": "c", "image": "other:1",
			"resources": map[string]any{"requests": map[string]string{"cpu": "1500m", "memory": "1Gi"}}}}},
	}
	// The plugin hears of changes through its informers: soon, not at
	// once.
	s.c.MustDo(t, "POST", "/api/v1/namespaces/"+s.namespace+"/pods", other, nil)
	testutil.WaitFor(t, 10*time.Second, "the other pod counted", func() (bool, string) {
		n := node()
		return n.CoresReserved == 1.5 && n.MemoryReserved == 1<<30,
			fmt.Sprintf("reserved %v cores, %d bytes; want the other pod's 1.5 and 1 GiB", n.CoresReserved, n.MemoryReserved)
	})
	s.c.MustDo(t, "DELETE", "/api/v1/namespaces/"+s.namespace+"/pods/other?gracePeriodSeconds=0", nil, nil)
	testutil.WaitFor(t, 10*time.Second, "the other pod's room back", func() (bool, string) {
		n := node()
		return n.CoresReserved == 0 && n.MemoryReserved == 0, fmt.Sprintf("reserved %v cores, %d bytes; want none", n.CoresReserved, n.MemoryReserved)
	})

	s.c.MustDo(t, "PATCH", "/api/v1/nodes/"+s.node, map[string]any{"spec": map[string]any{"unschedulable": true}}, nil)
	testutil.WaitFor(t, 10*time.Second, "the node cordoned", func() (bool, string) {
		n := node()
		return n.State == backend.NodeDisabled, fmt.Sprintf("cordoned node: %s (%s), want disabled", n.State, n.StateDetail)
	})

	// node_selector: only the nodes it selects (the other tests' nodes lack
	// this one's name).
	for _, c := range []struct {
		selector string
		want     []string
	}{
		{"kubernetes.io/hostname=" + s.node + ",zoe.label/zone=eu", []string{s.node}},
		{"kubernetes.io/hostname=" + s.node + ",zoe.label/zone!=eu", nil},
	} {
		s.cfg["node_selector"] = c.selector
		nodes, err := s.open(t).Nodes(ctx)
		var got []string
		for _, n := range nodes {
			got = append(got, n.Name)
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("node_selector %q: %v %v, want %v", c.selector, got, err, c.want)
		}
	}
}

// TestWorkspaceClaims: with workspace_claims, a service's workspace is its
// owner's claim, made from volume_storage_class when missing (and bound by
// the cluster to a volume of that class), the same for the owner's next
// service, kept when the services are removed.
func TestWorkspaceClaims(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	class := "zoe-test-" + s.deployment
	s.cfg["workspace_claims"], s.cfg["volume_storage_class"], s.cfg["volume_size"] = true, class, "1Gi"
	// The pods wait for the controller manager to bind their claim, which
	// a loaded machine can delay past the set-up's 5 s (a loop run saw
	// "unbound immediate PersistentVolumeClaims"): not what is tested here.
	s.cfg["pending_timeout"] = "2m"
	// Two volumes of the class, as a provisioner would make them.
	for i := range 2 {
		name := fmt.Sprintf("%s-%d", class, i)
		s.c.MustDo(t, "POST", "/api/v1/persistentvolumes", map[string]any{
			"metadata": map[string]any{"name": name},
			"spec": map[string]any{"storageClassName": class, "capacity": map[string]string{"storage": "1Gi"},
				"accessModes": []string{"ReadWriteMany"}, "hostPath": map[string]string{"path": "/srv/" + name}},
		}, nil)
		t.Cleanup(func() { s.c.Do(t, "DELETE", "/api/v1/persistentvolumes/"+name, nil) })
	}
	p := s.open(t)
	ctx := ctxFor(t)
	claim := ""
	for i := range 2 {
		spec := service(fmt.Sprintf("ws%d-1-%s", i, s.deployment))
		spec.Node, spec.Ports = s.node, nil
		spec.Volumes = []backend.Volume{{HostPath: "/srv/ws/alice", MountPoint: "/mnt/workspace"}}
		st, err := p.Start(ctx, spec)
		if err != nil {
			t.Fatalf("Start %s: %v", spec.Name, err)
		}
		pod, _ := s.pod(t, st.Name)
		b, _ := json.Marshal(pod["spec"])
		var got struct {
			Volumes []struct {
				PersistentVolumeClaim *struct{ ClaimName string } `json:"persistentVolumeClaim"`
			}
			SecurityContext struct{ FSGroup *int64 } `json:"securityContext"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Volumes) == 0 || got.Volumes[0].PersistentVolumeClaim == nil || got.SecurityContext.FSGroup == nil ||
			*got.SecurityContext.FSGroup != 23456 {
			t.Fatalf("pod %s: %s; want the owner's claim, fsGroup 23456", st.Name, b)
		}
		if c := got.Volumes[0].PersistentVolumeClaim.ClaimName; claim == "" {
			claim = c
		} else if c != claim {
			t.Errorf("the owner's second service mounts claim %s, the first %s", c, claim)
		}
		if err := p.Remove(ctx, st.Handle, true); err != nil {
			t.Fatal(err)
		}
	}
	var pvc struct {
		Spec struct {
			StorageClassName string `json:"storageClassName"`
		} `json:"spec"`
		Status struct{ Phase string } `json:"status"`
	}
	s.c.MustDo(t, "GET", "/api/v1/namespaces/"+s.namespace+"/persistentvolumeclaims/"+claim, nil, &pvc)
	if pvc.Spec.StorageClassName != class || pvc.Status.Phase != "Bound" {
		t.Errorf("claim %s after its services: %+v, want bound, of class %s, kept", claim, pvc, class)
	}
}

// TestNamespaceMadeAgain: the deployment's namespace, made by the plugin,
// deleted by someone while the plugin runs, is made again by the next
// execution's start instead of failing every start after; a pod started
// at once in a namespace just made waits for its default service account
// (the ServiceAccount admission refuses it until then).
func TestNamespaceMadeAgain(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	ns := "zoe-" + s.deployment
	s.cfg["namespace"] = ns
	t.Cleanup(func() { s.c.Do(t, "DELETE", "/api/v1/namespaces/"+ns, nil) })
	p := s.open(t)
	ctx := ctxFor(t)
	for i := range 2 {
		name := fmt.Sprintf("zoe-%s-%d", s.deployment, i+1)
		net, err := p.CreateNetwork(ctx, backend.NetworkSpec{Name: name})
		if err != nil {
			t.Fatalf("CreateNetwork %s: %v", name, err)
		}
		spec := service(fmt.Sprintf("web-%d-%s", i+1, s.deployment))
		spec.Node, spec.Network = s.node, net
		if _, err := p.Start(ctx, spec); err != nil {
			t.Fatalf("Start %s in a namespace just made: %v", spec.Name, err)
		}
		if i == 0 {
			s.c.MustDo(t, "DELETE", "/api/v1/namespaces/"+ns, nil, nil)
			testutil.WaitFor(t, wait, "the namespace deleted", func() (bool, string) {
				b, code := s.c.Do(t, "GET", "/api/v1/namespaces/"+ns, nil)
				return code == http.StatusNotFound, string(b)
			})
		}
	}
}

// TestNotAdmitted: a pod its node's kubelet does not admit (OutOfcpu: the
// scheduler's view and the kubelet's differ) fails its start as resource
// exhausted, with the kubelet's reason, so that Zoe tries again later,
// and leaves nothing; it is no program that exited.
func TestNotAdmitted(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	p := s.open(t)
	ctx := ctxFor(t)
	spec := service("rejected-1-" + s.deployment)
	spec.Node = s.node
	spec.Labels[testutil.KubeRejectLabel] = "OutOfcpu"
	st, err := p.Start(ctx, spec)
	if !errors.Is(err, sdk.ErrResourceExhausted) || !strings.Contains(err.Error(), "OutOfcpu") {
		t.Errorf("Start = %+v, %v; want resource exhausted with the kubelet's reason", st, err)
	}
	if _, code := s.pod(t, spec.Name); code != http.StatusNotFound {
		t.Errorf("the pod after a failed start: %d, want 404", code)
	}
}

// TestUnschedulable: a pod the cluster cannot place fails its start with the
// scheduler's reason after pending_timeout, and leaves nothing.
func TestUnschedulable(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	p := s.open(t)
	ctx := ctxFor(t)
	spec := service("big-1-" + s.deployment)
	spec.Node = s.node
	spec.Resources.Cores = 64
	_, err := p.Start(ctx, spec)
	if !errors.Is(err, sdk.ErrResourceExhausted) || !strings.Contains(err.Error(), "Insufficient cpu") {
		t.Errorf("Start = %v; want resource exhausted with the scheduler's reason", err)
	}
	if _, code := s.pod(t, spec.Name); code != http.StatusNotFound {
		t.Errorf("the pod after a failed start: %d, want 404", code)
	}
}

// TestQuotaRefusal: a namespace's ResourceQuota refusing the pod is the
// start's error, with the cluster's message.
func TestQuotaRefusal(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	p := s.open(t)
	ctx := ctxFor(t)
	quota := map[string]any{"apiVersion": "v1", "kind": "ResourceQuota", "metadata": map[string]any{"name": "small"},
		"spec": map[string]any{"hard": map[string]string{"requests.cpu": "100m"}}}
	s.c.MustDo(t, "POST", "/api/v1/namespaces/"+s.namespace+"/resourcequotas", quota, nil)
	spec := service("q-1-" + s.deployment)
	spec.Node = s.node
	var err error
	// The quota controller computes the quota's usage first.
	testutil.WaitFor(t, wait, "the quota to refuse", func() (bool, string) {
		_, err = p.Start(ctx, spec)
		return err != nil && strings.Contains(err.Error(), "exceeded quota"), fmt.Sprint(err)
	})
	if !errors.Is(err, sdk.ErrPermissionDenied) || !strings.Contains(err.Error(), "small") {
		t.Errorf("Start = %v; want permission denied naming the quota", err)
	}
}

// TestAPIServerRestart: the event stream resumes after the API server
// restarts, and reports what happened while it was away; while it is away
// the plugin says so rather than report what it last heard.
func TestAPIServerRestart(t *testing.T) {
	// Not parallel: the other tests' calls would fail while the API server
	// is down.
	s := newSetup(t)
	p := s.open(t)
	ctx := ctxFor(t)
	events, err := p.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	spec := service("r-1-" + s.deployment)
	spec.Node = s.node
	st, err := p.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if _, err := p.Nodes(ctx); err != nil {
		t.Fatalf("Nodes: %v", err)
	}
	s.c.StopAPIServer(t)
	testutil.WaitFor(t, 30*time.Second, "the plugin to see the cluster gone", func() (bool, string) {
		_, nerr := p.Nodes(ctx)
		_, lerr := p.List(ctx, backend.ListOptions{})
		return errors.Is(nerr, sdk.ErrUnavailable) && errors.Is(lerr, sdk.ErrUnavailable), fmt.Sprintf("Nodes: %v; List: %v", nerr, lerr)
	})
	s.c.StartAPIServer(t)
	s.c.ExitPod(t, s.namespace, st.Name, 5, "")
	if e := waitEvent(t, ctx, events, st.Name, backend.EventExited); e.ExitCode != 5 {
		t.Errorf("exit event %+v after the restart: want code 5", e)
	}
	if got, err := p.Recover(ctx, st.Handle); err != nil || got.ExitCode != 5 {
		t.Errorf("Recover = %+v, %v", got, err)
	}
	testutil.WaitFor(t, time.Minute, "the plugin to hear the cluster again", func() (bool, string) {
		list, err := p.List(ctx, backend.ListOptions{})
		for _, got := range list {
			if got.Name == st.Name && got.State == backend.ServiceExited && got.ExitCode == 5 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("List = %+v, %v; want %s exited with 5", list, err, st.Name)
	})
}
