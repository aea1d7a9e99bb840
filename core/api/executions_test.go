package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// fakeAuth accepts the users it knows with the password "pw".
type fakeAuth struct {
	roles map[string]auth.Role
	err   error
}

func (a fakeAuth) Authenticate(_ context.Context, u, p string) (auth.Identity, error) {
	if a.err != nil {
		return auth.Identity{}, a.err
	}
	role, ok := a.roles[u]
	if !ok || p != "pw" {
		return auth.Identity{}, fmt.Errorf("no: %w", sdk.ErrInvalidCredentials)
	}
	return auth.Identity{Username: u, Role: role}, nil
}

type fakeStore struct{ disabled map[string]bool }

func (s fakeStore) RecordLogin(_ context.Context, id auth.Identity) (state.User, error) {
	return state.User{Username: id.Username, Role: id.Role, Enabled: !s.disabled[id.Username]}, nil
}

func (fakeStore) GetExecution(_ context.Context, id int64) (state.Execution, error) {
	if id != 7 {
		return state.Execution{}, fmt.Errorf("execution %d: %w", id, sdk.ErrNotFound)
	}
	return state.Execution{ID: 7, Owner: "alice", Status: state.StatusRunning}, nil
}

func (fakeStore) Services(context.Context, int64) ([]state.Service, error) {
	return []state.Service{{Name: "nb0", Status: state.ServiceRunning}}, nil
}

func (fakeStore) Endpoints(context.Context, int64) ([]state.Endpoint, error) {
	return []state.Endpoint{{ServiceName: "nb0", Name: "web", Port: 80, Protocol: "tcp", URL: "http://x:1/"}}, nil
}

func (fakeStore) Events(context.Context, int64) ([]state.Event, error) {
	return []state.Event{{To: "submitted", Reason: "submitted by alice"}}, nil
}

type fakeEngine struct{ submitErr error }

func (e fakeEngine) Submit(_ context.Context, owner, name string, _ []byte) (state.Execution, error) {
	return state.Execution{ID: 8, Owner: owner, Name: name, Status: state.StatusSubmitted}, e.submitErr
}

func (fakeEngine) Terminate(_ context.Context, id int64, _ string) (state.Execution, error) {
	return state.Execution{ID: id, Owner: "alice", Status: state.StatusCleaningUp}, nil
}

func (fakeEngine) WaitingReason(int64) string { return "" }

func TestExecutionRoutes(t *testing.T) {
	roles := map[string]auth.Role{"alice": auth.RoleUser, "root": auth.RoleAdmin, "bob": auth.RoleUser,
		"gus": auth.RoleGuest, "off": auth.RoleUser}
	probs := zapp.Problems{{Path: "services", Message: "must not be empty"}}
	body := `{"name": "n", "description": {"name": "x"}}`
	tests := []struct {
		name, method, path, user, body string
		authErr, submitErr             error
		code                           int
		want                           string // in the answer
	}{
		{"no credentials", "GET", "/api/v1/executions/7", "", "", nil, nil, 401, "unauthenticated"},
		{"wrong password", "GET", "/api/v1/executions/7", "alice:bad", "", nil, nil, 401, "invalid username"},
		{"auth down", "GET", "/api/v1/executions/7", "alice:pw", "", sdk.ErrUnavailable, nil, 503, "unavailable"},
		{"guest", "GET", "/api/v1/executions/7", "gus:pw", "", nil, nil, 403, "guests"},
		{"disabled", "GET", "/api/v1/executions/7", "off:pw", "", nil, nil, 403, "disabled"},
		{"owner", "GET", "/api/v1/executions/7", "alice:pw", "", nil, nil, 200, `"url": "http://x:1/"`},
		{"admin", "GET", "/api/v1/executions/7", "root:pw", "", nil, nil, 200, `"status": "running"`},
		{"another user", "GET", "/api/v1/executions/7", "bob:pw", "", nil, nil, 404, "no execution 7"},
		{"unknown", "GET", "/api/v1/executions/9", "alice:pw", "", nil, nil, 404, "not_found"},
		{"submit", "POST", "/api/v1/executions", "alice:pw", body, nil, nil, 201, `"status": "submitted"`},
		{"submit no body", "POST", "/api/v1/executions", "alice:pw", "{}", nil, nil, 400, "invalid_argument"},
		{"submit invalid", "POST", "/api/v1/executions", "alice:pw", body, nil,
			fmt.Errorf("bad: %w: %w", sdk.ErrInvalidArgument, probs), 400, "services: must not be empty"},
		{"submit over quota", "POST", "/api/v1/executions", "alice:pw", body, nil,
			fmt.Errorf("five at a time: %w", sdk.ErrResourceExhausted), 409, "quota_exceeded"},
		{"terminate", "POST", "/api/v1/executions/7/terminate", "alice:pw", "", nil, nil, 202, "cleaning_up"},
		{"terminate another's", "POST", "/api/v1/executions/7/terminate", "bob:pw", "", nil, nil, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(hclog.NewNullLogger(), Info{}, fixed{}, store{}, "test")
			s.EnableExecutions(Executions{Engine: fakeEngine{submitErr: tt.submitErr},
				Store: fakeStore{disabled: map[string]bool{"off": true}},
				// The first plugin knows nobody: the second decides.
				Auth: []Authenticator{fakeAuth{}, fakeAuth{roles: roles}}})
			if tt.authErr != nil {
				s = New(hclog.NewNullLogger(), Info{}, fixed{}, store{}, "test")
				s.EnableExecutions(Executions{Engine: fakeEngine{}, Store: fakeStore{},
					Auth: []Authenticator{fakeAuth{err: tt.authErr}}})
			}
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if u, p, ok := strings.Cut(tt.user, ":"); ok {
				req.SetBasicAuth(u, p)
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.want) {
				t.Errorf("%s %s: %d %s, want %d with %q", tt.method, tt.path, w.Code, w.Body, tt.code, tt.want)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Errorf("not JSON: %s", w.Body)
			}
		})
	}
}
