//go:build tools

// Package kwok pins the kwok controller make kube-bins builds; nothing
// imports it.
package kwok

import _ "sigs.k8s.io/kwok/cmd/kwok"
