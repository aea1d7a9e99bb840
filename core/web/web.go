// Package web serves Zoe's web pages. The pages call the API in process
// (inproc.go) with the typed client, so that every page gets exactly the
// API's authentication, authorisation, throttling, identity rules and
// validation; the session cookie holds an API token. Templates and assets
// are embedded; pages work without JavaScript, which only adds live
// updates.
//
// One file per group of pages (session.go, home.go, shop.go,
// executions.go, streams.go); every page renders the base layout
// (templates/layout.html) with its own "content" template.
package web

import (
	"bytes"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/microcosm-cc/bluemonday"

	"github.com/zoe-project/zoe/client"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Config is what the pages need.
type Config struct {
	// API is the API's handler (*api.Server), called in process.
	API http.Handler
	// BasePath is where the daemon serves: "/" or a clean absolute path
	// without a trailing slash ("/zoe"). The pages are under it, the API
	// at <BasePath>/api/v1 and the proxy at <BasePath>/proxy.
	BasePath string
	// Secure marks the cookies Secure: the daemon serves TLS.
	Secure bool
	// TrustedProxies are the reverse proxies in front of Zoe (the http
	// block's trusted_proxies): a request from one of them that says
	// X-Forwarded-Proto: https came over TLS, and its cookies are
	// marked Secure too.
	TrustedProxies []netip.Prefix
	// LogTail is how many lines of each service's log a page shows;
	// default 200.
	LogTail int
}

// Handler serves the pages. Requests come with their full path, base
// path included.
type Handler struct {
	cfg  Config
	log  hclog.Logger
	base string // "" for "/", else BasePath
	mux  *http.ServeMux
	// pages are the parsed templates, each the layout with one page.
	pages map[string]*template.Template
	// csrfKey signs the forms' CSRF tokens; new at each start, so a
	// restart only makes open forms be sent again.
	csrfKey []byte
	// cop refuses state-changing requests a browser sends from another
	// site, on top of the forms' tokens.
	cop *http.CrossOriginProtection
	// policy sanitises the shop's HTML once more.
	policy *bluemonday.Policy
	// streams are the patterns of the routes a page's script reads
	// (EventSource), the only ones scripts may request.
	streams map[string]bool
}

// maxFormSize bounds what a form may send (a ZApp description pasted or
// uploaded included); the API bounds what it reads again.
const maxFormSize = 2 << 20

// New returns the pages' handler.
func New(log hclog.Logger, cfg Config) *Handler {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.LogTail <= 0 {
		cfg.LogTail = 200
	}
	base := strings.TrimSuffix(cfg.BasePath, "/")
	h := &Handler{cfg: cfg, log: log, base: base, mux: http.NewServeMux(),
		csrfKey: make([]byte, 32), cop: http.NewCrossOriginProtection(), policy: shopPolicy(), streams: map[string]bool{}}
	_, _ = rand.Read(h.csrfKey) // never fails (crypto/rand)
	h.pages = parsePages()
	h.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, http.StatusForbidden, "This request came from another site and was refused.")
	}))
	static, _ := fs.Sub(staticFiles, "static")
	files := http.StripPrefix(base+"/static/", http.FileServerFS(static))
	h.mux.Handle("GET "+base+"/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
	// Browsers ask for /favicon.ico on their own (the pages name their
	// icon, the services' pages through the proxy do not): the same icon,
	// rather than a 404 in every console.
	h.mux.Handle("GET "+base+"/favicon.ico", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Header().Set("Content-Type", "image/svg+xml")
		http.ServeFileFS(w, r, static, "favicon.svg")
	}))
	h.routes()
	return h
}

// routes are every page; each file of a group of pages adds its own.
func (h *Handler) routes() {
	h.sessionRoutes()
	h.homeRoutes()
	h.shopRoutes()
	h.executionRoutes()
	h.streamRoutes()
	h.adminRoutes()
	h.mux.HandleFunc(h.base+"/", func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, http.StatusNotFound, "There is no such page.")
	})
}

// handle adds a route under the base path: pattern is "METHOD /path".
func (h *Handler) handle(pattern string, fn http.HandlerFunc) {
	method, path, _ := strings.Cut(pattern, " ")
	h.mux.Handle(method+" "+h.base+path, fn)
}

// csp: everything from the daemon only, no inline script, no framing.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	// A page opened by a service's script (same origin, through the
	// proxy) is not left in the script's hands.
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	if h.scriptRequest(r) {
		// Plain text: a page would carry the session's CSRF token.
		http.Error(w, "Zoe's pages are not for scripts; the API is at "+h.base+"/api/v1/", http.StatusForbidden)
		return
	}
	if len(SessionTokens(r)) > 1 {
		// Two sessions: a script of Zoe's origin (a service's page) can
		// write a session cookie of its own at a longer path, which the
		// browser sends first, and have the user work in the script's
		// account. Neither is used (the proxy refuses such requests too),
		// and the browser is asked to drop the site's cookies.
		hd.Set("Clear-Site-Data", `"cookies"`)
		r = r.Clone(r.Context())
		r.Header.Del("Cookie")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormSize)
	}
	h.cop.Handler(h.mux).ServeHTTP(w, r)
}

// scriptRequest tells whether a browser sent r from a script (fetch,
// XMLHttpRequest: Fetch Metadata says it is no navigation and has no
// destination), to anything but the live streams, which are the pages'
// own EventSources. The services' pages come through the proxy from
// Zoe's origin: a script of theirs must not read a page, and with it the
// forms' CSRF token. Browsers send Fetch Metadata over HTTPS (and to
// localhost) only.
func (h *Handler) scriptRequest(r *http.Request) bool {
	mode := r.Header.Get("Sec-Fetch-Mode")
	if mode == "" || mode == "navigate" || r.Header.Get("Sec-Fetch-Dest") != "empty" {
		return false
	}
	_, pattern := h.mux.Handler(r)
	return !h.streams[pattern]
}

// page is what every template gets.
type page struct {
	Title string
	Base  string // "" or the base path, to prefix every link
	User  *client.User
	// CSRF is the token of the session's forms.
	CSRF string
	// Flash is a message shown at the top.
	Flash string
	Data  any
}

// Guest tells whether the user is a guest (who uses the shop only).
func (p page) Guest() bool { return p.User != nil && p.User.Role == "guest" }

func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"when":  when,
		"bytes": humanBytes,
		"badge": badge,
		"dict":  dict,
		// The admin pages'.
		"runtime": formatRuntime,
		"pathseg": url.PathEscape,
	}
	// The layout and the partials every page may use.
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFiles,
		"templates/layout.html", "templates/exectable.html", "templates/field.html", "templates/adminnav.html"))
	names, _ := fs.Glob(templateFiles, "templates/*.html")
	pages := map[string]*template.Template{}
	for _, n := range names {
		n = strings.TrimPrefix(n, "templates/")
		if n == "layout.html" || n == "exectable.html" || n == "field.html" || n == "adminnav.html" {
			continue
		}
		pages[strings.TrimSuffix(n, ".html")] = template.Must(template.Must(layout.Clone()).ParseFS(templateFiles, "templates/"+n))
	}
	return pages
}

// render writes a page; it is rendered whole first, so that a template
// failure is an error page, not half a page.
func (h *Handler) render(w http.ResponseWriter, status int, name string, p page) {
	p.Base = h.base
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout.html", p); err != nil {
		h.log.Error("rendering a page failed", "page", name, "error", err)
		http.Error(w, "internal error: the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage shows a message with a status.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	p := page{Title: http.StatusText(status), Data: struct {
		Status  int
		Message string
	}{status, msg}}
	if s := h.session(r); s != nil {
		p.CSRF = h.csrfToken(s.token)
	}
	h.render(w, status, "error", p)
}

// apiFailed shows what the API answered to a page's call: an expired
// session goes to the login page, a refusal or an unknown thing is shown
// with the API's message.
func (h *Handler) apiFailed(w http.ResponseWriter, r *http.Request, err error) {
	var ae *client.APIError
	if !errors.As(err, &ae) {
		if r.Context().Err() != nil {
			return // the browser left
		}
		h.log.Error("calling the API in process failed", "path", r.URL.Path, "error", err)
		h.errorPage(w, r, http.StatusInternalServerError, "Zoe could not answer: "+err.Error())
		return
	}
	switch ae.Status {
	case http.StatusUnauthorized:
		h.clearSession(w, r)
		h.toLogin(w, r, true)
	case http.StatusNotFound, http.StatusForbidden, http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusBadRequest, http.StatusConflict:
		h.errorPage(w, r, ae.Status, ae.Message())
	default:
		h.errorPage(w, r, http.StatusBadGateway, "Zoe's API answered: "+ae.Message())
	}
}

// redirect sends the browser to a path under the base path (a POST's
// answer: the page it leads to is then fetched with GET).
func (h *Handler) redirect(w http.ResponseWriter, r *http.Request, path string) {
	http.Redirect(w, r, h.base+path, http.StatusSeeOther)
}

func when(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04:05 UTC")
	case *time.Time:
		if v == nil {
			return ""
		}
		return when(*v)
	}
	return ""
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// badge is the CSS class of a status.
func badge(status string) string {
	switch status {
	case "running":
		return "badge ok"
	case "error":
		return "badge bad"
	case "terminated", "stopped":
		return "badge done"
	default:
		return "badge wait"
	}
}

// dict builds a map for a partial template: key, value, ...
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("dict: an odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// shopPolicy sanitises the shop's descriptions as user content: text,
// structure and links, no images (a page loads nothing from elsewhere, and
// an entry's relative image has no place under the pages' paths).
func shopPolicy() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowStandardURLs()
	p.AllowAttrs("href").OnElements("a")
	p.RequireNoFollowOnLinks(true)
	p.AllowElements("p", "br", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "em", "strong", "b", "i",
		"code", "pre", "blockquote", "hr", "table", "thead", "tbody", "tr", "th", "td", "del", "dl", "dt", "dd", "sub", "sup")
	p.AllowAttrs("class").Matching(regexp.MustCompile(`^language-[a-zA-Z0-9_-]+$`)).OnElements("code")
	return p
}
