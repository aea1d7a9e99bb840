package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"time"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/pluginhost"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

func (s *Server) userJSON(u state.User) client.User {
	quota := u.Quota
	if quota == "" {
		quota = state.DefaultQuotaName(u.Role)
	}
	return client.User{Username: u.Username, Role: string(u.Role), AuthRole: string(u.AuthRole), Groups: u.Groups, UID: u.UID, GID: u.GID,
		Email: u.Email, AuthEmail: u.AuthEmail, Enabled: u.Enabled, Quota: quota, CreatedAt: u.CreatedAt, LastLogin: u.LastLogin}
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, _ *caller) {
	us, err := s.cfg.Store.ListUsers(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	out := client.UserList{Users: []client.User{}}
	for _, u := range us {
		out.Users = append(out.Users, s.userJSON(u))
	}
	s.write(w, http.StatusOK, out)
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, _ *caller) {
	u, err := s.cfg.Store.GetUser(r.Context(), r.PathValue("name"))
	if err != nil {
		s.fail(w, err)
		return
	}
	s.write(w, http.StatusOK, s.userJSON(u))
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, c *caller) {
	var in client.UserUpdate
	if !s.decode(w, r, &in) {
		return
	}
	name := r.PathValue("name")
	var (
		upd     state.UserUpdate
		details []client.Detail
	)
	switch {
	case in.Role != nil && *in.Role == "":
		upd.ClearRole = true
	case in.Role != nil:
		role, err := auth.ParseRole(*in.Role)
		if err != nil {
			details = append(details, client.Detail{Path: "role", Message: "must be guest, user or admin"})
		}
		upd.Role = &role
	}
	if in.Quota != nil && *in.Quota != "" {
		if _, err := s.cfg.Store.GetQuota(r.Context(), *in.Quota); errors.Is(err, sdk.ErrNotFound) {
			details = append(details, client.Detail{Path: "quota", Message: fmt.Sprintf("no quota %q", *in.Quota)})
		} else if err != nil {
			s.fail(w, err)
			return
		}
	}
	if in.Email != nil && *in.Email != "" {
		if err := state.CheckEmail(*in.Email); err != nil {
			details = append(details, client.Detail{Path: "email",
				Message: fmt.Sprintf("must be an address such as ada@example.org, without a name, at most %d bytes", state.MaxEmailLength)})
		}
	}
	if len(details) > 0 {
		s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, "invalid user update", details...)
		return
	}
	// An admin who locks themself out needs another admin to get back.
	if name == c.name() && ((in.Enabled != nil && !*in.Enabled) || upd.ClearRole || (upd.Role != nil && *upd.Role != auth.RoleAdmin)) {
		s.error(w, http.StatusConflict, client.CodeConflict, "you cannot disable yourself or give up your own admin role; ask another admin")
		return
	}
	upd.Enabled, upd.Quota, upd.Email = in.Enabled, in.Quota, in.Email
	u, err := s.cfg.Store.UpdateUser(r.Context(), name, upd)
	if err != nil {
		s.fail(w, err)
		return
	}
	// What was set, so that an audit finds who gave whom which role.
	logged := []any{"user", name, "by", c.name()}
	switch {
	case upd.ClearRole:
		logged = append(logged, "role", "the source's ("+string(u.AuthRole)+")")
	case upd.Role != nil:
		logged = append(logged, "role", string(*upd.Role))
	}
	if in.Enabled != nil {
		logged = append(logged, "enabled", *in.Enabled)
	}
	if in.Quota != nil {
		logged = append(logged, "quota", *in.Quota)
	}
	if in.Email != nil {
		logged = append(logged, "email", *in.Email)
	}
	s.log.Info("user changed", logged...)
	if upd.Role != nil || upd.ClearRole {
		s.recheck(r.Context(), u)
	}
	s.write(w, http.StatusOK, s.userJSON(u))
}

func quotaJSON(q state.Quota) client.Quota {
	return client.Quota{Name: q.Name, ConcurrentExecutions: q.ConcurrentExecutions, Cores: q.Cores, Memory: q.Memory,
		RuntimeLimit: int64(q.RuntimeLimit / time.Second)}
}

// myQuota is the caller's own quota and what they use of it: every user
// may read theirs, the quotas' routes stay for admins.
func (s *Server) myQuota(w http.ResponseWriter, r *http.Request, c *caller) {
	q, err := s.cfg.Store.EffectiveQuota(r.Context(), c.name())
	if err != nil {
		s.fail(w, err)
		return
	}
	u, err := s.cfg.Store.Usage(r.Context(), c.name())
	if err != nil {
		s.fail(w, err)
		return
	}
	s.write(w, http.StatusOK, client.QuotaUse{Quota: quotaJSON(q),
		Used: client.Usage{Executions: u.Executions, Cores: u.Cores, Memory: u.Memory}})
}

// minQuotaCores is the smallest limit of cores a quota may set.
const minQuotaCores = 0.001

// quotaIn checks a quota document; details are empty when it is fine.
func quotaIn(in client.Quota) (state.Quota, []client.Detail) {
	var details []client.Detail
	if in.Name == "" {
		details = append(details, client.Detail{Path: "name", Message: "required"})
	}
	if in.ConcurrentExecutions < 0 || in.ConcurrentExecutions > state.MaxQuotaExecutions {
		details = append(details, client.Detail{Path: "concurrent_executions", Message: fmt.Sprintf("must be from 0 (unlimited) to %d", state.MaxQuotaExecutions)})
	}
	// JSON has no NaN or infinity, but the test costs nothing.
	// A limit below a thousandth of a core is no limit anyone means.
	if !(in.Cores == 0 || in.Cores >= minQuotaCores && in.Cores <= state.MaxQuotaCores) {
		details = append(details, client.Detail{Path: "cores", Message: fmt.Sprintf("must be 0 (unlimited) or from %g to %g", minQuotaCores, state.MaxQuotaCores)})
	}
	if in.Memory < 0 || in.Memory > state.MaxQuotaMemory {
		details = append(details, client.Detail{Path: "memory", Message: fmt.Sprintf("must be from 0 (unlimited) to %d bytes (1 EiB)", state.MaxQuotaMemory)})
	}
	maxRuntime := int64(state.MaxQuotaRuntime / time.Second)
	if in.RuntimeLimit < 0 || in.RuntimeLimit > maxRuntime {
		details = append(details, client.Detail{Path: "runtime_limit", Message: fmt.Sprintf("must be from 0 (unlimited) to %d seconds", maxRuntime)})
	}
	return state.Quota{Name: in.Name, ConcurrentExecutions: in.ConcurrentExecutions, Cores: in.Cores, Memory: in.Memory,
		RuntimeLimit: time.Duration(in.RuntimeLimit) * time.Second}, details
}

func (s *Server) listQuotas(w http.ResponseWriter, r *http.Request, _ *caller) {
	qs, err := s.cfg.Store.ListQuotas(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	out := client.QuotaList{Quotas: []client.Quota{}}
	for _, q := range qs {
		out.Quotas = append(out.Quotas, quotaJSON(q))
	}
	s.write(w, http.StatusOK, out)
}

func (s *Server) getQuota(w http.ResponseWriter, r *http.Request, _ *caller) {
	q, err := s.cfg.Store.GetQuota(r.Context(), r.PathValue("name"))
	if err != nil {
		s.fail(w, err)
		return
	}
	s.write(w, http.StatusOK, quotaJSON(q))
}

// quotaName is what a new quota may be called: it appears in URLs, the
// CLI's arguments and the web pages.
var quotaName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (s *Server) createQuota(w http.ResponseWriter, r *http.Request, c *caller) {
	s.putQuota(w, r, c, func(ctx context.Context, q state.Quota) (state.Quota, error) {
		if !quotaName.MatchString(q.Name) {
			return q, &badRequest{client.Detail{Path: "name",
				Message: "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or a digit"}}
		}
		return s.cfg.Store.CreateQuota(ctx, q)
	}, http.StatusCreated)
}

func (s *Server) updateQuota(w http.ResponseWriter, r *http.Request, c *caller) {
	s.putQuota(w, r, c, func(ctx context.Context, q state.Quota) (state.Quota, error) {
		return s.cfg.Store.UpdateQuota(ctx, q)
	}, http.StatusOK)
}

func (s *Server) putQuota(w http.ResponseWriter, r *http.Request, c *caller, op func(context.Context, state.Quota) (state.Quota, error), status int) {
	var in client.Quota
	if !s.decode(w, r, &in) {
		return
	}
	if name := r.PathValue("name"); name != "" {
		if in.Name != "" && in.Name != name {
			s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, "a quota cannot be renamed",
				client.Detail{Path: "name", Message: fmt.Sprintf("must be %q (the quota of the path) or absent", name)})
			return
		}
		in.Name = name
	}
	q, details := quotaIn(in)
	if len(details) > 0 {
		s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, "invalid quota", details...)
		return
	}
	q, err := op(r.Context(), q)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.log.Info("quota saved", "quota", q.Name, "by", c.name())
	s.write(w, status, quotaJSON(q))
}

func (s *Server) deleteQuota(w http.ResponseWriter, r *http.Request, c *caller) {
	if err := s.cfg.Store.DeleteQuota(r.Context(), r.PathValue("name")); err != nil {
		s.fail(w, err)
		return
	}
	s.log.Info("quota deleted", "quota", r.PathValue("name"), "by", c.name())
	w.WriteHeader(http.StatusNoContent)
}

func pluginJSON(p pluginhost.Status) client.PluginStatus {
	return client.PluginStatus{Kind: string(p.Kind), Name: p.Name, Version: p.Version, State: string(p.State),
		Since: p.Since, Restarts: p.Restarts, LastError: p.LastError, PID: p.PID}
}

func (s *Server) listPlugins(w http.ResponseWriter, _ *http.Request, _ *caller) {
	out := client.PluginList{Plugins: []client.PluginStatus{}}
	for _, p := range s.cfg.Plugins.Statuses() {
		out.Plugins = append(out.Plugins, pluginJSON(p))
	}
	sort.SliceStable(out.Plugins, func(i, j int) bool { return out.Plugins[i].Kind < out.Plugins[j].Kind })
	s.write(w, http.StatusOK, out)
}
