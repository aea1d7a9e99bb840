package proxy

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzParsePath: whatever the path, an accepted one names its target in
// exactly one way, and the rest of it cannot climb out of the target's
// prefix.
//
//	go test -run '^$' -fuzz FuzzParsePath -fuzztime 60s ./core/proxy
func FuzzParsePath(f *testing.F) {
	const prefix = "/zoe/proxy"
	for _, s := range []string{"/zoe/proxy/1/nb0/8888/", "/zoe/proxy/12/spark-master0/4040/jobs/?x=1",
		"/zoe/proxy/1/nb0/8888/a/../b", "/zoe/proxy/1/nb0%2f/8888/", "/zoe/proxy/01/a/1/", "/zoe/proxy/1/a/65536/",
		"/zoe/proxy/1/a/%2e%2E/", "/zoe/proxy//a/1/", "/zoe/proxy/1/a/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, escaped string) {
		r, perr := parsePath(prefix, escaped, "")
		if perr != nil {
			if perr.status == 0 || perr.msg == "" {
				t.Fatalf("%q: refusal without a status or message: %+v", escaped, perr)
			}
			if perr.redirect != "" && perr.redirect != escaped+"/" {
				t.Fatalf("%q: redirected to %q", escaped, perr.redirect)
			}
			return
		}
		if r.exec <= 0 || r.port < 1 || r.port > 65535 || r.service == "" || !serviceName(r.service) {
			t.Fatalf("%q: bad route %+v", escaped, r)
		}
		if want := prefix + "/" + strconv.FormatInt(r.exec, 10) + "/" + r.service + "/" + strconv.Itoa(r.port); r.base != want {
			t.Fatalf("%q: base %q, want %q (one spelling per target)", escaped, r.base, want)
		}
		if !strings.HasPrefix(escaped, r.base+"/") {
			t.Fatalf("%q: does not start with its base %q", escaped, r.base)
		}
		// Resolved as a browser or a server would resolve it, the path
		// stays under the target's prefix.
		u, err := url.Parse("http://h" + escaped)
		if err != nil {
			return
		}
		if res := u.ResolveReference(&url.URL{}); !strings.HasPrefix(res.Path, r.base+"/") && res.Path != r.base {
			t.Fatalf("%q resolves to %q, outside %q", escaped, res.Path, r.base)
		}
	})
}
