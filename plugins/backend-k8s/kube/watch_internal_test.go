package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
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

// TestWrapKinds: what the cluster's answers, and the failures of the
// requests on their way, become for the core. A request that fails on
// the way is the cluster unreachable (tried again later), never a refusal
// of what was asked.
func TestWrapKinds(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"connection lost mid-answer", &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/api/v1/pods", Err: errors.New("http2: client connection lost")}, sdk.ErrUnavailable},
		{"an answer cut short", fmt.Errorf("decoding: %w", io.ErrUnexpectedEOF), sdk.ErrUnavailable},
		{"the stream closed", io.EOF, sdk.ErrUnavailable},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, sdk.ErrUnavailable},
		{"the server's timeout", apierrors.NewServerTimeout(gr, "list", 1), sdk.ErrUnavailable},
		{"the client's deadline", context.DeadlineExceeded, sdk.ErrDeadlineExceeded},
		{"not found", apierrors.NewNotFound(gr, "x"), sdk.ErrNotFound},
		{"RBAC", apierrors.NewForbidden(gr, "x", errors.New("no")), sdk.ErrPermissionDenied},
		{"invalid", apierrors.NewBadRequest("bad"), sdk.ErrInvalidArgument},
		{"something else", errors.New("what is this"), sdk.ErrInternal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := sdk.Category(wrap(c.err, "list pods")); got != c.want {
				t.Errorf("wrap(%v) is %v, want %v", c.err, got, c.want)
			}
		})
	}
}

// TestCacheFailureKinds: a list or watch that fails for a reason without
// a category makes the cluster unavailable (the core tries again), while
// a refusal keeps its category.
func TestCacheFailureKinds(t *testing.T) {
	c := &clusterCache{failing: map[string]error{}}
	c.record("pods", errors.New("an error on the server (\"unknown\") has prevented the request from succeeding"))
	if err := c.failure(); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("failure() = %v, want unavailable", err)
	}
	c.record("pods", apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("RBAC")))
	if err := c.failure(); !errors.Is(err, sdk.ErrPermissionDenied) || errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("failure() = %v, want permission denied only", err)
	}
	c.record("pods", nil)
	if err := c.failure(); err != nil {
		t.Errorf("failure() after a success = %v", err)
	}
}
