package backendrpc

import (
	"testing"

	"github.com/zoe-project/zoe/sdk/backend"
	backendv1 "github.com/zoe-project/zoe/sdk/proto/zoe/plugin/backend/v1"
)

// A spec from an older core, without the security message, reads as the
// strictest policy; every field crosses the wire both ways.
func TestSecurityOnTheWire(t *testing.T) {
	if got := specFromProto(&backendv1.ServiceSpec{Name: "old"}).Security; got != (backend.Security{}) {
		t.Errorf("absent security = %+v, want the zero value", got)
	}
	for _, sec := range []backend.Security{{AllowRoot: true}, {AllowPrivilegeEscalation: true}, {KeepCapabilities: true}} {
		if got := specFromProto(specToProto(backend.ServiceSpec{Security: sec})).Security; got != sec {
			t.Errorf("security %+v came back as %+v", sec, got)
		}
	}
}

// The process limit crosses the wire; 0 (an older core) stays 0, the
// default, never unlimited.
func TestPidsLimitOnTheWire(t *testing.T) {
	for _, n := range []int64{0, 1, 100, -1} {
		if got := specFromProto(specToProto(backend.ServiceSpec{Resources: backend.Resources{PidsLimit: n}})).Resources.PidsLimit; got != n {
			t.Errorf("pids limit %d came back as %d", n, got)
		}
	}
}

// TestCoresOnTheWire: the reservation and the cap cross the wire apart.
func TestCoresOnTheWire(t *testing.T) {
	for _, r := range []backend.Resources{{Cores: 0.1}, {Cores: 0.5, CoresLimit: 1.5}, {Cores: 2, CoresLimit: 2}} {
		got := specFromProto(specToProto(backend.ServiceSpec{Resources: r})).Resources
		if got.Cores != r.Cores || got.CoresLimit != r.CoresLimit {
			t.Errorf("cores %v, limit %v came back as %v, %v", r.Cores, r.CoresLimit, got.Cores, got.CoresLimit)
		}
	}
}
