package backend

import (
	"errors"
	"testing"

	"github.com/zoe-project/zoe/sdk"
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

// The process limit: 0 is the default, never unlimited; below -1 is refused.
func TestPidsLimit(t *testing.T) {
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
