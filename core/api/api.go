// Package api serves Zoe's HTTP API under /api/v1.
package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/pluginhost"
)

// Info describes the running core.
type Info struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	APIVersion     string `json:"api_version"`
	DeploymentName string `json:"deployment_name"`
}

// PluginStatuses reports the state of every plugin.
type PluginStatuses interface {
	Statuses() []pluginhost.Status
}

// Store is the state store as the health check sees it.
type Store interface {
	SchemaVersion(ctx context.Context) (int, error)
}

// Server is the HTTP API.
type Server struct {
	info    Info
	plugins PluginStatuses
	store   Store
	// storeName describes the store without secrets, e.g. "sqlite /var/lib/zoe/zoe.db".
	storeName string
	log       hclog.Logger
	mux       *http.ServeMux
}

// New returns the API's handler.
func New(log hclog.Logger, info Info, plugins PluginStatuses, store Store, storeName string) *Server {
	s := &Server{info: info, plugins: plugins, store: store, storeName: storeName, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /api/v1/info", s.getInfo)
	s.mux.HandleFunc("GET /api/v1/health", s.getHealth)
	// Without this, a route asked with the wrong method would fall through
	// to the catch-all as "not found".
	s.mux.HandleFunc("/api/v1/info", s.wrongMethod("GET"))
	s.mux.HandleFunc("/api/v1/health", s.wrongMethod("GET"))
	s.mux.HandleFunc("/", s.notFound)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) getInfo(w http.ResponseWriter, _ *http.Request) {
	s.write(w, http.StatusOK, s.info)
}

// Health is the answer of GET /api/v1/health.
type Health struct {
	Status  string              `json:"status"` // ok or degraded
	State   StoreHealth         `json:"state"`
	Plugins []pluginhost.Status `json:"plugins"`
}

// StoreHealth tells whether the state store answers.
type StoreHealth struct {
	Store         string `json:"store"`
	SchemaVersion int    `json:"schema_version,omitempty"`
	Error         string `json:"error,omitempty"`
}

func (s *Server) getHealth(w http.ResponseWriter, r *http.Request) {
	h := Health{Status: "ok", State: StoreHealth{Store: s.storeName}, Plugins: s.plugins.Statuses()}
	code := http.StatusOK
	// Load balancers and probes read the status code.
	degraded := func() { h.Status, code = "degraded", http.StatusServiceUnavailable }
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if v, err := s.store.SchemaVersion(ctx); err != nil {
		h.State.Error = err.Error()
		degraded()
	} else {
		h.State.SchemaVersion = v
	}
	for _, p := range h.Plugins {
		if p.State != pluginhost.StateReady {
			degraded()
		}
	}
	s.write(w, code, h)
}

// Error is the one shape of every error the API returns.
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody says what went wrong.
type ErrorBody struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Details []string `json:"details,omitempty"`
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.write(w, http.StatusNotFound, Error{ErrorBody{Code: "not_found", Message: "no such API route: " + r.Method + " " + r.URL.Path}})
}

func (s *Server) wrongMethod(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		s.write(w, http.StatusMethodNotAllowed, Error{ErrorBody{Code: "method_not_allowed",
			Message: r.Method + " is not allowed on " + r.URL.Path + "; use " + allow}})
	}
}

func (s *Server) write(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		s.log.Debug("writing a response failed", "error", err)
	}
}
