package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/state"
)

const (
	// keepAlive is how often an idle stream sends a comment, so proxies do
	// not close it.
	keepAlive = 15 * time.Second
	// gapWait is how long a missing event id is waited for. PostgreSQL
	// hands out ids before commit, so id 7 can appear after id 8; an id
	// still missing after this belonged to a transaction rolled back.
	gapWait  = 2 * time.Second
	feedPage = 500
)

// events streams the state changes of the executions the caller sees as
// Server-Sent Events. The "id:" of each message is a resume cursor: every
// event up to it has been sent, so a client that reconnects with it in
// Last-Event-ID misses nothing (it may see an event twice; Event.ID tells).
func (s *Server) events(w http.ResponseWriter, r *http.Request, c *caller) {
	ctx, cancel := s.streamContext(r)
	defer cancel()
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
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\nid: %d\n\n", low)
	if rc.Flush() != nil {
		return
	}

	sent := map[int64]bool{}         // ids above low already handled
	missing := map[int64]time.Time{} // ids above low not seen yet, since when
	poll := time.NewTicker(s.cfg.EventPoll)
	defer poll.Stop()
	lastWrite := time.Now()
	for {
		evs, err := s.cfg.Store.EventsAfter(ctx, low, state.EventFilter{Limit: feedPage})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("event stream: reading events failed", "error", err)
			evs = nil
		}
		wrote := false
		for _, ev := range evs {
			if sent[ev.ID] {
				continue
			}
			sent[ev.ID] = true
			if !c.sees(ev.Owner) || (execution != 0 && ev.ExecutionID != execution) {
				continue
			}
			kind := "execution"
			if ev.ServiceName != "" {
				kind = "service"
			}
			data, _ := json.Marshal(eventJSON(ev))
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", kind, data)
			wrote = true
		}
		// Move the cursor over every id handled, or missing for too long.
		now := time.Now()
		advanced := false
		for len(sent) > 0 {
			next := low + 1
			if sent[next] {
				delete(sent, next)
				low, advanced = next, true
				continue
			}
			since, ok := missing[next]
			if !ok {
				missing[next] = now
				break
			}
			if now.Sub(since) < gapWait {
				break
			}
			delete(missing, next)
			low, advanced = next, true
		}
		for id := range missing {
			if id <= low {
				delete(missing, id)
			}
		}
		if advanced {
			fmt.Fprintf(w, "id: %d\n\n", low)
			wrote = true
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
