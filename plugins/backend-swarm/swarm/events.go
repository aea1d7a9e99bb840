package swarm

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/dockerapi"
	"github.com/zoe-project/zoe/sdk/backend"
)

// subscriberQueue is how many events a slow subscriber may fall behind.
const subscriberQueue = 256

// seen is what the last poll saw of a service.
type seen struct {
	name  string
	state backend.ServiceState
}

// Events polls the deployment's services every poll_interval and reports
// what changed since the last poll; the first poll, made before Events
// returns, is the baseline. A poll that fails is tried again at the next
// tick: a manager away for a while costs a delay, not the stream.
func (p *Plugin) Events(ctx context.Context) (<-chan backend.Event, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, err
	}
	if err := rt.engine(ctx); err != nil {
		return nil, err
	}
	before, err := p.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan backend.Event, subscriberQueue)
	go func() {
		defer close(out)
		tick := time.NewTicker(rt.poll)
		defer tick.Stop()
		failing := false // warned once, not at every poll while the manager is away
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			now, sts, err := p.poll(ctx)
			if err != nil {
				if ctx.Err() == nil && !failing {
					p.log.Warn("cannot read the swarm's services; trying again at every poll", "error", err)
				}
				failing = true
				continue
			}
			if failing {
				p.log.Info("the swarm's services can be read again")
				failing = false
			}
			for _, e := range p.diff(before, now, sts) {
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
			before = now
		}
	}()
	return out, nil
}

func (p *Plugin) snapshot(ctx context.Context) (map[string]seen, error) {
	now, _, err := p.poll(ctx)
	return now, err
}

func (p *Plugin) poll(ctx context.Context) (map[string]seen, map[string]backend.ServiceStatus, error) {
	list, err := p.List(ctx, backend.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	now := make(map[string]seen, len(list))
	sts := make(map[string]backend.ServiceStatus, len(list))
	for _, st := range list {
		now[st.Handle.ID] = seen{name: st.Name, state: st.State}
		sts[st.Handle.ID] = st
	}
	return now, sts, nil
}

// diff turns two polls into events.
func (p *Plugin) diff(before, now map[string]seen, sts map[string]backend.ServiceStatus) []backend.Event {
	var out []backend.Event
	t := time.Now()
	for id, n := range now {
		b, known := before[id]
		st := sts[id]
		ev := func(k backend.EventKind, msg string) backend.Event {
			return backend.Event{Kind: k, ServiceName: n.name, HandleID: id, Time: t, Message: msg}
		}
		if n.state == backend.ServiceRunning && (!known || b.state != backend.ServiceRunning) {
			out = append(out, ev(backend.EventStarted, "started on "+st.Node))
		}
		if n.state == backend.ServiceExited && (!known || b.state != backend.ServiceExited) {
			if dockerapi.MaybeOOMKilled(st.ExitCode, st.OOMKilled) && time.Since(st.FinishedAt) < oomSettle {
				// The engine may mark the OOM kill a moment after
				// the exit: the next poll reports the end.
				if known {
					now[id] = b
				} else {
					delete(now, id)
				}
				continue
			}
			if !known || b.state == backend.ServiceCreated {
				// Ended between two polls: it started first, unless
				// it never ran.
				if st.ExitCode != -1 {
					out = append(out, ev(backend.EventStarted, "started on "+st.Node))
				}
			}
			if st.OOMKilled {
				out = append(out, ev(backend.EventOOMKilled, "out of memory"))
			}
			e := ev(backend.EventExited, "exited with code "+strconv.Itoa(st.ExitCode))
			if st.Message != "" {
				e.Message += ": " + st.Message
			}
			e.ExitCode = st.ExitCode
			out = append(out, e)
		}
	}
	for id, b := range before {
		if _, ok := now[id]; ok || p.removed.Has(id) {
			continue
		}
		if b.state != backend.ServiceExited {
			out = append(out, backend.Event{Kind: backend.EventExited, ServiceName: b.name, HandleID: id, Time: t, ExitCode: -1,
				Message: "removed from the swarm while it ran"})
		}
		out = append(out, backend.Event{Kind: backend.EventVanished, ServiceName: b.name, HandleID: id, Time: t,
			Message: "removed from the swarm by someone else"})
	}
	return out
}

// Logs streams a service's output through the swarm's service logs. With
// Follow, the stream ends once the service's task has ended and its last
// lines were sent: swarm's own follow does not end, so the plugin watches
// the task, and reads once more, without follow, what came after the last
// line it sent.
func (p *Plugin) Logs(ctx context.Context, h backend.Handle, opts backend.LogOptions) (<-chan backend.LogEntry, error) {
	rt, s, err := p.locate(ctx, h)
	if err != nil {
		return nil, err
	}
	rc, err := rt.serviceLogs(ctx, s.ID, opts)
	if err != nil {
		return nil, err
	}
	out := make(chan backend.LogEntry, 64)
	if !opts.Follow {
		go func() {
			defer close(out)
			p.copyLogs(ctx, rc, s.ID, out, nil)
		}()
		return out, nil
	}
	go func() {
		defer close(out)
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var last *backend.LogEntry
		sent := map[string]bool{} // lines sent at last's time
		track := func(e backend.LogEntry) bool {
			key := string(e.Stream) + " " + string(e.Line)
			if last != nil && e.Time.Equal(last.Time) {
				if sent[key] {
					return false
				}
			} else {
				sent = map[string]bool{}
			}
			sent[key] = true
			last = &e
			return true
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			p.copyLogs(fctx, rc, s.ID, out, track)
		}()
		ended := p.waitEnded(fctx, rt, s.ID)
		cancel()
		// A cancelled context does not always end a read of the stream
		// in progress: closing the body does.
		_ = rc.Close()
		<-done
		if !ended || ctx.Err() != nil {
			return
		}
		// What came after the last line sent: the follow stream was cut.
		rest := backend.LogOptions{}
		if last != nil {
			rest.Since = last.Time
		}
		rc, err := rt.serviceLogs(ctx, s.ID, rest)
		if err != nil {
			p.log.Debug("cannot read the end of a service's output", "service", s.Spec.Name, "error", err)
			return
		}
		p.copyLogs(ctx, rc, s.ID, out, func(e backend.LogEntry) bool {
			if last != nil && e.Time.Before(last.Time) {
				return false
			}
			return track(e)
		})
	}()
	return out, nil
}

// waitEnded polls the service's task until it has ended (true) or ctx
// ends (false). A service removed meanwhile has ended.
func (p *Plugin) waitEnded(ctx context.Context, rt *runtime, id string) bool {
	for {
		tasks, err := rt.tasks(ctx, id)
		if err == nil {
			t := mainTask(tasks)
			if t == nil || terminal(t.Status.State) {
				// Give the last lines a moment to reach the follow
				// stream before it is cut; the read after it sends
				// what did not.
				select {
				case <-ctx.Done():
					return ctx.Err() == nil
				case <-time.After(rt.poll):
				}
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(rt.poll):
		}
	}
}

func (rt *runtime) serviceLogs(ctx context.Context, id string, opts backend.LogOptions) (io.ReadCloser, error) {
	rc, err := rt.cli.ServiceLogs(ctx, id, client.ServiceLogsOptions(dockerapi.LogsOptions(opts)))
	if err != nil {
		return nil, dockerapi.Wrap(err, "logs of service %s", id)
	}
	return rc, nil
}

// copyLogs sends a log stream's entries; keep, when set, says which.
func (p *Plugin) copyLogs(ctx context.Context, rc io.ReadCloser, id string, out chan<- backend.LogEntry, keep func(backend.LogEntry) bool) {
	defer rc.Close()
	if err := dockerapi.CopyLogs(ctx, rc, out, keep); err != nil {
		p.log.Debug("log stream ended", "service", id, "error", err)
	}
}
