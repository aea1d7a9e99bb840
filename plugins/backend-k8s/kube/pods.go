package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/workspace"
)

// handleState is what a handle's State holds (Version 1).
type handleState struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// Start checks the spec whole, creates the service's Pod (and its NodePort
// Service) and returns once the Pod runs, or has already ended.
func (p *Plugin) Start(ctx context.Context, spec backend.ServiceSpec) (backend.ServiceStatus, error) {
	rt, err := p.runtime()
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	if spec, err = rt.workspaceClaim(spec); err != nil {
		return backend.ServiceStatus{}, fmt.Errorf("start %q: %w", spec.Name, err)
	}
	pod, err := rt.podFor(spec)
	if err != nil {
		return backend.ServiceStatus{}, fmt.Errorf("start %q: %w", spec.Name, err)
	}
	if err := rt.ensureNamespace(ctx); err != nil {
		return backend.ServiceStatus{}, fmt.Errorf("start %q: %w", spec.Name, err)
	}
	if err := rt.ensureClaims(ctx, spec); err != nil {
		return backend.ServiceStatus{}, fmt.Errorf("start %q: %w", spec.Name, err)
	}
	created, err := inNamespace(ctx, rt, func() (*corev1.Pod, error) {
		return rt.cs.CoreV1().Pods(rt.namespace).Create(ctx, pod, metav1.CreateOptions{})
	})
	if apierrors.IsAlreadyExists(err) {
		return backend.ServiceStatus{}, fmt.Errorf("start %q: a pod of that name exists: %w", spec.Name, sdk.ErrAlreadyExists)
	}
	if err != nil {
		return backend.ServiceStatus{}, wrap(err, "start %q: create pod", spec.Name)
	}
	// From here, a failure removes what was made.
	undo := func(cause error) (backend.ServiceStatus, error) {
		p.removed.Add(string(created.UID))
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := rt.deletePod(rmCtx, created.Name, created.UID); err != nil && !errors.Is(err, sdk.ErrNotFound) {
			p.log.Warn("cannot remove a pod that failed to start", "service", spec.Name, "error", err)
		}
		if err := rt.deleteOwned(rmCtx, created); err != nil {
			p.log.Warn("cannot remove the Service of a pod that failed to start", "service", spec.Name, "error", err)
		}
		return backend.ServiceStatus{}, cause
	}
	if err := keptPolicy(created); err != nil {
		return undo(fmt.Errorf("start %q: %w", spec.Name, err))
	}
	if len(spec.Ports) > 0 {
		if _, err := rt.cs.NetworkingV1().NetworkPolicies(rt.namespace).Create(ctx, rt.portsPolicy(spec, created), metav1.CreateOptions{}); err != nil {
			return undo(wrap(err, "start %q: create the network policy of its ports", spec.Name))
		}
	}
	ix := &portIndex{}
	if len(spec.Ports) > 0 && rt.set.endpointMode == modeNodePort {
		if ix.created, err = rt.cs.CoreV1().Services(rt.namespace).Create(ctx, rt.portsService(spec, created), metav1.CreateOptions{}); err != nil {
			return undo(wrap(err, "start %q: create its NodePort service", spec.Name))
		}
	}
	running, err := rt.waitStarted(ctx, created)
	if err != nil {
		return undo(fmt.Errorf("start %q: %w", spec.Name, err))
	}
	ix.cache, _ = rt.cached(ctx) // ready: waitStarted used it
	return rt.status(ctx, running, ix)
}

// keptPolicy refuses a pod the API server stored without its
// supplementalGroupsPolicy: Strict, as one before Kubernetes 1.33 (or
// with the SupplementalGroupsPolicy feature gate off) does without a
// word: its processes would get the groups the image's /etc/group gives
// their user, the root group included if the image says so.
func keptPolicy(created *corev1.Pod) error {
	if sc := created.Spec.SecurityContext; sc == nil || sc.SupplementalGroupsPolicy == nil ||
		*sc.SupplementalGroupsPolicy != corev1.SupplementalGroupsPolicyStrict {
		return fmt.Errorf("the cluster dropped the pod's supplementalGroupsPolicy: Strict (Kubernetes before 1.33, "+
			"or its SupplementalGroupsPolicy feature gate off), without which the image chooses its user's groups: %w", sdk.ErrUnsupported)
	}
	return nil
}

// workspaceClaim replaces, when workspace_claims is on, the workspace's
// host path (the volume at workspace.MountPoint) with the owner's claim,
// workspaceClaimName, which ensureClaims makes when missing.
func (rt *runtime) workspaceClaim(spec backend.ServiceSpec) (backend.ServiceSpec, error) {
	if !rt.set.workspaceClaims {
		return spec, nil
	}
	i := slices.IndexFunc(spec.Volumes, func(v backend.Volume) bool { return v.MountPoint == workspace.MountPoint && v.HostPath != "" })
	if i < 0 {
		return spec, nil
	}
	owner := spec.Labels[LabelOwner]
	if owner == "" {
		return spec, fmt.Errorf("a workspace claim needs the owner's label %s: %w", LabelOwner, sdk.ErrInvalidArgument)
	}
	spec.Volumes = slices.Clone(spec.Volumes)
	spec.Volumes[i] = backend.Volume{VolumeName: workspaceClaimName(rt.deployment, owner), MountPoint: workspace.MountPoint, ReadOnly: spec.Volumes[i].ReadOnly}
	return spec, nil
}

// workspaceClaimName is the claim of a user's workspace in a deployment:
// zoe-ws-, the name made a DNS label (lower case, other characters as -,
// cut: for people to read), and 128 bits of a hash of the deployment and
// the name as it is, so that two names made alike ("Alice", "alice"), or
// two deployments sharing a namespace, do not share a claim.
func workspaceClaimName(deployment, owner string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(owner) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	name := b.String()
	if len(name) > 20 {
		name = name[:20]
	}
	sum := sha256.Sum256([]byte(deployment + "\x00" + owner))
	return "zoe-ws-" + name + "-" + hex.EncodeToString(sum[:16])
}

// podFor translates a service spec into a Pod, refusing with
// sdk.ErrInvalidArgument what the cluster could not honour. The container
// policy (backend.Backend.Start) is set here whole, every field
// explicitly, so that no default of the cluster decides it.
func (rt *runtime) podFor(spec backend.ServiceSpec) (*corev1.Pod, error) {
	if spec.Name == "" || spec.Image == "" {
		return nil, fmt.Errorf("a service needs a name and an image: %w", sdk.ErrInvalidArgument)
	}
	if errs := validation.IsDNS1123Label(spec.Name); len(errs) > 0 {
		return nil, fmt.Errorf("name %q is no Kubernetes pod name: %s: %w", spec.Name, strings.Join(errs, "; "), sdk.ErrInvalidArgument)
	}
	if err := backend.CheckUser(spec); err != nil {
		return nil, err
	}
	if err := backend.CheckVolumes(spec.Volumes); err != nil {
		return nil, err
	}
	pids, err := backend.PidsLimit(spec.Resources)
	if err != nil {
		return nil, err
	}
	// The kubelets' limit is the pods' limit: enough when it is at most
	// what the spec asks.
	if pids != -1 && (rt.set.pidsLimit == -1 || rt.set.pidsLimit > pids) {
		return nil, fmt.Errorf("a limit of %d processes is asked, and the kubelets enforce %s (pod_pids_limit): Kubernetes has no per-pod limit: %w",
			pids, pidsText(rt.set.pidsLimit), sdk.ErrInvalidArgument)
	}
	if len(spec.Ports) > 0 {
		if errs := validation.IsDNS1035Label(portsServiceName(spec.Name)); len(errs) > 0 {
			return nil, fmt.Errorf("name %q: its ports' Service would be named %q: %s: %w", spec.Name, portsServiceName(spec.Name),
				strings.Join(errs, "; "), sdk.ErrInvalidArgument)
		}
	}
	if spec.Network == "host" || strings.Contains(spec.Network, ":") {
		return nil, fmt.Errorf("network %q: a service gets its execution's network, never the host's or another's: %w", spec.Network, sdk.ErrInvalidArgument)
	}
	labels, annotations, err := rt.objectLabels(spec.Labels)
	if err != nil {
		return nil, err
	}
	labels[LabelPod] = spec.Name
	if spec.Network != "" {
		labels[LabelNetwork] = spec.Network
	}
	c := corev1.Container{
		Name:            ContainerName,
		Image:           spec.Image,
		Args:            literal(spec.Command),
		WorkingDir:      spec.WorkDir,
		ImagePullPolicy: rt.set.pullPolicy,
		SecurityContext: &corev1.SecurityContext{
			Privileged:               ptr(false),
			AllowPrivilegeEscalation: ptr(spec.Security.AllowPrivilegeEscalation),
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	if !spec.Security.KeepCapabilities {
		c.SecurityContext.Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}
	}
	keys := make([]string, 0, len(spec.Environment))
	for k := range spec.Environment {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c.Env = append(c.Env, corev1.EnvVar{Name: k, Value: escapeRefs(spec.Environment[k])})
	}
	c.Resources, err = requirements(spec.Resources)
	if err != nil {
		return nil, err
	}
	for _, pt := range spec.Ports {
		proto, err := protocol(pt)
		if err != nil {
			return nil, err
		}
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: int32(pt.Port), Protocol: proto})
	}
	// Strict: the processes get the spec's group alone, not the groups an
	// image's /etc/group gives its user (which could name the root group).
	sc := &corev1.PodSecurityContext{RunAsNonRoot: ptr(!spec.Security.AllowRoot),
		SupplementalGroupsPolicy: ptr(corev1.SupplementalGroupsPolicyStrict)}
	if spec.Security.AllowRoot {
		sc.RunAsNonRoot = nil
	}
	if spec.User != "" {
		uid, gid, hasGID := strings.Cut(spec.User, ":")
		u, _ := strconv.ParseInt(uid, 10, 64) // CheckUser: numeric
		sc.RunAsUser = &u
		if hasGID {
			g, _ := strconv.ParseInt(gid, 10, 64)
			sc.RunAsGroup = &g
			// A workspace claim (a new one is root's) is made the owner's
			// group's, where its driver can, so that the owner writes to
			// it. Only the workspace's: a shared volume re-owned to each
			// starter's group would be every user's.
			if slices.ContainsFunc(spec.Volumes, func(v backend.Volume) bool {
				return v.VolumeName != "" && v.MountPoint == workspace.MountPoint
			}) {
				sc.FSGroup = &g
				sc.FSGroupChangePolicy = ptr(corev1.FSGroupChangeOnRootMismatch)
			}
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: spec.Name, Namespace: rt.namespace, Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: &rt.set.grace,
			// No account token in the user's pods: they have no
			// business with the cluster's API.
			AutomountServiceAccountToken: ptr(false),
			EnableServiceLinks:           ptr(false),
			HostNetwork:                  false,
			HostPID:                      false,
			HostIPC:                      false,
			SecurityContext:              sc,
		},
	}
	if spec.Hostname != "" {
		if errs := validation.IsDNS1123Label(spec.Hostname); len(errs) > 0 {
			return nil, fmt.Errorf("host name %q: %s: %w", spec.Hostname, strings.Join(errs, "; "), sdk.ErrInvalidArgument)
		}
		pod.Spec.Hostname = spec.Hostname
	}
	if spec.Network != "" {
		if errs := validation.IsDNS1035Label(spec.Network); len(errs) > 0 {
			return nil, fmt.Errorf("network %q: %s: %w", spec.Network, strings.Join(errs, "; "), sdk.ErrInvalidArgument)
		}
		// The execution's headless Service is the pod's subdomain; its
		// domain searched, the execution's services find each other by
		// their bare host names.
		pod.Spec.Subdomain = spec.Network
		pod.Spec.DNSConfig = &corev1.PodDNSConfig{Searches: []string{spec.Network + "." + rt.namespace + ".svc." + rt.set.clusterDomain}}
	}
	if spec.Node != "" {
		pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{spec.Node}}},
			}}},
		}}
	}
	for i, v := range spec.Volumes {
		name := "vol-" + strconv.Itoa(i)
		vol := corev1.Volume{Name: name}
		if v.HostPath != "" {
			// Directory: mounted exactly as given, never created.
			vol.HostPath = &corev1.HostPathVolumeSource{Path: v.HostPath, Type: ptr(corev1.HostPathDirectory)}
		} else {
			if errs := validation.IsDNS1123Subdomain(v.VolumeName); len(errs) > 0 {
				return nil, fmt.Errorf("volume %q: %s: %w", v.VolumeName, strings.Join(errs, "; "), sdk.ErrInvalidArgument)
			}
			vol.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.VolumeName, ReadOnly: v.ReadOnly}
		}
		pod.Spec.Volumes = append(pod.Spec.Volumes, vol)
		m := corev1.VolumeMount{Name: name, MountPath: v.MountPoint, ReadOnly: v.ReadOnly}
		if v.ReadOnly {
			// The mounts below a read-only one read-only too, where the
			// node's runtime can.
			m.RecursiveReadOnly = ptr(corev1.RecursiveReadOnlyIfPossible)
		}
		c.VolumeMounts = append(c.VolumeMounts, m)
	}
	if spec.Resources.ShmSize > 0 {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "shm", VolumeSource: corev1.VolumeSource{
			EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: resource.NewQuantity(spec.Resources.ShmSize, resource.BinarySI)}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "shm", MountPath: "/dev/shm"})
	}
	pod.Spec.Containers = []corev1.Container{c}
	return pod, nil
}

func pidsText(n int64) string {
	if n == -1 {
		return "none"
	}
	return strconv.FormatInt(n, 10)
}

func ptr[T any](v T) *T { return &v }

// requirements: Cores and MemoryReservation are the requests (what Zoe's
// scheduler counted, explicit even when 0, so that Kubernetes does not
// take the limit for the request); MemoryLimit and CoresLimit the limits.
func requirements(r backend.Resources) (corev1.ResourceRequirements, error) {
	if r.Cores < 0 || r.CoresLimit < 0 || r.MemoryReservation < 0 || r.MemoryLimit < 0 || math.IsInf(r.Cores, 0) || math.IsNaN(r.Cores) {
		return corev1.ResourceRequirements{}, fmt.Errorf("resources %+v: want no negative value: %w", r, sdk.ErrInvalidArgument)
	}
	req := corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(math.Round(r.Cores*1000)), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(r.MemoryReservation, resource.BinarySI),
	}, Limits: corev1.ResourceList{}}
	if r.MemoryLimit > 0 {
		if r.MemoryReservation > r.MemoryLimit {
			return corev1.ResourceRequirements{}, fmt.Errorf("memory reservation %d over the limit %d: %w", r.MemoryReservation, r.MemoryLimit, sdk.ErrInvalidArgument)
		}
		req.Limits[corev1.ResourceMemory] = *resource.NewQuantity(r.MemoryLimit, resource.BinarySI)
	}
	if r.CoresLimit > 0 {
		limit := int64(math.Round(r.CoresLimit * 1000))
		if c := req.Requests[corev1.ResourceCPU]; c.MilliValue() > limit {
			// The reservation counts what the service may use at least;
			// a cap below it is the cap.
			req.Requests[corev1.ResourceCPU] = *resource.NewMilliQuantity(limit, resource.DecimalSI)
		}
		req.Limits[corev1.ResourceCPU] = *resource.NewMilliQuantity(limit, resource.DecimalSI)
	}
	return req, nil
}

func protocol(pt backend.Port) (corev1.Protocol, error) {
	if pt.Port == 0 {
		return "", fmt.Errorf("port 0: %w", sdk.ErrInvalidArgument)
	}
	switch strings.ToLower(pt.Protocol) {
	case "", "tcp":
		return corev1.ProtocolTCP, nil
	case "udp":
		return corev1.ProtocolUDP, nil
	}
	return "", fmt.Errorf("port %d: protocol %q: want tcp or udp: %w", pt.Port, pt.Protocol, sdk.ErrInvalidArgument)
}

// objectLabels are an object's labels and annotations for Zoe's labels:
// zoe.deployment, the labels Kubernetes accepts as they are, and all of
// them in the annotation zoe.labels.
func (rt *runtime) objectLabels(zoe map[string]string) (map[string]string, map[string]string, error) {
	all := maps.Clone(zoe)
	if all == nil {
		all = map[string]string{}
	}
	all[LabelDeployment] = rt.deployment
	raw, err := json.Marshal(all)
	if err != nil {
		return nil, nil, fmt.Errorf("labels: %v: %w", err, sdk.ErrInvalidArgument)
	}
	// Only Zoe's own labels become labels, so that no label of a ZApp
	// reaches what selects on them (Services, network policies, a service
	// mesh's or an admission policy's exemptions).
	labels := map[string]string{}
	for k, v := range all {
		if strings.HasPrefix(k, "zoe.") && len(validation.IsQualifiedName(k)) == 0 && len(validation.IsValidLabelValue(v)) == 0 &&
			k != LabelPod && k != LabelNetwork {
			labels[k] = v
		}
	}
	labels[LabelDeployment] = rt.deployment
	return labels, map[string]string{AnnotationLabels: string(raw)}, nil
}

// zoeLabels reads an object's Zoe labels back.
func zoeLabels(meta metav1.ObjectMeta) map[string]string {
	out := map[string]string{}
	if raw, ok := meta.Annotations[AnnotationLabels]; ok && json.Unmarshal([]byte(raw), &out) == nil {
		return out
	}
	for k, v := range meta.Labels {
		if k != LabelPod && k != LabelNetwork {
			out[k] = v
		}
	}
	return out
}

// portsServiceName names a Pod's NodePort Service; no execution's service
// has a host name ending in -ports (they end with the deployment's name).
func portsServiceName(pod string) string {
	name := pod + "-ports"
	if len(name) > validation.DNS1035LabelMaxLength {
		// Kept unique by the pod's name's end, which holds the
		// execution and the deployment.
		name = "p" + pod[len(pod)-(validation.DNS1035LabelMaxLength-7):] + "-ports"
	}
	return name
}

// portsService is the NodePort Service of a Pod's ports, owned by the Pod
// so that the cluster removes it with the Pod whoever removes that.
func (rt *runtime) portsService(spec backend.ServiceSpec, pod *corev1.Pod) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: portsServiceName(pod.Name), Namespace: rt.namespace,
			Labels:          map[string]string{LabelDeployment: rt.deployment, LabelPod: pod.Name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{LabelDeployment: rt.deployment, LabelPod: pod.Name},
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal},
	}
	for _, pt := range spec.Ports {
		proto, _ := protocol(pt) // checked by podFor
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: strings.ToLower(string(proto)) + "-" + strconv.Itoa(int(pt.Port)),
			Protocol: proto, Port: int32(pt.Port)})
	}
	return s
}

// portsPolicy lets anyone reach a pod's published ports, as its endpoints
// are meant to be (through Zoe's proxy, or directly): the execution's
// network policy lets in only the execution's own pods. Owned by the pod.
func (rt *runtime) portsPolicy(spec backend.ServiceSpec, pod *corev1.Pod) *networkingv1.NetworkPolicy {
	rule := networkingv1.NetworkPolicyIngressRule{}
	for _, pt := range spec.Ports {
		proto, _ := protocol(pt) // checked by podFor
		rule.Ports = append(rule.Ports, networkingv1.NetworkPolicyPort{Protocol: &proto, Port: ptr(intstr.FromInt32(int32(pt.Port)))})
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: portsServiceName(pod.Name), Namespace: rt.namespace,
			Labels:          map[string]string{LabelDeployment: rt.deployment, LabelPod: pod.Name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{LabelDeployment: rt.deployment, LabelPod: pod.Name}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{rule},
		},
	}
}

// ensureClaims creates the claims of the spec's named volumes that are
// missing, from volume_storage_class.
func (rt *runtime) ensureClaims(ctx context.Context, spec backend.ServiceSpec) error {
	for _, v := range spec.Volumes {
		if v.VolumeName == "" {
			continue
		}
		_, err := rt.cs.CoreV1().PersistentVolumeClaims(rt.namespace).Get(ctx, v.VolumeName, metav1.GetOptions{})
		if err == nil {
			continue
		}
		if !apierrors.IsNotFound(err) {
			return wrap(err, "volume %q", v.VolumeName)
		}
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: v.VolumeName, Namespace: rt.namespace, Labels: map[string]string{LabelDeployment: rt.deployment}},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{rt.set.volumeAccess},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: rt.set.volumeSize}}},
		}
		if rt.set.storageClass != "" {
			pvc.Spec.StorageClassName = &rt.set.storageClass
		}
		if _, err := rt.cs.CoreV1().PersistentVolumeClaims(rt.namespace).Create(ctx, pvc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return wrap(err, "create the claim of volume %q", v.VolumeName)
		}
	}
	return nil
}

// waitReasons are container waiting reasons that no wait will end.
var waitReasons = map[string]error{
	"ErrImagePull":               sdk.ErrNotFound,
	"ImagePullBackOff":           sdk.ErrNotFound,
	"InvalidImageName":           sdk.ErrInvalidArgument,
	"ErrImageNeverPull":          sdk.ErrNotFound,
	"CreateContainerConfigError": sdk.ErrInvalidArgument,
	"CreateContainerError":       sdk.ErrInvalidArgument,
	"RunContainerError":          sdk.ErrInvalidArgument,
}

// waitStarted waits until the informer sees the Pod run or end; it fails
// on a container that cannot be made, on a host path the kubelet cannot
// mount, and on a Pod still unscheduled after pending_timeout
// (sdk.ErrResourceExhausted, with the scheduler's reason: Zoe tries again
// later).
func (rt *runtime) waitStarted(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	c, err := rt.cached(ctx)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(rt.set.pendingTimeout)
	current, seen := pod, false
	err = c.awaitPod(ctx, podKey(rt.namespace, pod.Name), func(got *corev1.Pod) (bool, error) {
		switch {
		case got != nil && got.UID == pod.UID:
			seen, current = true, got
			return started(current)
		case seen && got == nil:
			return false, fmt.Errorf("pod %s was deleted while it started: %w", pod.Name, sdk.ErrConflict)
		case seen:
			return false, fmt.Errorf("pod %s was replaced while it started: %w", pod.Name, sdk.ErrConflict)
		}
		// Not heard of yet.
		return false, nil
	}, func() error {
		if !scheduled(current) {
			if time.Now().After(deadline) {
				return fmt.Errorf("pod %s not scheduled after %s: %s: %w", pod.Name, rt.set.pendingTimeout, pendingReason(current), sdk.ErrResourceExhausted)
			}
			// Placed, an image pull may take its time: Start has no
			// deadline but the core's.
			return nil
		}
		// A volume the kubelet cannot mount shows only in the pod's
		// events, and the kubelet tries again for ever. Only host paths
		// are refused so (claims wait to be bound).
		if slices.ContainsFunc(current.Spec.Volumes, func(v corev1.Volume) bool { return v.HostPath != nil }) {
			return c.mountFailure(current)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return current, nil
}

// mountFailure fails a Pod whose host path the kubelet cannot mount (a
// FailedMount event saying the path is missing or not a directory: Zoe
// mounts host paths of type Directory, which the kubelet never creates).
// Other mount failures may pass (a claim being bound, a network file
// system back): the start waits, as the core bounds it. Without the right
// to watch events it says nothing.
func (c *clusterCache) mountFailure(pod *corev1.Pod) error {
	for _, ev := range c.mountEvents(string(pod.UID)) {
		if strings.Contains(ev.Message, "hostPath type check failed") {
			return fmt.Errorf("pod %s: %s: %w", pod.Name, ev.Message, sdk.ErrInvalidArgument)
		}
	}
	return nil
}

// started tells whether a Pod runs or has ended, and fails one whose
// container cannot be made, and one its node did not admit (OutOfcpu,
// OutOfmemory: the kubelet's view of the node and Zoe's differ; evicted
// before it ran): sdk.ErrResourceExhausted, so that Zoe tries again later
// instead of taking it for a program that exited.
func started(pod *corev1.Pod) (bool, error) {
	if pod.Status.Phase == corev1.PodFailed && !ranAny(pod) {
		// Room may come (later, or on another node); a refusal for what
		// the pod asks (a policy the runtime cannot honour, an OS) not.
		kind := sdk.ErrInvalidArgument
		if strings.HasPrefix(pod.Status.Reason, "OutOf") || pod.Status.Reason == "Evicted" ||
			pod.Status.Reason == "NodeShutdown" || pod.Status.Reason == "Terminated" {
			kind = sdk.ErrResourceExhausted
		}
		return false, fmt.Errorf("pod %s not admitted by node %s: %s: %s: %w", pod.Name, pod.Spec.NodeName,
			pod.Status.Reason, pod.Status.Message, kind)
	}
	switch pod.Status.Phase {
	case corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed:
		return true, nil
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Running != nil || cs.State.Terminated != nil {
			return true, nil
		}
		if w := cs.State.Waiting; w != nil {
			if kind, ok := waitReasons[w.Reason]; ok {
				return false, fmt.Errorf("pod %s: %s: %s: %w", pod.Name, w.Reason, w.Message, kind)
			}
		}
	}
	return false, nil
}

// ranAny tells whether any container of the Pod has run.
func ranAny(pod *corev1.Pod) bool {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil {
			return true
		}
	}
	return false
}

func scheduled(pod *corev1.Pod) bool {
	if pod.Spec.NodeName != "" {
		return true
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// pendingReason is why the scheduler has not placed a Pod, in its words.
func pendingReason(pod *corev1.Pod) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue {
			return strings.TrimSpace(c.Reason + ": " + c.Message)
		}
	}
	if pod.Spec.NodeName != "" {
		return "scheduled on " + pod.Spec.NodeName + ", not started"
	}
	return "no reason given yet"
}

// deleteOwned deletes the pod's NodePort Service and network policy, only
// those the pod owns (the cluster's garbage collector would, later).
func (rt *runtime) deleteOwned(ctx context.Context, pod *corev1.Pod) error {
	name := portsServiceName(pod.Name)
	svc, err := rt.cs.CoreV1().Services(rt.namespace).Get(ctx, name, metav1.GetOptions{})
	if err == nil && ownedBy(svc.OwnerReferences, pod.UID) {
		err = rt.cs.CoreV1().Services(rt.namespace).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &svc.UID}})
	}
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return wrap(err, "delete the NodePort service of pod %s", pod.Name)
	}
	pol, err := rt.cs.NetworkingV1().NetworkPolicies(rt.namespace).Get(ctx, name, metav1.GetOptions{})
	if err == nil && ownedBy(pol.OwnerReferences, pod.UID) {
		err = rt.cs.NetworkingV1().NetworkPolicies(rt.namespace).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pol.UID}})
	}
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return wrap(err, "delete the network policy of pod %s", pod.Name)
	}
	return nil
}

func ownedBy(refs []metav1.OwnerReference, uid types.UID) bool {
	for _, r := range refs {
		if r.UID == uid {
			return true
		}
	}
	return false
}

// literal keeps arguments as they are: Kubernetes expands $(VAR) in a
// container's arguments and environment, and turns $$ into $.
func literal(args []string) []string {
	if args == nil {
		return nil
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = escapeRefs(a)
	}
	return out
}

func escapeRefs(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// deletePod deletes a Pod at once, only the one of that UID.
func (rt *runtime) deletePod(ctx context.Context, name string, uid types.UID) error {
	err := rt.cs.CoreV1().Pods(rt.namespace).Delete(ctx, name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr(int64(0)), Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsConflict(err) {
		// The precondition: a Pod of that name, but another.
		return fmt.Errorf("pod %s: %w", name, sdk.ErrNotFound)
	}
	if err != nil {
		return wrap(err, "delete pod %s", name)
	}
	return nil
}

// locate finds the Pod a handle names: by the State's name, checked
// against the ID (the Pod's UID), else among the deployment's Pods. An ID
// that names no Pod of this deployment is sdk.ErrNotFound whatever the
// State; one that does, with a State this plugin cannot read, is
// DecodeHandle's error.
func (p *Plugin) locate(ctx context.Context, h backend.Handle) (*runtime, *corev1.Pod, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, nil, err
	}
	if h.ID == "" {
		return nil, nil, fmt.Errorf("handle without a pod UID: %w", sdk.ErrInvalidArgument)
	}
	var st handleState
	v, decodeErr := backend.DecodeHandle(h, handleVersion, &st)
	if decodeErr == nil && v > 0 && st.Name != "" && st.Namespace == rt.namespace {
		// The informer's copy when it has that pod and hears the
		// cluster (a pod it has not heard of yet, or no longer holds, is
		// asked of the API server).
		if c, err := rt.cached(ctx); err == nil && c.failure() == nil {
			if pod := c.pod(podKey(rt.namespace, st.Name)); pod != nil && string(pod.UID) == h.ID && pod.Labels[LabelDeployment] == rt.deployment {
				return rt, pod, nil
			}
		}
		pod, err := rt.cs.CoreV1().Pods(rt.namespace).Get(ctx, st.Name, metav1.GetOptions{})
		switch {
		case err == nil && string(pod.UID) == h.ID && pod.Labels[LabelDeployment] == rt.deployment:
			return rt, pod, nil
		case err != nil && !apierrors.IsNotFound(err):
			return nil, nil, wrap(err, "get pod %s", st.Name)
		}
		// Gone, or another Pod of that name: look no further, as the
		// UID is what names the service.
		return nil, nil, fmt.Errorf("pod %s: %w", h.ID, sdk.ErrNotFound)
	}
	list, err := rt.cs.CoreV1().Pods(rt.namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelDeployment + "=" + rt.deployment})
	if err != nil {
		return nil, nil, wrap(err, "list pods")
	}
	for i := range list.Items {
		if string(list.Items[i].UID) == h.ID {
			if decodeErr != nil {
				return nil, nil, decodeErr
			}
			return rt, &list.Items[i], nil
		}
	}
	return nil, nil, fmt.Errorf("pod %s: %w", h.ID, sdk.ErrNotFound)
}

// Stop ends the Pod through its active deadline, which the kubelet
// enforces with the pod's grace period (termination_grace_seconds): the
// Pod stays, ended, with its status and output, until Remove. It returns
// once the Pod has ended, or with ctx's error.
func (p *Plugin) Stop(ctx context.Context, h backend.Handle, _ time.Duration) error {
	rt, pod, err := p.locate(ctx, h)
	if err != nil {
		return err
	}
	if ended(pod) {
		return nil
	}
	if pod.Spec.NodeName == "" {
		// Never scheduled: nothing runs; without a node no kubelet
		// would end it.
		p.removed.Add(string(pod.UID))
		return rt.deletePod(ctx, pod.Name, pod.UID)
	}
	active := int64(1)
	if pod.Status.StartTime != nil {
		active = max(1, int64(time.Since(pod.Status.StartTime.Time).Seconds())+1)
	}
	if d := pod.Spec.ActiveDeadlineSeconds; d == nil || *d > active {
		patch := fmt.Appendf(nil, `{"metadata":{"uid":%q},"spec":{"activeDeadlineSeconds":%d}}`, pod.UID, active)
		if _, err := rt.cs.CoreV1().Pods(rt.namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return wrap(err, "stop pod %s", pod.Name)
		}
	}
	return rt.waitEnded(ctx, pod)
}

// waitEnded waits until the Pod has ended or is gone.
func (rt *runtime) waitEnded(ctx context.Context, pod *corev1.Pod) error {
	return rt.awaitGone(ctx, pod, ended)
}

// awaitGone waits until the Pod of that UID is gone, or until done says
// it is as wanted (nil: only gone). The informer tells first; a Pod it
// does not hold (gone, or not heard of yet) is asked of the API server.
func (rt *runtime) awaitGone(ctx context.Context, pod *corev1.Pod, done func(*corev1.Pod) bool) error {
	c, err := rt.cached(ctx)
	if err != nil {
		return err
	}
	check := func(got *corev1.Pod) bool {
		return got == nil || got.UID != pod.UID || (done != nil && done(got))
	}
	return c.awaitPod(ctx, podKey(rt.namespace, pod.Name), func(got *corev1.Pod) (bool, error) {
		if got != nil && got.UID == pod.UID {
			return check(got), nil
		}
		got, err := rt.cs.CoreV1().Pods(rt.namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, wrap(err, "get pod %s", pod.Name)
		}
		return check(got), nil
	}, nil)
}

// ended: the Pod's program has ended for good.
func ended(pod *corev1.Pod) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return true
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == ContainerName && cs.State.Terminated != nil {
			return true
		}
	}
	return false
}

// Remove deletes the Pod and its Service; a Pod still running only with
// force. It returns once the cluster no longer shows the Pod.
func (p *Plugin) Remove(ctx context.Context, h backend.Handle, force bool) error {
	rt, pod, err := p.locate(ctx, h)
	if err != nil {
		return err
	}
	if !force && !ended(pod) && pod.Spec.NodeName != "" {
		return fmt.Errorf("pod %s is running: %w", pod.Name, sdk.ErrConflict)
	}
	p.removed.Add(string(pod.UID))
	if err := rt.deleteOwned(ctx, pod); err != nil {
		return err
	}
	if err := rt.deletePod(ctx, pod.Name, pod.UID); err != nil {
		return err
	}
	return rt.waitGone(ctx, pod)
}

// waitGone waits until the Pod of that UID is gone: with a grace of 0 the
// API server deletes it at once, unless finalizers hold it.
func (rt *runtime) waitGone(ctx context.Context, pod *corev1.Pod) error {
	return rt.awaitGone(ctx, pod, nil)
}

// Inspect reports the Pod's status.
func (p *Plugin) Inspect(ctx context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	rt, pod, err := p.locate(ctx, h)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	ix := &portIndex{}
	ix.cache, _ = rt.cached(ctx) // nil: its ports are asked of the API server
	return rt.status(ctx, pod, ix)
}

// Recover is Inspect: the cluster keeps everything, the handle finds it.
func (p *Plugin) Recover(ctx context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	return p.Inspect(ctx, h)
}

// List reports the deployment's Pods, in every state, or those with opts'
// labels.
func (p *Plugin) List(ctx context.Context, opts backend.ListOptions) ([]backend.ServiceStatus, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, err
	}
	if v, ok := opts.Labels[LabelDeployment]; ok && v != rt.deployment {
		return nil, nil
	}
	c, err := rt.cached(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.failure(); err != nil {
		return nil, err
	}
	ports := &portIndex{cache: c}
	var out []backend.ServiceStatus
	for _, pod := range c.ourPods(rt) {
		if !mayMatch(opts, pod) || !opts.Matches(c.zoeLabels(pod)) {
			continue
		}
		st, err := rt.status(ctx, pod, ports)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// mayMatch tells, from the pod's Kubernetes labels alone, whether its
// Zoe labels may match opts: a Zoe label that is also a Kubernetes label
// has the same value. It spares decoding the labels of every pod of the
// deployment each time the core lists one execution's.
func mayMatch(opts backend.ListOptions, pod *corev1.Pod) bool {
	for k, v := range opts.Labels {
		if got, ok := pod.Labels[k]; ok && got != v && k != LabelPod && k != LabelNetwork {
			return false
		}
	}
	return true
}

// portIndex finds a pod's NodePort Service and its node's address: in the
// cache when it has them (a listing), else from the API server.
type portIndex struct {
	cache *clusterCache // nil: ask the API server
	// created is the Service Start just made, which the cache may not
	// hold yet.
	created *corev1.Service
}

// findPortsService is the pod's NodePort Service, nil when it has none.
func (rt *runtime) findPortsService(ctx context.Context, ix *portIndex, pod *corev1.Pod) (*corev1.Service, error) {
	name := portsServiceName(pod.Name)
	if ix.created != nil && ix.created.Name == name {
		return ix.created, nil
	}
	if ix.cache != nil {
		if obj, ok, _ := ix.cache.services.GetStore().GetByKey(podKey(rt.namespace, name)); ok {
			if svc, ok := obj.(*corev1.Service); ok && ownedBy(svc.OwnerReferences, pod.UID) {
				return svc, nil
			}
		}
	}
	// Not heard of yet (or not there): the API server knows.
	svc, err := rt.cs.CoreV1().Services(rt.namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap(err, "get service %s", name)
	}
	if !ownedBy(svc.OwnerReferences, pod.UID) {
		return nil, nil
	}
	return svc, nil
}

// nodeAddress is the address of the node, "" when it is unknown.
func (rt *runtime) nodeAddress(ctx context.Context, ix *portIndex, node string) (string, error) {
	if ix.cache != nil {
		if obj, ok, _ := ix.cache.nodes.GetStore().GetByKey(node); ok {
			if n, ok := obj.(*corev1.Node); ok {
				return nodeAddress(n, rt.set.addressType), nil
			}
		}
	}
	n, err := rt.cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", wrap(err, "get node %s", node)
	}
	return nodeAddress(n, rt.set.addressType), nil
}

// status translates a Pod; ix is where its ports are found (nil: the API
// server).
func (rt *runtime) status(ctx context.Context, pod *corev1.Pod, ix *portIndex) (backend.ServiceStatus, error) {
	handle, err := backend.EncodeHandle(string(pod.UID), handleVersion, handleState{Namespace: pod.Namespace, Name: pod.Name})
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	var labels map[string]string
	if ix != nil && ix.cache != nil {
		labels = maps.Clone(ix.cache.zoeLabels(pod))
	} else {
		labels = zoeLabels(pod.ObjectMeta)
	}
	st := backend.ServiceStatus{Handle: handle, Name: pod.Name, Labels: labels, Node: pod.Spec.NodeName, IP: pod.Status.PodIP}
	if st.Node == "" {
		st.Node = affinityNode(pod)
	}
	st.State, st.ExitCode, st.OOMKilled, st.Message = podState(pod)
	if cs := mainStatus(pod); cs != nil {
		if r := cs.State.Running; r != nil {
			st.StartedAt = r.StartedAt.Time
		}
		if t := cs.State.Terminated; t != nil {
			st.StartedAt, st.FinishedAt = t.StartedAt.Time, t.FinishedAt.Time
		}
	}
	if st.State == backend.ServiceRunning && len(pod.Spec.Containers) > 0 && len(pod.Spec.Containers[0].Ports) > 0 {
		if rt.set.endpointMode == modePodIP {
			for _, cp := range pod.Spec.Containers[0].Ports {
				if st.IP != "" {
					st.Ports = append(st.Ports, backend.PublishedPort{Port: uint16(cp.ContainerPort), Protocol: strings.ToLower(string(cp.Protocol)),
						HostAddress: st.IP, HostPort: uint16(cp.ContainerPort)})
				}
			}
		} else {
			if ix == nil {
				ix = &portIndex{}
			}
			svc, err := rt.findPortsService(ctx, ix, pod)
			if err != nil {
				return backend.ServiceStatus{}, err
			}
			addr := ""
			if svc != nil {
				if addr, err = rt.nodeAddress(ctx, ix, pod.Spec.NodeName); err != nil {
					return backend.ServiceStatus{}, err
				}
			}
			if svc != nil && addr != "" {
				for _, sp := range svc.Spec.Ports {
					if sp.NodePort > 0 {
						st.Ports = append(st.Ports, backend.PublishedPort{Port: uint16(sp.Port), Protocol: strings.ToLower(string(sp.Protocol)),
							HostAddress: addr, HostPort: uint16(sp.NodePort)})
					}
				}
			}
		}
		sort.Slice(st.Ports, func(i, j int) bool {
			if st.Ports[i].Port != st.Ports[j].Port {
				return st.Ports[i].Port < st.Ports[j].Port
			}
			return st.Ports[i].Protocol < st.Ports[j].Protocol
		})
	}
	return st, nil
}

func affinityNode(pod *corev1.Pod) string {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, f := range t.MatchFields {
			if f.Key == "metadata.name" && len(f.Values) == 1 {
				return f.Values[0]
			}
		}
	}
	return ""
}

func mainStatus(pod *corev1.Pod) *corev1.ContainerStatus {
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == ContainerName {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// podState is where a Pod is in the contract's terms: created until its
// container runs, running, or exited with the container's exit code (-1
// when the Pod ended without one: evicted, or its deadline passed before
// the container started) and whether memory killed it.
func podState(pod *corev1.Pod) (state backend.ServiceState, code int, oom bool, msg string) {
	cs := mainStatus(pod)
	if cs != nil && cs.State.Terminated != nil {
		t := cs.State.Terminated
		msg = strings.TrimSpace(t.Reason + " " + t.Message)
		if pod.Status.Reason != "" {
			msg = strings.TrimSpace(pod.Status.Reason + ": " + pod.Status.Message + " (" + msg + ")")
		}
		return backend.ServiceExited, int(t.ExitCode), t.Reason == "OOMKilled", msg
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		return backend.ServiceExited, 0, false, pod.Status.Reason
	case corev1.PodFailed:
		return backend.ServiceExited, -1, false, strings.TrimSpace(pod.Status.Reason + ": " + pod.Status.Message)
	}
	if cs != nil && cs.State.Running != nil {
		return backend.ServiceRunning, 0, false, ""
	}
	if pod.Status.Phase == corev1.PodRunning {
		return backend.ServiceRunning, 0, false, ""
	}
	if cs != nil && cs.State.Waiting != nil {
		msg = strings.TrimSpace(cs.State.Waiting.Reason + ": " + cs.State.Waiting.Message)
	} else {
		msg = pendingReason(pod)
	}
	return backend.ServiceCreated, 0, false, msg
}
