package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/httplimit"
)

// The cookies: the session (an API token and its id) and, before a
// session, the login form's CSRF secret.
const (
	sessionCookie = "zoe_session"
	loginCookie   = "zoe_login"
)

// session is the browser's API token.
type session struct {
	id    int64
	token string
}

func (h *Handler) sessionRoutes() {
	h.handle("GET /login", h.loginPage)
	h.handle("POST /login", h.login)
	h.handle("POST /logout", h.logout)
}

// cookiePath is where Zoe's cookies are sent: the base path.
func (h *Handler) cookiePath() string {
	if h.base == "" {
		return "/"
	}
	return h.base
}

// cookie is one of Zoe's cookies for the answer to r.
func (h *Handler) cookie(r *http.Request, name, value string, expires time.Time) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: h.cookiePath(), HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: h.secure(r)}
	if !expires.IsZero() {
		c.Expires = expires
		c.MaxAge = max(1, int(time.Until(expires).Seconds()))
	}
	return c
}

// secure reports whether r came over TLS: to the daemon, or to a trusted
// proxy in front of it that says so. Its cookies are then Secure, so that
// a browser never sends them over plain HTTP (to a user's service
// published on the same host name, say).
func (h *Handler) secure(r *http.Request) bool {
	if h.cfg.Secure || r.TLS != nil {
		return true
	}
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	return strings.TrimSpace(proto) == "https" && httplimit.FromProxy(r.RemoteAddr, h.cfg.TrustedProxies)
}

// session reads the session cookie; nil when there is none.
func (h *Handler) session(r *http.Request) *session { return sessionOf(r) }

func sessionOf(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	id, tok, ok := strings.Cut(c.Value, ".")
	n, err := strconv.ParseInt(id, 10, 64)
	if !ok || err != nil || tok == "" {
		return nil
	}
	return &session{id: n, token: tok}
}

func (h *Handler) clearSession(w http.ResponseWriter, r *http.Request) {
	c := h.cookie(r, sessionCookie, "", time.Time{})
	c.MaxAge = -1
	http.SetCookie(w, c)
}

// apiClient calls the API in process as the browser's user (token "":
// anonymous), from the browser's address.
func (h *Handler) apiClient(r *http.Request, token string) *client.Client {
	rt := &inproc{h: h.cfg.API, remoteAddr: r.RemoteAddr, forwardedFor: forwardedFor(r)}
	opts := []client.Option{client.WithHTTPClient(&http.Client{Transport: rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}),
		client.WithUserAgent("zoe-web")}
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	c, err := client.New("http://zoe.in-process", opts...)
	if err != nil {
		panic(err) // a constant address: cannot fail
	}
	return c
}

// mac is the HMAC of what, under the daemon's CSRF key.
func (h *Handler) mac(what string) string {
	m := hmac.New(sha256.New, h.csrfKey)
	m.Write([]byte(what))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfToken is the token the session's forms carry.
func (h *Handler) csrfToken(token string) string { return h.mac("session\x00" + token) }

// checkCSRF tells whether the form carries want, compared in constant time.
func checkCSRF(r *http.Request, want string) bool {
	got := r.PostFormValue("csrf")
	return got != "" && hmac.Equal([]byte(got), []byte(want))
}

// signedIn finds the browser's user: the pages' client and the page to
// fill. Without a session (or with one that ended) the browser is sent to
// the login page and ok is false. A POST must carry the session's CSRF
// token.
func (h *Handler) signedIn(w http.ResponseWriter, r *http.Request) (c *client.Client, p page, ok bool) {
	s := h.session(r)
	if s == nil {
		h.toLogin(w, r, false)
		return nil, p, false
	}
	p.CSRF = h.csrfToken(s.token)
	if r.Method == http.MethodPost {
		if err := r.ParseMultipartForm(maxFormSize); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			h.errorPage(w, r, http.StatusBadRequest, "The form could not be read: "+err.Error())
			return nil, p, false
		}
		if !checkCSRF(r, p.CSRF) {
			h.errorPage(w, r, http.StatusForbidden, "This form's security token is missing or wrong (it may be from an earlier session): reload the page and send it again.")
			return nil, p, false
		}
	}
	c = h.apiClient(r, s.token)
	me, err := c.Me(r.Context())
	if err != nil {
		h.apiFailed(w, r, err)
		return nil, p, false
	}
	p.User = me
	return c, p, true
}

// toLogin sends the browser to the login page, and back to this page
// after (a GET's only: a POST's form is gone); expired says why.
func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request, expired bool) {
	q := url.Values{}
	if r.Method == http.MethodGet && r.URL.Path != h.base+"/" {
		q.Set("next", r.URL.RequestURI())
	}
	if expired {
		q.Set("why", "expired")
	}
	target := h.base + "/login"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// safeNext is where to go after logging in: next when it is a local path
// under the base path, else the home page. Anything else (another host,
// a scheme, //host, a backslash a browser reads as a slash) is ignored:
// no open redirect.
func (h *Handler) safeNext(next string) string {
	home := h.base + "/"
	if next == "" || strings.ContainsAny(next, "\\\r\n\t") || strings.HasPrefix(next, "//") {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return home
	}
	// A path in its plain form, a trailing slash allowed (a service's
	// address through the proxy ends with one).
	clean := path.Clean(u.Path)
	if strings.HasSuffix(u.Path, "/") && clean != "/" {
		clean += "/"
	}
	if u.Path != clean || !strings.HasPrefix(u.Path, home) || strings.HasPrefix(u.Path, h.base+"/api/") ||
		strings.HasPrefix(u.Path, h.base+"/login") {
		return home
	}
	return u.RequestURI()
}

type loginData struct {
	Next, Username, Error string
}

// loginMessage is the login page's message for its ?why=: fixed texts
// only, so that no link can make the page say anything else.
func loginMessage(why string) string {
	switch why {
	case "expired":
		return "Your session has ended; log in again."
	case "out":
		return "You are logged out."
	}
	return ""
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	h.showLogin(w, r, http.StatusOK, loginData{Next: h.safeNext(q.Get("next"))}, loginMessage(q.Get("why")))
}

// showLogin renders the login form with a fresh pre-session CSRF secret
// when the browser has none.
func (h *Handler) showLogin(w http.ResponseWriter, r *http.Request, status int, d loginData, flash string) {
	secret := ""
	if c, err := r.Cookie(loginCookie); err == nil && len(c.Value) == 43 {
		secret = c.Value
	} else {
		secret = base64.RawURLEncoding.EncodeToString(randomBytes(32))
		http.SetCookie(w, h.cookie(r, loginCookie, secret, time.Now().Add(12*time.Hour)))
	}
	h.render(w, status, "login", page{Title: "Log in", CSRF: h.mac("login\x00" + secret), Flash: flash, Data: d})
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}

// login checks the form's CSRF token against the login cookie
// (double-submit, signed) and asks the API for a session token.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, http.StatusBadRequest, "The form could not be read: "+err.Error())
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !checkCSRF(r, h.mac("login\x00"+c.Value)) {
		h.errorPage(w, r, http.StatusForbidden, "This login form's security token is missing or wrong: reload the login page (with cookies allowed) and log in again.")
		return
	}
	d := loginData{Next: h.safeNext(r.PostFormValue("next")), Username: r.PostFormValue("username")}
	sess, err := h.apiClient(r, "").Login(r.Context(), client.Login{Username: d.Username, Password: r.PostFormValue("password")})
	if err != nil {
		var ae *client.APIError
		if !errors.As(err, &ae) {
			h.apiFailed(w, r, err)
			return
		}
		d.Error = ae.Message()
		for _, p := range ae.Problems() {
			d.Error += "; " + p.String()
		}
		h.showLogin(w, r, ae.Status, d, "")
		return
	}
	expires := time.Now().Add(24 * time.Hour)
	if sess.TokenInfo.ExpiresAt != nil {
		expires = *sess.TokenInfo.ExpiresAt
	}
	http.SetCookie(w, h.cookie(r, sessionCookie, strconv.FormatInt(sess.TokenInfo.ID, 10)+"."+sess.Token, expires))
	gone := h.cookie(r, loginCookie, "", time.Time{})
	gone.MaxAge = -1
	http.SetCookie(w, gone)
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

// logout revokes the session's token through the API and forgets it.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	s := h.session(r)
	if s == nil {
		h.redirect(w, r, "/login?why=out")
		return
	}
	if !checkCSRF(r, h.csrfToken(s.token)) {
		h.errorPage(w, r, http.StatusForbidden, "This form's security token is missing or wrong: reload the page and log out again.")
		return
	}
	err := h.apiClient(r, s.token).RevokeToken(r.Context(), s.id)
	if err != nil && !client.IsStatus(err, http.StatusUnauthorized) {
		h.apiFailed(w, r, err)
		return
	}
	h.clearSession(w, r)
	h.redirect(w, r, "/login?why=out")
}

// SessionToken is the API token of r's session cookie, "" when r has
// none: the daemon's proxy identifies the browser's user by it.
func SessionToken(r *http.Request) string {
	if s := sessionOf(r); s != nil {
		return s.token
	}
	return ""
}

// SessionTokens are the API tokens of all of r's session cookies, each
// once, in the order sent. A browser sends more than one when a cookie of
// the same name was set for a longer path (or another port of the host,
// where cookies go too): the proxy must not simply believe the first.
func SessionTokens(r *http.Request) []string {
	var out []string
	for _, c := range r.CookiesNamed(sessionCookie) {
		id, tok, ok := strings.Cut(c.Value, ".")
		if _, err := strconv.ParseInt(id, 10, 64); !ok || err != nil || tok == "" || slices.Contains(out, tok) {
			continue
		}
		out = append(out, tok)
	}
	return out
}

// Cookies are the names of the pages' cookies, which the proxy never
// forwards to a service nor lets one set.
func Cookies() []string { return []string{sessionCookie, loginCookie} }
