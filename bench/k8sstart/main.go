// Command k8sstart times, on a Kubernetes control plane of its own whose
// nodes are kwok's (internal/testutil: pods run within a second, no
// containers), how long ZApps take from their submission to `running`
// through a real `zoe server` on the k8s back-end, against client-go
// creating the same objects directly:
//
//	make build kube-bins && go run ./bench/k8sstart [-sizes 1,4,16] [-reps 3] [-executions 1000]
//
// (a) For each size N, a ZApp of N services (64 MiB, 0.1 core each) is
// submitted through the REST API and timed until the execution is
// `running`; then client-go makes what Zoe made for it (the execution's
// headless Service and NetworkPolicy, then its N pods one after another,
// each watched until Running). The direct objects are copies of Zoe's own
// (requests and limits, labels and annotations, node affinity, security
// context, workspace volume), renamed, in a namespace of their own. It
// prints the medians and their ratio (Zoe / client-go).
//
// (b) -executions ZApps of -services services are submitted from -clients
// clients at once, timed until every one runs, with each execution's
// submit→running (from its events) at p50 and p99; then client-go makes the
// same objects, -clients executions at a time (each: Service, policy, pods
// created without waiting), and a watch times them until Running. The
// daemon is stopped before (its pods stay: the nodes hold both).
//
// The daemon's administrator has no quota (admins' default: unlimited), so
// every execution may run at once. Everything lives in the benchmark's own
// cluster, stopped and removed at the end with the daemon's directory
// (-keep keeps the directory: configuration, database, daemon.log).
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/zoe-project/zoe/bench/internal/startbench"
	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/testutil"
)

const (
	deployment = "kbench"
	user       = "bench"
	image      = "zoe/bench:1"
	memory     = startbench.Memory
	cores      = startbench.Cores
	// directNS holds the objects client-go makes; Zoe's are in
	// zoe-<deployment>.
	directNS = "direct-" + deployment
	// Labels of Zoe's objects (the engine's and the k8s plugin's).
	labelDeployment = "zoe.deployment"
	labelExecution  = "zoe.execution"
	labelNetwork    = "zoe.network"
	labelPod        = "zoe.pod"
	// idlePause after a clean-up in (a): the time client-go's rate limiter
	// (5 requests/s, a burst of 10) takes to fill up again.
	idlePause = 2 * time.Second
)

type options struct {
	zoe        string
	sizes      []int
	reps       int
	executions int
	services   int
	clients    int
	nodes      int
	timeout    time.Duration
	directQPS  float64
	logLevel   string
	keep       bool
}

func main() {
	var o options
	sizes := flag.String("sizes", "1,4,16", "ZApp sizes (services) of (a), comma-separated; empty to skip (a)")
	flag.StringVar(&o.zoe, "zoe", "bin/zoe", "the zoe binary (its plugins next to it: make build)")
	flag.IntVar(&o.reps, "reps", 3, "repetitions of each measure of (a)")
	flag.IntVar(&o.executions, "executions", 1000, "executions submitted at once in (b); 0 to skip (b)")
	flag.IntVar(&o.services, "services", 4, "services per execution in (b)")
	flag.IntVar(&o.clients, "clients", 16, "concurrent submitters in (b), and concurrent executions of client-go")
	flag.IntVar(&o.nodes, "nodes", 4, "kwok nodes")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Minute, "give up waiting for (b) to run after this long, for each of Zoe and client-go")
	flag.Float64Var(&o.directQPS, "direct-qps", -1, "client-side rate limit of the direct client-go client (requests/s; -1: none, 0: client-go's default of 5, burst 10)")
	flag.StringVar(&o.logLevel, "log-level", "info", "the daemon's log level (daemon.log)")
	flag.BoolVar(&o.keep, "keep", false, "keep the daemon's directory (configuration, database, daemon.log)")
	flag.Parse()
	for s := range strings.SplitSeq(*sizes, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "k8sstart: bad size %q\n", s)
			os.Exit(2)
		}
		o.sizes = append(o.sizes, n)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "k8sstart:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.reps < 1 || o.executions < 0 || o.services < 1 || o.clients < 1 || o.nodes < 1 || o.timeout <= 0 {
		return errors.New("need -reps, -services, -clients, -nodes and -timeout above 0, -executions 0 or more")
	}
	zoeBin, err := checkBuild(o.zoe)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Printf("load average before: %s\n", startbench.LoadAvg())
	// kwok follows each log it serves with an inotify instance of its own,
	// as a kubelet does: with the kernel's default of 128 per user, the
	// rest of Zoe's log streams fail and are asked for again and again
	// (Kubernetes nodes raise it so).
	restore, err := raiseInotify(2*o.executions*o.services + 1024)
	if err != nil {
		return err
	}
	defer restore()
	t := time.Now()
	kube, stopKube, err := testutil.StartKubeCluster()
	if err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	defer stopKube()
	// Room for Zoe's pods of (b) and client-go's at once, and for (a).
	pods := 2*o.executions*o.services + 2*slices.Max(append(slices.Clone(o.sizes), 1))
	perNode := pods/o.nodes + 110
	var nodes []string
	for i := range o.nodes {
		name := fmt.Sprintf("node%d", i+1)
		if err := kube.CreateNode(ctx, name, int(float64(perNode)*cores)+2, fmt.Sprintf("%dMi", perNode*(memory>>20)+1024), perNode, nil); err != nil {
			return err
		}
		nodes = append(nodes, name)
	}
	// Zoe's pods get an empty log each (serveLogs), as a kubelet serves a
	// silent container's.
	silent := filepath.Join(kube.Dir, "silent.log")
	if err := os.WriteFile(silent, nil, 0o600); err != nil {
		return err
	}
	kcs, err := directClient(kube.Kubeconfig, o.directQPS)
	if err != nil {
		return err
	}
	if _, err := kcs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: directNS}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", directNS, err)
	}
	fmt.Printf("control plane and %d kwok nodes (%d pods, %d cores each) ready in %s\n", o.nodes, perNode,
		int(float64(perNode)*cores)+2, time.Since(t).Round(100*time.Millisecond))

	dir, err := os.MkdirTemp("", "zoe-k8sstart-")
	if err != nil {
		return err
	}
	if o.keep {
		defer fmt.Printf("kept %s (zoe.hcl, users.csv, data/, daemon.log)\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	d, err := startZoe(ctx, zoeBin, dir, kube.Kubeconfig, o.logLevel, o.clients)
	if err != nil {
		return err
	}
	defer d.stop()

	b := &bench{o: o, c: d.c, kcs: kcs, zoeNS: "zoe-" + deployment, nodes: nodes, kube: kube, silent: silent}
	if len(o.sizes) > 0 {
		if err := b.sizes(ctx); err != nil {
			return fmt.Errorf("%w (daemon log: %s)", err, d.log)
		}
	}
	if o.executions > 0 {
		if err := b.many(ctx, d); err != nil {
			return fmt.Errorf("%w (daemon log: %s)", err, d.log)
		}
	}
	fmt.Printf("load average after: %s\n", startbench.LoadAvg())
	return nil
}

type bench struct {
	o      options
	kube   *testutil.KubeCluster
	silent string // an empty log file
	c      *client.Client
	kcs    kubernetes.Interface
	zoeNS  string
	nodes  []string
	// tmpl: copies of what Zoe made for an execution, taken from the
	// first one that ran.
	tmpl *template
	seq  atomic.Int64
}

// sizes is (a): each size, Zoe then client-go, -reps times.
func (b *bench) sizes(ctx context.Context) error {
	fmt.Printf("\n(a) a ZApp of N services (%s, %d MiB, %.1f core each): submit → running, medians of %d\n",
		image, memory>>20, cores, b.o.reps)
	fmt.Printf("%8s  %14s  %14s  %6s\n", "services", "zoe submit→run", "client-go ×N", "ratio")
	for _, n := range b.o.sizes {
		var zt, dt []time.Duration
		for range b.o.reps {
			d, err := b.timeZoe(ctx, n)
			if err != nil {
				return fmt.Errorf("zoe, %d services: %w", n, err)
			}
			zt = append(zt, d)
			d, err = b.timeDirect(ctx, n)
			if err != nil {
				return fmt.Errorf("client-go, %d services: %w", n, err)
			}
			dt = append(dt, d)
		}
		zm, dm := startbench.Median(zt), startbench.Median(dt)
		fmt.Printf("%8d  %14s  %14s  %6.2f   (zoe %s; client-go %s)\n", n, zm.Round(time.Millisecond), dm.Round(time.Millisecond),
			float64(zm)/float64(dm), startbench.Durations(zt), startbench.Durations(dt))
	}
	fmt.Printf("load average: %s\n", startbench.LoadAvg())
	return nil
}

// serveLogs gives the n pods of Zoe's execution id an empty log, as a
// kubelet serves a silent container's: kwok serves none by default, and
// Zoe's log collectors, refused, would ask again and again, spending the
// plugin's rate of requests (a real cluster's running pods have logs).
func (b *bench) serveLogs(ctx context.Context, id int64, n int) {
	for i := range n {
		pod := fmt.Sprintf("worker%d-%d-%s", i, id, deployment)
		if err := b.kube.ServePodLog(ctx, b.zoeNS, pod, b.silent); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "k8sstart:", err)
		}
	}
}

// timeZoe submits a ZApp of n services and measures until it runs; then it
// terminates it and waits until it ended (not measured).
func (b *bench) timeZoe(ctx context.Context, n int) (time.Duration, error) {
	desc, err := startbench.ZApp(n, image, "worker", false)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	ex, err := b.c.StartExecution(ctx, client.StartExecution{Name: "bench", Description: desc})
	if err != nil {
		return 0, fmt.Errorf("submit: %w", err)
	}
	go b.serveLogs(ctx, ex.ID, n)
	if err := startbench.Await(ctx, b.c, ex.ID, "running"); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	if b.tmpl == nil {
		if b.tmpl, err = b.template(ctx, ex.ID); err != nil {
			return 0, err
		}
	}
	if _, err := b.c.Terminate(ctx, ex.ID); err != nil {
		return 0, fmt.Errorf("terminate: %w", err)
	}
	if err := startbench.Await(ctx, b.c, ex.ID, "terminated"); err != nil {
		return 0, err
	}
	// The k8s plugin's client-go client allows 5 requests/s after a burst
	// of 10: the clean-up's requests would delay the next start. A
	// submission to an idle daemon is measured.
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(idlePause):
	}
	return d, nil
}

// template is what Zoe made for one execution: its headless Service, its
// NetworkPolicy and one of its pods.
type template struct {
	svc *corev1.Service
	pol *networkingv1.NetworkPolicy
	pod *corev1.Pod
}

func (b *bench) template(ctx context.Context, id int64) (*template, error) {
	sel := metav1.ListOptions{LabelSelector: labelExecution + "=" + strconv.FormatInt(id, 10)}
	pods, err := b.kcs.CoreV1().Pods(b.zoeNS).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	svcs, err := b.kcs.CoreV1().Services(b.zoeNS).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	pols, err := b.kcs.NetworkingV1().NetworkPolicies(b.zoeNS).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	if len(pods.Items) == 0 || len(svcs.Items) != 1 || len(pols.Items) != 1 {
		return nil, fmt.Errorf("execution %d: %d pods, %d services, %d network policies: want pods and one of each other",
			id, len(pods.Items), len(svcs.Items), len(pols.Items))
	}
	return &template{svc: &svcs.Items[0], pol: &pols.Items[0], pod: &pods.Items[0]}, nil
}

// relabel gives Zoe's labels to a copy, of another deployment (Zoe's
// would take it for its own), network and pod.
func relabel(m map[string]string, network, pod string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	out[labelDeployment] = "direct"
	if _, ok := out[labelNetwork]; ok || pod == "" {
		out[labelNetwork] = network
	}
	if pod != "" {
		out[labelPod] = pod
	}
	return out
}

func (t *template) objects(network string) (*corev1.Service, *networkingv1.NetworkPolicy) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: network, Namespace: directNS,
		Labels: relabel(t.svc.Labels, network, ""), Annotations: t.svc.Annotations}, Spec: *t.svc.Spec.DeepCopy()}
	members := map[string]string{labelDeployment: "direct", labelNetwork: network}
	svc.Spec.Selector = members
	pol := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: network, Namespace: directNS,
		Labels: relabel(t.pol.Labels, network, ""), Annotations: t.pol.Annotations}, Spec: *t.pol.Spec.DeepCopy()}
	pol.Spec.PodSelector = metav1.LabelSelector{MatchLabels: members}
	for i := range pol.Spec.Ingress {
		for j := range pol.Spec.Ingress[i].From {
			pol.Spec.Ingress[i].From[j].PodSelector = &metav1.LabelSelector{MatchLabels: members}
		}
	}
	return svc, pol
}

func (t *template) podFor(name, network, node string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: directNS,
		Labels: relabel(t.pod.Labels, network, name), Annotations: t.pod.Annotations}, Spec: *t.pod.Spec.DeepCopy()}
	p.Spec.NodeName = ""
	p.Spec.Hostname = name
	if p.Spec.Subdomain != "" {
		p.Spec.Subdomain = network
	}
	if p.Spec.DNSConfig != nil {
		p.Spec.DNSConfig.Searches = []string{network + "." + directNS + ".svc.cluster.local"}
	}
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for i := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			term := &a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[i]
			for j := range term.MatchFields {
				if term.MatchFields[j].Key == "metadata.name" {
					term.MatchFields[j].Values = []string{node}
				}
			}
		}
	}
	return p
}

// create makes an execution's Service and NetworkPolicy, as Zoe's
// CreateNetwork does.
func (b *bench) create(ctx context.Context, network string) error {
	svc, pol := b.tmpl.objects(network)
	if _, err := b.kcs.CoreV1().Services(directNS).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create service %s: %w", network, err)
	}
	if _, err := b.kcs.NetworkingV1().NetworkPolicies(directNS).Create(ctx, pol, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create network policy %s: %w", network, err)
	}
	return nil
}

// timeDirect makes what Zoe makes for a ZApp of n services with client-go:
// the Service and policy, then each pod, watched until it runs before the
// next; then it removes them (not measured).
func (b *bench) timeDirect(ctx context.Context, n int) (time.Duration, error) {
	network := fmt.Sprintf("d-%d", b.seq.Add(1))
	t0 := time.Now()
	if err := b.create(ctx, network); err != nil {
		return 0, err
	}
	var names []string
	for i := range n {
		name := fmt.Sprintf("web%d-%s", i, network)
		pod, err := b.kcs.CoreV1().Pods(directNS).Create(ctx, b.tmpl.podFor(name, network, b.nodes[i%len(b.nodes)]), metav1.CreateOptions{})
		if err != nil {
			return 0, fmt.Errorf("create pod %s: %w", name, err)
		}
		names = append(names, name)
		if err := b.waitRunning(ctx, pod); err != nil {
			return 0, err
		}
	}
	d := time.Since(t0)
	return d, b.removeDirect(ctx, network, names)
}

// waitRunning watches a pod until it runs, as the k8s plugin's Start does.
func (b *bench) waitRunning(ctx context.Context, pod *corev1.Pod) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rv := pod.ResourceVersion
	for {
		w, err := b.kcs.CoreV1().Pods(directNS).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + pod.Name, ResourceVersion: rv})
		if err != nil {
			return fmt.Errorf("watch pod %s: %w", pod.Name, err)
		}
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			rv = p.ResourceVersion
			if p.Status.Phase == corev1.PodRunning {
				w.Stop()
				return nil
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			return fmt.Errorf("pod %s not running: %w", pod.Name, ctx.Err())
		}
	}
}

func (b *bench) removeDirect(ctx context.Context, network string, names []string) error {
	zero := int64(0)
	for _, name := range names {
		if err := b.kcs.CoreV1().Pods(directNS).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			return fmt.Errorf("delete pod %s: %w", name, err)
		}
	}
	if err := b.kcs.NetworkingV1().NetworkPolicies(directNS).Delete(ctx, network, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("delete network policy %s: %w", network, err)
	}
	if err := b.kcs.CoreV1().Services(directNS).Delete(ctx, network, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("delete service %s: %w", network, err)
	}
	return nil
}

// many is (b): Zoe, then (the daemon stopped) client-go.
func (b *bench) many(ctx context.Context, d *daemon) error {
	o := b.o
	if b.tmpl == nil {
		// The objects to copy come from a ZApp Zoe ran.
		if _, err := b.timeZoe(ctx, 1); err != nil {
			return fmt.Errorf("zoe, 1 service: %w", err)
		}
	}
	fmt.Printf("\n(b) %d executions × %d services (%d pods) submitted from %d clients; load average %s\n",
		o.executions, o.services, o.executions*o.services, o.clients, startbench.LoadAvg())
	daemonCPU, pluginPID := cpuTime(d.pid()), b.pluginPID(ctx)
	pluginCPU := cpuTime(pluginPID)
	reqBefore := b.requests(ctx)
	zr, err := b.manyZoe(ctx)
	if err != nil {
		return err
	}
	reqDuring := b.requests(ctx)
	allRunning := "all running after " + zr.all.Round(time.Millisecond).String()
	if zr.missing > 0 {
		// Their latencies are above the timeout: the percentiles of those
		// that ran would flatter.
		allRunning = fmt.Sprintf("%d of %d not running after %s; of those running:", zr.missing, o.executions, zr.all.Round(time.Millisecond))
	}
	fmt.Printf("zoe:        accepted in %s, %s submit→running p50 %s, p99 %s, max %s\n",
		zr.accepted.Round(time.Millisecond), allRunning, pct(zr.lat, 50), pct(zr.lat, 99), pct(zr.lat, 100))
	fmt.Printf("            of which submitted→starting p50 %s, p99 %s; starting→running p50 %s, p99 %s\n",
		pct(zr.queue, 50), pct(zr.queue, 99), pct(zr.start, 50), pct(zr.start, 99))
	fmt.Printf("            CPU: daemon %s, k8s plugin %s; load average %s\n", (cpuTime(d.pid()) - daemonCPU).Round(10*time.Millisecond),
		(cpuTime(pluginPID) - pluginCPU).Round(10*time.Millisecond), startbench.LoadAvg())
	fmt.Printf("            API requests meanwhile (every client's, the control plane's included): %s\n", requestsDiff(reqBefore, reqDuring))
	// The daemon would take up CPU beside client-go's run; its pods stay.
	d.stop()
	dr, err := b.manyDirect(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("client-go:  all running after %s; create→running p50 %s, p99 %s, max %s; load average %s\n",
		dr.all.Round(time.Millisecond), pct(dr.lat, 50), pct(dr.lat, 99), pct(dr.lat, 100), startbench.LoadAvg())
	if zr.missing > 0 {
		fmt.Printf("no ratio: not every execution of Zoe's ran; pod-start SLO (p99 ≤ 5 s): zoe missed, client-go %s\n", slo(dr.lat))
		return nil
	}
	fmt.Printf("ratio (zoe / client-go): all running %.2f, p50 %.2f, p99 %.2f; pod-start SLO (p99 ≤ 5 s): zoe %s, client-go %s\n",
		float64(zr.all)/float64(dr.all), ratio(zr.lat, dr.lat, 50), ratio(zr.lat, dr.lat, 99), slo(zr.lat), slo(dr.lat))
	return nil
}

type result struct {
	accepted, all time.Duration
	// missing executions were not running when it gave up.
	missing int
	// Per execution.
	lat, queue, start []time.Duration
}

func (b *bench) manyZoe(ctx context.Context) (*result, error) {
	o := b.o
	desc, err := startbench.ZApp(o.services, image, "worker", false)
	if err != nil {
		return nil, err
	}
	// The logs of the pods to come are served before the clock starts
	// (execution ids follow the last one): served as each execution is
	// accepted, thousands of them came after their pods ran, whose log
	// collectors asked again and again meanwhile, as they would not of a
	// kubelet.
	last, err := b.c.ListExecutions(ctx, client.ExecutionFilter{Limit: 1})
	if err != nil {
		return nil, err
	}
	first := int64(1)
	if len(last.Executions) > 0 {
		first = last.Executions[0].ID + 1
	}
	{
		var ids atomic.Int64
		ids.Store(first - 1)
		g, gctx := errgroup.WithContext(ctx)
		for range o.clients {
			g.Go(func() error {
				for id := ids.Add(1); id < first+int64(o.executions); id = ids.Add(1) {
					b.serveLogs(gctx, id, o.services)
				}
				return nil
			})
		}
		_ = g.Wait()
	}
	var mu sync.Mutex
	submitted := map[int64]time.Time{}
	var next atomic.Int64
	t0 := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for range o.clients {
		g.Go(func() error {
			for {
				i := next.Add(1)
				if i > int64(o.executions) {
					return nil
				}
				t := time.Now()
				ex, err := b.c.StartExecution(gctx, client.StartExecution{Name: "bench-" + strconv.FormatInt(i, 10), Description: desc})
				if err != nil {
					return fmt.Errorf("submit execution %d: %w", i, err)
				}
				if ex.ID >= first+int64(o.executions) {
					go b.serveLogs(gctx, ex.ID, o.services) // not foreseen
				}
				mu.Lock()
				submitted[ex.ID] = t
				mu.Unlock()
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	r := &result{accepted: time.Since(t0)}
	deadline := t0.Add(o.timeout)
	lastReport := time.Now()
	for {
		l, err := b.c.ListExecutions(ctx, client.ExecutionFilter{Status: []string{"submitted", "queued", "starting"}, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(l.Executions) == 0 {
			break
		}
		if time.Now().After(deadline) {
			// What ran so far is measured still.
			fmt.Printf("  gave up after %s: %s\n", o.timeout, b.counts(ctx))
			break
		}
		if time.Since(lastReport) >= 15*time.Second {
			lastReport = time.Now()
			fmt.Printf("  %5.0fs: %s\n", time.Since(t0).Seconds(), b.counts(ctx))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	r.all = time.Since(t0)
	// Each execution's events say when it moved.
	ids := make(chan int64)
	g, gctx = errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(ids)
		for id := range submitted {
			select {
			case ids <- id:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for range o.clients {
		g.Go(func() error {
			for id := range ids {
				ex, err := b.c.GetExecution(gctx, id)
				if err != nil {
					return err
				}
				if ex.Status != "running" {
					if ex.Status == "error" || ex.Status == "terminated" {
						return fmt.Errorf("execution %d is %s: %s", id, ex.Status, ex.ErrorMessage)
					}
					mu.Lock()
					r.missing++
					mu.Unlock()
					continue
				}
				var starting, running time.Time
				for _, ev := range ex.Events {
					if ev.Service == "" && ev.To == "starting" && starting.IsZero() {
						starting = ev.Time
					}
					if ev.Service == "" && ev.To == "running" && running.IsZero() {
						running = ev.Time
					}
				}
				if starting.IsZero() || running.IsZero() {
					return fmt.Errorf("execution %d: no starting or running event", id)
				}
				mu.Lock()
				r.lat = append(r.lat, running.Sub(submitted[id]))
				r.queue = append(r.queue, starting.Sub(submitted[id]))
				r.start = append(r.start, running.Sub(starting))
				mu.Unlock()
			}
			return nil
		})
	}
	return r, g.Wait()
}

func (b *bench) counts(ctx context.Context) string {
	counts := map[string]int{}
	cursor := ""
	for {
		l, err := b.c.ListExecutions(ctx, client.ExecutionFilter{Limit: 500, Cursor: cursor})
		if err != nil {
			return err.Error()
		}
		for _, ex := range l.Executions {
			counts[ex.Status]++
		}
		if cursor = l.NextCursor; cursor == "" {
			break
		}
	}
	var parts []string
	for _, s := range []string{"submitted", "queued", "starting", "running", "cleaning_up", "terminated", "error"} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	return strings.Join(parts, ", ")
}

// manyDirect makes the executions' objects with client-go, -clients
// executions at a time, each its Service, policy and pods created one after
// another without waiting, and a watch of the namespace times the pods
// until Running.
func (b *bench) manyDirect(ctx context.Context) (*result, error) {
	o := b.o
	total := o.executions * o.services
	list, err := b.kcs.CoreV1().Pods(directNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	runningAt := map[string]time.Time{}
	all := make(chan struct{})
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchErr := make(chan error, 1)
	go func() {
		rv := list.ResourceVersion
		for {
			w, err := b.kcs.CoreV1().Pods(directNS).Watch(wctx, metav1.ListOptions{ResourceVersion: rv})
			if err != nil {
				watchErr <- err
				return
			}
			for ev := range w.ResultChan() {
				if ev.Type == watch.Error {
					continue
				}
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				rv = p.ResourceVersion
				if p.Status.Phase != corev1.PodRunning {
					continue
				}
				now := time.Now()
				mu.Lock()
				if _, seen := runningAt[p.Name]; !seen {
					runningAt[p.Name] = now
					if len(runningAt) == total {
						close(all)
					}
				}
				mu.Unlock()
			}
			w.Stop()
			if wctx.Err() != nil {
				return
			}
		}
	}()
	created := make([]time.Time, o.executions)
	var next atomic.Int64
	t0 := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for range o.clients {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= o.executions {
					return nil
				}
				created[i] = time.Now()
				network := fmt.Sprintf("m-%d", i)
				if err := b.create(gctx, network); err != nil {
					return err
				}
				for j := range o.services {
					name := fmt.Sprintf("worker%d-%s", j, network)
					node := b.nodes[(i*o.services+j)%len(b.nodes)]
					if _, err := b.kcs.CoreV1().Pods(directNS).Create(gctx, b.tmpl.podFor(name, network, node), metav1.CreateOptions{}); err != nil {
						return fmt.Errorf("create pod %s: %w", name, err)
					}
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	select {
	case <-all:
	case err := <-watchErr:
		return nil, fmt.Errorf("watch: %w", err)
	case <-time.After(time.Until(t0.Add(o.timeout))):
		mu.Lock()
		n := len(runningAt)
		mu.Unlock()
		return nil, fmt.Errorf("%d of %d pods running after %s", n, total, o.timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r := &result{}
	mu.Lock()
	defer mu.Unlock()
	var last time.Time
	for i := range o.executions {
		var done time.Time
		for j := range o.services {
			if at := runningAt[fmt.Sprintf("worker%d-m-%d", j, i)]; at.After(done) {
				done = at
			}
		}
		r.lat = append(r.lat, done.Sub(created[i]))
		if done.After(last) {
			last = done
		}
	}
	r.all = last.Sub(t0)
	return r, nil
}

func (b *bench) pluginPID(ctx context.Context) int {
	l, err := b.c.Plugins(ctx)
	if err != nil {
		return 0
	}
	for _, p := range l.Plugins {
		if p.Kind == "backend" && p.Name == "k8s" {
			return p.PID
		}
	}
	return 0
}

// percentile: the nearest rank; 100 is the maximum.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

func pct(ds []time.Duration, p int) string {
	return percentile(ds, p).Round(time.Millisecond).String()
}

func ratio(a, b []time.Duration, p int) float64 {
	return float64(percentile(a, p)) / float64(percentile(b, p))
}

func slo(ds []time.Duration) string {
	if percentile(ds, 99) <= 5*time.Second {
		return "met"
	}
	return "missed"
}

// cpuTime is the user and system CPU time of a process so far (Linux).
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command may hold spaces: count the fields after it.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	// USER_HZ is 100 on every Linux Go supports.
	return time.Duration(u+s) * 10 * time.Millisecond
}

// directClient is the benchmark's own client of the cluster.
func directClient(kubeconfig string, qps float64) (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	// Negative: no client-side limit; 0: client-go's default.
	rc.QPS = float32(qps)
	rc.Burst = 10
	if qps > 10 {
		rc.Burst = int(qps)
	}
	rc.UserAgent = "k8sstart"
	return kubernetes.NewForConfig(rc)
}

// checkBuild finds the zoe binary and the plugins this configuration
// loads; they are built by make, never here.
func checkBuild(bin string) (string, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return "", err
	}
	for _, f := range []string{bin, filepath.Join(filepath.Dir(bin), "zoe-plugin-auth-file"),
		filepath.Join(filepath.Dir(bin), "zoe-plugin-workspace-dir"), filepath.Join(filepath.Dir(bin), "zoe-plugin-backend-k8s")} {
		if _, err := os.Stat(f); err != nil {
			return "", fmt.Errorf("%s is missing: run `make build` first (from the repository's root): %w", f, err)
		}
	}
	return bin, nil
}

// daemon is a `zoe server` process.
type daemon struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
	c    *client.Client
	once sync.Once
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

func (d *daemon) stop() {
	d.once.Do(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
}

// startZoe writes the configuration into dir, runs `zoe server` on it and
// logs in once its API answers.
func startZoe(ctx context.Context, bin, dir, kubeconfig, logLevel string, conns int) (*daemon, error) {
	password := rand.Text()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	// An admin: no quota holds the executions back. Numeric ids: the pods
	// run as them.
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), fmt.Appendf(nil, "%s,%s,admin,12345,12345\n", user, hash), 0o600); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf(`listen          = %q
deployment_name = %q
data_dir        = "data"
log_level       = %q
auth "file" {
  users_file = "users.csv"
}
workspace "dir" {
  base_path = "workspaces"
}
backend "k8s" {
  kubeconfig     = %q
  pod_pids_limit = 1024
}
`, addr, deployment, logLevel, kubeconfig)
	cfgFile := filepath.Join(dir, "zoe.hcl")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the process has its own
	d := &daemon{done: make(chan struct{}), log: logFile.Name()}
	d.cmd = exec.Command(bin, "server", "-config", cfgFile)
	d.cmd.Dir = dir
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns + 2}, Timeout: time.Minute}
	anon, err := client.New("http://"+addr, client.WithHTTPClient(hc))
	if err != nil {
		d.stop()
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if h, err := anon.Health(ctx); err == nil && h.Status == "ok" {
			break
		}
		select {
		case <-d.done:
			log, _ := os.ReadFile(d.log)
			return nil, fmt.Errorf("zoe server exited:\n%s", log)
		case <-ctx.Done():
			d.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("zoe server did not answer within 60s (log: %s)", d.log)
		}
	}
	s, err := anon.Login(ctx, client.Login{Username: user, Password: password, TokenName: "k8sstart"})
	if err != nil {
		d.stop()
		return nil, fmt.Errorf("login: %w", err)
	}
	if d.c, err = client.New("http://"+addr, client.WithHTTPClient(hc), client.WithToken(s.Token)); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

// requests are the API server's request counts (apiserver_request_total)
// by verb, resource and subresource; nil when its metrics cannot be read.
func (b *bench) requests(ctx context.Context) map[string]float64 {
	raw, err := b.kcs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil
	}
	out := map[string]float64{}
	label := func(line, name string) string {
		_, rest, ok := strings.Cut(line, name+`="`)
		if !ok {
			return ""
		}
		v, _, _ := strings.Cut(rest, `"`)
		return v
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		n, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		key := label(line, "verb") + " " + label(line, "resource")
		if sub := label(line, "subresource"); sub != "" {
			key += "/" + sub
		}
		out[key] += n
	}
	return out
}

// requestsDiff is the total between two counts, and the biggest kinds.
func requestsDiff(before, after map[string]float64) string {
	if after == nil {
		return "unknown (metrics unreadable)"
	}
	type kind struct {
		key string
		n   float64
	}
	var kinds []kind
	total := 0.0
	for k, n := range after {
		if d := n - before[k]; d > 0 {
			kinds = append(kinds, kind{k, d})
			total += d
		}
	}
	slices.SortFunc(kinds, func(a, b kind) int { return int(b.n - a.n) })
	parts := []string{fmt.Sprintf("%.0f", total)}
	for i, k := range kinds {
		if i == 6 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.0f", k.key, k.n))
	}
	return strings.Join(parts, ", ")
}

// raiseInotify raises fs.inotify.max_user_instances to at least n, and
// returns what puts it back.
func raiseInotify(n int) (func(), error) {
	const path = "/proc/sys/fs/inotify/max_user_instances"
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	was, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || was >= n {
		return func() {}, err
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(n)), 0o644); err != nil {
		return nil, fmt.Errorf("raise %s to %d (kwok's log streams; as root, or raise it yourself): %w", path, n, err)
	}
	fmt.Printf("fs.inotify.max_user_instances raised from %d to %d until the end\n", was, n)
	return func() { _ = os.WriteFile(path, b, 0o644) }, nil
}
