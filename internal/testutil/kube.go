package testutil

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// KubeEnv names the directory of the Kubernetes control plane's binaries
// and of kwok's stages that `make kube-bins` builds; make test sets it.
const KubeEnv = "ZOE_TEST_KUBE"

// Annotations of the fake nodes and pods of a KubeCluster.
const (
	// KubeFakeNodeAnnotation (value "fake") marks the nodes kwok runs.
	KubeFakeNodeAnnotation = "kwok.x-k8s.io/node"
	// KubeExitCodeAnnotation on a Running pod makes kwok end its containers
	// with that code: "0" Succeeded, any other Failed (kube_stages.yaml).
	KubeExitCodeAnnotation = "kwok.zoe.test/exit-code"
	// KubeExitCodeLabel on a pod at its creation makes it end with that code
	// as soon as it runs, as a program would: a label, since a spec's labels
	// become its pod's (those of Zoe's, prefixed zoe.), its annotations not.
	KubeExitCodeLabel = "zoe.test/exit-code"
	// KubeRejectLabel on a pod at its creation makes it fail as a kubelet
	// fails a pod it does not admit, before any container, with the
	// label's value as the reason ("OutOfcpu").
	KubeRejectLabel = "zoe.test/reject"
	// KubeExitAfterAnnotation delays that exit by a Go duration ("2s").
	KubeExitAfterAnnotation = "kwok.zoe.test/exit-after"
	// KubeExitReasonAnnotation sets the containers' terminated reason
	// ("OOMKilled"); by default Completed for 0 and Error otherwise.
	KubeExitReasonAnnotation = "kwok.zoe.test/exit-reason"
)

//go:embed kube_stages.yaml
var kubeStages string

// kubeStartTimeout bounds each wait of a start: seconds on an idle machine,
// a minute or more on one loaded by a whole test suite.
const kubeStartTimeout = 3 * time.Minute

// Kube is a Kubernetes control plane on 127.0.0.1 for the tests of one test
// binary: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
// kwok, whose fake nodes run pods at once without containers. It is started
// on first use (a few seconds) and stopped by Stop from TestMain:
//
//	var kube = testutil.NewKube()
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		kube.Stop()
//		os.Exit(code)
//	}
//
//	func TestX(t *testing.T) {
//		c := kube.Cluster(t)
//		c.AddNode(t, "n1", 8, "16Gi", nil)
//		...
//
// What the fake nodes do follows kwok's stages (the Makefile's KWOK_STAGES)
// and this package's (kube_stages.yaml): a pod bound to one is Running at
// once, with an IP of the node's pod CIDR; a Job's pod is then Succeeded; a
// pod with KubeExitCodeAnnotation (see ExitPod) ends with that code; a pod
// labelled pod-container-running-failed.stage.kwok.x-k8s.io=true fails 1
// to 2 s after it runs (exit code 1, or its annotation
// pod-container-running-failed.stage.kwok.x-k8s.io/exit-code); a node
// labelled node-not-ready.stage.kwok.x-k8s.io=true becomes NotReady 1 to
// 2 s later; a deleted pod is gone at once. PodLog gives a pod a log.
//
// The binaries come from the directory named by $ZOE_TEST_KUBE, which make
// test sets after `make kube-bins` built them; without it, the newest build
// in ~/.cache/zoe-test/kube. When they are missing, tests fail under CI=true
// and are skipped otherwise.
type Kube struct {
	once sync.Once
	err  error
	c    *KubeCluster
}

// NewKube returns a control plane that starts on first use.
func NewKube() *Kube { return &Kube{} }

// StartKube starts a control plane for t alone, stopped when t ends. When
// several tests of a binary need one, share a NewKube instead.
func StartKube(t testing.TB) *KubeCluster {
	t.Helper()
	k := NewKube()
	t.Cleanup(k.Stop)
	return k.Cluster(t)
}

// Cluster starts the control plane if needed and returns it. It fails t
// when it cannot start, with the reason and the ends of the components'
// logs; it skips t (fails it under CI=true) when the binaries are missing.
func (k *Kube) Cluster(t testing.TB) *KubeCluster {
	t.Helper()
	ci := ""
	if os.Getenv("CI") == "true" {
		ci = " (CI)"
	}
	bins, err := KubeBinDir()
	if err != nil {
		if ci != "" {
			t.Fatal(err.Error() + ci)
		}
		t.Skip(err.Error())
	}
	k.once.Do(func() { k.c, k.err = startKube(bins) })
	if k.err != nil {
		t.Fatalf("Kubernetes control plane for the tests%s: %v", ci, k.err)
	}
	return k.c
}

// StartKubeCluster starts a control plane outside go test (for a
// benchmark), with the binaries KubeBinDir finds; stop kills its processes
// and removes its files. Its processes die with this one (Pdeathsig).
func StartKubeCluster() (c *KubeCluster, stop func(), err error) {
	bins, err := KubeBinDir()
	if err != nil {
		return nil, nil, err
	}
	if c, err = startKube(bins); err != nil {
		return nil, nil, err
	}
	return c, c.stop, nil
}

// Stop kills the control plane's processes, if it started, and removes its
// files.
func (k *Kube) Stop() {
	k.once.Do(func() { k.err = errors.New("stopped") })
	if k.c != nil {
		k.c.stop()
	}
}

// KubeBinDir finds the binaries of `make kube-bins`: $ZOE_TEST_KUBE, else
// the newest complete build in ~/.cache/zoe-test/kube (for go test run by
// hand after make kube-bins).
func KubeBinDir() (string, error) {
	if dir := os.Getenv(KubeEnv); dir != "" {
		if missing := missingKubeFiles(dir); missing != "" {
			return "", fmt.Errorf("$%s=%s has no %s: run `make kube-bins`", KubeEnv, dir, missing)
		}
		return dir, nil
	}
	home, _ := os.UserHomeDir()
	dirs, _ := filepath.Glob(filepath.Join(home, ".cache", "zoe-test", "kube", "*"))
	var newest string
	var newestTime time.Time
	for _, d := range dirs {
		st, err := os.Stat(d)
		if err != nil || !st.IsDir() || strings.HasPrefix(filepath.Base(d), ".") || missingKubeFiles(d) != "" {
			continue
		}
		if st.ModTime().After(newestTime) {
			newest, newestTime = d, st.ModTime()
		}
	}
	if newest == "" {
		return "", fmt.Errorf("the Kubernetes control plane's binaries are not built ($%s is not set and ~/.cache/zoe-test/kube has none): run `make kube-bins`", KubeEnv)
	}
	return newest, nil
}

func missingKubeFiles(dir string) string {
	for _, f := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "stages"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return f
		}
	}
	return ""
}

// KubeCluster is a started control plane.
type KubeCluster struct {
	// Server is https://127.0.0.1:PORT.
	Server string
	// Token is the bearer token of an administrator (group system:masters).
	Token string
	// CAFile holds the CA that signed the API server's certificate.
	CAFile string
	// Kubeconfig is a kubeconfig file for Server, CAFile and Token, with one
	// context, "zoe-test", the current one.
	Kubeconfig string
	// Dir holds the cluster's files and the components' logs
	// (<component>.log).
	Dir string

	bins     string
	client   *http.Client
	apiArgs  []string
	kwokPort int
	nodes    atomic.Int64
	nss      atomic.Int64

	mu    sync.Mutex
	procs map[string]*kubeProc
}

type kubeProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// errPortTaken: a component could not bind a port found free, taken since
// by another test binary; the start is tried again on other ports.
var errPortTaken = errors.New("port taken")

func startKube(bins string) (*KubeCluster, error) {
	for attempt := 1; ; attempt++ {
		c, err := launchKube(bins)
		if err == nil {
			return c, nil
		}
		if c != nil {
			c.stop()
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			return nil, err
		}
	}
}

// launchKube starts a cluster; a non-nil cluster is returned to be stopped,
// even with an error.
func launchKube(bins string) (*KubeCluster, error) {
	removeStaleKubeDirs()
	dir, err := os.MkdirTemp("", "zoe-kube-")
	if err != nil {
		return nil, err
	}
	c := &KubeCluster{Dir: dir, bins: bins, procs: map[string]*kubeProc{}, Token: rand.Text()}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return c, err
	}
	var ports [4]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return c, err
		}
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	c.Server = fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	c.kwokPort = ports[3]
	if err := c.writeFiles(); err != nil {
		return c, err
	}
	if err := c.run("etcd", "--name=zoe-test", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=zoe-test="+peerURL,
		// Tests need no durability: without fsync etcd does not wait for
		// the disk, which a loaded machine makes slow.
		"--unsafe-no-fsync", "--log-level=warn"); err != nil {
		return c, err
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	c.apiArgs = []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", ports[2]),
		"--tls-cert-file=" + f("apiserver.crt"), "--tls-private-key-file=" + f("apiserver.key"),
		"--token-auth-file=" + f("tokens.csv"), "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + f("sa.pub"), "--service-account-signing-key-file=" + f("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16", "--allow-privileged=true",
		// The nodes' kubelets (kwok's server, or a real kubelet) at their
		// InternalIP, not at their names, which nothing resolves.
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-client-certificate=" + f("kubelet-client.crt"), "--kubelet-client-key=" + f("kubelet-client.key"),
		"--profiling=false",
	}
	if err := c.run("kube-apiserver", c.apiArgs...); err != nil {
		return c, err
	}
	if err := c.waitReady("etcd", "kube-apiserver"); err != nil {
		return c, err
	}
	// kwok's custom resources first: it lists them when it starts.
	crds, err := c.installCRDs()
	if err != nil {
		return c, err
	}
	kc := "--kubeconfig=" + c.Kubeconfig
	// No serving ports (--secure-port=0): several clusters run at once,
	// one per test binary, and nothing scrapes these components.
	common := []string{kc, "--authentication-kubeconfig=" + c.Kubeconfig, "--authorization-kubeconfig=" + c.Kubeconfig,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0"}
	if err := c.run("kube-controller-manager", append(slices.Clone(common),
		"--service-account-private-key-file="+f("sa.key"), "--root-ca-file="+c.CAFile,
		"--use-service-account-credentials=false")...); err != nil {
		return c, err
	}
	if err := c.run("kube-scheduler", common...); err != nil {
		return c, err
	}
	for _, crd := range crds {
		if err := c.waitUntil("custom resource "+crd+" established", func() (bool, string) {
			b, code, err := c.request(context.Background(), "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"+crd, nil)
			return err == nil && code == http.StatusOK && conditionTrue(b, "Established"), fmt.Sprint(code, err, string(b))
		}, "kube-apiserver"); err != nil {
			return c, err
		}
	}
	kwokAddr := fmt.Sprintf("127.0.0.1:%d", c.kwokPort)
	if err := c.run("kwok", kc, "--config="+f("kwok-stages.yaml"),
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector="+KubeFakeNodeAnnotation+"=fake",
		"--node-ip=127.0.0.1", "--cidr=10.0.0.1/24",
		// Nodes renew leases every 10 s, which the node lifecycle
		// controller takes as their heartbeat (kwok's
		// node-heartbeat-with-lease stage updates their status only every
		// 10 minutes).
		"--node-lease-duration-seconds=40",
		// kwok's server stands for the nodes' kubelets: the API server
		// asks it for pods' logs (the nodes' address is 127.0.0.1, their
		// kubelet port this one), which it reads from the files named by
		// Logs resources (PodLog).
		"--server-address="+kwokAddr, fmt.Sprintf("--node-port=%d", c.kwokPort),
		"--tls-cert-file="+f("apiserver.crt"), "--tls-private-key-file="+f("apiserver.key"),
		"--enable-crds=Logs"); err != nil {
		return c, err
	}
	if err := c.waitUntil("kwok's /healthz", func() (bool, string) {
		resp, err := c.client.Get("https://" + kwokAddr + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	}, "kube-apiserver", "kwok"); err != nil {
		return c, err
	}
	// Pods are refused until the controller manager made the namespace's
	// default service account.
	if err := c.waitUntil("the default service account", func() (bool, string) {
		_, code, err := c.request(context.Background(), "GET", "/api/v1/namespaces/default/serviceaccounts/default", nil)
		return code == http.StatusOK, fmt.Sprint(code, err)
	}, "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"); err != nil {
		return c, err
	}
	return c, nil
}

// installCRDs creates the custom resource definitions of make kube-bins
// (kwok's Logs) and returns their names.
func (c *KubeCluster) installCRDs() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(c.bins, "crds", "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no custom resource definitions in %s/crds: run `make kube-bins`", c.bins)
	}
	var names []string
	for _, file := range files {
		y, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		b, code, err := c.send(context.Background(), "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
			"application/yaml", bytes.NewReader(bytes.TrimPrefix(y, []byte("---\n"))))
		if err != nil || code != http.StatusCreated {
			return nil, fmt.Errorf("create the custom resource definition of %s: %d %v %s", file, code, err, b)
		}
		var crd struct {
			Metadata struct{ Name string } `json:"metadata"`
		}
		if err := json.Unmarshal(b, &crd); err != nil {
			return nil, err
		}
		names = append(names, crd.Metadata.Name)
	}
	return names, nil
}

// conditionTrue tells whether the object in b has a status condition of
// type typ with status True.
func conditionTrue(b []byte, typ string) bool {
	var o struct {
		Status struct {
			Conditions []struct{ Type, Status string } `json:"conditions"`
		} `json:"status"`
	}
	if json.Unmarshal(b, &o) != nil {
		return false
	}
	return slices.ContainsFunc(o.Status.Conditions, func(c struct{ Type, Status string }) bool {
		return c.Type == typ && c.Status == "True"
	})
}

// removeStaleKubeDirs removes the directories of the clusters of test
// binaries that were killed, or timed out, before their Stop: their
// processes died with them (Pdeathsig), their files stayed.
func removeStaleKubeDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "zoe-kube-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue // being made, or another user's
		}
		pid, err := strconv.Atoi(string(b))
		if err == nil && pid > 0 && errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}

// writeFiles writes the CA, the API server's certificate, the service
// account signing key, the token file, the kubeconfig and kwok's stages.
func (c *KubeCluster) writeFiles() error {
	f := func(name string) string { return filepath.Join(c.Dir, name) }
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "zoe-test-kube-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 96, 0, 1)},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	// The API server's client certificate for the kubelets (pods' logs,
	// exec): an administrator, so that a real kubelet (AddRealNode), which
	// authenticates it against the CA and asks the API server whether it may,
	// lets it in. kwok's server asks for no certificate.
	clientKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	clientTmpl := &x509.Certificate{SerialNumber: big.NewInt(3),
		Subject:   pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	clientDER, err := x509.CreateCertificate(rand.Reader, clientTmpl, ca, &clientKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	clientKeyDER, err := x509.MarshalPKCS8PrivateKey(clientKey)
	if err != nil {
		return err
	}
	// The service accounts' tokens are signed with ES256.
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	saDER, err := x509.MarshalPKCS8PrivateKey(saKey)
	if err != nil {
		return err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	c.CAFile, c.Kubeconfig = f("ca.crt"), f("kubeconfig")
	kubeconfig, err := c.kubeconfig("admin", c.Token)
	if err != nil {
		return err
	}
	stages, err := filepath.Glob(filepath.Join(c.bins, "stages", "*.yaml"))
	if err != nil || len(stages) == 0 {
		return fmt.Errorf("no kwok stages in %s/stages: run `make kube-bins`", c.bins)
	}
	all := []string{kubeStages}
	for _, s := range stages {
		b, err := os.ReadFile(s)
		if err != nil {
			return err
		}
		all = append(all, string(b))
	}
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	for name, data := range map[string][]byte{
		"ca.crt":             pemOf("CERTIFICATE", caDER),
		"apiserver.crt":      pemOf("CERTIFICATE", der),
		"apiserver.key":      pemOf("PRIVATE KEY", keyDER),
		"kubelet-client.crt": pemOf("CERTIFICATE", clientDER),
		"kubelet-client.key": pemOf("PRIVATE KEY", clientKeyDER),
		"sa.key":             pemOf("PRIVATE KEY", saDER),
		"sa.pub":             pemOf("PUBLIC KEY", saPub),
		"tokens.csv":         fmt.Appendf(nil, "%s,admin,admin,\"system:masters\"\n", c.Token),
		"kubeconfig":         kubeconfig,
		"kwok-stages.yaml":   []byte(strings.Join(all, "\n---\n")),
	} {
		if err := os.WriteFile(f(name), data, 0o600); err != nil {
			return err
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	c.client = &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		MaxIdleConnsPerHost: 16,
	}}
	return nil
}

// kubeconfig returns a kubeconfig (JSON, which is YAML) for user's token,
// with one context, zoe-test.
func (c *KubeCluster) kubeconfig(user, token string) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"apiVersion": "v1", "kind": "Config", "current-context": "zoe-test",
		"clusters": []any{map[string]any{"name": "zoe-test",
			"cluster": map[string]any{"server": c.Server, "certificate-authority": c.CAFile}}},
		"users":    []any{map[string]any{"name": user, "user": map[string]any{"token": token}}},
		"contexts": []any{map[string]any{"name": "zoe-test", "context": map[string]any{"cluster": "zoe-test", "user": user}}},
	}, "", "  ")
}

// run starts a component, its output appended to <name>.log, in a process
// group of its own, killed if the test binary dies.
func (c *KubeCluster) run(name string, args ...string) error {
	log, err := os.OpenFile(filepath.Join(c.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = log.Close() }() // the child has its own copy
	cmd := exec.Command(filepath.Join(c.bins, name), args...)
	cmd.Dir = c.Dir
	// HOME: kwok would read ~/.kwok/kwok.yaml. KUBECONFIG: every component
	// is told its kubeconfig.
	env := slices.DeleteFunc(os.Environ(), func(e string) bool {
		return strings.HasPrefix(e, "HOME=") || strings.HasPrefix(e, "KUBECONFIG=")
	})
	cmd.Env = append(env, "HOME="+c.Dir)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c.mu.Lock()
	c.procs[name] = &kubeProc{cmd: cmd, done: done}
	c.mu.Unlock()
	return nil
}

// kill kills a component's process group and waits for the process.
func (c *KubeCluster) kill(name string) {
	c.mu.Lock()
	p := c.procs[name]
	delete(c.procs, name)
	c.mu.Unlock()
	if p == nil {
		return
	}
	select {
	case <-p.done: // already reaped: its group id may be someone else's
	default:
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.done
}

func (c *KubeCluster) stop() {
	for _, name := range []string{"kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"} {
		c.kill(name)
	}
	_ = os.RemoveAll(c.Dir)
}

// waitReady waits for the API server's /readyz.
func (c *KubeCluster) waitReady(watch ...string) error {
	return c.waitUntil("kube-apiserver's /readyz", func() (bool, string) {
		body, code, err := c.request(context.Background(), "GET", "/readyz", nil)
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	}, watch...)
}

// waitUntil polls cond until it holds; it fails when one of the watched
// components exits first, or after kubeStartTimeout, with the ends of the
// components' logs.
func (c *KubeCluster) waitUntil(what string, cond func() (bool, string), watch ...string) error {
	deadline := time.Now().Add(kubeStartTimeout)
	for {
		ok, last := cond()
		if ok {
			return nil
		}
		for _, name := range watch {
			c.mu.Lock()
			p := c.procs[name]
			c.mu.Unlock()
			if p == nil {
				continue
			}
			select {
			case <-p.done:
				log := c.logTail(name, 50)
				err := fmt.Errorf("%s exited (%v) while waiting for %s; the end of its log:\n%s",
					name, p.cmd.ProcessState, what, log)
				if strings.Contains(log, "address already in use") {
					err = fmt.Errorf("%w: %w", errPortTaken, err)
				}
				return err
			default:
			}
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, name := range watch {
				fmt.Fprintf(&logs, "\n--- the end of %s.log:\n%s", name, c.logTail(name, 50))
			}
			return fmt.Errorf("timed out after %s waiting for %s; last: %s%s", kubeStartTimeout, what, last, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *KubeCluster) logTail(name string, n int) string {
	b, err := os.ReadFile(filepath.Join(c.Dir, name+".log"))
	if err != nil {
		return err.Error()
	}
	return tail(string(b), n)
}

// LogTail returns the last n lines of a component's log (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kwok), for a
// failing test to show.
func (c *KubeCluster) LogTail(name string, n int) string { return c.logTail(name, n) }

// HTTPClient returns a client that trusts the API server's certificate;
// requests need the header "Authorization: Bearer "+Token. It has no
// timeout, for watches.
func (c *KubeCluster) HTTPClient() *http.Client { return c.client }

// request sends a request to the API server with the admin token. body is
// sent as is when it is []byte or string, else as JSON; a PATCH is a JSON
// merge patch.
func (c *KubeCluster) request(ctx context.Context, method, path string, body any) ([]byte, int, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, 0, err
		}
		r = bytes.NewReader(j)
	}
	ct := "application/json"
	if method == http.MethodPatch {
		ct = "application/merge-patch+json"
	}
	return c.send(ctx, method, path, ct, r)
}

// send sends a request to the API server with the admin token, its body
// (if r is not nil) of the given content type.
func (c *KubeCluster) send(ctx context.Context, method, path, contentType string, r io.Reader) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.Server+path, r)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	if r != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	out, err := io.ReadAll(resp.Body)
	return out, resp.StatusCode, err
}

// Do sends a request to the API server as the administrator and returns
// the response's body and status code; it fails t only when there is no
// response. body is sent as is when it is []byte or string, else as JSON;
// a PATCH is a JSON merge patch (application/merge-patch+json).
//
//	c.Do(t, "PATCH", "/api/v1/nodes/n1", map[string]any{"spec": map[string]any{"unschedulable": true}}) // cordon
func (c *KubeCluster) Do(t testing.TB, method, path string, body any) ([]byte, int) {
	t.Helper()
	out, code, err := c.request(context.Background(), method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return out, code
}

// MustDo is Do that fails t unless the status code is 2xx, and decodes the
// response into out when out is not nil.
func (c *KubeCluster) MustDo(t testing.TB, method, path string, body, out any) {
	t.Helper()
	b, code := c.Do(t, method, path, body)
	if code/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, code, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// AddNode adds a node that kwok runs, with cores CPUs, memory ("16Gi") and
// room for 110 pods allocatable, the given labels, and a pod CIDR of its
// own (pods' IPs differ), and waits until it is Ready and free of the
// not-ready taint (a second or two). The node is deleted when t ends.
// Every node's InternalIP is 127.0.0.1, where kwok's server answers the
// API server for their kubelets (pods' logs).
func (c *KubeCluster) AddNode(t testing.TB, name string, cores int, memory string, labels map[string]string) {
	t.Helper()
	t.Cleanup(func() { c.request(context.Background(), "DELETE", "/api/v1/nodes/"+name, nil) })
	if err := c.CreateNode(context.Background(), name, cores, memory, 110, labels); err != nil {
		t.Fatal(err)
	}
}

// CreateNode is AddNode with room for pods pods, outside a test: the node
// stays until the cluster stops or someone deletes it.
func (c *KubeCluster) CreateNode(ctx context.Context, name string, cores int, memory string, pods int, labels map[string]string) error {
	n := c.nodes.Add(1)
	labels = maps.Clone(labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels["kubernetes.io/hostname"] = name
	labels["kubernetes.io/os"] = "linux"
	labels["type"] = "kwok"
	capacity := map[string]string{"cpu": fmt.Sprint(cores), "memory": memory, "pods": fmt.Sprint(pods)}
	node := map[string]any{
		"apiVersion": "v1", "kind": "Node",
		"metadata": map[string]any{"name": name, "labels": labels,
			"annotations": map[string]string{KubeFakeNodeAnnotation: "fake"}},
		"spec": map[string]any{"podCIDR": fmt.Sprintf("10.2.%d.0/24", n%256)},
		// A node keeps the status it is created with (a kubelet registers
		// its node so); kwok's node-initialize stage fills in the rest.
		"status": map[string]any{"capacity": capacity, "allocatable": capacity,
			"addresses": []any{map[string]string{"type": "InternalIP", "address": "127.0.0.1"},
				map[string]string{"type": "Hostname", "address": name}},
			"daemonEndpoints": map[string]any{"kubeletEndpoint": map[string]any{"Port": c.kwokPort}},
			"nodeInfo": map[string]string{"architecture": "amd64", "operatingSystem": "linux",
				"kubeletVersion": "fake"}},
	}
	if b, code, err := c.request(ctx, "POST", "/api/v1/nodes", node); err != nil || code/100 != 2 {
		return fmt.Errorf("create node %s: %d %v %s", name, code, err, b)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var got struct {
			Spec struct {
				Taints []struct{ Key string } `json:"taints"`
			} `json:"spec"`
		}
		b, code, err := c.request(ctx, "GET", "/api/v1/nodes/"+name, nil)
		last := fmt.Sprint(code, err, string(b))
		if err == nil && code == http.StatusOK && json.Unmarshal(b, &got) == nil {
			ready := conditionTrue(b, "Ready")
			tainted := slices.ContainsFunc(got.Spec.Taints, func(t struct{ Key string }) bool {
				return t.Key == "node.kubernetes.io/not-ready"
			})
			if ready && !tainted {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("node %s not Ready after a minute; last: %s\nkwok.log:\n%s", name, last, c.logTail("kwok", 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Namespace creates a namespace of a new name for t, deleted when t ends.
func (c *KubeCluster) Namespace(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%s", c.nss.Add(1), strings.ToLower(rand.Text()[:6]))
	c.MustDo(t, "POST", "/api/v1/namespaces", map[string]any{"metadata": map[string]any{"name": name}}, nil)
	t.Cleanup(func() { c.request(context.Background(), "DELETE", "/api/v1/namespaces/"+name, nil) })
	// Pods are refused until the controller manager made the namespace's
	// default service account, within a second or so.
	WaitFor(t, time.Minute, "the default service account of "+name, func() (bool, string) {
		b, code := c.Do(t, "GET", "/api/v1/namespaces/"+name+"/serviceaccounts/default", nil)
		return code == http.StatusOK, string(b)
	})
	return name
}

// ExitPod makes kwok end the containers of a Running pod with code (and
// reason, when not empty): Succeeded for 0, Failed otherwise.
func (c *KubeCluster) ExitPod(t testing.TB, namespace, name string, code int, reason string) {
	t.Helper()
	ann := map[string]any{KubeExitCodeAnnotation: fmt.Sprint(code)}
	if reason != "" {
		ann[KubeExitReasonAnnotation] = reason
	}
	c.MustDo(t, "PATCH", "/api/v1/namespaces/"+namespace+"/pods/"+name,
		map[string]any{"metadata": map[string]any{"annotations": ann}}, nil)
}

// ServiceAccount creates the service account namespace/name unless it
// exists, and returns a token of it (valid for an hour) and a kubeconfig
// file for that token (in t's temporary directory): to test what a client
// may do with the rights RBAC gives it.
func (c *KubeCluster) ServiceAccount(t testing.TB, namespace, name string) (token, kubeconfig string) {
	t.Helper()
	b, code := c.Do(t, "POST", "/api/v1/namespaces/"+namespace+"/serviceaccounts",
		map[string]any{"metadata": map[string]any{"name": name}})
	if code != http.StatusCreated && code != http.StatusConflict {
		t.Fatalf("create service account %s/%s: %d %s", namespace, name, code, b)
	}
	var tr struct {
		Status struct{ Token string } `json:"status"`
	}
	c.MustDo(t, "POST", "/api/v1/namespaces/"+namespace+"/serviceaccounts/"+name+"/token",
		map[string]any{"spec": map[string]any{"expirationSeconds": 3600}}, &tr)
	kc, err := c.kubeconfig(namespace+"-"+name, tr.Status.Token)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token, kubeconfig
}

// KubePodLog is the log kwok serves for the containers of a pod: a file in
// the CRI format of a kubelet's container logs, which Add appends to.
type KubePodLog struct {
	File string
}

// PodLog makes kwok serve the log of every container of the pod
// namespace/name (which need not exist yet) from a new empty file. The
// API server's pods/log then reads it as a kubelet's: follow, tailLines,
// sinceSeconds, sinceTime, timestamps and limitBytes work, except that a
// follow goes on after the pod ended (kwok cannot tell). kwok learns of it
// by a watch of its own, within milliseconds on an idle machine, but a pod
// may run before: until then, asking for its log is an error.
func (c *KubeCluster) PodLog(t testing.TB, namespace, name string) *KubePodLog {
	t.Helper()
	dir := filepath.Join(c.Dir, "podlogs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	l := &KubePodLog{File: filepath.Join(dir, namespace+"_"+name+".log")}
	if err := os.WriteFile(l.File, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.ServePodLog(context.Background(), namespace, name, l.File); err != nil {
		t.Fatal(err)
	}
	return l
}

// ServePodLog makes kwok serve the log of every container of the pod
// namespace/name (which need not exist yet) from file, in the CRI format
// of a kubelet's container logs: PodLog outside go test (a benchmark gives
// its pods an empty log, as a kubelet serves a silent container's; kwok
// has none by default, and asking for one is an error).
func (c *KubeCluster) ServePodLog(ctx context.Context, namespace, name, file string) error {
	b, code, err := c.request(ctx, "POST", "/apis/kwok.x-k8s.io/v1alpha1/namespaces/"+namespace+"/logs", map[string]any{
		"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
		"metadata": map[string]any{"name": name, "namespace": namespace},
		"spec":     map[string]any{"logs": []any{map[string]any{"logsFile": file, "follow": true}}},
	})
	if err == nil && code/100 != 2 {
		err = fmt.Errorf("serve the log of pod %s/%s: %d %s", namespace, name, code, b)
	}
	return err
}

// Add appends a line of stream ("stdout" or "stderr") written at time at.
func (l *KubePodLog) Add(t testing.TB, at time.Time, stream, line string) {
	t.Helper()
	f, err := os.OpenFile(l.File, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(f, "%s %s F %s\n", at.UTC().Format(time.RFC3339Nano), stream, line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// RestartAPIServer kills kube-apiserver (SIGKILL, as a crash would) and
// starts it again on the same port with the same etcd, and waits until it
// is ready. The watches of every client break (of every test sharing the
// cluster); the other components reconnect by themselves.
func (c *KubeCluster) RestartAPIServer(t testing.TB) {
	t.Helper()
	c.StopAPIServer(t)
	c.StartAPIServer(t)
}

// StopAPIServer kills kube-apiserver (SIGKILL, as a crash would); until
// StartAPIServer, the cluster cannot be asked anything.
func (c *KubeCluster) StopAPIServer(t testing.TB) {
	t.Helper()
	c.kill("kube-apiserver")
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the
// same port with the same etcd, and waits until it is ready.
func (c *KubeCluster) StartAPIServer(t testing.TB) {
	t.Helper()
	if err := c.run("kube-apiserver", c.apiArgs...); err != nil {
		t.Fatal(err)
	}
	if err := c.waitReady("etcd", "kube-apiserver"); err != nil {
		t.Fatalf("restart kube-apiserver: %v", err)
	}
}

// Apply creates the objects of a YAML manifest (documents separated by
// "---" lines), as kubectl create -f would, and deletes them when t ends.
// It knows the REST path of any kind whose plural adds "s" (or turns a
// final "y" into "ies"), which covers namespaces, service accounts, RBAC,
// quotas and network policies.
func (c *KubeCluster) Apply(t testing.TB, manifest []byte) {
	t.Helper()
	var created []string
	t.Cleanup(func() {
		for _, p := range slices.Backward(created) {
			c.request(context.Background(), "DELETE", p, nil)
		}
	})
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(manifest), -1) {
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("manifest document %d: %v", i+1, err)
		}
		var obj struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if string(j) == "null" {
			continue // comments only
		}
		if err := json.Unmarshal(j, &obj); err != nil || obj.Kind == "" || obj.APIVersion == "" {
			t.Fatalf("manifest document %d: no kind and apiVersion (%v): %s", i+1, err, doc)
		}
		base := "/apis/" + obj.APIVersion
		if obj.APIVersion == "v1" {
			base = "/api/v1"
		}
		if obj.Metadata.Namespace != "" {
			base += "/namespaces/" + obj.Metadata.Namespace
		}
		plural := strings.ToLower(obj.Kind)
		if p, ok := strings.CutSuffix(plural, "y"); ok {
			plural = p + "ies"
		} else {
			plural += "s"
		}
		c.MustDo(t, "POST", base+"/"+plural, j, nil)
		created = append(created, base+"/"+plural+"/"+obj.Metadata.Name)
	}
}
