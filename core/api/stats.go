package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/pluginhost"
	"github.com/zoe-project/zoe/core/state"
)

func (s *Server) getInfo(w http.ResponseWriter, _ *http.Request, _ *caller) {
	s.write(w, http.StatusOK, s.cfg.Info)
}

// getHealth answers probes with ok or degraded (and 503); the details
// (plugin processes, errors, the store's path) are for admins only.
func (s *Server) getHealth(w http.ResponseWriter, r *http.Request, c *caller) {
	h := client.Health{Status: "ok"}
	store := client.StoreHealth{Store: s.cfg.StoreName}
	code := http.StatusOK
	degraded := func() { h.Status, code = "degraded", http.StatusServiceUnavailable }
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if v, err := s.cfg.Store.SchemaVersion(ctx); err != nil {
		store.Error = err.Error()
		degraded()
	} else {
		store.SchemaVersion = v
	}
	plugins := []client.PluginStatus{}
	for _, p := range s.cfg.Plugins.Statuses() {
		if p.State != pluginhost.StateReady {
			degraded()
		}
		plugins = append(plugins, pluginJSON(p))
	}
	if c.admin() && c.user.Enabled {
		h.State, h.Plugins = &store, plugins
	}
	s.write(w, code, h)
}

func (s *Server) getStats(w http.ResponseWriter, r *http.Request, c *caller) {
	if s.noEngine(w) {
		return
	}
	q, err := s.cfg.Engine.Queue(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	out := client.Stats{Queue: []client.QueueEntry{}}
	for _, e := range q {
		qe := client.QueueEntry{Position: e.Position, ExecutionID: e.Execution.ID, Status: string(e.Execution.Status),
			SubmittedAt: e.Execution.SubmittedAt, Reason: e.Reason}
		// Everyone sees how long the queue is and why it waits; only the
		// owners and admins see whose executions these are.
		if c.sees(e.Execution.Owner) {
			qe.Owner, qe.Name = e.Execution.Owner, e.Execution.Name
		} else {
			qe.Reason = othersReason(qe.Reason)
		}
		out.Queue = append(out.Queue, qe)
	}
	if !c.admin() {
		s.write(w, http.StatusOK, out)
		return
	}
	out.Running = []client.Execution{}
	f := state.Filter{Statuses: []state.Status{state.StatusStarting, state.StatusRunning, state.StatusCleaningUp},
		Limit: state.MaxLimit}
	for {
		running, next, err := s.cfg.Store.ListExecutions(r.Context(), f)
		if err != nil {
			s.fail(w, err)
			return
		}
		for _, ex := range running {
			out.Running = append(out.Running, s.executionJSON(ex))
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	nodes, err := s.cfg.Engine.Nodes(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	out.Nodes = []client.Node{}
	for _, n := range nodes {
		out.Nodes = append(out.Nodes, client.Node{Name: n.Node.Name, Address: n.Node.Address, State: string(n.Node.State),
			StateDetail: n.Node.StateDetail, Cores: n.Node.Cores, Memory: n.Node.MemoryBytes, Labels: n.Node.Labels,
			CoresReserved: n.Node.CoresReserved, MemoryReserved: n.Node.MemoryReserved, ZoeServices: n.Services})
	}
	s.write(w, http.StatusOK, out)
}

// othersReason is the waiting reason of another user's execution as the
// caller sees it: a failed start's retry without the error, whose text
// (an auth, workspace or back-end plugin's) can name the owner, their
// paths or directory entries.
func othersReason(reason string) string {
	if what, _, ok := strings.Cut(reason, ": "); ok && strings.HasPrefix(reason, "retrying ") {
		return what
	}
	return reason
}
