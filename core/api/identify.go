package api

import (
	"net/http"

	"github.com/zoe-project/zoe/sdk/auth"
)

// Principal is who sent a request, as Identify finds them.
type Principal struct {
	Username string
	Role     auth.Role
	// Header tells that the request's Authorization header named them
	// (a bearer token or Basic credentials), not the session token.
	Header bool
}

// Refusal is Identify's answer for credentials the API refuses: Status is
// 401 (invalid, expired or revoked), 403 (a disabled user) or 503 (the
// store or the auth sources cannot tell now).
type Refusal struct {
	Status  int
	Message string
}

func (r *Refusal) Error() string { return r.Message }

// Identify finds who sent r with the API's rules, for the daemon's other
// handlers (the proxy): the Authorization header when r has one (a bearer
// token or Basic credentials, throttled as the API throttles them), else
// session, the web pages' session token ("" for none). A nil Principal
// and nil error: nobody. Guests are who they are: the caller decides what
// they may do.
func (s *Server) Identify(r *http.Request, session string) (*Principal, error) {
	r = s.withClientAddress(r)
	header := r.Header.Get("Authorization") != ""
	var c *caller
	var f *failure
	switch {
	case header:
		c, f = s.authenticate(r)
	case session != "":
		var ver storeVersion
		ver.v, ver.ok = s.cfg.Store.Version(r.Context())
		u, fail := s.byToken(r.Context(), ver, session)
		c, f = &caller{user: &u}, fail
	default:
		return nil, nil
	}
	if f != nil {
		return nil, &Refusal{Status: f.status, Message: f.message}
	}
	if c.user == nil {
		return nil, nil
	}
	if !c.user.Enabled {
		return nil, &Refusal{Status: http.StatusForbidden, Message: "user " + c.user.Username + " is disabled"}
	}
	return &Principal{Username: c.user.Username, Role: c.user.Role, Header: header}, nil
}
