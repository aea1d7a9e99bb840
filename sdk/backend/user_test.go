package backend

import (
	"errors"
	"testing"

	"github.com/zoe-project/zoe/sdk"
	backendv1 "github.com/zoe-project/zoe/sdk/proto/zoe/plugin/backend/v1"
)

func TestCheckUser(t *testing.T) {
	root := Security{AllowRoot: true}
	cases := []struct {
		user string
		sec  Security
		ok   bool
	}{
		{"12345:23456", Security{}, true},
		{"1000", Security{}, false},   // the platform would pick the group
		{"1000:0", Security{}, false}, // the root group
		{"1000:00", Security{}, false},
		{"1000", root, true},
		{"1000:0", root, true},
		{"", Security{}, false},
		{"0", Security{}, false},
		{"0:0", Security{}, false},
		{"00:1000", Security{}, false},
		{"root", Security{}, false},
		{"alice:1000", Security{}, false},
		{"1000:staff", Security{}, false},
		{"-1", Security{}, false},
		{"+1000", Security{}, false},
		{" 1000", Security{}, false},
		{"1000:", Security{}, false},
		{"4294967296", Security{}, false},
		{"", root, true},
		{"0:0", root, true},
		{"root", root, false}, // numeric even when root is allowed
		{"12345:23456", Security{AllowPrivilegeEscalation: true, KeepCapabilities: true}, true},
	}
	for _, c := range cases {
		err := CheckUser(ServiceSpec{Name: "svc", User: c.user, Security: c.sec})
		if c.ok && err != nil {
			t.Errorf("user %q %+v: %v, want accepted", c.user, c.sec, err)
		}
		if !c.ok && !errors.Is(err, sdk.ErrInvalidArgument) {
			t.Errorf("user %q %+v: %v, want sdk.ErrInvalidArgument", c.user, c.sec, err)
		}
	}
}

// A spec from an older core, without the security message, reads as the
// strictest policy; every field crosses the wire both ways.
func TestSecurityOnTheWire(t *testing.T) {
	if got := specFromProto(&backendv1.ServiceSpec{Name: "old"}).Security; got != (Security{}) {
		t.Errorf("absent security = %+v, want the zero value", got)
	}
	for _, sec := range []Security{{AllowRoot: true}, {AllowPrivilegeEscalation: true}, {KeepCapabilities: true}} {
		if got := specFromProto(specToProto(ServiceSpec{Security: sec})).Security; got != sec {
			t.Errorf("security %+v came back as %+v", sec, got)
		}
	}
}

// The process limit crosses the wire; 0 (an older core) is the default,
// never unlimited; below -1 is refused.
func TestPidsLimit(t *testing.T) {
	for _, n := range []int64{0, 1, 100, -1} {
		if got := specFromProto(specToProto(ServiceSpec{Resources: Resources{PidsLimit: n}})).Resources.PidsLimit; got != n {
			t.Errorf("pids limit %d came back as %d", n, got)
		}
	}
	cases := []struct {
		in, want int64
		ok       bool
	}{{0, DefaultPidsLimit, true}, {1, 1, true}, {5000, 5000, true}, {-1, -1, true}, {-2, 0, false}}
	for _, c := range cases {
		got, err := PidsLimit(Resources{PidsLimit: c.in})
		if c.ok && (err != nil || got != c.want) {
			t.Errorf("PidsLimit(%d) = %d, %v; want %d", c.in, got, err, c.want)
		}
		if !c.ok && !errors.Is(err, sdk.ErrInvalidArgument) {
			t.Errorf("PidsLimit(%d) = %d, %v; want sdk.ErrInvalidArgument", c.in, got, err)
		}
	}
}
