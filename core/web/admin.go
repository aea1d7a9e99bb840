package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/config"
)

// The administrators' pages: the status of the daemon, users, quotas and
// failed logins. Each checks that the browser's user is an admin before
// calling the API, which refuses everyone else again (403) on its own.
func (h *Handler) adminRoutes() {
	h.handle("GET /admin", h.adminIndex)
	h.handle("GET /admin/{$}", h.adminIndex)
	h.handle("GET /admin/status", h.adminStatus)
	h.handle("GET /admin/users", h.adminUsers)
	h.handle("GET /admin/users/{name}", h.adminUser)
	h.handle("POST /admin/users/{name}", h.adminUpdateUser)
	h.handle("POST /admin/users/{name}/enabled", h.adminEnableUser)
	h.handle("POST /admin/users/{name}/tokens/{id}/revoke", h.adminRevokeToken)
	h.handle("GET /admin/quotas", h.adminQuotas)
	h.handle("POST /admin/quotas", h.adminCreateQuota)
	h.handle("GET /admin/quotas/{name}", h.adminQuota)
	h.handle("POST /admin/quotas/{name}", h.adminUpdateQuota)
	h.handle("GET /admin/quotas/{name}/delete", h.adminDeleteQuotaPage)
	h.handle("POST /admin/quotas/{name}/delete", h.adminDeleteQuota)
	h.handle("GET /admin/logins", h.adminLogins)
}

// adminIndex leads to the status page.
func (h *Handler) adminIndex(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := h.signedInAdmin(w, r); ok {
		h.redirect(w, r, "/admin/status")
	}
}

// signedInAdmin is signedIn for the admin pages: anyone but an enabled
// admin gets a 403 page and nothing else.
func (h *Handler) signedInAdmin(w http.ResponseWriter, r *http.Request) (*client.Client, page, bool) {
	c, p, ok := h.signedIn(w, r)
	if !ok {
		return nil, p, false
	}
	if p.User.Role != "admin" || !p.User.Enabled {
		h.errorPage(w, r, http.StatusForbidden, "This page is for Zoe's administrators.")
		return nil, p, false
	}
	return c, p, true
}

// doneMessage is what a page says after a change led to it (?done=...):
// fixed texts, so that a link cannot make a page say anything else.
func doneMessage(code string) string {
	switch code {
	case "created":
		return "The quota is created."
	case "saved":
		return "The changes are saved."
	case "deleted":
		return "The quota is deleted; its users have their role's default quota."
	case "disabled":
		return "The user is disabled: their tokens are revoked and they cannot log in."
	case "enabled":
		return "The user is enabled: they can log in again."
	case "revoked":
		return "The token is revoked."
	case "nothing":
		return "Nothing was changed."
	}
	return ""
}

// adminPage fills the parts of an admin page every one has.
func adminPage(p page, r *http.Request, title, section string, data any) page {
	p.Title, p.Flash = title, doneMessage(r.URL.Query().Get("done"))
	p.Data = adminData{Section: section, Page: data}
	return p
}

// adminData is every admin page's data: Section marks the current link of
// the admin menu.
type adminData struct {
	Section string
	Page    any
}

// --- Status -----------------------------------------------------------

type statusData struct {
	Stats *client.Stats
	Nodes []nodeView
	// Plugins is nil when they could not be read; PluginsError says why.
	Plugins      []client.PluginStatus
	PluginsError string
	// Cores, Memory are the totals of the nodes; the Reserved ones what
	// is reserved on them.
	Cores, CoresReserved   float64
	Memory, MemoryReserved int64
}

// nodeView is a node with the thresholds above which its meters warn.
type nodeView struct {
	client.Node
	CoresHigh  float64
	MemoryHigh int64
}

// meterHigh is the share of a node's capacity above which its meter warns.
const meterHigh = 0.9

func (h *Handler) adminStatus(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedInAdmin(w, r)
	if !ok {
		return
	}
	st, err := c.Stats(r.Context())
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	d := statusData{Stats: st}
	for _, n := range st.Nodes {
		d.Nodes = append(d.Nodes, nodeView{Node: n, CoresHigh: n.Cores * meterHigh, MemoryHigh: int64(float64(n.Memory) * meterHigh)})
		d.Cores += n.Cores
		d.CoresReserved += n.CoresReserved
		d.Memory += n.Memory
		d.MemoryReserved += n.MemoryReserved
	}
	// The plugins' states are a part of the page: when they cannot be
	// read the rest is still shown.
	if pl, err := c.Plugins(r.Context()); err != nil {
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden {
			h.apiFailed(w, r, err)
			return
		}
		d.PluginsError = ae.Message()
	} else {
		d.Plugins = pl.Plugins
	}
	h.render(w, http.StatusOK, "admin-status", adminPage(p, r, "Status", "status", d))
}

// --- Users ------------------------------------------------------------

func (h *Handler) adminUsers(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedInAdmin(w, r)
	if !ok {
		return
	}
	us, err := c.Users(r.Context())
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	qs, err := c.Quotas(r.Context())
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	d := usersData{Users: us.Users, Defined: map[string]bool{}}
	for _, q := range qs.Quotas {
		d.Defined[q.Name] = true
	}
	h.render(w, http.StatusOK, "admin-users", adminPage(p, r, "Users", "users", d))
}

type usersData struct {
	Users []client.User
	// Defined are the quotas that exist: a role's default quota that
	// does not is no limit.
	Defined map[string]bool
}

// roles are the roles an admin may give.
func roles() []string { return []string{"guest", "user", "admin"} }

type userData struct {
	U      *client.User
	Tokens []client.TokenInfo
	Quotas []client.Quota
	// Role and Quota are the form's choices: "" is the auth source's
	// role, the role's default quota. WasRole and WasQuota are what the
	// form showed, so that only what the admin changed is sent.
	Role, Quota, WasRole, WasQuota string
	RoleError, QuotaError          string
	// Email is the form's address: "" is the auth source's. WasEmail is
	// what the form showed.
	Email, WasEmail, EmailError string
	Roles                       []string
	// Errors are the API's problems that belong to no field.
	Errors []string
	// Self is the admin's own page: they cannot disable themself.
	Self bool
	// QuotaDefined tells whether the user's quota exists: a role's
	// default quota that does not is no limit.
	QuotaDefined bool
}

// emailChoice is the address the user's form shows for u: the one an
// admin set, "" for the auth source's.
func emailChoice(u *client.User) string {
	if u.Email != u.AuthEmail {
		return u.Email
	}
	return ""
}

// userChoices are the choices the user's form shows for u as it is.
func userChoices(u *client.User) (role, quota string) {
	if u.Role != u.AuthRole {
		role = u.Role
	}
	if u.Quota != u.Role { // a role's default quota has the role's name
		quota = u.Quota
	}
	return role, quota
}

func (h *Handler) adminUser(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedInAdmin(w, r)
	if !ok {
		return
	}
	u, err := c.GetUser(r.Context(), r.PathValue("name"))
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	d := userData{U: u, Email: emailChoice(u)}
	d.Role, d.Quota = userChoices(u)
	h.showUser(w, r, c, p, http.StatusOK, d)
}

// showUser renders a user's page with d's form; it reads the user's
// tokens and the quotas to choose from.
func (h *Handler) showUser(w http.ResponseWriter, r *http.Request, c *client.Client, p page, status int, d userData) {
	toks, err := c.UserTokens(r.Context(), d.U.Username)
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	qs, err := c.Quotas(r.Context())
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	d.Tokens, d.Quotas, d.Roles, d.Self = toks.Tokens, qs.Quotas, roles(), d.U.Username == p.User.Username
	d.WasRole, d.WasQuota = userChoices(d.U)
	d.WasEmail = emailChoice(d.U)
	for _, q := range d.Quotas {
		d.QuotaDefined = d.QuotaDefined || q.Name == d.U.Quota
	}
	h.render(w, status, "admin-user", adminPage(p, r, "User "+d.U.Username, "users", d))
}

// userPath is the path of a user's page.
func userPath(name string) string { return "/admin/users/" + url.PathEscape(name) }

// adminUpdateUser changes a user's role and quota: those of the form's
// fields the admin changed (a field left as it was is not sent, so that
// a change another admin made meanwhile stays).
func (h *Handler) adminUpdateUser(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedInAdmin(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	d := userData{Role: r.PostFormValue("role"), Quota: r.PostFormValue("quota"),
		Email: strings.TrimSpace(r.PostFormValue("email"))}
	var upd client.UserUpdate
	if d.Role != r.PostFormValue("was_role") {
		upd.Role = &d.Role
	}
	if d.Quota != r.PostFormValue("was_quota") {
		upd.Quota = &d.Quota
	}
	if d.Email != r.PostFormValue("was_email") {
		upd.Email = &d.Email
	}
	if upd.Role == nil && upd.Quota == nil && upd.Email == nil {
		h.redirect(w, r, userPath(name)+"?done=nothing")
		return
	}
	_, err := c.UpdateUser(r.Context(), name, upd)
	if err == nil {
		h.redirect(w, r, userPath(name)+"?done=saved")
		return
	}
	var ae *client.APIError
	if !errors.As(err, &ae) || (ae.Status != http.StatusBadRequest && ae.Status != http.StatusConflict) {
		h.apiFailed(w, r, err)
		return
	}
	if d.U, err = c.GetUser(r.Context(), name); err != nil {
		h.apiFailed(w, r, err)
		return
	}
	byField := map[string]*field{"role": {}, "quota": {}, "email": {}}
	d.Errors = fieldErrors(ae, byField)
	d.RoleError, d.QuotaError, d.EmailError = byField["role"].Error, byField["quota"].Error, byField["email"].Error
	h.showUser(w, r, c, p, ae.Status, d)
}

// adminEnableUser enables or disables a user; disabling revokes every
// token they hold (the API does so).
func (h *Handler) adminEnableUser(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedInAdmin(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	var enabled bool
	switch r.PostFormValue("enabled") {
	case "true":
		enabled = true
	case "false":
	default:
		h.errorPage(w, r, http.StatusBadRequest, `The form's field "enabled" must be true or false.`)
		return
	}
	_, err := c.UpdateUser(r.Context(), name, client.UserUpdate{Enabled: &enabled})
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusConflict {
		u, gerr := c.GetUser(r.Context(), name)
		if gerr != nil {
			h.apiFailed(w, r, gerr)
			return
		}
		d := userData{U: u, Errors: []string{ae.Message()}, Email: emailChoice(u)}
		d.Role, d.Quota = userChoices(u)
		h.showUser(w, r, c, p, ae.Status, d)
		return
	}
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	done := "disabled"
	if enabled {
		done = "enabled"
	}
	h.redirect(w, r, userPath(name)+"?done="+done)
}

func (h *Handler) adminRevokeToken(w http.ResponseWriter, r *http.Request) {
	c, _, ok := h.signedInAdmin(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		h.errorPage(w, r, http.StatusNotFound, "There is no such token.")
		return
	}
	if err := c.RevokeUserToken(r.Context(), name, id); err != nil {
		h.apiFailed(w, r, err)
		return
	}
	h.redirect(w, r, userPath(name)+"?done=revoked")
}

// --- Quotas -----------------------------------------------------------

// quotaForm is a quota's form: its fields as sent, with their errors.
type quotaForm struct {
	Name, Executions, Cores, Memory, Runtime field
	// Errors are the problems that belong to no field.
	Errors []string
}

// newQuotaForm is the form of q; prefix keeps the ids of two forms on one
// page apart.
func newQuotaForm(q client.Quota, prefix string) quotaForm {
	return quotaForm{
		Name: field{ID: prefix + "name", Name: "name", Label: "Name", Type: "text", Value: q.Name, Max: "64",
			Help: "Letters, digits, '.', '_' or '-'. A quota named like a role (guest, user, admin) is that role's default."},
		Executions: field{ID: prefix + "executions", Name: "executions", Label: "Executions at a time", Type: "number",
			Value: strconv.Itoa(q.ConcurrentExecutions), Min: "0", Step: "1", Help: "0: unlimited."},
		Cores: field{ID: prefix + "cores", Name: "cores", Label: "Cores reserved at a time", Type: "text",
			Value: strconv.FormatFloat(q.Cores, 'f', -1, 64), Help: "For example 8 or 0.5; 0: unlimited."},
		Memory: field{ID: prefix + "memory", Name: "memory", Label: "Memory reserved at a time", Type: "text",
			Value: formatSize(q.Memory), Help: "For example 64GiB or 512MiB; 0: unlimited."},
		Runtime: field{ID: prefix + "runtime", Name: "runtime", Label: "Longest run of an execution", Type: "text",
			Value: formatRuntime(q.RuntimeLimit), Help: "For example 8h, 90m or 2d; 0: unlimited."},
	}
}

// read fills the form from the request and parses it into a quota; a
// value that does not parse is marked beside its field and ok is false.
func (f *quotaForm) read(r *http.Request) (q client.Quota, ok bool) {
	ok = true
	for _, fl := range []*field{&f.Name, &f.Executions, &f.Cores, &f.Memory, &f.Runtime} {
		fl.Value = strings.TrimSpace(r.PostFormValue(fl.Name))
	}
	bad := func(fl *field, msg string) {
		fl.Error, ok = msg, false
	}
	q.Name = f.Name.Value
	n, err := strconv.ParseInt(cmpOr(f.Executions.Value, "0"), 10, 32)
	if err != nil {
		bad(&f.Executions, "must be a whole number")
	}
	q.ConcurrentExecutions = int(n)
	if q.Cores, err = strconv.ParseFloat(cmpOr(f.Cores.Value, "0"), 64); err != nil {
		bad(&f.Cores, "must be a number")
	}
	if q.Memory, err = parseLimitSize(f.Memory.Value); err != nil {
		bad(&f.Memory, err.Error())
	}
	if q.RuntimeLimit, err = parseLimitDuration(f.Runtime.Value); err != nil {
		bad(&f.Runtime, err.Error())
	}
	return q, ok
}

// apiErrors puts the API's problems beside the form's fields.
func (f *quotaForm) apiErrors(ae *client.APIError) {
	f.Errors = fieldErrors(ae, map[string]*field{"name": &f.Name, "concurrent_executions": &f.Executions,
		"cores": &f.Cores, "memory": &f.Memory, "runtime_limit": &f.Runtime})
}

type quotasData struct {
	Quotas []client.Quota
	// Users counts the users of each quota.
	Users map[string]int
	New   quotaForm
}

func (h *Handler) adminQuotas(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedInAdmin(w, r)
	if !ok {
		return
	}
	h.showQuotas(w, r, c, p, http.StatusOK, newQuotaForm(client.Quota{}, "new-"))
}

func (h *Handler) showQuotas(w http.ResponseWriter, r *http.Request, c *client.Client, p page, status int, f quotaForm) {
	qs, err := c.Quotas(r.Context())
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	us, err := c.Users(r.Context())
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	d := quotasData{Quotas: qs.Quotas, Users: map[string]int{}, New: f}
	for _, u := range us.Users {
		d.Users[u.Quota]++
	}
	h.render(w, status, "admin-quotas", adminPage(p, r, "Quotas", "quotas", d))
}

// quotaFailed shows the API's refusal of a quota's form beside its fields,
// or as the page's error when it is not about the form.
func (h *Handler) quotaFailed(w http.ResponseWriter, r *http.Request, err error, f *quotaForm) (status int, ok bool) {
	var ae *client.APIError
	if !errors.As(err, &ae) || (ae.Status != http.StatusBadRequest && ae.Status != http.StatusConflict) {
		h.apiFailed(w, r, err)
		return 0, false
	}
	f.apiErrors(ae)
	return ae.Status, true
}

func (h *Handler) adminCreateQuota(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedInAdmin(w, r)
	if !ok {
		return
	}
	f := newQuotaForm(client.Quota{}, "new-")
	q, ok := f.read(r)
	if !ok {
		f.Errors = []string{"The quota was not created: see the fields marked."}
		h.showQuotas(w, r, c, p, http.StatusBadRequest, f)
		return
	}
	if _, err := c.CreateQuota(r.Context(), q); err != nil {
		if status, ok := h.quotaFailed(w, r, err, &f); ok {
			h.showQuotas(w, r, c, p, status, f)
		}
		return
	}
	h.redirect(w, r, "/admin/quotas?done=created")
}

type quotaData struct {
	Q     *client.Quota
	Form  quotaForm
	Users []string // the users who have it
}

func (h *Handler) adminQuota(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedInAdmin(w, r)
	if !ok {
		return
	}
	q, err := c.GetQuota(r.Context(), r.PathValue("name"))
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	h.showQuota(w, r, c, p, http.StatusOK, "admin-quota", q, newQuotaForm(*q, ""))
}

// showQuota renders a quota's page (its form, or the confirmation of its
// deletion) with the users who have it.
func (h *Handler) showQuota(w http.ResponseWriter, r *http.Request, c *client.Client, p page, status int, tmpl string, q *client.Quota, f quotaForm) {
	us, err := c.Users(r.Context())
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	d := quotaData{Q: q, Form: f}
	for _, u := range us.Users {
		if u.Quota == q.Name {
			d.Users = append(d.Users, u.Username)
		}
	}
	title := "Quota " + q.Name
	if tmpl == "admin-quota-delete" {
		title = "Delete quota " + q.Name
	}
	h.render(w, status, tmpl, adminPage(p, r, title, "quotas", d))
}

func (h *Handler) adminUpdateQuota(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedInAdmin(w, r)
	if !ok {
		return
	}
	old, err := c.GetQuota(r.Context(), r.PathValue("name"))
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	f := newQuotaForm(*old, "")
	q, ok := f.read(r)
	f.Name.Value = old.Name // not renamed: the form has no such field
	if !ok {
		f.Errors = []string{"The quota was not changed: see the fields marked."}
		h.showQuota(w, r, c, p, http.StatusBadRequest, "admin-quota", old, f)
		return
	}
	q.Name = old.Name
	if _, err := c.UpdateQuota(r.Context(), old.Name, q); err != nil {
		if status, ok := h.quotaFailed(w, r, err, &f); ok {
			h.showQuota(w, r, c, p, status, "admin-quota", old, f)
		}
		return
	}
	h.redirect(w, r, "/admin/quotas/"+url.PathEscape(old.Name)+"?done=saved")
}

// adminDeleteQuotaPage asks to confirm a deletion: a form to post, which
// works without JavaScript.
func (h *Handler) adminDeleteQuotaPage(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedInAdmin(w, r)
	if !ok {
		return
	}
	q, err := c.GetQuota(r.Context(), r.PathValue("name"))
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	h.showQuota(w, r, c, p, http.StatusOK, "admin-quota-delete", q, quotaForm{})
}

func (h *Handler) adminDeleteQuota(w http.ResponseWriter, r *http.Request) {
	c, _, ok := h.signedInAdmin(w, r)
	if !ok {
		return
	}
	if err := c.DeleteQuota(r.Context(), r.PathValue("name")); err != nil {
		h.apiFailed(w, r, err)
		return
	}
	h.redirect(w, r, "/admin/quotas?done=deleted")
}

// --- Logins -----------------------------------------------------------

type loginsData struct {
	L      *client.Logins
	Locked int // how many keys are locked now
	Now    time.Time
}

func (h *Handler) adminLogins(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedInAdmin(w, r)
	if !ok {
		return
	}
	l, err := c.Logins(r.Context())
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	d := loginsData{L: l, Now: time.Now()}
	for _, f := range l.Failures {
		if f.LockedUntil != nil && f.LockedUntil.After(d.Now) {
			d.Locked++
		}
	}
	// Locked keys first, then by how many failures.
	slices.SortStableFunc(l.Failures, func(a, b client.LoginFailures) int {
		al, bl := a.LockedUntil != nil && a.LockedUntil.After(d.Now), b.LockedUntil != nil && b.LockedUntil.After(d.Now)
		switch {
		case al && !bl:
			return -1
		case bl && !al:
			return 1
		}
		return b.Failures - a.Failures
	})
	h.render(w, http.StatusOK, "admin-logins", adminPage(p, r, "Failed logins", "logins", d))
}

// --- Values -----------------------------------------------------------

// parseLimitSize parses a memory limit: a size in core/config's syntax
// (64GiB), 0 or "unlimited".
func parseLimitSize(s string) (int64, error) {
	if s == "" || strings.EqualFold(s, "unlimited") {
		return 0, nil
	}
	return config.ParseSize(s)
}

// parseLimitDuration parses a run-time limit into seconds: a Go duration
// (8h, 90m), a number of days (2d), 0 or "unlimited".
func parseLimitDuration(s string) (int64, error) {
	switch {
	case s == "" || s == "0" || strings.EqualFold(s, "unlimited"):
		return 0, nil
	case strings.HasSuffix(s, "d"):
		if days, err := strconv.ParseInt(strings.TrimSuffix(s, "d"), 10, 32); err == nil && days >= 0 {
			return days * 86400, nil
		}
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("invalid duration %q: want e.g. 8h, 90m or 2d", s)
	case d < 0:
		return 0, fmt.Errorf("invalid duration %q: negative", s)
	case d%time.Second != 0:
		return 0, fmt.Errorf("invalid duration %q: not a whole number of seconds", s)
	}
	return int64(d / time.Second), nil
}

// formatSize writes a size the way parseLimitSize reads it back: in the
// largest binary unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// formatRuntime writes seconds the way parseLimitDuration reads them back.
func formatRuntime(s int64) string {
	switch {
	case s == 0:
		return "0"
	case s%86400 == 0:
		return strconv.FormatInt(s/86400, 10) + "d"
	}
	out := (time.Duration(s) * time.Second).String()
	// 8h0m0s reads better as 8h.
	if strings.HasSuffix(out, "m0s") {
		out = strings.TrimSuffix(out, "0s")
	}
	if strings.HasSuffix(out, "h0m") {
		out = strings.TrimSuffix(out, "0m")
	}
	return out
}
