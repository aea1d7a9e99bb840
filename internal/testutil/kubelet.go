package testutil

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	dockerclient "github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testimages"
)

// KubeletEnv names the directory of the kubelet and containerd `make
// kubelet-bins` builds.
// make test-kubelet sets it, and it is what asks for the tests of a real
// node: without it AddRealNode skips its test, whatever CI says, so that
// make test (as root in CI) does not run them.
const KubeletEnv = "ZOE_TEST_KUBELET"

// The real node's fixed names and addresses: one real node at a time on a
// machine (realNodeLock), so they need not be unique. The addresses are
// private ones no one routes here; the node's and the pods' traffic stays
// on this machine.
const (
	realNodeName   = "realnode"
	realNodeVeth   = "zoe-kl-node"      // holds the node's address
	realNodePeer   = "zoe-kl-peer"      // its other end, up, so that it has a carrier
	realNodeBridge = "zoe-kl0"          // the CNI bridge of the pods
	realNodeIP     = "10.251.0.1"       // the node's InternalIP: the kubelet's address
	realPodSubnet  = "10.252.0.0/24"    // the pods' addresses
	realCgroup     = "zoe-kubelet"      // the kubelet's cgroup root, under every hierarchy
	realNodeLock   = "zoe-kubelet.lock" // in the temporary directory
	realPodsLimit  = 1024               // the kubelet's podPidsLimit
)

// RealNode is a node of a KubeCluster with a real kubelet, whose pods run
// as containers of a containerd of its own (its CRI), on a CNI bridge of
// this machine. Its images are the test images (internal/testimages),
// built in the local Docker engine and imported into the containerd, and
// those a test imports from the engine (ImportImages); it pulls nothing
// (no registry is reachable where the tests run).
type RealNode struct {
	// Name is the node's name.
	Name string
	// IP is the node's InternalIP, where the API server reaches its
	// kubelet (pods' logs): an address on a veth device of this machine.
	IP string
	// PodsLimit is the kubelet's podPidsLimit.
	PodsLimit int
	// Dir holds the node's files and logs (containerd.log, kubelet.log).
	Dir string

	c    *KubeCluster
	lock *os.File
	bins string // make kubelet-bins': kubelet, containerd, its shim, ctr

	mu             sync.Mutex
	procs          map[string]*kubeProc
	imported       map[string]string // Docker's image id of each image imported, by its name
	undo           []func()          // the network's and the DNS server's, run backwards by stop
	kubeletStarted bool
}

// AddRealNode adds a node with a real kubelet and containerd (built by
// make kubelet-bins)
// to the cluster, waits until it is Ready, and removes it when t ends:
// its pods, its processes and their containers, its files, devices and
// cgroups. It needs root, the Debian packages of make deps-kubelet, the
// Docker engine (for the test images) and $ZOE_TEST_KUBELET: without
// that variable t is skipped; not root, t is skipped (fails under
// CI=true); when the node cannot start, t fails with the ends of the logs.
//
// The node runs the kubelet with the configuration a Zoe deployment
// needs: podPidsLimit PodsLimit, the cgroupfs driver (cgroup v1 or v2),
// the node's address IP. Its pods reach each other on the bridge, and
// find each other by name through a small DNS server of the test on the
// node's address (kubelet_dns.go: a headless Service's pods only, what the
// Kubernetes back-end uses; there is no CoreDNS). There are no Services'
// cluster IPs nor node ports (no kube-proxy): a pod is reached at its own
// address, which this machine routes to.
//
// Only one real node runs on a machine at a time (the names and addresses
// above are fixed): AddRealNode waits for another's to end.
func (c *KubeCluster) AddRealNode(t testing.TB) *RealNode {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	bins := os.Getenv(KubeletEnv)
	if bins == "" {
		t.Skipf("a real Kubernetes node: run by make test-kubelet ($%s not set)", KubeletEnv)
	}
	if os.Geteuid() != 0 {
		if ci {
			t.Fatal("a real Kubernetes node needs root (CI)")
		}
		t.Skip("a real Kubernetes node needs root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a hang bound
	defer cancel()
	n, err := c.startRealNode(ctx, t, bins)
	if n != nil {
		t.Cleanup(n.stop)
	}
	if err != nil {
		msg := err.Error()
		if n != nil {
			for _, name := range []string{"containerd", "kubelet"} {
				msg += fmt.Sprintf("\n--- the end of %s.log:\n%s", name, n.LogTail(name, 40))
			}
		}
		t.Fatalf("real Kubernetes node: %s", msg)
	}
	return n
}

// LogTail returns the last n lines of the node's containerd.log or
// kubelet.log, for a failing test to show.
func (n *RealNode) LogTail(name string, lines int) string {
	b, err := os.ReadFile(filepath.Join(n.Dir, name+".log"))
	if err != nil {
		return err.Error()
	}
	return tail(string(b), lines)
}

// startRealNode starts the node; a non-nil node is returned to be stopped,
// even with an error.
func (c *KubeCluster) startRealNode(ctx context.Context, t testing.TB, bins string) (*RealNode, error) {
	for _, b := range []string{"kubelet", "containerd", "containerd-shim-runc-v2", "ctr"} {
		if _, err := os.Stat(filepath.Join(bins, b)); err != nil {
			return nil, fmt.Errorf("$%s=%s has no %s: run `make kubelet-bins`", KubeletEnv, bins, b)
		}
	}
	for _, p := range []string{"runc", "ip", "iptables", "/usr/lib/cni/bridge", "/usr/lib/cni/loopback", "/usr/lib/cni/host-local"} {
		if _, err := exec.LookPath(p); err != nil {
			return nil, fmt.Errorf("%s missing: run `make deps-kubelet`", p)
		}
	}
	lock, err := lockRealNode(ctx, t)
	if err != nil {
		return nil, err
	}
	n := &RealNode{Name: realNodeName, IP: realNodeIP, PodsLimit: realPodsLimit, c: c, lock: lock, procs: map[string]*kubeProc{},
		imported: map[string]string{}, bins: bins}
	// What a run killed before its cleanup left (its processes died with it,
	// Pdeathsig; its pods' processes, devices and mounts did not).
	cleanStaleRealNode(t)
	n.Dir, err = os.MkdirTemp("", "zoe-kubelet-")
	if err != nil {
		return n, err
	}
	if err := n.network(); err != nil {
		return n, err
	}
	if err := makeCgroups(); err != nil {
		return n, err
	}
	// The pods' cluster DNS, on the node's address (kubelet.yaml's
	// clusterDNS).
	dns, err := c.serveDNS(n.IP)
	if err != nil {
		return n, fmt.Errorf("the pods' DNS server: %w", err)
	}
	n.undo = append(n.undo, dns.close)
	if err := n.writeConfigs(); err != nil {
		return n, err
	}
	sock := filepath.Join(n.Dir, "containerd.sock")
	if err := n.run("containerd", filepath.Join(bins, "containerd"), "--config", filepath.Join(n.Dir, "containerd.toml")); err != nil {
		return n, err
	}
	if err := n.waitUntil(ctx, "containerd's socket", func() (bool, string) {
		out, err := exec.CommandContext(ctx, filepath.Join(bins, "ctr"), "--address", sock, "version").CombinedOutput()
		return err == nil, string(out)
	}, "containerd"); err != nil {
		return n, err
	}
	if err := n.importImages(ctx); err != nil {
		return n, err
	}
	if err := n.run("kubelet", filepath.Join(bins, "kubelet"), "--config="+filepath.Join(n.Dir, "kubelet.yaml"),
		"--kubeconfig="+c.Kubeconfig, "--root-dir="+filepath.Join(n.Dir, "kubelet"),
		"--hostname-override="+n.Name, "--node-ip="+n.IP, "--v=1"); err != nil {
		return n, err
	}
	n.kubeletStarted = true
	if err := n.waitUntil(ctx, "node "+n.Name+" Ready", func() (bool, string) {
		b, code, err := c.request(ctx, "GET", "/api/v1/nodes/"+n.Name, nil)
		if err != nil || code != http.StatusOK {
			return false, fmt.Sprint(code, err, string(b))
		}
		var node struct {
			Spec struct {
				Taints []struct{ Key string } `json:"taints"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(b, &node); err != nil {
			return false, err.Error()
		}
		return conditionTrue(b, "Ready") && len(node.Spec.Taints) == 0, string(b)
	}, "containerd", "kubelet"); err != nil {
		return n, err
	}
	return n, nil
}

// lockRealNode takes the machine's real-node lock, held until stop.
func lockRealNode(ctx context.Context, t testing.TB) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), realNodeLock), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if !said {
			t.Logf("waiting for another real Kubernetes node of this machine to end (%s)", f.Name())
			said = true
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("waiting for another real Kubernetes node to end: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// network makes the node's address (a veth pair: this kernel may have no
// dummy devices) and the pods' bridge, and lets the bridge's ports reach
// each other: Docker sets the FORWARD policy to DROP, and bridged frames
// pass through it (br_netfilter).
func (n *RealNode) network() error {
	steps := []struct {
		args []string
		undo []string
	}{
		{[]string{"ip", "link", "add", realNodeVeth, "type", "veth", "peer", "name", realNodePeer}, []string{"ip", "link", "del", realNodeVeth}},
		{[]string{"ip", "addr", "add", realNodeIP + "/32", "dev", realNodeVeth}, nil},
		{[]string{"ip", "link", "set", realNodePeer, "up"}, nil},
		{[]string{"ip", "link", "set", realNodeVeth, "up"}, nil},
		{[]string{"ip", "link", "add", realNodeBridge, "type", "bridge"}, []string{"ip", "link", "del", realNodeBridge}},
		{[]string{"iptables", "-I", "FORWARD", "-i", realNodeBridge, "-o", realNodeBridge, "-j", "ACCEPT"},
			[]string{"iptables", "-D", "FORWARD", "-i", realNodeBridge, "-o", realNodeBridge, "-j", "ACCEPT"}},
	}
	for _, s := range steps {
		if out, err := exec.Command(s.args[0], s.args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(s.args, " "), err, out)
		}
		if s.undo != nil {
			undo := s.undo
			n.undo = append(n.undo, func() { _ = exec.Command(undo[0], undo[1:]...).Run() })
		}
	}
	return nil
}

// cleanStaleRealNode removes what a killed run left: its devices and
// firewall rule, the processes of its cgroups (its pods' programs), its
// containerd's shims, its mounts and directories.
func cleanStaleRealNode(t testing.TB) {
	_ = exec.Command("ip", "link", "del", realNodeVeth).Run()
	_ = exec.Command("ip", "link", "del", realNodeBridge).Run()
	for exec.Command("iptables", "-D", "FORWARD", "-i", realNodeBridge, "-o", realNodeBridge, "-j", "ACCEPT").Run() == nil {
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "zoe-kubelet-*"))
	for _, d := range dirs {
		if st, err := os.Stat(d); err == nil && st.IsDir() && !strings.HasSuffix(d, ".lock") {
			t.Logf("removing what a killed run left in %s", d)
			killUnder(d)
			removeTree(d)
		}
	}
	removeCgroups()
}

// writeConfigs writes containerd's configuration, the CNI network's and the
// kubelet's.
func (n *RealNode) writeConfigs() error {
	f := func(name string) string { return filepath.Join(n.Dir, name) }
	if err := os.MkdirAll(f("cni"), 0o700); err != nil {
		return err
	}
	// containerd 2's configuration (version 3; it migrates it), every
	// path under Dir: the pinned sandbox image (no registry.k8s.io/pause
	// here); the oom_score_adj not lowered, which needs CAP_SYS_RESOURCE,
	// which root lacks on some VMs (runc fails "can't get final child's PID
	// from pipe"); the network namespaces and the shims' sockets under the
	// state directory, not in /var/run; no NRI (its socket is the
	// machine's), no imports of /etc/containerd.
	toml := fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
imports = []
disabled_plugins = ['io.containerd.nri.v1.nri', 'io.containerd.internal.v1.opt']
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = 'docker.io/%[5]s'
[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  cdi_spec_dirs = []
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['/usr/lib/cni']
    conf_dir = %[6]q
    max_conf_num = 1
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
[plugins.'io.containerd.shim.v1.manager']
  socket_dir = %[7]q
`, f("root"), f("state"), f("containerd.sock"), f("containerd.sock.ttrpc"), testimages.Pause, f("cni"), f("s"))
	cni := map[string]any{
		"cniVersion": "0.4.0", "name": "zoe-kubelet",
		"plugins": []any{map[string]any{
			"type": "bridge", "bridge": realNodeBridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
			"ipam": map[string]any{"type": "host-local", "dataDir": f("cni-ipam"),
				"ranges": []any{[]any{map[string]any{"subnet": realPodSubnet}}},
				"routes": []any{map[string]any{"dst": "0.0.0.0/0"}}},
		}},
	}
	cniJSON, err := json.MarshalIndent(cni, "", "  ")
	if err != nil {
		return err
	}
	// JSON is YAML. The kubelet serves on the node's address only; it lets
	// in the API server's client certificate (signed by the cluster's CA)
	// and asks the API server what it may do. Eviction thresholds low, so
	// that a full disk of the machine running the tests evicts nothing.
	kubelet := map[string]any{
		"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
		"address": n.IP, "port": 10250, "readOnlyPort": 0, "healthzPort": 0,
		"containerRuntimeEndpoint": "unix://" + f("containerd.sock"),
		"cgroupDriver":             "cgroupfs", "cgroupRoot": "/" + realCgroup,
		"failCgroupV1": false, "failSwapOn": false,
		"podPidsLimit": n.PodsLimit,
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": true},
			"x509":      map[string]any{"clientCAFile": n.c.CAFile},
		},
		"authorization": map[string]any{"mode": "Webhook"},
		"clusterDomain": "cluster.local", "clusterDNS": []string{n.IP},
		"resolvConf":                  "/etc/resolv.conf",
		"podLogsDir":                  f("pod-logs"),
		"volumePluginDir":             f("volume-plugins"),
		"evictionHard":                map[string]string{"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
		"imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
		"registerNode": true, "serializeImagePulls": false,
		"nodeStatusUpdateFrequency": "2s", "syncFrequency": "5s",
		"fileCheckFrequency": "5s", "staticPodPath": "",
	}
	kubeletJSON, err := json.MarshalIndent(kubelet, "", "  ")
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		"containerd.toml":             []byte(toml),
		"cni/10-zoe-kubelet.conflist": cniJSON,
		"kubelet.yaml":                kubeletJSON,
	} {
		if err := os.WriteFile(f(name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// importImages builds the test images in the Docker engine and imports
// them into the node's containerd.
func (n *RealNode) importImages(ctx context.Context) error {
	cli, err := dockerclient.New(dockerclient.FromEnv)
	if err != nil {
		return fmt.Errorf("the Docker client: %w", err)
	}
	defer func() { _ = cli.Close() }()
	if err := testimages.Build(ctx, cli); err != nil {
		return err
	}
	return n.importFrom(ctx, cli, testimages.Images())
}

// ImportImages imports images of the local Docker engine (refs as Docker
// names them, e.g. zoe/dask-worker:bookworm-1) into the node's containerd,
// for pods that run them with imagePullPolicy Never. An image imported
// already with the same Docker image id is skipped; the node's containerd
// is new with each node, so that saves work within one node's life only.
// An image missing from the engine is an error that cerrdefs.IsNotFound
// tells (NeedImages skips or fails on it). docker save and ctr import
// copy every layer: the three Dask images of make images take 36
// to 39 seconds here (2 cores, loaded), most of the Dask subtest.
func (n *RealNode) ImportImages(ctx context.Context, refs ...string) error {
	cli, err := dockerclient.New(dockerclient.FromEnv)
	if err != nil {
		return fmt.Errorf("the Docker client: %w", err)
	}
	defer func() { _ = cli.Close() }()
	return n.importFrom(ctx, cli, refs)
}

// NeedImages imports images of the local Docker engine into the node's
// containerd (ImportImages) for a test that runs them. When one is not in
// the engine, t is skipped (fails under CI=true), saying that build (say
// "make images") makes it; any other error fails t.
func (n *RealNode) NeedImages(t testing.TB, build string, refs ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a hang bound
	defer cancel()
	start := time.Now()
	err := n.ImportImages(ctx, refs...)
	switch {
	case cerrdefs.IsNotFound(err) && os.Getenv("CI") == "true":
		t.Fatalf("%v: run `%s` (CI)", err, build)
	case cerrdefs.IsNotFound(err):
		t.Skipf("%v: run `%s`", err, build)
	case err != nil:
		t.Fatalf("importing %v into the real node: %v", refs, err)
	}
	t.Logf("images %v in the real node's containerd after %s", refs, time.Since(start).Round(time.Second))
}

// importFrom saves the images of the Docker engine that the node's
// containerd lacks (docker save) and imports them into its namespace of
// the CRI, k8s.io.
func (n *RealNode) importFrom(ctx context.Context, cli *dockerclient.Client, refs []string) error {
	ids := map[string]string{}
	var todo []string
	for _, ref := range refs {
		img, err := cli.ImageInspect(ctx, ref)
		if err != nil {
			return fmt.Errorf("image %s of the Docker engine: %w", ref, err)
		}
		n.mu.Lock()
		done := n.imported[ref] == img.ID
		n.mu.Unlock()
		if !done {
			ids[ref] = img.ID
			todo = append(todo, ref)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	saved, err := cli.ImageSave(ctx, todo)
	if err != nil {
		return fmt.Errorf("docker save: %w", err)
	}
	defer func() { _ = saved.Close() }()
	ctr := filepath.Join(n.bins, "ctr")
	sock := filepath.Join(n.Dir, "containerd.sock")
	cmd := exec.CommandContext(ctx, ctr, "--address", sock, "-n", "k8s.io", "images", "import", "-")
	cmd.Stdin = saved
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ctr images import: %w: %s", err, out)
	}
	out, err := exec.CommandContext(ctx, ctr, "--address", sock, "-n", "k8s.io", "images", "ls", "-q").Output()
	if err != nil {
		return fmt.Errorf("ctr images ls: %w", err)
	}
	have := strings.Fields(string(out))
	for _, ref := range todo {
		if !slices.Contains(have, containerdName(ref)) {
			return fmt.Errorf("image %s not in containerd after its import (it has %v)", ref, have)
		}
	}
	n.mu.Lock()
	for ref, id := range ids {
		n.imported[ref] = id
	}
	n.mu.Unlock()
	return nil
}

// containerdName is the name under which containerd keeps an image that
// Docker names ref: Docker's short names are Docker Hub's, in full.
func containerdName(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	switch {
	case !ok:
		return "docker.io/library/" + ref
	case strings.ContainsAny(first, ".:") || first == "localhost":
		return ref
	default:
		return "docker.io/" + ref
	}
}

// run starts a process of the node, its output appended to <name>.log, in
// a process group of its own, killed if the test binary dies.
func (n *RealNode) run(name, bin string, args ...string) error {
	log, err := os.OpenFile(filepath.Join(n.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = log.Close() }()
	cmd := exec.Command(bin, args...)
	cmd.Dir = n.Dir
	// PATH: containerd finds its shim there (runc stays the system's).
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(e string) bool {
		return strings.HasPrefix(e, "KUBECONFIG=") || strings.HasPrefix(e, "CONTAINERD_") || strings.HasPrefix(e, "PATH=")
	}), "PATH="+n.bins+":"+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.mu.Lock()
	n.procs[name] = &kubeProc{cmd: cmd, done: done}
	n.mu.Unlock()
	return nil
}

// kill ends a process of the node: SIGTERM, then SIGKILL to its group
// after 10 s.
func (n *RealNode) kill(name string) {
	n.mu.Lock()
	p := n.procs[name]
	delete(n.procs, name)
	n.mu.Unlock()
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// waitUntil polls cond until it holds; it fails when one of the watched
// processes exits first, or when ctx ends.
func (n *RealNode) waitUntil(ctx context.Context, what string, cond func() (bool, string), watch ...string) error {
	for {
		ok, last := cond()
		if ok {
			return nil
		}
		for _, name := range watch {
			n.mu.Lock()
			p := n.procs[name]
			n.mu.Unlock()
			if p == nil {
				continue
			}
			select {
			case <-p.done:
				return fmt.Errorf("%s exited (%v) while waiting for %s", name, p.cmd.ProcessState, what)
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w; last: %s", what, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// removePods deletes the pods left on the node and waits (a minute at
// most) until the kubelet has ended them, so that their containers,
// mounts and addresses go the ordinary way; stop removes what is left
// anyway.
func (n *RealNode) removePods() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list := func() []string {
		b, code, err := n.c.request(ctx, "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3D"+n.Name, nil)
		if err != nil || code != http.StatusOK {
			return nil
		}
		var pods struct {
			Items []struct {
				Metadata struct{ Name, Namespace string } `json:"metadata"`
			} `json:"items"`
		}
		_ = json.Unmarshal(b, &pods)
		var out []string
		for _, p := range pods.Items {
			out = append(out, "/api/v1/namespaces/"+p.Metadata.Namespace+"/pods/"+p.Metadata.Name)
		}
		return out
	}
	for _, p := range list() {
		_, _, _ = n.c.request(ctx, "DELETE", p, map[string]any{"gracePeriodSeconds": 0})
	}
	_ = n.waitUntil(ctx, "the node's pods gone", func() (bool, string) {
		left := list()
		return len(left) == 0, strings.Join(left, " ")
	}, "kubelet")
}

// stop ends the node: its pods (the ordinary way, while the kubelet
// runs), the kubelet, the programs of its cgroups, containerd and its
// shims, the node's object; then its mounts, files, cgroups and devices.
func (n *RealNode) stop() {
	if n.kubeletStarted {
		n.removePods()
	}
	n.stopProcesses()
	if n.kubeletStarted {
		// After the kubelet stopped, else it would register it again.
		_, _, _ = n.c.request(context.Background(), "DELETE", "/api/v1/nodes/"+n.Name, nil)
	}
	if n.Dir != "" {
		removeTree(n.Dir)
	}
	removeCgroups()
	for i := len(n.undo) - 1; i >= 0; i-- {
		n.undo[i]()
	}
	_ = n.lock.Close()
}

// stopProcesses stops the kubelet, kills the programs of the node's
// cgroups (its containers), then containerd and every process that names
// the node's directory (the shims).
func (n *RealNode) stopProcesses() {
	n.kill("kubelet")
	killCgroups()
	n.kill("containerd")
	if n.Dir != "" {
		killUnder(n.Dir)
	}
}

// killUnder kills every process whose command line names a path under dir:
// the containerd of a real node and its shims (-address <dir>/...).
func killUnder(dir string) {
	for range 10 {
		var found bool
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, f := range procs {
			b, err := os.ReadFile(f)
			if err != nil || !bytes.Contains(b, []byte(dir+"/")) {
				continue
			}
			pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			if err != nil || pid == os.Getpid() {
				continue
			}
			found = true
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if !found {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// removeTree unmounts what is mounted under dir (the pods' volumes, the
// containers' root file systems, network namespaces), deepest first, then
// removes it. Symbolic links the kubelet made in /var/log/containers to
// the node's logs go too.
func removeTree(dir string) {
	for _, m := range mountsUnder(dir) {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
	_ = os.RemoveAll(dir)
	links, _ := filepath.Glob("/var/log/containers/*.log")
	for _, l := range links {
		if target, err := os.Readlink(l); err == nil && strings.HasPrefix(target, dir+"/") {
			_ = os.Remove(l)
		}
	}
}

// mountsUnder lists the mount points under dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		// The mount point, with spaces and such escaped as \040.
		mp := fields[4]
		if unq, err := strconv.Unquote(`"` + strings.ReplaceAll(mp, `"`, `\"`) + `"`); err == nil {
			mp = unq
		}
		if strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return out
}

// cgroupDirs lists the node's cgroup root in every hierarchy of this
// machine: one directory under cgroup v2, one per controller under v1.
func cgroupDirs() []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{filepath.Join("/sys/fs/cgroup", realCgroup)}
	}
	var out []string
	hs, _ := filepath.Glob("/sys/fs/cgroup/*/cgroup.procs")
	for _, h := range hs {
		root := filepath.Dir(h)
		if filepath.Base(root) == "unified" {
			continue
		}
		out = append(out, filepath.Join(root, realCgroup))
	}
	return out
}

// makeCgroups makes the kubelet's cgroup root (it must exist), with the
// CPUs and memory nodes of its parent under cgroup v1's cpuset (a new
// cpuset has none).
func makeCgroups() error {
	for _, d := range cgroupDirs() {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("cgroup root of the kubelet: %w", err)
		}
		if filepath.Base(filepath.Dir(d)) == "cpuset" {
			for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, err := os.ReadFile(filepath.Join(filepath.Dir(d), file))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(d, file), b, 0o644); err != nil {
					return fmt.Errorf("%s: %w", filepath.Join(d, file), err)
				}
			}
		}
	}
	return nil
}

// killCgroups kills every process of the node's cgroups: the programs of
// its pods, which outlive the shims that started them.
func killCgroups() {
	for range 50 {
		var found bool
		for _, d := range cgroupDirs() {
			_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
				if err != nil || e.Name() != "cgroup.procs" {
					return nil
				}
				b, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
						found = true
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
				return nil
			})
		}
		if !found {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// removeCgroups kills what is left in the node's cgroups and removes them,
// deepest first (a cgroup goes only once empty of processes and children).
func removeCgroups() {
	killCgroups()
	for _, d := range cgroupDirs() {
		var dirs []string
		_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.Reverse(dirs)
		for _, p := range dirs {
			_ = syscall.Rmdir(p)
		}
	}
}

// PodCgroupValue reads a file of the cgroup of the pod of that UID on the
// node, from this machine's side: under cgroup v1 the controller's
// hierarchy ("pids", "pids.max"), under v2 the one hierarchy (file
// "pids.max"). What the kubelet sets on the pod's cgroup (podPidsLimit) is
// out of its containers' sight.
func (n *RealNode) PodCgroupValue(t testing.TB, uid, controller, file string) string {
	t.Helper()
	root := filepath.Join("/sys/fs/cgroup", controller, realCgroup)
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		root = filepath.Join("/sys/fs/cgroup", realCgroup)
	}
	// kubepods/pod<uid> (guaranteed) or kubepods/<qos>/pod<uid>.
	var found string
	_ = filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.IsDir() && e.Name() == "pod"+uid {
			found = p
			return filepath.SkipAll
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no cgroup of pod %s under %s", uid, root)
	}
	b, err := os.ReadFile(filepath.Join(found, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
