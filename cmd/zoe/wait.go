package main

// Waiting for an execution to reach a state, with a live view of its
// services on standard error: redrawn in place on a terminal, one line per
// change otherwise.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/zoe-project/zoe/client"
)

// pollInterval is how often a waiting command asks for the execution.
const pollInterval = 500 * time.Millisecond

// goal decides, from the execution, whether the wait is over and whether
// it ended badly.
type goal func(ex *client.Execution) (done bool, err error)

// untilRunning: running is success; error, or an end before it ever ran,
// is failure. A batch ZApp that ran and ended is success too.
func untilRunning(ex *client.Execution) (bool, error) {
	switch ex.Status {
	case "running":
		return true, nil
	case "error":
		return true, fmt.Errorf("execution %d failed: %s", ex.ID, orText(ex.ErrorMessage, "no reason given"))
	case "terminated":
		if ex.StartedAt == nil {
			return true, fmt.Errorf("execution %d was terminated before it ran%s", ex.ID, reasonText(ex.ErrorMessage))
		}
		return true, nil
	}
	return false, nil
}

// untilEnded: terminated or error.
func untilEnded(ex *client.Execution) (bool, error) {
	return ex.Status == "terminated" || ex.Status == "error", nil
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func reasonText(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// waitExecution polls execution id until g says it is done, showing its
// progress on standard error (on a terminal, or in table mode). timeout 0
// waits until the context ends.
func waitExecution(cmd *cobra.Command, c *cli, cl *client.Client, id int64, timeout time.Duration, g goal) (*client.Execution, error) {
	ctx := cmd.Context()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	view := newLiveView(cmd.ErrOrStderr(), c.json())
	view.endless = timeout <= 0
	var last *client.Execution
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for polls := 0; ; polls++ {
		ex, err := cl.GetExecution(ctx, id)
		switch {
		case err == nil:
			last = ex
			if waiting(ex) && polls%queueEvery == 0 {
				view.queue = queuePlace(ctx, cl, id, view.queue)
			} else if !waiting(ex) {
				view.queue = ""
			}
			view.show(ex)
			if done, gerr := g(ex); done {
				view.end()
				return ex, gerr
			}
		case ctx.Err() == nil && !transient(err):
			view.end()
			return nil, err
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		view.end()
		status, why := "not known", ""
		if last != nil {
			status = last.Status
			if view.queue != "" {
				why += " (" + view.queue + ")"
			}
			if last.WaitingReason != "" {
				why += ": " + safe(last.WaitingReason)
			}
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && cmd.Context().Err() == nil {
			return nil, fmt.Errorf("execution %d is still %s after %s%s", id, status, timeout, why)
		}
		return nil, fmt.Errorf("stopped waiting for execution %d (%s); it goes on: %w", id, status, cmd.Context().Err())
	}
}

// queueEvery: the queue (GET /stats) is asked for every queueEvery polls
// while the execution waits, as it changes slowly and costs the daemon more.
const queueEvery = 4

// waiting: the execution waits for the scheduler.
func waiting(ex *client.Execution) bool {
	return ex.Status == "submitted" || ex.Status == "queued"
}

// queuePlace says where execution id stands in the queue, as GET /stats
// reports it (every signed-in user sees the queue): "position 2 of 3 in
// the queue", "" when it is not there; old when the daemon does not answer.
func queuePlace(ctx context.Context, cl *client.Client, id int64, old string) string {
	st, err := cl.Stats(ctx)
	if err != nil {
		return old
	}
	for _, q := range st.Queue {
		if q.ExecutionID == id {
			return fmt.Sprintf("position %d of %d in the queue", q.Position, len(st.Queue))
		}
	}
	return ""
}

// transient errors are worth waiting through: the daemon restarts, or a
// plugin or the store is briefly unavailable.
func transient(err error) bool {
	var ce *client.ConnectionError
	return errors.As(err, &ce) || client.IsStatus(err, http.StatusServiceUnavailable) ||
		client.IsStatus(err, http.StatusBadGateway) || client.IsStatus(err, http.StatusGatewayTimeout)
}

// liveView shows an execution's state and its services'.
type liveView struct {
	w     io.Writer
	tty   bool
	quiet bool
	drawn int               // lines drawn last time, on a terminal
	seen  map[string]string // plain mode: what was printed last, by line key
	// queue is where the execution stands in the queue ("" unknown);
	// endless: the wait has no time limit, which a waiting execution's
	// view says, with how to stop.
	queue   string
	endless bool
}

func newLiveView(w io.Writer, jsonMode bool) *liveView {
	f, ok := w.(*os.File)
	tty := ok && term.IsTerminal(int(f.Fd()))
	// In JSON mode only a person at a terminal wants the progress.
	return &liveView{w: w, tty: tty, quiet: jsonMode && !tty, seen: map[string]string{}}
}

// viewLines is the view of ex: one line for the execution, one per
// service, aligned for a terminal or plain for a log.
func viewLines(ex *client.Execution, tty bool) (keys, lines []string) {
	return waitLines(ex, tty, "", false)
}

// waitLines is viewLines with where the execution stands in the queue and,
// when endless, a line saying that the wait has no time limit while the
// execution waits.
func waitLines(ex *client.Execution, tty bool, queue string, endless bool) (keys, lines []string) {
	head := fmt.Sprintf("execution %d %s: %s", ex.ID, ex.Name, ex.Status)
	if queue != "" {
		head += ", " + queue
	}
	if ex.WaitingReason != "" {
		head += " (" + ex.WaitingReason + ")"
	}
	if ex.ErrorMessage != "" {
		head += ": " + ex.ErrorMessage
	}
	keys, lines = append(keys, "execution"), append(lines, head)
	width := 0
	for _, s := range ex.Services {
		width = max(width, len(s.Name))
	}
	for _, s := range ex.Services {
		l := fmt.Sprintf("  %-*s  %s", width, s.Name, s.Status)
		if !tty {
			l = fmt.Sprintf("service %s: %s", s.Name, s.Status)
		}
		if s.Node != "" {
			l += " on " + s.Node
		}
		if s.ErrorMessage != "" {
			l += ": " + s.ErrorMessage
		}
		keys, lines = append(keys, "service "+s.Name), append(lines, l)
	}
	if endless && waiting(ex) {
		keys = append(keys, "endless")
		lines = append(lines, "waiting with no time limit (--timeout sets one); Ctrl-C stops the wait, not the execution")
	}
	return keys, lines
}

func (v *liveView) show(ex *client.Execution) {
	if v.quiet {
		return
	}
	keys, lines := waitLines(ex, v.tty, v.queue, v.endless)
	for i := range lines {
		lines[i] = safe(lines[i])
	}
	if v.tty {
		var b strings.Builder
		if v.drawn > 0 {
			fmt.Fprintf(&b, "\x1b[%dA", v.drawn)
		}
		for _, l := range lines {
			b.WriteString("\r\x1b[2K" + l + "\n")
		}
		b.WriteString("\x1b[J")
		fmt.Fprint(v.w, b.String())
		v.drawn = len(lines)
		return
	}
	for i, k := range keys {
		if v.seen[k] != lines[i] {
			v.seen[k] = lines[i]
			fmt.Fprintln(v.w, lines[i])
		}
	}
}

// end leaves the last view on the screen.
func (v *liveView) end() { v.drawn = 0 }
