// Command backend-k8s is Zoe's "k8s" back-end plugin: services run as pods
// of a Kubernetes cluster. See package kube and README.md.
package main

import (
	"log/slog"

	"github.com/zoe-project/zoe/plugins/backend-k8s/kube"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/serve"
)

func main() { serve.Serve(func(log *slog.Logger) sdk.Plugin { return kube.New(log) }) }
