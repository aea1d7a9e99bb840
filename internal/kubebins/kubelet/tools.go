//go:build tools

// Package kubelet pins the kubelet make test-kubelet builds; nothing
// imports it. A module of its own, beside ../kubernetes, so that the
// control plane make test builds (make kube-bins) keeps its key and its
// cost.
package kubelet

import (
	_ "k8s.io/kubernetes/cmd/kubelet"
)
