package web

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/zoe-project/zoe/client"
)

func (h *Handler) executionRoutes() {
	h.handle("GET /executions", h.executions)
	h.handle("GET /executions/{id}", h.execution)
	h.handle("POST /executions/{id}/terminate", h.terminate)
	h.handle("POST /executions/{id}/restart", h.restart)
}

// allStatuses are the statuses the list filters by.
func allStatuses() []string {
	return []string{"submitted", "queued", "starting", "running", "cleaning_up", "terminated", "error"}
}

type listData struct {
	Executions []client.Execution
	Statuses   []string
	Status     string
	Name       string
	// Next is the query of the next page; "" on the last.
	Next string
}

// executions lists a page of the user's executions (the API's cursor is
// the page's link), filtered by status and name.
func (h *Handler) executions(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	d := listData{Statuses: allStatuses(), Status: q.Get("status"), Name: q.Get("name")}
	f := client.ExecutionFilter{Name: d.Name, Cursor: q.Get("cursor"), Limit: 50}
	if d.Status != "" {
		if !slices.Contains(d.Statuses, d.Status) {
			h.errorPage(w, r, http.StatusBadRequest, "Unknown status "+strconv.Quote(d.Status)+"; one of "+strings.Join(d.Statuses, ", ")+".")
			return
		}
		f.Status = []string{d.Status}
	}
	list, err := c.ListExecutions(r.Context(), f)
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	d.Executions = list.Executions
	if list.NextCursor != "" {
		nq := url.Values{"cursor": {list.NextCursor}}
		if d.Status != "" {
			nq.Set("status", d.Status)
		}
		if d.Name != "" {
			nq.Set("name", d.Name)
		}
		d.Next = nq.Encode()
	}
	p.Title, p.Data = "Executions", d
	h.render(w, http.StatusOK, "executions", p)
}

// endpoint is an endpoint as the page shows it: a link through the proxy
// for the ports the ZApp marks proxy, the direct address for the others.
type endpoint struct {
	client.Endpoint
	Link    string // a path under the base path, or ""
	Address string // host:port, or ""
}

// serviceView is a service with its log's last lines.
type serviceView struct {
	client.Service
	Log string
}

type executionData struct {
	Ex        *client.Execution
	Active    bool
	Services  []serviceView
	Endpoints []endpoint
	// Position is the execution's place in the queue; 0 when it does
	// not wait.
	Position, QueueLength int
	LogTail               int
	// LiveLogs is how many services' logs the page follows live (the
	// first ones); the others show their stored tail.
	LiveLogs int
	// LastEvent is the id of the last event shown: the live stream
	// resumes after it.
	LastEvent int64
}

func (h *Handler) executionID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		h.errorPage(w, r, http.StatusNotFound, "There is no such execution.")
		return 0, false
	}
	return id, true
}

func (h *Handler) execution(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	id, ok := h.executionID(w, r)
	if !ok {
		return
	}
	ex, err := c.GetExecution(r.Context(), id)
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	d := executionData{Ex: ex, Active: slices.Contains(activeStatuses(), ex.Status), LogTail: h.cfg.LogTail, LiveLogs: maxLiveLogs}
	if ex.WaitingReason != "" || ex.Status == "queued" || ex.Status == "submitted" {
		if st, err := c.Stats(r.Context()); err == nil {
			d.QueueLength = len(st.Queue)
			for _, q := range st.Queue {
				if q.ExecutionID == ex.ID {
					d.Position = q.Position
				}
			}
		}
	}
	for i, sv := range ex.Services {
		v := serviceView{Service: sv}
		if i >= maxLogServices {
			d.Services = append(d.Services, v)
			continue
		}
		if rc, err := c.Logs(r.Context(), sv.ID, client.LogOptions{Tail: h.cfg.LogTail}); err == nil {
			b, _ := readAtMost(rc, maxLogView)
			_ = rc.Close()
			v.Log = string(b)
		}
		d.Services = append(d.Services, v)
	}
	d.Endpoints = h.endpoints(ex)
	for _, ev := range ex.Events {
		d.LastEvent = max(d.LastEvent, ev.ID)
	}
	p.Title, p.Data = "Execution "+strconv.FormatInt(ex.ID, 10), d
	h.render(w, http.StatusOK, "execution", p)
}

// executionEndpoints is the endpoints part of an execution's page alone,
// for the page's script to put in place as services start: a fragment
// with no form, so no CSRF token, which scripts may read (streams).
func (h *Handler) executionEndpoints(w http.ResponseWriter, r *http.Request) {
	s := h.session(r)
	if s == nil {
		http.Error(w, "log in first", http.StatusUnauthorized)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.Error(w, "no such execution", http.StatusNotFound)
		return
	}
	ex, err := h.apiClient(r, s.token).GetExecution(r.Context(), id)
	var ae *client.APIError
	switch {
	case errors.As(err, &ae):
		http.Error(w, ae.Message(), ae.Status)
		return
	case err != nil:
		http.Error(w, "Zoe cannot read the execution now", http.StatusServiceUnavailable)
		return
	}
	var buf bytes.Buffer
	if err := h.pages["execution"].ExecuteTemplate(&buf, "endpoints", h.endpoints(ex)); err != nil {
		h.log.Error("rendering the endpoints failed", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// maxLogView bounds the log a page shows of one service (the last
// LogTail lines); maxLogServices bounds the services whose log it shows
// (the others' are a link away).
//
// maxLiveLogs bounds the logs a page follows live: each live stream holds
// one of the 6 connections a browser keeps to a host over HTTP/1.1, and
// the page's events take one more; with every one taken, the browser
// could not send anything else to Zoe (a Terminate among them).
const (
	maxLogView     = 256 << 10
	maxLogServices = 20
	maxLiveLogs    = 3
)

// endpoints decides each endpoint's link: the ports the description marks
// proxy go through <base>/proxy/<execution>/<service>/<port>/.
func (h *Handler) endpoints(ex *client.Execution) []endpoint {
	proxied := map[string]bool{} // group/port
	for _, s := range summarise(ex.Description).Services {
		for _, pt := range s.Ports {
			if pt.Proxy {
				proxied[s.Name+"/"+strconv.Itoa(pt.PortNumber)] = true
			}
		}
	}
	group := map[string]string{}
	for _, sv := range ex.Services {
		group[sv.Name] = sv.Group
	}
	var out []endpoint
	for _, ep := range ex.Endpoints {
		e := endpoint{Endpoint: ep}
		if proxied[group[ep.Service]+"/"+strconv.Itoa(ep.Port)] {
			e.Link = h.base + "/proxy/" + strconv.FormatInt(ex.ID, 10) + "/" + url.PathEscape(ep.Service) + "/" + strconv.Itoa(ep.Port) + "/"
			// A URL template naming the proxy path leads deeper into it;
			// only its path and query are taken, never a host.
			if u, err := url.Parse(ep.URL); err == nil && strings.HasPrefix(u.EscapedPath(), e.Link) {
				e.Link = u.RequestURI()
			}
		} else if ep.ExternalAddress != "" && ep.ExternalPort != 0 {
			e.Address = ep.ExternalAddress + ":" + strconv.Itoa(ep.ExternalPort)
		}
		out = append(out, e)
	}
	return out
}

func (h *Handler) terminate(w http.ResponseWriter, r *http.Request) {
	c, _, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	id, ok := h.executionID(w, r)
	if !ok {
		return
	}
	if _, err := c.Terminate(r.Context(), id); err != nil && !client.IsStatus(err, http.StatusConflict) {
		h.apiFailed(w, r, err)
		return
	}
	h.redirect(w, r, "/executions/"+strconv.FormatInt(id, 10))
}

// restart starts a new execution of the same description and name, as
// the caller: only the owner may, or an admin would run a user's images
// and commands with the admin's workspace and rights.
func (h *Handler) restart(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	id, ok := h.executionID(w, r)
	if !ok {
		return
	}
	ex, err := c.GetExecution(r.Context(), id)
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	if ex.Owner != p.User.Username {
		h.errorPage(w, r, http.StatusForbidden, "Only "+ex.Owner+" may start this execution again: it would run as you, "+
			"with your workspace. Read its description and start it yourself if you trust it.")
		return
	}
	nex, err := c.StartExecution(r.Context(), client.StartExecution{Name: ex.Name, Description: ex.Description})
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		msgs := fieldErrors(ae, nil)
		h.errorPage(w, r, http.StatusBadRequest, "This execution cannot be started again: "+strings.Join(msgs, "; "))
		return
	}
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	h.redirect(w, r, "/executions/"+strconv.FormatInt(nex.ID, 10))
}
