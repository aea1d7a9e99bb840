package dockerapi

import (
	"sort"
	"strconv"

	"github.com/zoe-project/zoe/sdk/backend"
)

const (
	// LabelDeployment is on every container, service and network a
	// plugin makes: how it finds its deployment's, and only those, on an
	// engine that others use too.
	LabelDeployment = "zoe.deployment"
	// LabelCores holds a service's reservation, Resources.Cores, as Zoe
	// counted it.
	LabelCores = "zoe.cores"
)

// Labels is a copy of labels with the deployment's label.
func Labels(deployment string, labels map[string]string) map[string]string {
	out := make(map[string]string, len(labels)+1)
	for k, v := range labels {
		out[k] = v
	}
	out[LabelDeployment] = deployment
	return out
}

// ServiceLabels are the labels of spec's container or service: the spec's,
// the deployment's and its reservation of cores.
func ServiceLabels(deployment string, spec backend.ServiceSpec) map[string]string {
	out := Labels(deployment, spec.Labels)
	out[LabelCores] = strconv.FormatFloat(spec.Resources.Cores, 'g', -1, 64)
	return out
}

// LabelFilter is the engine's label filter ("key=value", which it ANDs) for
// the deployment's objects that carry labels too. It is false when labels
// ask for another deployment: nothing of this one matches.
func LabelFilter(deployment string, labels map[string]string) ([]string, bool) {
	out := []string{LabelDeployment + "=" + deployment}
	for k, v := range labels {
		if k == LabelDeployment && v != deployment {
			return nil, false
		}
		out = append(out, k+"="+v)
	}
	return out, true
}

// Env is an environment in the engine's terms, "KEY=value", sorted so that
// one spec always makes the same list.
func Env(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
