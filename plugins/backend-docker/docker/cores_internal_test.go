package docker

import (
	"testing"

	"github.com/zoe-project/zoe/sdk/backend"
)

// TestCPUResources: the reservation weighs, only the limit caps.
func TestCPUResources(t *testing.T) {
	tests := []struct {
		r            backend.Resources
		nano, shares int64
	}{
		{backend.Resources{Cores: 0.1}, 0, 102},
		{backend.Resources{Cores: 0.5, CoresLimit: 1.5}, 1.5e9, 512},
		{backend.Resources{Cores: 4, CoresLimit: 4}, 4e9, 4096},
		{backend.Resources{Cores: 0.0001}, 0, 2},
	}
	for _, tt := range tests {
		got := cpuResources(tt.r)
		if got.NanoCPUs != tt.nano || got.CPUShares != tt.shares {
			t.Errorf("cpuResources(%+v) = NanoCPUs %d, CPUShares %d; want %d, %d", tt.r, got.NanoCPUs, got.CPUShares, tt.nano, tt.shares)
		}
	}
}

// TestReservedCores: the label when it reads, else the cap of a container
// created before it.
func TestReservedCores(t *testing.T) {
	tests := []struct {
		labels map[string]string
		nano   int64
		want   float64
	}{
		{map[string]string{LabelCores: "0.25"}, 2e9, 0.25},
		{map[string]string{LabelCores: "0"}, 1e9, 0},
		{nil, 5e8, 0.5},
		{map[string]string{LabelCores: "lots"}, 1e9, 1},
		{map[string]string{LabelCores: "NaN"}, 0, 0},
		{map[string]string{LabelCores: "-1"}, 0, 0},
		{map[string]string{LabelCores: "+Inf"}, 0, 0},
	}
	for _, tt := range tests {
		if got := reservedCores(tt.labels, tt.nano); got != tt.want {
			t.Errorf("reservedCores(%v, %d) = %v, want %v", tt.labels, tt.nano, got, tt.want)
		}
	}
}
