package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/httplimit"
	"github.com/zoe-project/zoe/core/state"
)

const (
	// keepAlive is how often an idle stream sends a comment, so proxies do
	// not close it.
	keepAlive = 15 * time.Second
	feedPage  = 500
)

// events streams the state changes of the executions the caller sees as
// Server-Sent Events. The "id:" of each message is a resume cursor: every
// event up to it has been sent, so a client that reconnects with it in
// Last-Event-ID misses nothing (it may see an event twice; Event.ID tells).
func (s *Server) events(w http.ResponseWriter, r *http.Request, c *caller) {
	// The stream shows what c sees: all executions for an admin, who
	// loses the stream when demoted (the next one shows their own).
	done, ok := s.openStream(w, c)
	if !ok {
		return
	}
	defer done()
	ctx, cancel := s.streamContext(r, SignedIn, true, func(now *caller) bool { return !c.admin() || now.admin() })
	defer cancel()
	// A client that never reads would keep the stream for ever: the
	// keep-alive comments are too small to fill the socket's buffers, so
	// the write deadline never ends it. The client resumes with
	// Last-Event-ID.
	ctx, cancelLife := context.WithTimeout(ctx, s.cfg.EventStreamLife)
	defer cancelLife()
	var execution int64
	if v := r.URL.Query().Get("execution"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, "invalid query", client.Detail{Path: "execution", Message: "must be an execution id"})
			return
		}
		if _, ok := s.executionFor(w, ctx, c, id); !ok {
			return
		}
		execution = id
	}
	var low int64
	resume := r.Header.Get("Last-Event-ID")
	if resume == "" {
		resume = r.URL.Query().Get("last_event_id")
	}
	if resume != "" {
		n, err := strconv.ParseInt(resume, 10, 64)
		if err != nil || n < 0 {
			s.error(w, http.StatusBadRequest, client.CodeInvalidArgument, "invalid Last-Event-ID", client.Detail{Path: "last_event_id", Message: "must be a non-negative integer from an earlier stream"})
			return
		}
		low = n
	} else {
		n, err := s.cfg.Store.LastEventID(ctx)
		if err != nil {
			s.fail(w, err)
			return
		}
		low = n
	}
	rc := http.NewResponseController(w)
	// The stream lasts while it sends; each round of writes has the
	// server's write timeout.
	beforeWrite := httplimit.Stream(w, r)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\nid: %d\n\n", low)
	if rc.Flush() != nil {
		return
	}

	// Event ids become visible in increasing order (the store inserts
	// events under a lock held until the commit), so every id up to the
	// last one read is settled: a missing id was rolled back or deleted
	// and will never appear.
	poll := time.NewTicker(s.cfg.EventPoll)
	defer poll.Stop()
	lastWrite := time.Now()
	for {
		// A user's stream asks the store for their own events only (with
		// every user's events read and dropped here, a few streams from
		// an old Last-Event-ID kept the store sending it the whole
		// table), up to the last id at the time: every id up to it is
		// settled, so the cursor moves there when they are all read, the
		// other users' events with them, and the next read starts after.
		last, err := s.cfg.Store.LastEventID(ctx)
		filter := state.EventFilter{ExecutionID: execution, Limit: feedPage, Through: last}
		if !c.admin() {
			filter.Owner = c.user.Username
		}
		var evs []state.Event
		if err == nil && last > low {
			evs, err = s.cfg.Store.EventsAfter(ctx, low, filter)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("event stream: reading events failed", "error", err)
			evs, last = nil, low
		}
		beforeWrite()
		wrote := false
		var lastSent int64
		for _, ev := range evs {
			if !c.sees(ev.Owner) {
				continue
			}
			kind := "execution"
			if ev.ServiceName != "" {
				kind = "service"
			}
			data, _ := json.Marshal(eventJSON(ev))
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.ID, kind, data)
			wrote, lastSent = true, ev.ID
		}
		now := time.Now()
		next := last // all read up to the last id
		if n := len(evs); n == feedPage {
			next = evs[n-1].ID // a full page: more may follow it
		}
		if next > low {
			low = next
			if low != lastSent {
				// The cursor also moves over events the caller may not
				// see, so that a reconnection does not read them again.
				fmt.Fprintf(w, "id: %d\n\n", low)
				wrote = true
			}
		}
		if !wrote && now.Sub(lastWrite) > keepAlive {
			fmt.Fprint(w, ": keep-alive\n\n")
			wrote = true
		}
		if wrote {
			lastWrite = now
			if rc.Flush() != nil {
				return
			}
		}
		if len(evs) == feedPage {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		}
	}
}
