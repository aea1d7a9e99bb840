package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/internal/safetext"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// noEngine answers for the routes that need a back-end when none is
// configured.
func (s *Server) noEngine(w http.ResponseWriter) bool {
	if s.cfg.Engine != nil {
		return false
	}
	s.error(w, http.StatusServiceUnavailable, client.CodeUnavailable, "this Zoe has no back-end configured: it cannot run executions")
	return true
}

func (s *Server) listExecutions(w http.ResponseWriter, r *http.Request, c *caller) {
	q := r.URL.Query()
	f := state.Filter{Name: q.Get("name"), Cursor: q.Get("cursor"), Owner: q.Get("owner")}
	var details []client.Detail
	if v := q.Get("status"); v != "" {
		for st := range strings.SplitSeq(v, ",") {
			switch {
			case !state.Status(st).Valid():
				if len(details) < 10 {
					details = append(details, client.Detail{Path: "status", Message: fmt.Sprintf("unknown status %q; one of %s", truncate(st, 32), statusNames())})
				}
			case !slices.Contains(f.Statuses, state.Status(st)):
				f.Statuses = append(f.Statuses, state.Status(st))
			}
		}
		// One order for one set: the answers are kept by filter.
		slices.Sort(f.Statuses)
	}
	// Longer than any name there can be: a filter that cannot match, and
	// a key too large to keep.
	for _, p := range []struct{ name, v string }{{"name", f.Name}, {"owner", f.Owner}} {
		if len(p.v) > maxNameLen {
			details = append(details, client.Detail{Path: p.name, Message: fmt.Sprintf("at most %d bytes", maxNameLen)})
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > state.MaxLimit {
			details = append(details, client.Detail{Path: "limit", Message: fmt.Sprintf("must be an integer from 1 to %d", state.MaxLimit)})
		}
		f.Limit = n
	}
	if f.Cursor != "" && !state.ValidCursor(f.Cursor) {
		details = append(details, client.Detail{Path: "cursor", Message: "not a next_cursor of an earlier page"})
	}
	if len(details) > 0 {
		s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, "invalid query", details...)
		return
	}
	if !c.admin() {
		if f.Owner != "" && f.Owner != c.name() {
			s.error(w, http.StatusForbidden, client.CodePermissionDenied, "only admins may list other users' executions")
			return
		}
		f.Owner = c.name()
	}
	// A page is kept while the store's version stays, and the engine's
	// version of the waiting reasons it shows.
	var reasons uint64
	if s.cfg.Engine != nil {
		reasons = s.cfg.Engine.WaitingVersion()
	}
	load := func(ctx context.Context) ([]byte, error) {
		list, next, err := s.cfg.Store.ListExecutions(ctx, f)
		if err != nil {
			return nil, err
		}
		out := client.ExecutionList{Executions: make([]client.Execution, 0, len(list)), NextCursor: next}
		for _, ex := range list {
			out.Executions = append(out.Executions, s.executionJSON(ex))
		}
		var buf bytes.Buffer
		err = s.encode(&buf, out)
		return buf.Bytes(), err
	}
	var body []byte
	var err error
	if c.ver.ok {
		body, err = s.reads.pages.Load(r.Context(), c.ver.v, fmt.Sprintf("%d %#v", reasons, f), load)
	} else {
		body, err = load(r.Context())
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	s.writeBody(w, http.StatusOK, body)
}

func statusNames() string {
	var names []string
	for _, st := range state.Statuses() {
		names = append(names, string(st))
	}
	return strings.Join(names, ", ")
}

func (s *Server) startExecution(w http.ResponseWriter, r *http.Request, c *caller) {
	if s.noEngine(w) {
		drain(r)
		return
	}
	var in client.StartExecution
	if !s.decodeChecked(w, r, maxBody, &in, checkShopResources) {
		return
	}
	if msg := checkStart(in); msg != "" {
		s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, msg)
		return
	}
	// Guests (through the web pages) start what the shop offers them,
	// never a description of their own.
	if in.Shop == nil && c.user.Role == auth.RoleGuest {
		s.error(w, http.StatusForbidden, client.CodePermissionDenied, "guests may start shop entries only, not a ZApp description of their own")
		return
	}
	if in.Shop != nil && len(in.Shop.Resources) > 0 && !mayCustomise(c) {
		s.error(w, http.StatusForbidden, client.CodePermissionDenied, "guests may not change the resources of a shop entry's services; start it as it is")
		return
	}
	desc := []byte(in.Description)
	var app *zapp.App
	if in.Shop != nil {
		var (
			ok  bool
			err error
		)
		desc, app, ok, err = s.shopDescription(c, in.Shop)
		if !ok {
			s.error(w, http.StatusNotFound, client.CodeNotFound, "no shop entry "+strconv.Quote(in.Shop.ID))
			return
		}
		if err != nil {
			s.fail(w, err)
			return
		}
	}
	ex, err := s.cfg.Engine.Submit(r.Context(), c.name(), in.Name, desc)
	if err != nil {
		if in.Shop != nil {
			err = shopSubmitError(err, app, in.Shop.Resources)
		}
		s.fail(w, err)
		return
	}
	s.write(w, http.StatusCreated, s.executionJSON(ex))
}

// checkStart checks what decoding cannot: "" when in is fine.
func checkStart(in client.StartExecution) string {
	// A null description is no description.
	desc := len(in.Description) > 0 && string(in.Description) != "null"
	switch {
	case desc && in.Shop != nil:
		return "give either description or shop, not both"
	case !desc && in.Shop == nil:
		return "give the ZApp: description (a ZApp description) or shop (an entry of the ZApp shop with parameters)"
	case in.Shop != nil && in.Shop.ID == "":
		return "shop.id is required"
	case len(in.Name) > maxNameLen:
		return fmt.Sprintf("name: at most %d bytes", maxNameLen)
	}
	if msg := safetext.NameProblem(in.Name); msg != "" {
		return "name: " + msg
	}
	return ""
}

// maxNameLen bounds the names of executions, and the filters on names.
const maxNameLen = 128

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// visibleExecution finds the execution of the path for its owner or an
// admin; anyone else gets the same 404 as for an execution that does not
// exist, so ids reveal nothing.
func (s *Server) visibleExecution(w http.ResponseWriter, r *http.Request, c *caller) (state.Execution, bool) {
	id, ok := s.pathID(w, r, "execution")
	if !ok {
		return state.Execution{}, false
	}
	return s.executionFor(w, r.Context(), c, id)
}

func (s *Server) executionFor(w http.ResponseWriter, ctx context.Context, c *caller, id int64) (state.Execution, bool) {
	ex, err := s.cfg.Store.GetExecution(ctx, id)
	if errors.Is(err, sdk.ErrNotFound) || (err == nil && !c.sees(ex.Owner)) {
		s.error(w, http.StatusNotFound, client.CodeNotFound, fmt.Sprintf("no execution %d", id))
		return state.Execution{}, false
	}
	if err != nil {
		s.fail(w, err)
		return state.Execution{}, false
	}
	return ex, true
}

func (s *Server) getExecution(w http.ResponseWriter, r *http.Request, c *caller) {
	ex, ok := s.visibleExecution(w, r, c)
	if !ok {
		return
	}
	out, err := s.executionDetails(r.Context(), ex)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.write(w, http.StatusOK, out)
}

func (s *Server) terminateExecution(w http.ResponseWriter, r *http.Request, c *caller) {
	ex, ok := s.visibleExecution(w, r, c)
	if !ok || s.noEngine(w) {
		return
	}
	ex, err := s.cfg.Engine.Terminate(r.Context(), ex.ID, "terminated by "+c.name())
	if err != nil {
		s.fail(w, err)
		return
	}
	s.write(w, http.StatusAccepted, s.executionJSON(ex))
}

func (s *Server) deleteExecution(w http.ResponseWriter, r *http.Request, c *caller) {
	ex, ok := s.visibleExecution(w, r, c)
	if !ok {
		return
	}
	// The logs go first: a daemon killed in between leaves a record
	// without logs, not logs no record accounts for. An active execution
	// keeps both (the store refuses to delete it), and an ended one never
	// writes again.
	if s.cfg.Logs != nil && !ex.Status.Active() {
		if err := s.cfg.Logs.RemoveExecution(ex.ID); err != nil {
			s.fail(w, err)
			return
		}
	}
	if err := s.cfg.Store.DeleteExecution(r.Context(), ex.ID); err != nil {
		s.fail(w, err)
		return
	}
	s.log.Info("execution deleted", "execution", ex.ID, "by", c.name())
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) executionJSON(ex state.Execution) client.Execution {
	out := client.Execution{ID: ex.ID, Owner: ex.Owner, Name: ex.Name, Status: string(ex.Status),
		ErrorMessage: ex.ErrorMessage, ExitCode: ex.ExitCode, Size: ex.Size, Cores: ex.Cores, Memory: ex.Memory,
		SubmittedAt: ex.SubmittedAt, StartedAt: ex.StartedAt, EndedAt: ex.EndedAt}
	// Queued executions wait for room; any active one may be backing off
	// after a failed attempt to start or clean up.
	if ex.Status.Active() && s.cfg.Engine != nil {
		out.WaitingReason = s.cfg.Engine.WaitingReason(ex.ID)
	}
	return out
}

// executionDetails is an execution with its services, endpoints and events.
// The state and the events are one moment's: the events are read around
// the execution, again until no event came between the reads (a change
// writes its state and its event together). A client that shows the
// states and then follows the event stream after the last event listed
// (the web page does) sees every later change, and one that waits for a
// state finds its event listed. Services and endpoints are read after, so
// they are never older than the events.
func (s *Server) executionDetails(ctx context.Context, ex state.Execution) (client.Execution, error) {
	evs, err := s.cfg.Store.Events(ctx, ex.ID)
	if err != nil {
		return client.Execution{}, err
	}
	for attempt := 0; ; attempt++ {
		again, err := s.cfg.Store.GetExecution(ctx, ex.ID)
		if err != nil && !errors.Is(err, sdk.ErrNotFound) {
			return client.Execution{}, err
		}
		if err == nil {
			ex = again
		}
		after, err := s.cfg.Store.Events(ctx, ex.ID)
		if err != nil {
			return client.Execution{}, err
		}
		same := lastEventID(after) == lastEventID(evs)
		evs = after
		// A bound for an execution that changes at every read: its
		// events may then be a moment newer than its state.
		if same || attempt == 4 {
			break
		}
	}
	out := s.executionJSON(ex)
	out.Description = json.RawMessage(ex.Description)
	svcs, err := s.cfg.Store.Services(ctx, ex.ID)
	if err != nil {
		return out, err
	}
	out.Services = []client.Service{}
	for _, sv := range svcs {
		out.Services = append(out.Services, serviceJSON(sv))
	}
	eps, err := s.cfg.Store.Endpoints(ctx, ex.ID)
	if err != nil {
		return out, err
	}
	out.Endpoints = []client.Endpoint{}
	for _, ep := range eps {
		out.Endpoints = append(out.Endpoints, client.Endpoint{Service: ep.ServiceName, Name: ep.Name, Port: ep.Port,
			Protocol: ep.Protocol, ExternalAddress: ep.ExternalAddress, ExternalPort: ep.ExternalPort, URL: ep.URL})
	}
	out.Events = []client.Event{}
	for _, ev := range evs {
		out.Events = append(out.Events, eventJSON(ev))
	}
	return out, nil
}

func lastEventID(evs []state.Event) int64 {
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].ID
}

func serviceJSON(sv state.Service) client.Service {
	return client.Service{ID: sv.ID, ExecutionID: sv.ExecutionID, Name: sv.Name, Group: sv.Group, Essential: sv.Essential,
		Status: string(sv.Status), BackendStatus: sv.BackendStatus, Node: sv.Node, IP: sv.IP, ExitCode: sv.ExitCode,
		ErrorMessage: sv.ErrorMessage, RestartCount: sv.RestartCount, StartupOrder: sv.StartupOrder}
}

func eventJSON(ev state.Event) client.Event {
	return client.Event{ID: ev.ID, ExecutionID: ev.ExecutionID, Owner: ev.Owner, Time: ev.Time, Service: ev.ServiceName,
		From: ev.From, To: ev.To, Reason: ev.Reason}
}
