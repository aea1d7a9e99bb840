package dockerapi

import (
	"maps"
	"slices"
	"testing"

	"github.com/zoe-project/zoe/sdk/backend"
)

func TestLabels(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		want   map[string]string
	}{
		{"none", nil, map[string]string{"zoe.deployment": "d"}},
		{"the spec's", map[string]string{"zoe.execution": "7"}, map[string]string{"zoe.execution": "7", "zoe.deployment": "d"}},
		{"another deployment's overridden", map[string]string{"zoe.deployment": "other"}, map[string]string{"zoe.deployment": "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := maps.Clone(tt.labels)
			if got := Labels("d", tt.labels); !maps.Equal(got, tt.want) {
				t.Errorf("Labels = %v, want %v", got, tt.want)
			}
			if !maps.Equal(in, tt.labels) {
				t.Errorf("Labels changed its argument: %v", tt.labels)
			}
		})
	}
}

func TestServiceLabels(t *testing.T) {
	tests := []struct {
		cores float64
		want  string
	}{{0, "0"}, {0.1, "0.1"}, {2, "2"}, {0.125, "0.125"}}
	for _, tt := range tests {
		spec := backend.ServiceSpec{Labels: map[string]string{"zoe.service": "s"}, Resources: backend.Resources{Cores: tt.cores}}
		want := map[string]string{"zoe.service": "s", "zoe.deployment": "d", "zoe.cores": tt.want}
		if got := ServiceLabels("d", spec); !maps.Equal(got, want) {
			t.Errorf("ServiceLabels(%v cores) = %v, want %v", tt.cores, got, want)
		}
	}
}

func TestLabelFilter(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		want   []string // sorted
		ok     bool
	}{
		{"the deployment's", nil, []string{"zoe.deployment=d"}, true},
		{"with a label", map[string]string{"zoe.execution": "7"}, []string{"zoe.deployment=d", "zoe.execution=7"}, true},
		{"naming this deployment", map[string]string{"zoe.deployment": "d"}, []string{"zoe.deployment=d", "zoe.deployment=d"}, true},
		{"another deployment's", map[string]string{"zoe.deployment": "other", "zoe.execution": "7"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := LabelFilter("d", tt.labels)
			slices.Sort(got)
			if ok != tt.ok || !slices.Equal(got, tt.want) {
				t.Errorf("LabelFilter = %v, %t; want %v, %t", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestEnv(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want []string
	}{
		{nil, []string{}},
		{map[string]string{"B": "2", "A": "1=one", "EMPTY": ""}, []string{"A=1=one", "B=2", "EMPTY="}},
	}
	for _, tt := range tests {
		if got := Env(tt.env); !slices.Equal(got, tt.want) {
			t.Errorf("Env(%v) = %q, want %q", tt.env, got, tt.want)
		}
	}
}
