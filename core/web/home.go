package web

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/zoe-project/zoe/client"
)

// activeStatuses are the statuses of executions that hold resources or
// wait for them.
func activeStatuses() []string {
	return []string{"submitted", "queued", "starting", "running", "cleaning_up"}
}

func (h *Handler) homeRoutes() {
	h.handle("GET /{$}", h.home)
}

type homeData struct {
	Active, Recent []client.Execution
	// Quota is the user's quota, Meters what they use of each limit.
	Quota  client.Quota
	Meters []meter
	// RuntimeLimit is how long an execution may run, "" for no limit.
	RuntimeLimit string
}

// meter is one limit of the quota and what is used of it, drawn as a
// <meter> when there is a limit.
type meter struct {
	ID, Label string
	// Used and Limit as shown; Limit "" when there is none.
	Used, Limit string
	// Value and Max are the <meter>'s numbers: Value is Used, within Max.
	Value, Max float64
}

// Num writes a meter's number as HTML wants it (no exponent).
func (meter) Num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// meters are the quota's limits with the usage.
func meters(q client.QuotaUse) []meter {
	ex := meter{ID: "quota-executions", Label: "Active executions", Used: strconv.Itoa(q.Used.Executions),
		Value: float64(q.Used.Executions), Max: float64(q.Quota.ConcurrentExecutions)}
	cores := meter{ID: "quota-cores", Label: "Cores reserved", Used: strconv.FormatFloat(roundCores(q.Used.Cores), 'f', -1, 64),
		Value: q.Used.Cores, Max: q.Quota.Cores}
	mem := meter{ID: "quota-memory", Label: "Memory reserved", Used: humanBytes(q.Used.Memory),
		Value: float64(q.Used.Memory), Max: float64(q.Quota.Memory)}
	if q.Quota.ConcurrentExecutions > 0 {
		ex.Limit = strconv.Itoa(q.Quota.ConcurrentExecutions)
	}
	if q.Quota.Cores > 0 {
		cores.Limit = strconv.FormatFloat(q.Quota.Cores, 'f', -1, 64)
	}
	if q.Quota.Memory > 0 {
		mem.Limit = humanBytes(q.Quota.Memory)
	}
	out := []meter{ex, cores, mem}
	for i := range out {
		out[i].Value = min(out[i].Value, out[i].Max) // an admin may have lowered the limit
	}
	return out
}

// roundCores drops the noise of summing fractional cores.
func roundCores(f float64) float64 { return math.Round(f*1000) / 1000 }

func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	active, err := c.ListExecutions(r.Context(), client.ExecutionFilter{Status: activeStatuses(), Limit: 100})
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	recent, err := c.ListExecutions(r.Context(), client.ExecutionFilter{Limit: 5})
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	quota, err := c.MyQuota(r.Context())
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	d := homeData{Active: active.Executions, Recent: recent.Executions, Quota: quota.Quota, Meters: meters(*quota)}
	if quota.Quota.RuntimeLimit > 0 {
		d.RuntimeLimit = (time.Duration(quota.Quota.RuntimeLimit) * time.Second).String()
	}
	p.Title, p.Data = "Home", d
	h.render(w, http.StatusOK, "home", p)
}
