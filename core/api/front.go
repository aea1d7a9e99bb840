package api

import (
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/zoe-project/zoe/client"
)

// front answers, in the JSON error shape, the requests the mux would
// answer in its own words: a path that is not in its plain form (the mux
// redirects //api/v1/info with an HTML page) and a query that does not
// decode (r.URL.Query drops what it cannot decode, so ?name=%zz would
// list every execution). It reports whether r may go on to the mux.
//
// A request target that is not a valid URL at all (/api/v1/shop/%zz) is
// refused by http.Server before any handler runs, with a plain-text 400.
func (s *Server) front(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.EscapedPath()
	if !strings.HasPrefix(p, "/") {
		drain(r)
		s.error(w, http.StatusNotFound, client.CodeNotFound, "no such API route: "+r.Method+" "+r.RequestURI)
		return false
	}
	if clean := cleanPath(p); clean != p {
		drain(r)
		s.error(w, http.StatusNotFound, client.CodeNotFound,
			"no such API route: "+r.Method+" "+p+" (the path is not in its plain form; "+clean+" is)")
		return false
	}
	if d := checkQuery(r.URL.RawQuery); d != nil {
		drain(r)
		s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, "invalid query", *d)
		return false
	}
	return true
}

// cleanPath is the mux's form of a path: no empty, "." or ".." segments;
// a trailing slash is kept.
func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// checkQuery finds the first parameter of a raw query that does not
// decode; nil when every one does.
func checkQuery(raw string) *client.Detail {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return &client.Detail{Path: k, Message: "the parameter's name is not valid URL encoding (%XX, with hexadecimal digits)"}
		}
		if strings.Contains(kv, ";") {
			return &client.Detail{Path: key, Message: "a ';' in the query: separate parameters with '&', write ';' as %3B"}
		}
		if _, err := url.QueryUnescape(v); err != nil {
			return &client.Detail{Path: key, Message: "not valid URL encoding (%XX, with hexadecimal digits)"}
		}
	}
	return nil
}

// jsonBody says whether a request's Content-Type announces JSON:
// application/json or a type ending in +json, with parameters or not
// (a charset other than UTF-8 is not JSON's).
func jsonBody(r *http.Request) bool {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return false
	}
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}
