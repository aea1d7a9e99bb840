package kube

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// The cache against client-go's fake clientset, for what the real API
// server of cluster_test.go cannot be made to do on demand: refuse a
// right, and hold a FailedMount event of a kubelet (kwok's nodes mount
// nothing).

func fakeRuntime(objs ...kruntime.Object) (*runtime, *fake.Clientset) {
	cs := fake.NewClientset(objs...)
	rt := testRuntime()
	rt.cs = cs
	return rt, cs
}

func TestCacheMountFailure(t *testing.T) {
	ours := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web0-7-dev", Namespace: "zoe-dev", UID: "u1", Labels: map[string]string{LabelDeployment: "dev"}}}
	rt, cs := fakeRuntime(ours)
	defer rt.stopCache()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rt.cached(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.mountFailure(ours); err != nil {
		t.Fatalf("no event: %v", err)
	}
	for i, msg := range []string{"MountVolume.SetUp failed: nfs: server not responding",
		`MountVolume.SetUp failed for volume "v0" : hostPath type check failed: /srv/ws/alice is not a directory`} {
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e" + string(rune('0'+i)), Namespace: "zoe-dev"}, Reason: "FailedMount",
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: ours.Name, UID: ours.UID}, Message: msg}
		if _, err := cs.CoreV1().Events("zoe-dev").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 5*time.Second, "the events heard", func() (bool, string) {
		return len(c.mountEvents("u1")) == 2, "events of u1 not in the cache"
	})
	err = c.mountFailure(ours)
	if !errors.Is(err, sdk.ErrInvalidArgument) || !strings.Contains(err.Error(), "/srv/ws/alice is not a directory") {
		t.Errorf("mountFailure = %v; want invalid argument with the kubelet's message", err)
	}
	other := ours.DeepCopy()
	other.UID = "u2"
	if err := c.mountFailure(other); err != nil {
		t.Errorf("another pod's events: %v", err)
	}
}

// TestCacheRefused: an account that may not watch pods or nodes gets the
// cluster's refusal from Nodes and List, not an empty cluster; one that
// may not watch events still works.
func TestCacheRefused(t *testing.T) {
	for _, c := range []struct {
		resource string
		fails    bool
	}{{"pods", true}, {"nodes", true}, {"events", false}} {
		t.Run(c.resource, func(t *testing.T) {
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{
				Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi")}}}
			rt, cs := fakeRuntime(node)
			defer rt.stopCache()
			forbid := func(k8stesting.Action) (bool, kruntime.Object, error) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: c.resource}, "", errors.New("RBAC: not allowed"))
			}
			cs.PrependReactor("list", c.resource, forbid)
			cs.PrependWatchReactor(c.resource, func(k8stesting.Action) (bool, watch.Interface, error) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: c.resource}, "", errors.New("RBAC: not allowed"))
			})
			p := &Plugin{rt: rt}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			nodes, err := p.Nodes(ctx)
			if !c.fails {
				if err != nil || len(nodes) != 1 {
					t.Errorf("Nodes = %v, %v; want n1", nodes, err)
				}
				return
			}
			if !errors.Is(err, sdk.ErrPermissionDenied) || !strings.Contains(err.Error(), "RBAC: not allowed") {
				t.Errorf("Nodes = %v, %v; want the refusal", nodes, err)
			}
			list, err := p.List(ctx, backend.ListOptions{})
			if !errors.Is(err, sdk.ErrPermissionDenied) {
				t.Errorf("List = %v, %v; want the refusal", list, err)
			}
		})
	}
}
