// Package kube is Zoe's "k8s" back-end: every service instance is a Pod of
// a Kubernetes cluster, every execution a headless Service.
//
// # Objects
//
// Everything lives in one namespace per deployment (zoe-<deployment> unless
// configured), created when missing and allowed. Per service instance: a
// Pod (restartPolicy Never) named after the instance, with one container,
// "main"; and, when the service publishes ports and endpoint_mode is
// "node_port", a NodePort Service <name>-ports owned by the Pod. Per
// execution: a headless Service named after the execution's network; each
// Pod takes it as its subdomain and gets
// <network>.<namespace>.svc.<cluster domain> as a DNS search domain, so the
// execution's services find each other by their bare host names.
//
// Every object carries the label zoe.deployment; Zoe's own labels (which
// may hold values Kubernetes refuses as label values, e-mail addresses
// say) are kept whole in the annotation zoe.labels, and copied as labels
// where Kubernetes accepts them.
//
// # Placement
//
// Zoe's scheduler chooses the node; the Pod carries a required node
// affinity to it (metadata.name), so the Kubernetes scheduler still checks
// the fit and the taints. A Pod that stays unschedulable longer than
// pending_timeout is removed and reported with the scheduler's reason.
//
// # Handles
//
// A handle's ID is the Pod's UID, which no later Pod of the same name
// shares; its State (Version 1) is {"namespace", "name"}.
package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/zoe-project/zoe/plugins/internal/removals"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

const (
	// Name is the plugin's name in Zoe's configuration.
	Name = "k8s"
	// Version is the plugin's version.
	Version = "0.1.0"

	// LabelDeployment is the label every object carries.
	LabelDeployment = "zoe.deployment"
	// LabelPod names a service's Pod, for its NodePort Service's selector.
	LabelPod = "zoe.pod"
	// LabelNetwork names the execution's headless Service, for its
	// selector.
	LabelNetwork = "zoe.network"
	// LabelOwner is the core's label of a service's owner.
	LabelOwner = "zoe.owner"
	// AnnotationLabels holds Zoe's labels of an object, as JSON.
	AnnotationLabels = "zoe.labels"

	// ContainerName is the name of the one container of a service's Pod.
	ContainerName = "main"

	handleVersion = 1

	attrKubeconfig      = "kubeconfig"
	attrContext         = "context"
	attrNamespace       = "namespace"
	attrCreateNamespace = "create_namespace"
	attrPodPidsLimit    = "pod_pids_limit"
	attrEndpointMode    = "endpoint_mode"
	attrAddressType     = "node_address_type"
	attrClusterDomain   = "cluster_domain"
	attrGrace           = "termination_grace_seconds"
	attrPendingTimeout  = "pending_timeout"
	attrLabelPrefix     = "node_label_prefix"
	attrNodeSelector    = "node_selector"
	attrStorageClass    = "volume_storage_class"
	attrVolumeSize      = "volume_size"
	attrVolumeAccess    = "volume_access_mode"
	attrPullPolicy      = "image_pull_policy"
	attrAPIQPS          = "api_qps"
	attrWorkspaceClaims = "workspace_claims"

	modeNodePort = "node_port"
	modePodIP    = "pod_ip"

	removedRemember = 5 * time.Minute
	nodeCallTimeout = 10 * time.Second
)

var (
	_ backend.Backend = (*Plugin)(nil)
	_ backend.Closer  = (*Plugin)(nil)
)

// Plugin is the Kubernetes back-end. The zero value is not usable; call
// New. It is safe for concurrent use.
type Plugin struct {
	log *slog.Logger

	mu      sync.Mutex
	rt      *runtime
	removed *removals.Set // what this instance removed itself, by id
}

// runtime is a configured plugin.
type runtime struct {
	deployment string
	namespace  string
	cs         kubernetes.Interface
	set        settings

	nsMu    sync.Mutex
	nsReady bool

	cacheMu sync.Mutex
	cache   *clusterCache // nil until first used
}

// settings are the configuration's choices.
type settings struct {
	createNamespace bool
	pidsLimit       int64
	endpointMode    string
	addressType     corev1.NodeAddressType
	clusterDomain   string
	grace           int64
	pendingTimeout  time.Duration
	labelPrefix     string
	nodeSelector    labels.Selector
	storageClass    string
	volumeSize      resource.Quantity
	volumeAccess    corev1.PersistentVolumeAccessMode
	pullPolicy      corev1.PullPolicy
	qps             float32 // client-side requests a second; < 0: none
	workspaceClaims bool
}

// defaultQPS is api_qps's default: no limit of the plugin's own, as
// controller-runtime and cert-manager do now; the API server's priority
// and fairness (on by default since Kubernetes 1.20) bounds it and answers
// 429 with a delay, which client-go follows. client-go's own default, 5 a
// second, held every start back by seconds, and 100 a thousand executions
// by minutes.
const defaultQPS = -1

// New returns an unconfigured back-end that logs to log.
func New(log *slog.Logger) *Plugin {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Plugin{log: log, removed: removals.New(removedRemember)}
}

// Info names the plugin.
func (p *Plugin) Info() sdk.Info {
	return sdk.Info{
		Name:        Name,
		Version:     Version,
		Description: "Runs services as pods of a Kubernetes cluster, one namespace per deployment, one headless Service per execution.",
	}
}

// Schema describes the plugin's configuration block.
func (p *Plugin) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: attrKubeconfig, Type: "string", Default: "",
			Help: "Kubeconfig file (relative to the configuration file); empty: the in-cluster configuration inside a pod, else $KUBECONFIG or ~/.kube/config."},
		{Name: attrContext, Type: "string", Default: "", Help: "Context of the kubeconfig to use; empty for its current context."},
		{Name: attrNamespace, Type: "string", Default: "", Help: "Namespace of the deployment's objects; empty for zoe-<deployment_name>."},
		{Name: attrCreateNamespace, Type: "bool", Default: true, Help: "Create the namespace when it is missing (the plugin's account needs the right to)."},
		{Name: attrPodPidsLimit, Type: "number", Required: true,
			Help: "The podPidsLimit the cluster's kubelets enforce on every pod (KubeletConfiguration). Kubernetes has no per-pod process limit, " +
				"so Zoe relies on the kubelets': a service asking for a lower limit than this is refused. -1 if the kubelets set none: then only services without a limit start."},
		{Name: attrEndpointMode, Type: "string", Default: modeNodePort,
			Help: `How users reach published ports: "node_port" (a NodePort Service per service, on the node's address) or "pod_ip" (the pod's address, routable from where Zoe runs).`},
		{Name: attrAddressType, Type: "string", Default: string(corev1.NodeInternalIP),
			Help: `The node address given for NodePort endpoints: "InternalIP", "ExternalIP" or "Hostname".`},
		{Name: attrClusterDomain, Type: "string", Default: "cluster.local", Help: "The cluster's DNS domain."},
		{Name: attrGrace, Type: "number", Default: 10, Help: "Seconds a stopped service has to end after SIGTERM before it is killed (the pods' terminationGracePeriodSeconds)."},
		{Name: attrPendingTimeout, Type: "string", Default: "5m", Help: "How long a pod may stay unschedulable before its start fails with the scheduler's reason (Zoe retries later)."},
		{Name: attrLabelPrefix, Type: "string", Default: "zoe.label/",
			Help: `Node labels with this prefix are Zoe's node labels: zoe.label/gpu=true gives the label "gpu", zoe.label/zone=eu gives "zone=eu".`},
		{Name: attrNodeSelector, Type: "string", Default: "",
			Help: `A label selector of the nodes Zoe may use ("zoe.label/pool=analytics"); empty for every node of the cluster.`},
		{Name: attrStorageClass, Type: "string", Default: "", Help: "Storage class of the claims made for named volumes; empty for the cluster's default."},
		{Name: attrVolumeSize, Type: "string", Default: "10Gi", Help: "Size of the claims made for named volumes."},
		{Name: attrVolumeAccess, Type: "string", Default: string(corev1.ReadWriteMany),
			Help: "Access mode of the claims made for named volumes: an execution's services on several nodes share them."},
		{Name: attrWorkspaceClaims, Type: "bool", Default: false,
			Help: "Each user's workspace is a PersistentVolumeClaim of theirs, zoe-ws-<user>-<hash>, made when missing from volume_storage_class, volume_size and volume_access_mode, instead of the workspace plugin's host path."},
		{Name: attrAPIQPS, Type: "number", Default: defaultQPS,
			Help: "Requests a second the plugin sends the API server at most, in bursts of twice as many; -1 (the default) for no limit of its own: the API server's priority and fairness bounds it."},
		{Name: attrPullPolicy, Type: "string", Default: string(corev1.PullIfNotPresent),
			Help: `imagePullPolicy of the pods: "IfNotPresent", "Always" or "Never" (then Zoe places services only on nodes that have the image).`},
	}}
}

type blockConfig struct {
	Kubeconfig      string   `json:"kubeconfig"`
	Context         string   `json:"context"`
	Namespace       string   `json:"namespace"`
	CreateNamespace *bool    `json:"create_namespace"`
	PodPidsLimit    *float64 `json:"pod_pids_limit"`
	EndpointMode    string   `json:"endpoint_mode"`
	AddressType     string   `json:"node_address_type"`
	ClusterDomain   string   `json:"cluster_domain"`
	Grace           *float64 `json:"termination_grace_seconds"`
	PendingTimeout  string   `json:"pending_timeout"`
	LabelPrefix     *string  `json:"node_label_prefix"`
	NodeSelector    string   `json:"node_selector"`
	StorageClass    string   `json:"volume_storage_class"`
	VolumeSize      string   `json:"volume_size"`
	VolumeAccess    string   `json:"volume_access_mode"`
	PullPolicy      string   `json:"image_pull_policy"`
	APIQPS          *float64 `json:"api_qps"`
	WorkspaceClaims bool     `json:"workspace_claims"`
}

// Configure checks the block and makes the cluster's client. A cluster
// that cannot be reached is no configuration error: its nodes are
// unreachable until it answers.
func (p *Plugin) Configure(_ context.Context, cfg sdk.Config) error {
	var bc blockConfig
	if err := cfg.Decode(&bc); err != nil {
		return sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: "invalid configuration", Detail: err.Error()}}
	}
	var diags sdk.Diagnostics
	at := func(attr, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: []string{attr}})
	}
	if cfg.Deployment == "" {
		return fmt.Errorf("configure: no deployment name: %w", sdk.ErrInvalidArgument)
	}
	// Object names end with the deployment's name (a pod is
	// <service>-<execution>-<deployment>), and a network's begins with
	// zoe-<deployment>: a DNS label starting with a letter keeps both
	// valid and never equal.
	if errs := validation.IsDNS1035Label(cfg.Deployment); len(errs) > 0 {
		return sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: "deployment name unusable on Kubernetes",
			Detail: fmt.Sprintf("deployment_name %q: %s", cfg.Deployment, strings.Join(errs, "; "))}}
	}
	set := settings{createNamespace: bc.CreateNamespace == nil || *bc.CreateNamespace, endpointMode: bc.EndpointMode,
		addressType: corev1.NodeAddressType(bc.AddressType), clusterDomain: bc.ClusterDomain, grace: 10,
		labelPrefix: "zoe.label/", storageClass: bc.StorageClass, pullPolicy: corev1.PullPolicy(bc.PullPolicy),
		volumeAccess: corev1.PersistentVolumeAccessMode(bc.VolumeAccess)}
	ns := bc.Namespace
	if ns == "" {
		ns = "zoe-" + cfg.Deployment
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		at(attrNamespace, "invalid namespace", fmt.Sprintf("%q: %s", ns, strings.Join(errs, "; ")))
	}
	switch {
	case bc.PodPidsLimit == nil:
		at(attrPodPidsLimit, "missing pod_pids_limit", "set it to the podPidsLimit of the cluster's kubelets, or -1 if they set none")
	case *bc.PodPidsLimit != float64(int64(*bc.PodPidsLimit)) || (*bc.PodPidsLimit < 1 && *bc.PodPidsLimit != -1):
		at(attrPodPidsLimit, "invalid pod_pids_limit", fmt.Sprintf("%v: want a whole number of at least 1, or -1", *bc.PodPidsLimit))
	default:
		set.pidsLimit = int64(*bc.PodPidsLimit)
	}
	if set.endpointMode == "" {
		set.endpointMode = modeNodePort
	}
	if set.endpointMode != modeNodePort && set.endpointMode != modePodIP {
		at(attrEndpointMode, "invalid endpoint mode", fmt.Sprintf("%q: want %q or %q", set.endpointMode, modeNodePort, modePodIP))
	}
	if set.addressType == "" {
		set.addressType = corev1.NodeInternalIP
	}
	switch set.addressType {
	case corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName:
	default:
		at(attrAddressType, "invalid node address type", fmt.Sprintf("%q: want InternalIP, ExternalIP or Hostname", set.addressType))
	}
	if set.clusterDomain == "" {
		set.clusterDomain = "cluster.local"
	}
	if errs := validation.IsDNS1123Subdomain(set.clusterDomain); len(errs) > 0 {
		at(attrClusterDomain, "invalid cluster domain", strings.Join(errs, "; "))
	}
	if bc.Grace != nil {
		if *bc.Grace < 0 || *bc.Grace != float64(int64(*bc.Grace)) {
			at(attrGrace, "invalid grace period", fmt.Sprintf("%v: want a whole number of seconds, 0 or more", *bc.Grace))
		}
		set.grace = int64(*bc.Grace)
	}
	set.pendingTimeout = 5 * time.Minute
	if bc.PendingTimeout != "" {
		d, err := time.ParseDuration(bc.PendingTimeout)
		if err != nil || d <= 0 {
			at(attrPendingTimeout, "invalid pending timeout", fmt.Sprintf("%q: want a positive duration such as \"5m\"", bc.PendingTimeout))
		}
		set.pendingTimeout = d
	}
	if bc.LabelPrefix != nil {
		set.labelPrefix = *bc.LabelPrefix
	}
	if sel, err := labels.Parse(bc.NodeSelector); err != nil {
		at(attrNodeSelector, "invalid node selector", fmt.Sprintf("%q: %v", bc.NodeSelector, err))
	} else {
		set.nodeSelector = sel
	}
	size := bc.VolumeSize
	if size == "" {
		size = "10Gi"
	}
	if q, err := resource.ParseQuantity(size); err != nil || q.Sign() <= 0 {
		at(attrVolumeSize, "invalid volume size", fmt.Sprintf("%q: want a Kubernetes quantity such as 10Gi", size))
	} else {
		set.volumeSize = q
	}
	if set.volumeAccess == "" {
		set.volumeAccess = corev1.ReadWriteMany
	}
	switch set.volumeAccess {
	case corev1.ReadWriteOnce, corev1.ReadWriteMany, corev1.ReadWriteOncePod:
	default:
		at(attrVolumeAccess, "invalid access mode", fmt.Sprintf("%q: want ReadWriteMany, ReadWriteOnce or ReadWriteOncePod", set.volumeAccess))
	}
	if set.pullPolicy == "" {
		set.pullPolicy = corev1.PullIfNotPresent
	}
	switch set.pullPolicy {
	case corev1.PullIfNotPresent, corev1.PullAlways, corev1.PullNever:
	default:
		at(attrPullPolicy, "invalid image pull policy", fmt.Sprintf("%q: want IfNotPresent, Always or Never", set.pullPolicy))
	}
	set.workspaceClaims = bc.WorkspaceClaims
	set.qps = defaultQPS
	if bc.APIQPS != nil {
		if q := *bc.APIQPS; q != -1 && (q <= 0 || q > 1e6) {
			at(attrAPIQPS, "invalid API rate", fmt.Sprintf("%v: want a number of requests a second above 0, or -1", q))
		}
		set.qps = float32(*bc.APIQPS)
	}
	rc, err := restConfig(bc.Kubeconfig, bc.Context)
	if err != nil {
		at(attrKubeconfig, "cannot load the cluster's configuration", err.Error())
	}
	if diags.HasErrors() {
		return diags
	}
	if cfg.ValidateOnly {
		return nil
	}
	rc.UserAgent = "zoe-backend-k8s/" + Version
	// A negative rate: no client-side limiter (defaultQPS).
	rc.QPS, rc.Burst = set.qps, max(1, int(2*set.qps))
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: "cannot make a Kubernetes client", Detail: err.Error(), Path: []string{attrKubeconfig}}}
	}
	p.mu.Lock()
	old := p.rt
	p.rt = &runtime{deployment: cfg.Deployment, namespace: ns, cs: cs, set: set}
	p.mu.Unlock()
	if old != nil {
		old.stopCache()
	}
	return nil
}

// restConfig loads the cluster's address and credentials: the kubeconfig
// named, the in-cluster configuration inside a pod, else the kubeconfig of
// $KUBECONFIG or ~/.kube/config.
func restConfig(kubeconfig, kctx string) (*rest.Config, error) {
	if kubeconfig == "" && kctx == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		return rest.InClusterConfig()
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		abs, err := filepath.Abs(kubeconfig)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, err
		}
		rules.ExplicitPath = abs
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kctx}).ClientConfig()
}

// Capabilities: the kubelets pull images unless image_pull_policy is Never.
func (p *Plugin) Capabilities(context.Context) (backend.Capabilities, error) {
	rt, err := p.runtime()
	if err != nil {
		return backend.Capabilities{}, err
	}
	return backend.Capabilities{PullsImages: rt.set.pullPolicy != corev1.PullNever}, nil
}

// Close stops watching the cluster and forgets the client; the pods and
// Services stay.
func (p *Plugin) Close(context.Context) error {
	p.mu.Lock()
	rt := p.rt
	p.rt = nil
	p.mu.Unlock()
	if rt != nil {
		rt.stopCache()
	}
	return nil
}

func (p *Plugin) runtime() (*runtime, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rt == nil {
		return nil, fmt.Errorf("k8s back-end not configured: %w", sdk.ErrUnavailable)
	}
	return p.rt, nil
}

// inNamespace runs create, the first object of an execution or a service
// in the namespace; when the namespace is gone (deleted by someone since it
// was made), it is made again, when allowed, and create runs once more. A
// pod refused because the namespace has no default service account yet (a
// namespace just made: the controller manager makes it within a second or
// so) is created again until it has, for namespaceSettle at most.
func inNamespace[T any](ctx context.Context, rt *runtime, create func() (T, error)) (T, error) {
	v, err := create()
	if apierrors.IsNotFound(err) {
		rt.nsMu.Lock()
		rt.nsReady = false
		rt.nsMu.Unlock()
		if nerr := rt.ensureNamespace(ctx); nerr != nil {
			return v, nerr
		}
		v, err = create()
	}
	delay := 50 * time.Millisecond
	for deadline := time.Now().Add(namespaceSettle); noServiceAccountYet(err) && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
		v, err = create()
	}
	return v, err
}

// namespaceSettle bounds the wait for a new namespace's default service
// account.
const namespaceSettle = 30 * time.Second

// noServiceAccountYet: the ServiceAccount admission refused a pod of a
// namespace whose default account does not exist yet.
func noServiceAccountYet(err error) bool {
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "error looking up service account")
}

// ensureNamespace creates the deployment's namespace once, when allowed
// and missing.
func (rt *runtime) ensureNamespace(ctx context.Context) error {
	rt.nsMu.Lock()
	defer rt.nsMu.Unlock()
	if rt.nsReady {
		return nil
	}
	_, err := rt.cs.CoreV1().Namespaces().Get(ctx, rt.namespace, metav1.GetOptions{})
	switch {
	case err == nil:
	case apierrors.IsNotFound(err) && rt.set.createNamespace:
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rt.namespace, Labels: map[string]string{LabelDeployment: rt.deployment}}}
		if _, err := rt.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return wrap(err, "create namespace %s", rt.namespace)
		}
	case apierrors.IsNotFound(err):
		return fmt.Errorf("namespace %s does not exist and create_namespace is off: %w", rt.namespace, sdk.ErrUnavailable)
	case apierrors.IsForbidden(err):
		// An account limited to its namespace may not read namespaces:
		// the namespace's own objects tell soon enough.
	default:
		return wrap(err, "get namespace %s", rt.namespace)
	}
	rt.nsReady = true
	return nil
}

// wrap gives a Kubernetes error its sdk category, keeping the cluster's
// message. A request that failed on its way (the connection refused,
// reset or closed mid-answer: a *url.Error, an EOF) is the cluster
// unreachable, as a refused connection is: the core tries again later,
// rather than taking it for a refusal of what was asked.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	var op *net.OpError
	var dns *net.DNSError
	var ue *url.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %v: %w", msg, err, sdk.ErrDeadlineExceeded)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", msg, err)
	case errors.As(err, &op), errors.As(err, &dns), errors.As(err, &ue), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		apierrors.IsServiceUnavailable(err), apierrors.IsTimeout(err), apierrors.IsServerTimeout(err), apierrors.IsTooManyRequests(err),
		apierrors.IsInternalError(err):
		return fmt.Errorf("%s: cluster unreachable: %v: %w", msg, err, sdk.ErrUnavailable)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s: %v: %w", msg, err, sdk.ErrNotFound)
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%s: %v: %w", msg, err, sdk.ErrAlreadyExists)
	case apierrors.IsConflict(err):
		return fmt.Errorf("%s: %v: %w", msg, err, sdk.ErrConflict)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return fmt.Errorf("%s: %v: %w", msg, err, sdk.ErrInvalidArgument)
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		// A ResourceQuota's refusal is a Forbidden too: the cluster's
		// message says which quota.
		return fmt.Errorf("%s: %v: %w", msg, err, sdk.ErrPermissionDenied)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// Nodes lists the cluster's nodes that node_selector selects: allocatable
// cores and memory, what every pod not yet ended requests on each (Zoe's or
// not), labels with node_label_prefix, images, and the state: cordoned or
// tainted NoSchedule is disabled, not Ready is unreachable. A cluster that
// cannot be asked is an error.
func (p *Plugin) Nodes(ctx context.Context) ([]backend.Node, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, nodeCallTimeout)
	defer cancel()
	c, err := rt.cached(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.failure(); err != nil {
		return nil, err
	}
	type used struct{ cores, memory float64 }
	reserved := map[string]used{}
	for _, obj := range c.pods.GetStore().List() {
		pod, ok := obj.(*corev1.Pod)
		if !ok || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		node := podNode(pod)
		if node == "" {
			continue
		}
		cpu, mem := podRequests(pod)
		u := reserved[node]
		u.cores += cpu
		u.memory += mem
		reserved[node] = u
	}
	var nodes []*corev1.Node
	for _, obj := range c.nodes.GetStore().List() {
		if n, ok := obj.(*corev1.Node); ok && rt.set.nodeSelector.Matches(labels.Set(n.Labels)) {
			nodes = append(nodes, n)
		}
	}
	out := make([]backend.Node, 0, len(nodes))
	for _, n := range nodes {
		bn := backend.Node{Name: n.Name, Address: nodeAddress(n, rt.set.addressType), Labels: nodeLabels(n.Labels, rt.set.labelPrefix),
			Cores: float64(n.Status.Allocatable.Cpu().MilliValue()) / 1000, MemoryBytes: n.Status.Allocatable.Memory().Value(),
			CoresReserved: reserved[n.Name].cores, MemoryReserved: int64(reserved[n.Name].memory)}
		for _, im := range n.Status.Images {
			bn.Images = append(bn.Images, imageNames(im.Names)...)
		}
		sort.Strings(bn.Images)
		bn.Images = slices.Compact(bn.Images)
		bn.State, bn.StateDetail = nodeState(n)
		out = append(out, bn)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// podRequests is what a pod requests: its containers' requests, or an
// init container's when that is more, plus the pod's overhead.
func podRequests(pod *corev1.Pod) (cores, memory float64) {
	var c, m int64
	for _, ct := range pod.Spec.Containers {
		c += ct.Resources.Requests.Cpu().MilliValue()
		m += ct.Resources.Requests.Memory().Value()
	}
	for _, ct := range pod.Spec.InitContainers {
		c = max(c, ct.Resources.Requests.Cpu().MilliValue())
		m = max(m, ct.Resources.Requests.Memory().Value())
	}
	c += pod.Spec.Overhead.Cpu().MilliValue()
	m += pod.Spec.Overhead.Memory().Value()
	return float64(c) / 1000, float64(m)
}

func nodeAddress(n *corev1.Node, kind corev1.NodeAddressType) string {
	for _, want := range []corev1.NodeAddressType{kind, corev1.NodeInternalIP, corev1.NodeHostName} {
		for _, a := range n.Status.Addresses {
			if a.Type == want && a.Address != "" {
				return a.Address
			}
		}
	}
	return ""
}

// nodeLabels turns the node's labels with prefix into Zoe's: the name
// alone for "true" or an empty value, name=value otherwise.
func nodeLabels(labels map[string]string, prefix string) []string {
	var out []string
	if prefix == "" {
		return out
	}
	for k, v := range labels {
		name, ok := strings.CutPrefix(k, prefix)
		if !ok || name == "" {
			continue
		}
		if v == "" || v == "true" {
			out = append(out, name)
		} else {
			out = append(out, name+"="+v)
		}
	}
	sort.Strings(out)
	return out
}

func nodeState(n *corev1.Node) (backend.NodeState, string) {
	ready := false
	detail := "no Ready condition"
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ready = c.Status == corev1.ConditionTrue
			detail = strings.TrimSpace(c.Reason + ": " + c.Message)
		}
	}
	if !ready {
		return backend.NodeUnreachable, "not ready: " + detail
	}
	if n.Spec.Unschedulable {
		return backend.NodeDisabled, "cordoned"
	}
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return backend.NodeDisabled, "tainted " + t.Key + ":" + string(t.Effect)
		}
	}
	return backend.NodeReady, ""
}

// imageNames are the names a node's image goes by: the kubelet reports
// them as the runtime has them, in full (docker.io/library/python:3.12,
// and a digest), and ZApps name them as one would to docker run
// (python:3.12), so that the short form of a Docker Hub name is added; a
// core that places services only where their image is (image_pull_policy
// Never) would find it nowhere otherwise.
func imageNames(names []string) []string {
	out := slices.Clone(names)
	for _, n := range names {
		if rest, ok := strings.CutPrefix(n, "docker.io/"); ok {
			out = append(out, rest)
			if short, ok := strings.CutPrefix(rest, "library/"); ok {
				out = append(out, short)
			}
		}
	}
	return out
}
