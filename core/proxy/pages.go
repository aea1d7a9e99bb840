package proxy

import (
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{if .Refresh}}<meta http-equiv="refresh" content="{{.Refresh}}">{{end}}
<title>{{.Title}} - Zoe</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em;color:#111;background:#fff}a{color:#0645ad}</style>
</head><body><main><h1>{{.Title}}</h1><p>{{.Message}}</p>
{{if .Login}}<p><a href="{{.Login}}">Log in to Zoe</a></p>{{end}}
</main></body></html>
`))

type pageData struct {
	Title, Message, Login string
	Refresh               int
}

// page answers with a short page: HTML for a browser, a line of text
// otherwise. retry > 0 adds Retry-After (and a browser reloads the page
// then).
func page(w http.ResponseWriter, r *http.Request, status int, title, msg string, retry int) {
	pageLogin(w, r, status, title, msg, retry, "")
}

func pageLogin(w http.ResponseWriter, r *http.Request, status int, title, msg string, retry int, login string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	if retry > 0 {
		h.Set("Retry-After", strconv.Itoa(retry))
	}
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(msg + "\n"))
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, pageData{Title: title, Message: msg, Login: login, Refresh: retry})
}

// unauthenticated answers a request without valid credentials: 401, and
// for a browser's GET a link to the login page that comes back here.
func (p *Proxy) unauthenticated(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="zoe"`)
	login := ""
	if p.cfg.LoginURL != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		sep := "?"
		if strings.Contains(p.cfg.LoginURL, "?") {
			sep = "&"
		}
		// The path only: the login page must not be sent to another host.
		login = p.cfg.LoginURL + sep + "next=" + url.QueryEscape(r.URL.RequestURI())
	}
	pageLogin(w, r, http.StatusUnauthorized, "Log in first", "This address is a service of a Zoe execution: log in as its owner to reach it.", 0, login)
}
