package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// Engine is the lifecycle engine as the API uses it (core/engine).
type Engine interface {
	Submit(ctx context.Context, owner, name string, description []byte) (state.Execution, error)
	Terminate(ctx context.Context, id int64, reason string) (state.Execution, error)
	WaitingReason(id int64) string
}

// ExecutionStore is what the execution routes read from the state store.
type ExecutionStore interface {
	RecordLogin(ctx context.Context, id auth.Identity) (state.User, error)
	GetExecution(ctx context.Context, id int64) (state.Execution, error)
	Services(ctx context.Context, executionID int64) ([]state.Service, error)
	Endpoints(ctx context.Context, executionID int64) ([]state.Endpoint, error)
	Events(ctx context.Context, executionID int64) ([]state.Event, error)
}

// Authenticator checks a username and password (an auth plugin).
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) (auth.Identity, error)
}

// Executions configures the execution routes.
type Executions struct {
	Engine Engine
	Store  ExecutionStore
	// Auth are tried in order; the first that accepts the credentials wins.
	Auth []Authenticator
}

// maxDescription bounds a submission's body.
const maxDescription = 4 << 20

// EnableExecutions serves the minimal execution API, authenticated with
// HTTP Basic: POST /api/v1/executions, GET /api/v1/executions/{id} and
// POST /api/v1/executions/{id}/terminate. Guests may not use it.
func (s *Server) EnableExecutions(x Executions) {
	s.mux.HandleFunc("POST /api/v1/executions", s.authed(x, func(w http.ResponseWriter, r *http.Request, u state.User) {
		var body struct {
			Name        string          `json:"name"`
			Description json.RawMessage `json:"description"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, maxDescription))
		if err := dec.Decode(&body); err != nil || len(body.Description) == 0 {
			msg := "the body must be a JSON object with name and description (the ZApp)"
			if err != nil {
				msg += ": " + err.Error()
			}
			s.write(w, http.StatusBadRequest, Error{ErrorBody{Code: "invalid_argument", Message: msg}})
			return
		}
		ex, err := x.Engine.Submit(r.Context(), u.Username, body.Name, body.Description)
		if err != nil {
			s.fail(w, err)
			return
		}
		s.write(w, http.StatusCreated, s.execution(r.Context(), x, ex, false))
	}))
	s.mux.HandleFunc("GET /api/v1/executions/{id}", s.authed(x, func(w http.ResponseWriter, r *http.Request, u state.User) {
		ex, ok := s.own(w, r, x, u)
		if ok {
			s.write(w, http.StatusOK, s.execution(r.Context(), x, ex, true))
		}
	}))
	s.mux.HandleFunc("POST /api/v1/executions/{id}/terminate", s.authed(x, func(w http.ResponseWriter, r *http.Request, u state.User) {
		ex, ok := s.own(w, r, x, u)
		if !ok {
			return
		}
		ex, err := x.Engine.Terminate(r.Context(), ex.ID, "terminated by "+u.Username)
		if err != nil {
			s.fail(w, err)
			return
		}
		s.write(w, http.StatusAccepted, s.execution(r.Context(), x, ex, false))
	}))
}

// authed checks HTTP Basic credentials with the auth plugins, records the
// login and refuses disabled users and guests.
func (s *Server) authed(x Executions, h func(http.ResponseWriter, *http.Request, state.User)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, password, ok := r.BasicAuth()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="zoe"`)
			s.write(w, http.StatusUnauthorized, Error{ErrorBody{Code: "unauthenticated", Message: "log in with HTTP Basic credentials"}})
			return
		}
		var (
			id      auth.Identity
			found   bool
			lastErr error
		)
		for _, a := range x.Auth {
			got, err := a.Authenticate(r.Context(), name, password)
			if err == nil {
				id, found = got, true
				break
			}
			if !errors.Is(err, sdk.ErrInvalidCredentials) && !errors.Is(err, sdk.ErrNotFound) {
				lastErr = err
			}
		}
		if !found {
			if lastErr != nil {
				s.log.Warn("authentication failed", "user", name, "error", lastErr)
				s.write(w, http.StatusServiceUnavailable, Error{ErrorBody{Code: "unavailable", Message: "authentication is unavailable"}})
				return
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="zoe"`)
			s.write(w, http.StatusUnauthorized, Error{ErrorBody{Code: "unauthenticated", Message: "invalid username or password"}})
			return
		}
		u, err := x.Store.RecordLogin(r.Context(), id)
		if err != nil {
			s.fail(w, err)
			return
		}
		switch {
		case !u.Enabled:
			s.write(w, http.StatusForbidden, Error{ErrorBody{Code: "permission_denied", Message: "user " + u.Username + " is disabled"}})
		case u.Role == auth.RoleGuest:
			s.write(w, http.StatusForbidden, Error{ErrorBody{Code: "permission_denied", Message: "guests may not use the API"}})
		default:
			h(w, r, u)
		}
	}
}

// own finds the execution of the path for its owner or an admin.
func (s *Server) own(w http.ResponseWriter, r *http.Request, x Executions, u state.User) (state.Execution, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	notFound := Error{ErrorBody{Code: "not_found", Message: "no execution " + r.PathValue("id")}}
	if err != nil {
		s.write(w, http.StatusNotFound, notFound)
		return state.Execution{}, false
	}
	ex, err := x.Store.GetExecution(r.Context(), id)
	if errors.Is(err, sdk.ErrNotFound) || (err == nil && ex.Owner != u.Username && u.Role != auth.RoleAdmin) {
		s.write(w, http.StatusNotFound, notFound)
		return state.Execution{}, false
	}
	if err != nil {
		s.fail(w, err)
		return state.Execution{}, false
	}
	return ex, true
}

// ExecutionJSON is an execution as the API shows it.
type ExecutionJSON struct {
	ID            int64           `json:"id"`
	Owner         string          `json:"owner"`
	Name          string          `json:"name"`
	Status        string          `json:"status"`
	WaitingReason string          `json:"waiting_reason,omitempty"`
	ErrorMessage  string          `json:"error_message,omitempty"`
	ExitCode      *int            `json:"exit_code,omitempty"`
	Cores         float64         `json:"cores"`
	Memory        int64           `json:"memory"`
	SubmittedAt   time.Time       `json:"submitted_at"`
	StartedAt     *time.Time      `json:"started_at,omitempty"`
	EndedAt       *time.Time      `json:"ended_at,omitempty"`
	Description   json.RawMessage `json:"description,omitempty"`
	Services      []ServiceJSON   `json:"services,omitempty"`
	Endpoints     []EndpointJSON  `json:"endpoints,omitempty"`
	Events        []EventJSON     `json:"events,omitempty"`
}

// ServiceJSON is one service of an execution.
type ServiceJSON struct {
	Name         string `json:"name"`
	Group        string `json:"group"`
	Essential    bool   `json:"essential"`
	Status       string `json:"status"`
	Node         string `json:"node,omitempty"`
	IP           string `json:"ip,omitempty"`
	ExitCode     *int   `json:"exit_code,omitempty"`
	ErrorMessage string `json:"error_message,omitempty"`
	RestartCount int    `json:"restart_count"`
	StartupOrder int    `json:"startup_order"`
}

// EndpointJSON is where a service's port can be reached.
type EndpointJSON struct {
	Service         string `json:"service"`
	Name            string `json:"name"`
	Port            int    `json:"port"`
	Protocol        string `json:"protocol"`
	ExternalAddress string `json:"external_address,omitempty"`
	ExternalPort    int    `json:"external_port,omitempty"`
	URL             string `json:"url,omitempty"`
}

// EventJSON is one step of an execution's timeline.
type EventJSON struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service,omitempty"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to"`
	Reason  string    `json:"reason,omitempty"`
}

func (s *Server) execution(ctx context.Context, x Executions, ex state.Execution, details bool) ExecutionJSON {
	out := ExecutionJSON{ID: ex.ID, Owner: ex.Owner, Name: ex.Name, Status: string(ex.Status),
		ErrorMessage: ex.ErrorMessage, ExitCode: ex.ExitCode, Cores: ex.Cores, Memory: ex.Memory,
		SubmittedAt: ex.SubmittedAt, StartedAt: ex.StartedAt, EndedAt: ex.EndedAt}
	if ex.Status == state.StatusQueued {
		out.WaitingReason = x.Engine.WaitingReason(ex.ID)
	}
	if !details {
		return out
	}
	out.Description = ex.Description
	if svcs, err := x.Store.Services(ctx, ex.ID); err == nil {
		for _, sv := range svcs {
			out.Services = append(out.Services, ServiceJSON{Name: sv.Name, Group: sv.Group, Essential: sv.Essential,
				Status: string(sv.Status), Node: sv.Node, IP: sv.IP, ExitCode: sv.ExitCode, ErrorMessage: sv.ErrorMessage,
				RestartCount: sv.RestartCount, StartupOrder: sv.StartupOrder})
		}
	}
	if eps, err := x.Store.Endpoints(ctx, ex.ID); err == nil {
		for _, ep := range eps {
			out.Endpoints = append(out.Endpoints, EndpointJSON{Service: ep.ServiceName, Name: ep.Name, Port: ep.Port,
				Protocol: ep.Protocol, ExternalAddress: ep.ExternalAddress, ExternalPort: ep.ExternalPort, URL: ep.URL})
		}
	}
	if evs, err := x.Store.Events(ctx, ex.ID); err == nil {
		for _, ev := range evs {
			out.Events = append(out.Events, EventJSON{Time: ev.Time, Service: ev.ServiceName, From: ev.From, To: ev.To,
				Reason: ev.Reason})
		}
	}
	return out
}

// fail writes err with the status of its sdk category; a ZApp's problems
// are the details.
func (s *Server) fail(w http.ResponseWriter, err error) {
	body := ErrorBody{Message: err.Error()}
	var code int
	switch cat := sdk.Category(err); cat {
	case sdk.ErrInvalidArgument:
		code, body.Code = http.StatusBadRequest, "invalid_argument"
		var probs zapp.Problems
		if errors.As(err, &probs) {
			body.Message = fmt.Sprintf("the ZApp description has %d problems", len(probs))
			for _, p := range probs {
				body.Details = append(body.Details, p.String())
			}
		}
	case sdk.ErrResourceExhausted:
		code, body.Code = http.StatusConflict, "quota_exceeded"
	case sdk.ErrConflict:
		code, body.Code = http.StatusConflict, "conflict"
	case sdk.ErrNotFound:
		code, body.Code = http.StatusNotFound, "not_found"
	case sdk.ErrPermissionDenied:
		code, body.Code = http.StatusForbidden, "permission_denied"
	case sdk.ErrUnavailable:
		code, body.Code = http.StatusServiceUnavailable, "unavailable"
	default:
		s.log.Error("internal error", "error", err)
		code, body = http.StatusInternalServerError, ErrorBody{Code: "internal", Message: "internal error"}
	}
	s.write(w, code, Error{body})
}
