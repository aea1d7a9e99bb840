package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/httplimit"
	"github.com/zoe-project/zoe/core/logs"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk"
)

// visibleService finds the service of the path when the caller sees its
// execution.
func (s *Server) visibleService(w http.ResponseWriter, r *http.Request, c *caller) (sv state.Service, owner string, ok bool) {
	id, ok := s.pathID(w, r, "service")
	if !ok {
		return sv, "", false
	}
	notFound := func() { s.error(w, http.StatusNotFound, client.CodeNotFound, fmt.Sprintf("no service %d", id)) }
	sv, err := s.cfg.Store.GetService(r.Context(), id)
	if errors.Is(err, sdk.ErrNotFound) {
		notFound()
		return sv, "", false
	}
	if err != nil {
		s.fail(w, err)
		return sv, "", false
	}
	ex, err := s.cfg.Store.GetExecution(r.Context(), sv.ExecutionID)
	if errors.Is(err, sdk.ErrNotFound) || (err == nil && !c.sees(ex.Owner)) {
		notFound()
		return sv, "", false
	}
	if err != nil {
		s.fail(w, err)
		return sv, "", false
	}
	return sv, ex.Owner, true
}

func (s *Server) getService(w http.ResponseWriter, r *http.Request, c *caller) {
	if sv, _, ok := s.visibleService(w, r, c); ok {
		s.write(w, http.StatusOK, serviceJSON(sv))
	}
}

// serviceLogs streams a service's stored output as text, one line per
// entry; with follow=true it goes on until the service's log is closed
// (the service ended) or the client goes away.
func (s *Server) serviceLogs(w http.ResponseWriter, r *http.Request, c *caller) {
	q := r.URL.Query()
	var (
		opts       logs.ReadOptions
		timestamps bool
		details    []client.Detail
	)
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			details = append(details, client.Detail{Path: "tail", Message: "must be a non-negative integer (0: everything)"})
		}
		opts.Tail = n
	}
	for name, dst := range map[string]*bool{"follow": &opts.Follow, "timestamps": &timestamps} {
		if v := q.Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				details = append(details, client.Detail{Path: name, Message: "must be true or false"})
			}
			*dst = b
		}
	}
	if len(details) > 0 {
		s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, "invalid query", details...)
		return
	}
	sv, owner, ok := s.visibleService(w, r, c)
	if !ok {
		return
	}
	if s.cfg.Logs == nil {
		s.error(w, http.StatusNotFound, client.CodeNotFound, "this Zoe keeps no service logs")
		return
	}
	// A follower loses the log with the right to see it (an admin
	// demoted while following another user's service).
	if opts.Follow {
		done, ok := s.openStream(w, c)
		if !ok {
			return
		}
		defer done()
	}
	ctx, cancel := s.streamContext(r, SignedIn, true, func(now *caller) bool { return now.sees(owner) })
	defer cancel()
	rc := http.NewResponseController(w)
	// A log may be long, and a followed one lasts while it sends: each
	// write has the server's write timeout.
	beforeWrite := httplimit.Stream(w, r)
	bw := bufio.NewWriterSize(w, 32<<10)
	started := false
	start := func() {
		if !started {
			started = true
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusOK)
		}
	}
	if opts.Follow {
		// The client sees at once that the stream is open.
		start()
		_ = rc.Flush()
	}
	write := func(e logs.Entry) error {
		beforeWrite()
		start()
		if timestamps {
			bw.WriteString(e.Time.UTC().Format(time.RFC3339Nano))
			bw.WriteByte(' ')
		}
		bw.Write(e.Line)
		if err := bw.WriteByte('\n'); err != nil {
			return err
		}
		if opts.Follow {
			if err := bw.Flush(); err != nil {
				return err
			}
			return rc.Flush()
		}
		return nil
	}
	read := func() error {
		return s.cfg.Logs.Read(ctx, sv.ExecutionID, sv.Name, opts, write)
	}
	err := read()
	for opts.Follow && errors.Is(err, sdk.ErrNotFound) && s.waitForLog(ctx, sv.ExecutionID) {
		err = read()
	}
	if !started {
		if errors.Is(err, sdk.ErrNotFound) {
			s.error(w, http.StatusNotFound, client.CodeNotFound, fmt.Sprintf("service %s has no output yet", sv.Name))
			return
		}
		if err != nil && ctx.Err() == nil {
			s.fail(w, err)
			return
		}
		start()
	}
	beforeWrite()
	if err := bw.Flush(); err != nil {
		return
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, sdk.ErrNotFound) {
		// The status is sent: the stream is cut, not ended, so that the
		// client does not take what it got for the whole log.
		s.log.Warn("reading a service's log failed", "service", sv.ID, "error", err)
		panic(http.ErrAbortHandler)
	}
}

// waitForLog waits, while a follower waits for a service's first output,
// for the next look: true while the service's execution is active.
func (s *Server) waitForLog(ctx context.Context, executionID int64) bool {
	ex, err := s.cfg.Store.GetExecution(ctx, executionID)
	if err != nil || !ex.Status.Active() {
		return false
	}
	t := time.NewTimer(s.cfg.EventPoll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
