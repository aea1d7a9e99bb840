package docker

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/dockerapi"
	"github.com/zoe-project/zoe/sdk/backend"
)

// subscriberQueue is how many events a slow subscriber may fall behind.
const subscriberQueue = 256

// publish hands an event of the plugin's own (an image pull) to every
// subscriber, dropping it for one whose queue is full.
func (p *Plugin) publish(e backend.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ch := range p.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

// Events streams the deployment's container events from every host, and the
// plugin's image pulls, until ctx ends.
func (p *Plugin) Events(ctx context.Context) (<-chan backend.Event, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, err
	}
	since := time.Now()
	reachable := 0
	var lastErr error
	for _, name := range rt.order {
		pctx, cancel := context.WithTimeout(ctx, nodeCallTimeout)
		_, err := rt.hosts[name].cli.Ping(pctx, client.PingOptions{})
		cancel()
		if err == nil {
			reachable++
		} else {
			lastErr = dockerapi.Wrap(err, "events from %s", name)
		}
	}
	if reachable == 0 {
		return nil, lastErr
	}
	out := make(chan backend.Event, subscriberQueue)
	own := make(chan backend.Event, subscriberQueue)
	p.mu.Lock()
	id := p.next
	p.next++
	p.subs[id] = own
	p.mu.Unlock()

	var wg sync.WaitGroup
	for _, name := range rt.order {
		wg.Go(func() { p.follow(ctx, rt, rt.hosts[name], since, out) })
	}
	wg.Go(func() {
		defer func() {
			p.mu.Lock()
			delete(p.subs, id)
			p.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-own:
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	})
	go func() {
		wg.Wait()
		close(out)
	}()
	return out, nil
}

// follow turns one host's event stream into backend events, subscribing
// again, from the last event seen, whenever the stream breaks.
func (p *Plugin) follow(ctx context.Context, rt *runtime, h *host, since time.Time, out chan<- backend.Event) {
	filters := client.Filters{}.
		Add("type", string(events.ContainerEventType)).
		Add("label", LabelDeployment+"="+rt.deployment).
		Add("event", string(events.ActionStart), string(events.ActionDie), string(events.ActionOOM), string(events.ActionDestroy))
	oom := map[string]bool{} // containers with an oom_killed sent and no die yet
	for ctx.Err() == nil {
		sctx, cancel := context.WithCancel(ctx)
		res := h.cli.Events(sctx, client.EventsListOptions{Since: dockerapi.Timestamp(since), Filters: filters})
		err := p.consume(sctx, h, res, oom, &since, out)
		cancel()
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("event stream broken; subscribing again", "host", h.name, "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(resubscribeDelay):
		}
	}
}

func (p *Plugin) consume(ctx context.Context, h *host, res client.EventsResult, oom map[string]bool, since *time.Time, out chan<- backend.Event) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err, ok := <-res.Err:
			if !ok {
				return errors.New("event stream closed")
			}
			return err
		case m := <-res.Messages:
			t := time.Unix(0, m.TimeNano)
			if m.TimeNano == 0 {
				t = time.Unix(m.Time, 0)
			}
			// Subscribing again from the last event's time replays it;
			// one nanosecond later does not.
			if t.After(*since) || t.Equal(*since) {
				*since = t.Add(time.Nanosecond)
			}
			for _, e := range p.translate(ctx, h, m, t, oom) {
				select {
				case out <- e:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
	}
}

// translate maps one engine event to backend events.
func (p *Plugin) translate(ctx context.Context, h *host, m events.Message, t time.Time, oom map[string]bool) []backend.Event {
	base := backend.Event{ServiceName: m.Actor.Attributes["name"], HandleID: m.Actor.ID, Time: t}
	with := func(k backend.EventKind, msg string) backend.Event {
		e := base
		e.Kind, e.Message = k, msg
		return e
	}
	switch m.Action {
	case events.ActionStart:
		return []backend.Event{with(backend.EventStarted, "started on "+h.name)}
	case events.ActionOOM:
		p.ooms.Add(m.Actor.ID)
		if oom[m.Actor.ID] {
			return nil
		}
		oom[m.Actor.ID] = true
		return []backend.Event{with(backend.EventOOMKilled, "out of memory")}
	case events.ActionDie:
		var evs []backend.Event
		if !oom[m.Actor.ID] {
			if res, err := h.inspect(ctx, m.Actor.ID); err == nil &&
				res.Container.State != nil && res.Container.State.OOMKilled {
				evs = append(evs, with(backend.EventOOMKilled, "out of memory"))
			}
		}
		delete(oom, m.Actor.ID)
		code, _ := strconv.Atoi(m.Actor.Attributes["exitCode"])
		e := with(backend.EventExited, "exited with code "+strconv.Itoa(code))
		e.ExitCode = code
		return append(evs, e)
	case events.ActionDestroy:
		delete(oom, m.Actor.ID)
		if p.removed.Has(m.Actor.ID) {
			return nil
		}
		return []backend.Event{with(backend.EventVanished, "removed from "+h.name+" by someone else")}
	}
	return nil
}

// Logs streams a container's stdout and stderr, one entry per line.
func (p *Plugin) Logs(ctx context.Context, h backend.Handle, opts backend.LogOptions) (<-chan backend.LogEntry, error) {
	_, hst, c, err := p.locate(ctx, h)
	if err != nil {
		return nil, err
	}
	rc, err := hst.cli.ContainerLogs(ctx, c.ID, dockerapi.LogsOptions(opts))
	if err != nil {
		return nil, dockerapi.Wrap(err, "logs of container %s", c.ID)
	}
	out := make(chan backend.LogEntry, 64)
	go func() {
		defer close(out)
		defer rc.Close()
		if err := dockerapi.CopyLogs(ctx, rc, out, nil); err != nil {
			p.log.Debug("log stream ended", "container", c.ID, "error", err)
		}
	}()
	return out, nil
}
