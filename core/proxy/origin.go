package proxy

import (
	"net/http"
	"net/url"
	"strings"
)

// crossOrigin tells whether r, sent with the ambient session cookie, comes
// from a page of another origin and may not act as the user: a WebSocket
// handshake or a request of a method that is not safe. Another origin of
// the same site is refused too: a service's direct address on Zoe's host
// (zoe-host:32768) is same-site with Zoe, so SameSite cookies go with its
// requests. Like http.CrossOriginProtection, it trusts Sec-Fetch-Site
// when the browser sends it, else compares Origin with the Host (or, from
// a trusted proxy, X-Forwarded-Host); a request with neither is not a
// browser's cross-origin one.
func (p *Proxy) crossOrigin(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		if !upgrade(r) {
			return false
		}
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return false
	case "":
	default:
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" { // "null" among them
		return true
	}
	if strings.EqualFold(u.Host, r.Host) {
		return false
	}
	fh := r.Header.Get("X-Forwarded-Host")
	return fh == "" || !p.trusted(r.RemoteAddr) || !strings.EqualFold(u.Host, fh)
}

// upgrade tells whether r asks to switch protocols (a WebSocket).
func upgrade(r *http.Request) bool {
	for _, v := range r.Header.Values("Connection") {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), "upgrade") {
				return true
			}
		}
	}
	return false
}

// cookieScope confines a Set-Cookie header of a service to the service's
// own path (base + "/", or a path under it the service named): a service
// shares Zoe's origin, and a cookie of a wider path would go to Zoe's pages
// and to other services, or fill every request to Zoe (a cookie bomb).
// Domain is dropped, so that no cookie goes to other hosts either.
func cookieScope(v, base string) string {
	parts := strings.Split(v, ";")
	out := []string{strings.TrimSpace(parts[0])}
	path := ""
	for _, a := range parts[1:] {
		a = strings.TrimSpace(a)
		k, val, _ := strings.Cut(a, "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "domain":
			continue
		case "path":
			path = strings.TrimSpace(val)
			continue
		}
		if a != "" {
			out = append(out, a)
		}
	}
	if !strings.HasPrefix(path, base+"/") || strings.Contains(path, "/.") || strings.ContainsAny(path, `%\`) {
		path = base + "/"
	}
	return strings.Join(append(out, "Path="+path), "; ")
}

// privateCache makes a proxied answer's Cache-Control private: it was
// answered to one caller after the proxy's checks, and a shared cache in
// front of Zoe must not give it to anyone else. The service's own
// directives stay, but for those that are about shared caches.
func privateCache(h http.Header) {
	var kept []string
	private := false
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			d = strings.TrimSpace(d)
			name, _, _ := strings.Cut(strings.ToLower(d), "=")
			switch name {
			case "":
				continue
			case "public", "s-maxage", "proxy-revalidate":
				continue
			case "private", "no-store":
				private = true
			}
			kept = append(kept, d)
		}
	}
	if !private {
		kept = append([]string{"private"}, kept...)
	}
	h.Set("Cache-Control", strings.Join(kept, ", "))
}
