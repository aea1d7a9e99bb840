package web

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/httplimit"
)

func (h *Handler) streamRoutes() {
	h.handle("GET /executions/{id}/events", h.events)
	h.handle("GET /services/{id}/log", h.logDownload)
	h.handle("GET /services/{id}/log/live", h.logLive)
	h.handle("GET /executions/{id}/endpoints", h.executionEndpoints)
	for _, p := range []string{"/executions/{id}/events", "/services/{id}/log/live", "/executions/{id}/endpoints"} {
		h.streams["GET "+h.base+p] = true
	}
}

// events streams the API's events of one execution as Server-Sent
// Events, resuming after the browser's Last-Event-ID: the execution page's
// script updates the states from them.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
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
	// The execution must be the user's: the API's stream of another's
	// execution would be empty, not refused.
	c := h.apiClient(r, s.token)
	if _, err := c.GetExecution(r.Context(), id); err != nil {
		streamRefused(w, err)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet,
		"http://zoe.in-process/api/v1/events?execution="+strconv.FormatInt(id, 10), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Accept", "text/event-stream")
	// A reconnecting EventSource says where it stopped; a new one, the
	// last event its page showed.
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("after")
	}
	if _, err := strconv.ParseInt(last, 10, 64); err == nil {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := (&inproc{h: h.cfg.API, remoteAddr: r.RemoteAddr, forwardedFor: forwardedFor(r)}).RoundTrip(req)
	if err != nil {
		return // the browser left
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		w.WriteHeader(resp.StatusCode)
		return
	}
	sseHeader(w)
	beforeWrite := httplimit.Stream(w, r)
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			beforeWrite()
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func sseHeader(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
}

// streamRefused answers a stream's request the API refused, in plain
// text: an EventSource stops on any status but 200.
func streamRefused(w http.ResponseWriter, err error) {
	var status int
	var msg string
	if ae, ok := err.(*client.APIError); ok {
		status, msg = ae.Status, ae.Message()
	} else {
		status, msg = http.StatusBadGateway, err.Error()
	}
	http.Error(w, msg, status)
}

// service finds a service the user may see, for its log routes.
func (h *Handler) service(w http.ResponseWriter, r *http.Request) (*client.Client, *client.Service, bool) {
	s := h.session(r)
	if s == nil {
		http.Error(w, "log in first", http.StatusUnauthorized)
		return nil, nil, false
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.Error(w, "no such service", http.StatusNotFound)
		return nil, nil, false
	}
	c := h.apiClient(r, s.token)
	sv, err := c.GetService(r.Context(), id)
	if err != nil {
		streamRefused(w, err)
		return nil, nil, false
	}
	return c, sv, true
}

// logDownload sends a service's whole stored log as a file.
func (h *Handler) logDownload(w http.ResponseWriter, r *http.Request) {
	c, sv, ok := h.service(w, r)
	if !ok {
		return
	}
	body, err := c.Logs(r.Context(), sv.ID, client.LogOptions{Timestamps: r.URL.Query().Get("timestamps") == "1"})
	if err != nil {
		streamRefused(w, err)
		return
	}
	defer body.Close()
	name := fmt.Sprintf("zoe-%d-%s.log", sv.ExecutionID, fileSafe(sv.Name))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	beforeWrite := httplimit.Stream(w, r)
	beforeWrite()
	_, _ = io.Copy(w, body)
}

// fileSafe keeps the characters a file name may have anywhere.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// logLive streams a service's log as Server-Sent Events, one line each:
// its last LogTail lines, then new ones until the service ends.
func (h *Handler) logLive(w http.ResponseWriter, r *http.Request) {
	c, sv, ok := h.service(w, r)
	if !ok {
		return
	}
	body, err := c.Logs(r.Context(), sv.ID, client.LogOptions{Tail: h.cfg.LogTail, Follow: true})
	if err != nil {
		streamRefused(w, err)
		return
	}
	defer body.Close()
	sseHeader(w)
	beforeWrite := httplimit.Stream(w, r)
	rc := http.NewResponseController(w)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.ReplaceAll(sc.Text(), "\r", "")
		beforeWrite()
		if _, err := fmt.Fprintf(w, "data: %s\n\n", line); err != nil || rc.Flush() != nil {
			return
		}
	}
	// The service ended (or its log could not be read further): say so,
	// so that the script does not reconnect for ever.
	beforeWrite()
	_, _ = io.WriteString(w, "event: end\ndata: \n\n")
	_ = rc.Flush()
}

// readAtMost reads up to n bytes of r, keeping the last ones when there
// are more (the end of a log is what matters).
func readAtMost(r io.Reader, n int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(n)*4))
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return b, err
}
