package kube

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/zoe-project/zoe/sdk"
)

// clusterCache is what the plugin reads of the cluster, kept current by
// informers, one list and one watch each, instead of a list of every pod
// of the cluster for each scheduling pass and a watch for each pod
// starting: the cluster's pods (those of other namespaces and workloads
// kept only as what they request on their node, which Nodes counts), the
// deployment's Services, the nodes, and the namespace's FailedMount
// events.
//
// A reader sees the cluster as the informers last heard it. Start, Stop and
// Remove wait for the informer to see what they waited for, so that what
// the core reads next (List, Nodes) holds its own last changes. While an
// informer cannot list or watch (the API server unreachable, a right
// missing), readers get its error rather than an old picture.
type clusterCache struct {
	pods, services, nodes cache.SharedIndexInformer
	// mounts holds the deployment's FailedMount events, by the uid of
	// their pod. Optional: without the right to watch events it never
	// syncs, and no start fails on a mount.
	mounts  cache.SharedIndexInformer
	stopped context.Context // done once stopped
	stop    context.CancelFunc

	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{} // by pod key, namespace/name
	failing map[string]error                      // by informer: its last list or watch failed
	// labels are the decoded Zoe labels of the deployment's pods (they
	// never change), by uid: the core lists every pod at each pass.
	labels map[types.UID]map[string]string
}

// cached starts the informers on first use and waits until they have
// listed the cluster once.
func (rt *runtime) cached(ctx context.Context) (*clusterCache, error) {
	rt.cacheMu.Lock()
	c := rt.cache
	if c == nil {
		c = rt.newCache()
		rt.cache = c
	}
	rt.cacheMu.Unlock()
	for !c.pods.HasSynced() || !c.services.HasSynced() || !c.nodes.HasSynced() {
		if err := c.failure(); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, wrap(ctx.Err(), "read the cluster's pods, services and nodes")
		case <-time.After(10 * time.Millisecond):
		}
	}
	return c, nil
}

// stopCache stops the informers, if they run.
func (rt *runtime) stopCache() {
	rt.cacheMu.Lock()
	defer rt.cacheMu.Unlock()
	if rt.cache != nil {
		rt.cache.stop()
		rt.cache = nil
	}
}

func (rt *runtime) newCache() *clusterCache {
	c := &clusterCache{waiters: map[string]map[chan struct{}]struct{}{}, failing: map[string]error{}, labels: map[types.UID]map[string]string{}}
	ours := LabelDeployment + "=" + rt.deployment
	c.pods = cache.NewSharedIndexInformer(c.listWatch(rt, "pods",
		func(ctx context.Context, o metav1.ListOptions) (kruntime.Object, error) {
			return rt.cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return rt.cs.CoreV1().Pods(metav1.NamespaceAll).Watch(ctx, o)
		}), &corev1.Pod{}, 0, cache.Indexers{})
	c.services = cache.NewSharedIndexInformer(c.listWatch(rt, "services",
		func(ctx context.Context, o metav1.ListOptions) (kruntime.Object, error) {
			o.LabelSelector = ours
			return rt.cs.CoreV1().Services(rt.namespace).List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = ours
			return rt.cs.CoreV1().Services(rt.namespace).Watch(ctx, o)
		}), &corev1.Service{}, 0, cache.Indexers{})
	c.nodes = cache.NewSharedIndexInformer(c.listWatch(rt, "nodes",
		func(ctx context.Context, o metav1.ListOptions) (kruntime.Object, error) {
			return rt.cs.CoreV1().Nodes().List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return rt.cs.CoreV1().Nodes().Watch(ctx, o)
		}), &corev1.Node{}, 0, cache.Indexers{})
	failedMount := fields.OneTermEqualSelector("reason", "FailedMount").String()
	c.mounts = cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (kruntime.Object, error) {
			o.FieldSelector = failedMount
			return rt.cs.CoreV1().Events(rt.namespace).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = failedMount
			return rt.cs.CoreV1().Events(rt.namespace).Watch(ctx, o)
		},
	}, rt.cs), &corev1.Event{}, 0, cache.Indexers{byObjectUID: func(obj any) ([]string, error) {
		if ev, ok := obj.(*corev1.Event); ok {
			return []string{string(ev.InvolvedObject.UID)}, nil
		}
		return nil, nil
	}})
	// Quiet: a missing right to watch events is allowed.
	_ = c.mounts.SetWatchErrorHandlerWithContext(func(context.Context, *cache.Reflector, error) {})
	// SetTransform and AddEventHandler fail only on a running informer.
	_ = c.pods.SetTransform(rt.slimPod)
	_ = c.services.SetTransform(dropManagedFields)
	_ = c.nodes.SetTransform(dropManagedFields)
	_ = c.mounts.SetTransform(dropManagedFields)
	_, _ = c.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.changed,
		UpdateFunc: func(_, obj any) { c.changed(obj) },
		DeleteFunc: func(obj any) {
			c.changed(obj)
			c.forget(obj)
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	c.stopped, c.stop = ctx, cancel
	for _, inf := range []cache.SharedIndexInformer{c.pods, c.services, c.nodes, c.mounts} {
		go inf.RunWithContext(ctx)
	}
	return c
}

// listWatch is the informer's calls, which tell whether the cluster
// answers. (The client tells client-go whether it can stream a list
// through a watch: client-go's fake clientset cannot.)
func (c *clusterCache) listWatch(rt *runtime, what string, list func(context.Context, metav1.ListOptions) (kruntime.Object, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) cache.ListerWatcher {
	return cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (kruntime.Object, error) {
			obj, err := list(ctx, o)
			c.record(what, err)
			return obj, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			w, err := watchFn(ctx, o)
			c.record(what, err)
			return w, err
		},
	}, rt.cs)
}

func (c *clusterCache) record(what string, err error) {
	if err != nil && (apierrors.IsResourceExpired(err) || apierrors.IsGone(err)) {
		// A resourceVersion too old: the informer lists again.
		err = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		delete(c.failing, what)
	} else {
		c.failing[what] = err
	}
}

// failure is the error of an informer whose last call failed, nil when all
// answer.
func (c *clusterCache) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	whats := make([]string, 0, len(c.failing))
	for w := range c.failing {
		whats = append(whats, w)
	}
	if len(whats) == 0 {
		return nil
	}
	sort.Strings(whats)
	err := wrap(c.failing[whats[0]], "list and watch %s", whats[0])
	if sdk.Category(err) == sdk.ErrInternal {
		// Whatever it is, the cluster does not answer as it should
		// (a refusal, such as RBAC's, keeps its category).
		err = fmt.Errorf("%w: %w", err, sdk.ErrUnavailable)
	}
	return err
}

// slimPod keeps the deployment's pods whole (but for their managed
// fields), and of any other pod only what Nodes counts: its node (or the
// node its affinity names while unbound), its requests and its phase.
func (rt *runtime) slimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	pod.ManagedFields = nil
	if pod.Namespace == rt.namespace && pod.Labels[LabelDeployment] == rt.deployment {
		return pod, nil
	}
	slim := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: pod.ResourceVersion},
		Spec:       corev1.PodSpec{NodeName: podNode(pod), Overhead: pod.Spec.Overhead},
		Status:     corev1.PodStatus{Phase: pod.Status.Phase},
	}
	for _, ct := range pod.Spec.Containers {
		slim.Spec.Containers = append(slim.Spec.Containers, corev1.Container{Name: ct.Name, Resources: corev1.ResourceRequirements{Requests: ct.Resources.Requests}})
	}
	for _, ct := range pod.Spec.InitContainers {
		slim.Spec.InitContainers = append(slim.Spec.InitContainers, corev1.Container{Name: ct.Name, Resources: corev1.ResourceRequirements{Requests: ct.Resources.Requests}})
	}
	return slim, nil
}

func dropManagedFields(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
	}
	return obj, nil
}

// podNode is the node a pod is on, or, while unbound, the node its
// affinity names: Zoe placed it there, and must not place more than fits
// meanwhile.
func podNode(pod *corev1.Pod) string {
	if pod.Spec.NodeName != "" {
		return pod.Spec.NodeName
	}
	return affinityNode(pod)
}

func podKey(namespace, name string) string { return namespace + "/" + name }

// byObjectUID indexes events by the uid of their object.
const byObjectUID = "object-uid"

// mountEvents are the FailedMount events of the pod of that uid the
// informer holds; nil before it has synced.
func (c *clusterCache) mountEvents(uid string) []*corev1.Event {
	if !c.mounts.HasSynced() {
		return nil
	}
	objs, err := c.mounts.GetIndexer().ByIndex(byObjectUID, uid)
	if err != nil {
		return nil
	}
	out := make([]*corev1.Event, 0, len(objs))
	for _, obj := range objs {
		if ev, ok := obj.(*corev1.Event); ok {
			out = append(out, ev)
		}
	}
	return out
}

// podOf is the pod an informer's notification is about (a deletion it
// missed the end of included).
func podOf(obj any) (*corev1.Pod, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	return pod, ok
}

// changed wakes who waits on the pod.
func (c *clusterCache) changed(obj any) {
	pod, ok := podOf(obj)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.waiters[podKey(pod.Namespace, pod.Name)] {
		select {
		case ch <- struct{}{}:
		default: // already told
		}
	}
}

// forget drops what was kept of a deleted pod.
func (c *clusterCache) forget(obj any) {
	if pod, ok := podOf(obj); ok {
		c.mu.Lock()
		delete(c.labels, pod.UID)
		c.mu.Unlock()
	}
}

// zoeLabels are the pod's Zoe labels (zoeLabels), decoded once: not to be
// changed.
func (c *clusterCache) zoeLabels(pod *corev1.Pod) map[string]string {
	c.mu.Lock()
	l, ok := c.labels[pod.UID]
	c.mu.Unlock()
	if ok {
		return l
	}
	l = zoeLabels(pod.ObjectMeta)
	if held := c.pod(podKey(pod.Namespace, pod.Name)); held == nil || held.UID != pod.UID {
		return l // not held (or no longer): nothing would forget it
	}
	c.mu.Lock()
	c.labels[pod.UID] = l
	c.mu.Unlock()
	return l
}

// watchPod returns a channel told of every change to the pod of that key,
// and the function that ends it.
func (c *clusterCache) watchPod(key string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	if c.waiters[key] == nil {
		c.waiters[key] = map[chan struct{}]struct{}{}
	}
	c.waiters[key][ch] = struct{}{}
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.waiters[key], ch)
		if len(c.waiters[key]) == 0 {
			delete(c.waiters, key)
		}
	}
}

// pod is the pod of that key as last heard, nil when there is none.
func (c *clusterCache) pod(key string) *corev1.Pod {
	obj, ok, err := c.pods.GetStore().GetByKey(key)
	if err != nil || !ok {
		return nil
	}
	pod, _ := obj.(*corev1.Pod)
	return pod
}

// ourPods are the deployment's pods, by name. They are the informer's:
// not to be changed.
func (c *clusterCache) ourPods(rt *runtime) []*corev1.Pod {
	var out []*corev1.Pod
	for _, obj := range c.pods.GetStore().List() {
		if pod, ok := obj.(*corev1.Pod); ok && pod.Namespace == rt.namespace && pod.Labels[LabelDeployment] == rt.deployment {
			out = append(out, pod)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// awaitPod waits until done says the pod of that key (nil: none) is as
// wanted, checking it on each change the informer hears, and every
// recheckEvery with tick (nil: none), which may end the wait with an error.
func (c *clusterCache) awaitPod(ctx context.Context, key string, done func(*corev1.Pod) (bool, error), tick func() error) error {
	changes, stop := c.watchPod(key)
	defer stop()
	t := time.NewTicker(recheckEvery)
	defer t.Stop()
	for {
		if ok, err := done(c.pod(key)); ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return wrap(ctx.Err(), "wait for pod %s", key)
		case <-changes:
		case <-t.C:
			if err := c.failure(); err != nil {
				return err
			}
			if tick != nil {
				if err := tick(); err != nil {
					return err
				}
			}
		}
	}
}

// recheckEvery is how often a wait on a pod checks what the informer
// cannot tell: whether it still hears the cluster, and the pod's events.
const recheckEvery = 2 * time.Second
