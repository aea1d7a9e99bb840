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
	var last *client.Execution
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		ex, err := cl.GetExecution(ctx, id)
		switch {
		case err == nil:
			last = ex
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
		status := "not known"
		if last != nil {
			status = last.Status
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && cmd.Context().Err() == nil {
			return nil, fmt.Errorf("execution %d is still %s after %s", id, status, timeout)
		}
		return nil, fmt.Errorf("stopped waiting for execution %d (%s); it goes on: %w", id, status, cmd.Context().Err())
	}
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
	head := fmt.Sprintf("execution %d %s: %s", ex.ID, ex.Name, ex.Status)
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
	return keys, lines
}

func (v *liveView) show(ex *client.Execution) {
	if v.quiet {
		return
	}
	keys, lines := viewLines(ex, v.tty)
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
