package httplimit

import (
	"net/netip"
	"testing"
)

func TestFromProxy(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::1/128")}
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"10.1.2.3:443", true},
		{"[::ffff:10.1.2.3]:443", true}, // IPv4 in IPv6
		{"[2001:db8::1]:80", true},
		{"[2001:db8::2]:80", false},
		{"192.0.2.1:443", false},
		{"10.1.2.3", false}, // no port: not a RemoteAddr
		{"proxy.example:443", false},
	} {
		if got := FromProxy(c.addr, proxies); got != c.want {
			t.Errorf("FromProxy(%q) = %v, want %v", c.addr, got, c.want)
		}
	}
	if FromProxy("10.1.2.3:443", nil) {
		t.Error("no trusted proxies, yet trusted")
	}
}
