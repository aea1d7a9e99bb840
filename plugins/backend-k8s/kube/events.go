package kube

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/zoe-project/zoe/sdk/backend"
)

// eventBuffer is how many events wait for a slow reader before the
// informer waits for it.
const eventBuffer = 256

// Events streams the deployment's Pod changes as the plugin's pod informer
// hears them (clusterCache): a Pod whose container runs is started; one
// that ended is exited with the container's exit code, preceded by
// oom_killed when memory killed it; one deleted by anyone but this plugin
// instance is vanished. The informer lists and watches again by itself
// when its watch breaks (an API server restart, an expired
// resourceVersion) and reports what changed meanwhile, so a restart loses
// nothing. Pods as they are when the stream starts give no events: the
// core lists after subscribing.
func (p *Plugin) Events(ctx context.Context) (<-chan backend.Event, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, err
	}
	c, err := rt.cached(ctx)
	if err != nil {
		return nil, err
	}
	ours := func(obj any) (*corev1.Pod, bool) {
		pod, ok := podOf(obj)
		return pod, ok && pod.Namespace == rt.namespace && pod.Labels[LabelDeployment] == rt.deployment
	}
	out := make(chan backend.Event, eventBuffer)
	s := &eventSender{ctx: ctx, out: out}
	reg, err := c.pods.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if pod, ok := ours(obj); ok && !initial {
				s.send(transition(nil, pod)...)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := ours(oldObj)
			pod, ok2 := ours(newObj)
			if ok1 && ok2 {
				s.send(transition(old, pod)...)
			}
		},
		DeleteFunc: func(obj any) {
			pod, ok := ours(obj)
			if !ok || p.removed.Has(string(pod.UID)) {
				return
			}
			s.send(backend.Event{Kind: backend.EventVanished, ServiceName: pod.Name, HandleID: string(pod.UID), Time: time.Now(),
				Message: "pod deleted by someone else"})
		},
	})
	if err != nil {
		return nil, wrap(err, "watch pods")
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-c.stopped.Done():
		}
		_ = c.pods.RemoveEventHandler(reg)
		s.close()
	}()
	return out, nil
}

// eventSender sends until its context ends, then closes the channel once.
type eventSender struct {
	ctx    context.Context
	mu     sync.Mutex
	closed bool
	out    chan backend.Event
}

func (s *eventSender) send(evs ...backend.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range evs {
		if s.closed {
			return
		}
		select {
		case s.out <- e:
		case <-s.ctx.Done():
			return
		}
	}
}

func (s *eventSender) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.out)
	}
}

// transition is what happened between two states of a Pod (old nil: it
// was just created).
func transition(old, pod *corev1.Pod) []backend.Event {
	before := backend.ServiceCreated
	if old != nil {
		before, _, _, _ = podState(old)
	}
	after, code, oom, msg := podState(pod)
	at := func(k backend.EventKind, m string) backend.Event {
		return backend.Event{Kind: k, ServiceName: pod.Name, HandleID: string(pod.UID), Time: time.Now(), Message: m}
	}
	var evs []backend.Event
	if before == backend.ServiceCreated && after != backend.ServiceCreated {
		evs = append(evs, at(backend.EventStarted, "started on "+pod.Spec.NodeName))
	}
	if before != backend.ServiceExited && after == backend.ServiceExited {
		if oom {
			evs = append(evs, at(backend.EventOOMKilled, "out of memory"))
		}
		e := at(backend.EventExited, msg)
		e.ExitCode = code
		evs = append(evs, e)
	}
	return evs
}
