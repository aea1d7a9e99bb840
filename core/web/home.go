package web

import (
	"net/http"

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
	// Cores and Memory are what the active executions reserve.
	Cores  float64
	Memory int64
}

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
	d := homeData{Active: active.Executions, Recent: recent.Executions}
	for _, ex := range d.Active {
		d.Cores += ex.Cores
		d.Memory += ex.Memory
	}
	p.Title, p.Data = "Home", d
	h.render(w, http.StatusOK, "home", p)
}
