package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// CreateNetwork creates the execution's headless Service, named spec.Name:
// its Pods take it as their subdomain, so the cluster's DNS gives each of
// them a name in it.
func (p *Plugin) CreateNetwork(ctx context.Context, spec backend.NetworkSpec) (string, error) {
	rt, err := p.runtime()
	if err != nil {
		return "", err
	}
	if spec.Name == "" {
		return "", fmt.Errorf("create network: no name: %w", sdk.ErrInvalidArgument)
	}
	if errs := validation.IsDNS1035Label(spec.Name); len(errs) > 0 {
		return "", fmt.Errorf("create network %q: %s: %w", spec.Name, strings.Join(errs, "; "), sdk.ErrInvalidArgument)
	}
	labels, annotations, err := rt.objectLabels(spec.Labels)
	if err != nil {
		return "", fmt.Errorf("create network %q: %w", spec.Name, err)
	}
	labels[LabelNetwork] = spec.Name
	if err := rt.ensureNamespace(ctx); err != nil {
		return "", fmt.Errorf("create network %q: %w", spec.Name, err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: spec.Name, Namespace: rt.namespace, Labels: labels, Annotations: annotations},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  map[string]string{LabelDeployment: rt.deployment, LabelNetwork: spec.Name},
			// A service's name resolves while it starts, before any
			// readiness: Zoe's services have no probes.
			PublishNotReadyAddresses: true,
		},
	}
	created, err := inNamespace(ctx, rt, func() (*corev1.Service, error) {
		return rt.cs.CoreV1().Services(rt.namespace).Create(ctx, svc, metav1.CreateOptions{})
	})
	if err != nil {
		if apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("create network %q: %w", spec.Name, sdk.ErrAlreadyExists)
		}
		return "", wrap(err, "create network %q", spec.Name)
	}
	if _, err := rt.cs.NetworkingV1().NetworkPolicies(rt.namespace).Create(ctx, rt.networkPolicy(spec.Name, labels, annotations), metav1.CreateOptions{}); err != nil {
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = rt.cs.CoreV1().Services(rt.namespace).Delete(rmCtx, spec.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &created.UID}})
		return "", wrap(err, "create the network policy of network %q", spec.Name)
	}
	return spec.Name, nil
}

// networkPolicy lets the pods of an execution's network be reached only by
// each other (and, through portsPolicy, on their published ports): as the
// Docker back-end's bridge networks, it keeps executions, and so users,
// apart. The cluster's network plugin must enforce network policies.
func (rt *runtime) networkPolicy(name string, labels, annotations map[string]string) *networkingv1.NetworkPolicy {
	members := metav1.LabelSelector{MatchLabels: map[string]string{LabelDeployment: rt.deployment, LabelNetwork: name}}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: rt.namespace, Labels: labels, Annotations: annotations},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: members,
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &members}}}},
		},
	}
}

// RemoveNetwork removes the execution's headless Service: sdk.ErrNotFound
// when it is gone, sdk.ErrConflict while a Pod of it has not ended.
func (p *Plugin) RemoveNetwork(ctx context.Context, id string) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	svc, err := rt.cs.CoreV1().Services(rt.namespace).Get(ctx, id, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || (err == nil && (svc.Labels[LabelDeployment] != rt.deployment || svc.Labels[LabelNetwork] != id)) {
		return fmt.Errorf("network %q: %w", id, sdk.ErrNotFound)
	}
	if err != nil {
		return wrap(err, "get network %q", id)
	}
	pods, err := rt.cs.CoreV1().Pods(rt.namespace).List(ctx, metav1.ListOptions{
		LabelSelector: LabelDeployment + "=" + rt.deployment + "," + LabelNetwork + "=" + id})
	if err != nil {
		return wrap(err, "list the pods of network %q", id)
	}
	running := 0
	for i := range pods.Items {
		if !ended(&pods.Items[i]) {
			running++
		}
	}
	if running > 0 {
		return fmt.Errorf("remove network %q: %d pods use it: %w", id, running, sdk.ErrConflict)
	}
	pol, err := rt.cs.NetworkingV1().NetworkPolicies(rt.namespace).Get(ctx, id, metav1.GetOptions{})
	if err == nil && pol.Labels[LabelDeployment] == rt.deployment {
		err = rt.cs.NetworkingV1().NetworkPolicies(rt.namespace).Delete(ctx, id, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pol.UID}})
	}
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return wrap(err, "remove the network policy of network %q", id)
	}
	err = rt.cs.CoreV1().Services(rt.namespace).Delete(ctx, id, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &svc.UID}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return fmt.Errorf("network %q: %w", id, sdk.ErrNotFound)
	}
	return wrap(err, "remove network %q", id)
}
