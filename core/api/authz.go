package api

import (
	"context"
	"net/http"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk/auth"
)

// Access is who may call a route.
type Access int

const (
	// Anyone needs no credentials; credentials that are sent are checked
	// all the same, so that a wrong password is never silently ignored.
	Anyone Access = iota
	// SignedIn is a user or an admin; guests use the web pages only.
	SignedIn
	// Admin is an admin.
	Admin
)

func (a Access) String() string {
	return [...]string{"anyone", "signed-in", "admin"}[a]
}

// route is one API route: its place, who may call it, what it takes and
// gives (for the OpenAPI document) and its handler.
type route struct {
	Method, Path string
	Access       Access
	Summary      string
	Query        []param
	// Request and Response are values of the documents exchanged (nil: none
	// or not JSON); Status is the success status.
	Request, Response any
	Status            int
	// Produces is the content type of a non-JSON answer.
	Produces string
	// Headers are request headers the route reads, documented as such.
	Headers []param
	// RequestSchema, when set, documents the request body instead of
	// Request's type (a body whose fields the route makes optional).
	RequestSchema func(g *schemaGen) map[string]any
	// WebGuests lets guests call a SignedIn route when the request comes
	// from Zoe's own web pages, in process (ViaWebPages): guests use the
	// pages, never the API itself.
	WebGuests bool
	// Degraded is a status answered with the same document as Status: an
	// answer, not an error (GET /health's 503).
	Degraded int
	handle   func(w http.ResponseWriter, r *http.Request, c *caller)
}

type param struct{ Name, Type, Help string }

// caller is who sent a request; nil user for anonymous callers.
type caller struct {
	user *state.User
	// web is set when the request comes from the web pages in process
	// (ViaWebPages).
	web bool
	// ver is the store's version read before anything else for this
	// request: what the request reads may be cached under it.
	ver storeVersion
}

// storeVersion is what Store.Version returned; ok is false when the store
// does not know it, and nothing is cached.
type storeVersion struct {
	v  uint64
	ok bool
}

func (c *caller) admin() bool { return c.user != nil && c.user.Role == auth.RoleAdmin }

// name is the caller's username, "" when anonymous.
func (c *caller) name() string {
	if c.user == nil {
		return ""
	}
	return c.user.Username
}

// sees is the one rule of ownership: users see and act on their own
// executions, admins on everyone's.
func (c *caller) sees(owner string) bool {
	return c.user != nil && (c.admin() || c.user.Username == owner)
}

// serve authenticates the request and applies the route's access rule
// before its handler runs.
func (s *Server) serve(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = s.withClientAddress(r)
		c, fail := s.authenticate(r)
		if fail != nil {
			drain(r)
			s.refuse(w, r, fail)
			return
		}
		if status, code, msg := allowed(rt.Access, rt.WebGuests, c); status != 0 {
			drain(r)
			s.error(w, status, code, msg)
			return
		}
		rt.handle(w, r, c)
	})
}

// webPagesKey marks the context of a request made by the web pages in
// process. Its type is unexported, so only code in this process can set
// it: nothing a remote client sends can.
type webPagesKey struct{}

// ViaWebPages marks ctx as the context of a request that Zoe's web pages
// (core/web) make to the API in process, on behalf of the browser's user:
// guests, refused by the API itself, are let through the routes the pages
// need (route.WebGuests) and may log in.
func ViaWebPages(ctx context.Context) context.Context {
	return context.WithValue(ctx, webPagesKey{}, true)
}

func viaWebPages(ctx context.Context) bool {
	v, _ := ctx.Value(webPagesKey{}).(bool)
	return v
}

// allowed decides whether c may call a route of access a (webGuests: its
// WebGuests): 0 when it may, else the status, code and message of the
// refusal.
func allowed(a Access, webGuests bool, c *caller) (int, string, string) {
	if a == Anyone {
		return 0, "", ""
	}
	if c.user == nil {
		return http.StatusUnauthorized, client.CodeUnauthenticated,
			"log in: send a bearer token (POST /api/v1/sessions) or HTTP Basic credentials"
	}
	switch {
	case !c.user.Enabled:
		return http.StatusForbidden, client.CodePermissionDenied, "user " + c.user.Username + " is disabled"
	case c.user.Role == auth.RoleGuest && a == SignedIn && webGuests && c.web:
		return 0, "", ""
	case c.user.Role == auth.RoleGuest:
		return http.StatusForbidden, client.CodePermissionDenied, "guests may not use the API; use the web pages"
	case a == Admin && !c.admin():
		return http.StatusForbidden, client.CodePermissionDenied, "only admins may do this"
	}
	return 0, "", ""
}
