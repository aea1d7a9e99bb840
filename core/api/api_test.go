package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/pluginhost"
)

type store struct{ err error }

func (s store) SchemaVersion(context.Context) (int, error) { return 1, s.err }

type fixed []pluginhost.Status

func (f fixed) Statuses() []pluginhost.Status { return f }

func TestRoutes(t *testing.T) {
	ready := pluginhost.Status{Kind: "auth", Name: "file", State: pluginhost.StateReady}
	restarting := pluginhost.Status{Kind: "workspace", Name: "dir", State: pluginhost.StateRestarting}
	tests := []struct {
		name, method, path string
		plugins            fixed
		storeErr           error
		code               int
		field, want        string // a top-level JSON field and its value
	}{
		{"info", "GET", "/api/v1/info", nil, nil, 200, "deployment_name", "test"},
		{"healthy", "GET", "/api/v1/health", fixed{ready}, nil, 200, "status", "ok"},
		{"degraded", "GET", "/api/v1/health", fixed{ready, restarting}, nil, 503, "status", "degraded"},
		{"store down", "GET", "/api/v1/health", fixed{ready}, errors.New("connection refused"), 503, "status", "degraded"},
		{"unknown route", "GET", "/api/v1/nope", nil, nil, 404, "", ""},
		{"wrong method", "POST", "/api/v1/info", nil, nil, 405, "", ""},
		{"wrong method on health", "DELETE", "/api/v1/health", nil, nil, 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(hclog.NewNullLogger(), Info{Name: "zoe", Version: "v", APIVersion: "v1", DeploymentName: "test"}, tt.plugins, store{tt.storeErr}, "sqlite test.db")
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if tt.code >= 400 && tt.field == "" {
				e, ok := body["error"].(map[string]any)
				if !ok || e["code"] == "" || e["message"] == "" {
					t.Errorf("error body %v lacks the error shape", body)
				}
				if tt.code == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != "GET" {
					t.Errorf("Allow header %q", rec.Header().Get("Allow"))
				}
				return
			}
			if body[tt.field] != tt.want {
				t.Errorf("%s = %v, want %q", tt.field, body[tt.field], tt.want)
			}
		})
	}
}
