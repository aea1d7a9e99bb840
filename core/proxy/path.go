package proxy

import (
	"net/url"
	"strconv"
	"strings"
)

// route is a parsed proxy path: <prefix>/<exec>/<service>/<port>/<rest>.
type route struct {
	exec    int64
	service string
	port    int
	// base is <prefix>/<exec>/<service>/<port>, the X-Forwarded-Prefix.
	base string
}

// pathError is a path the proxy refuses, with the status and why.
type pathError struct {
	status int
	msg    string
	// redirect, when set, is where the client should go instead.
	redirect string
}

// parsePath reads the route from a request's escaped path (and raw
// query, kept on a redirect). It refuses, rather than cleans, anything
// that could name a target in two ways: . and .. segments (also
// percent-encoded) anywhere, escapes in the routing segments, and ids or
// ports that are not canonical decimal numbers.
func parsePath(prefix, escaped, rawQuery string) (route, *pathError) {
	usage := "a proxy address is " + prefix + "/<execution id>/<service>/<port>/"
	if !strings.HasPrefix(escaped, prefix+"/") {
		return route{}, &pathError{status: 404, msg: "not a proxy address; " + usage}
	}
	rest := escaped[len(prefix)+1:]
	for seg := range strings.SplitSeq(rest, "/") {
		d, err := url.PathUnescape(seg)
		if err != nil {
			return route{}, &pathError{status: 400, msg: "the path has a bad percent-escape"}
		}
		if d == "." || d == ".." {
			return route{}, &pathError{status: 400, msg: "the path has a . or .. segment"}
		}
	}
	parts := strings.SplitN(rest, "/", 4)
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return route{}, &pathError{status: 404, msg: usage}
	}
	for _, p := range parts[:3] {
		if strings.ContainsAny(p, `%\`) {
			return route{}, &pathError{status: 400, msg: "escapes (such as %2F) and backslashes are not allowed in the execution, service and port of a proxy address"}
		}
	}
	exec, ok := canonical(parts[0], 1<<62)
	if !ok {
		return route{}, &pathError{status: 404, msg: "no execution " + strconv.Quote(parts[0]) + "; " + usage}
	}
	if !serviceName(parts[1]) {
		return route{}, &pathError{status: 404, msg: "no service " + strconv.Quote(parts[1]) + " (names are letters, digits and '-')"}
	}
	port, ok := canonical(parts[2], 65535)
	if !ok {
		return route{}, &pathError{status: 404, msg: "port " + strconv.Quote(parts[2]) + " is not a port number (1-65535); " + usage}
	}
	r := route{exec: exec, service: parts[1], port: int(port), base: prefix + "/" + parts[0] + "/" + parts[1] + "/" + parts[2]}
	if len(parts) == 3 {
		// Apps served under a prefix expect it with its slash.
		loc := r.base + "/"
		if rawQuery != "" {
			loc += "?" + rawQuery
		}
		return route{}, &pathError{status: 308, msg: "moved to " + loc, redirect: loc}
	}
	return r, nil
}

// canonical parses a positive decimal number without sign or leading
// zeros, at most max.
func canonical(s string, max int64) (int64, bool) {
	if s == "" || len(s) > 19 || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > max {
		return 0, false
	}
	return n, true
}

// serviceName says whether s can be a service instance's name: letters,
// digits and '-' (as core/zapp allows), at most 64 characters.
func serviceName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return s != ""
}
