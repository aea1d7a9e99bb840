//go:build tools

// Package etcd pins the etcd server make kube-bins builds; nothing imports
// it. A module of its own because go install refuses etcd's server module
// (its go.mod has replace directives).
package etcd

import _ "go.etcd.io/etcd/server/v3"
