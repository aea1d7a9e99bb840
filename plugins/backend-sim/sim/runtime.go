package sim

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// pollInterval is how often an instance looks at the state file for what
// other instances did: one stat when nothing changed.
const pollInterval = 100 * time.Millisecond

// errUnchanged tells transact that the transaction changed nothing, so there
// is nothing to write.
var errUnchanged = errors.New("unchanged")

// runtime is one configuration of the simulation: the settings, the
// platform in memory, the state file it follows, and the goroutine that
// carries out planned changes on time.
type runtime struct {
	log  *slog.Logger
	set  settings
	feed *feed
	webs *webServers
	file *stateFile

	// txMu orders this instance's transactions; the state file's flock
	// orders them with everybody else's.
	txMu sync.Mutex
	// reload says the platform in memory may differ from the file (a write
	// failed): the next transaction loads the file again. Under txMu.
	reload bool

	// mu guards pl, which transactions change in place.
	mu sync.RWMutex
	pl *platform

	// watchers are closed when their service next changes (Stop);
	// followers get each new record of their service (Logs).
	wmu       sync.Mutex
	watchers  map[string]chan struct{}
	followers map[string]map[*follower]struct{}

	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newRuntime(log *slog.Logger, set settings, f *feed, webs *webServers) (*runtime, error) {
	sf, err := openStateFile(set.statePath)
	if err != nil {
		return nil, err
	}
	return &runtime{
		log: log, set: set, feed: f, webs: webs, file: sf,
		watchers:  map[string]chan struct{}{},
		followers: map[string]map[*follower]struct{}{},
		kick:      make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}, nil
}

// load opens the platform at Configure: it creates the state file when
// missing, and carries out what happened while no plugin was up — ends that
// have passed, and the disappearance of this deployment's services from
// nodes the configuration no longer has. Their events go to the next
// subscriber.
func (rt *runtime) load(ctx context.Context) error {
	var strays []string
	// Earlier events are history, unless this process already follows this
	// platform (Configure called again); the ends carried out now are not.
	begin := func(pl *platform) {
		rt.feed.begin(pl.id, pl.seq)
		for _, err := range rt.file.removeStaleTemps() {
			rt.log.Warn("cannot remove a stale temporary state file", "error", err)
		}
	}
	err := rt.transact(ctx, begin, func(t *tx) error {
		for _, s := range t.pl.services {
			if _, ok := rt.set.node(s.Node); !ok && s.Deployment == rt.set.deployment && s.State == backend.ServiceRunning {
				t.update(s, func(s *service) { s.VanishAt = t.now })
				strays = append(strays, s.Name)
			}
		}
		return nil
	})
	if len(strays) > 0 {
		rt.log.Warn("services on nodes that are no longer configured vanished", "services", strays)
	}
	if err == nil {
		rt.syncWebAll()
	}
	return err
}

// tx is one transaction: it changes the platform in place and records
// what it changed, to append to the state file and to tell the watchers
// and subscribers.
type tx struct {
	pl       *platform
	now      time.Time
	services map[string]*service // nil: removed
	networks map[string]*network
	pulled   map[string]bool
	events   []eventRecord
	counters bool
}

func newTx(pl *platform, now time.Time) *tx {
	return &tx{pl: pl, now: now, services: map[string]*service{}, networks: map[string]*network{}, pulled: map[string]bool{}}
}

// put adds or replaces a service; s must be new, not one of the platform's.
func (t *tx) put(s *service) {
	t.pl.put(s)
	t.services[s.ID] = s
}

// update replaces a service with a copy changed by fn, and returns it.
func (t *tx) update(s *service, fn func(*service)) *service {
	c := cloneService(s)
	fn(c)
	t.put(c)
	return c
}

func (t *tx) drop(id string) {
	t.pl.drop(id)
	t.services[id] = nil
}

func (t *tx) putNetwork(n *network) {
	t.pl.putNetwork(n)
	t.networks[n.ID] = n
}

func (t *tx) dropNetwork(id string) {
	t.pl.dropNetwork(id)
	t.networks[id] = nil
}

func (t *tx) pull(node, image string) {
	t.pl.pulled[node] = slices.Concat(t.pl.pulled[node], []string{image})
	t.pulled[node] = true
}

func (t *tx) emit(deployment string, e backend.Event) {
	t.events = append(t.events, t.pl.appendEvent(deployment, e))
}

// address gives a service an address on its network: 10.<subnet>.x.y, or
// 172.17.x.y without one. Subnets wrap after 255 networks, which does not
// matter to a simulation whose networks are isolated anyway.
func (t *tx) address(netID string) string {
	if n := t.pl.networks[netID]; n != nil {
		c := *n
		c.Hosts++
		t.putNetwork(&c)
		h := c.Hosts + 1
		return fmt.Sprintf("10.%d.%d.%d", c.Subnet%256, (h>>8)%256, h%256)
	}
	t.pl.bridgeHosts++
	t.counters = true
	h := t.pl.bridgeHosts + 1
	return fmt.Sprintf("172.17.%d.%d", (h>>8)%256, h%256)
}

func (t *tx) changed() bool {
	return len(t.services)+len(t.networks)+len(t.pulled)+len(t.events) > 0 || t.counters
}

func (t *tx) record() *change {
	c := &change{NextSubnet: t.pl.nextSubnet, BridgeHosts: t.pl.bridgeHosts, Events: t.events}
	if len(t.services) > 0 {
		c.Services = t.services
	}
	if len(t.networks) > 0 {
		c.Networks = t.networks
	}
	for n := range t.pulled {
		if c.Pulled == nil {
			c.Pulled = map[string][]string{}
		}
		c.Pulled[n] = t.pl.pulled[n]
	}
	return c
}

// advance carries out, in time order, every change planned at or before
// now, each stamped with the time it was due: time runs on while no plugin
// is up.
func (t *tx) advance() {
	for {
		p, ok := t.pl.nextChange()
		if !ok || p.at.After(t.now) {
			return
		}
		heap.Pop(&t.pl.plans)
		_, f, _ := p.s.next()
		t.carryOut(p.s, p.at, f)
	}
}

func (t *tx) carryOut(s *service, at time.Time, f fate) {
	ev := backend.Event{ServiceName: s.Name, HandleID: s.ID, Time: at}
	switch f {
	case fateExit:
		t.update(s, func(s *service) {
			s.State, s.FinishedAt, s.ExitCode, s.Message = backend.ServiceExited, at, s.EndCode, s.EndMessage
		})
		ev.Kind, ev.ExitCode, ev.Message = backend.EventExited, s.EndCode, s.EndMessage
		t.emit(s.Deployment, ev)
	case fateOOM:
		c := t.update(s, func(s *service) {
			s.State, s.FinishedAt, s.ExitCode, s.OOMKilled = backend.ServiceExited, at, 137, true
			s.Message = "killed: out of memory"
			s.Logs = append(s.Logs, logLine{Time: at, Stream: backend.Stderr, Line: "Killed"})
		})
		ev.Kind, ev.Message = backend.EventOOMKilled, c.Message
		t.emit(s.Deployment, ev)
		ev.Kind, ev.ExitCode = backend.EventExited, 137
		t.emit(s.Deployment, ev)
	case fateVanish:
		t.drop(s.ID)
		ev.Kind, ev.Message = backend.EventVanished, "the platform no longer knows the service"
		t.emit(s.Deployment, ev)
	}
}

// transact runs fn on the platform, under the state file's lock, after
// catching up with the file and carrying out the changes that are due, and
// appends what changed to the file. fn must check everything before it
// changes anything; whatever it changed is saved, even when it fails.
// before, if set, looks at the platform as read, before anything is
// carried out.
func (rt *runtime) transact(ctx context.Context, before func(*platform), fn func(t *tx) error) error {
	rt.txMu.Lock()
	defer rt.txMu.Unlock()
	select {
	case <-rt.stop:
		return fmt.Errorf("the sim back-end was configured again or closed: %w", sdk.ErrUnavailable)
	default:
	}
	unlock, err := rt.file.acquire(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	rt.mu.Lock()
	seen, all, err := rt.catchUp()
	if err != nil {
		// Perhaps half applied: start again from the file next time.
		rt.reload = true
		rt.mu.Unlock()
		return err
	}
	pl := rt.pl
	if before != nil {
		before(pl)
	}
	t := newTx(pl, time.Now())
	t.advance()
	ferr := fn(t)
	if errors.Is(ferr, errUnchanged) {
		ferr = nil
	} else if ferr == nil {
		// What fn made due (a Kill, a Stop without grace) happens now.
		t.advance()
	}
	if t.changed() {
		if err := rt.file.append(t.record()); err != nil {
			// The platform in memory is ahead of the file: read it again.
			rt.reload = true
			rt.mu.Unlock()
			return err
		}
	}
	rt.mu.Unlock()
	var compactErr error
	if rt.file.due() {
		// Readers go on meanwhile; writers wait for txMu.
		rt.mu.RLock()
		compactErr = rt.file.rewrite(pl)
		rt.mu.RUnlock()
		if compactErr != nil {
			rt.reload = true
		}
	}

	if all {
		rt.notifyAll()
		rt.updateAllFollowers()
		rt.syncWebAll()
	} else {
		rt.notify(seen.services)
		rt.updateFollowers(seen.services)
		rt.syncWeb(seen.services)
	}
	rt.notify(t.services)
	rt.updateFollowers(t.services)
	rt.syncWeb(t.services)
	rt.feed.deliver(pl.id, seen.events, rt.set.deployment)
	rt.feed.deliver(pl.id, t.events, rt.set.deployment)
	rt.poke()
	if compactErr != nil {
		rt.log.Warn("cannot compact the state file; it is read again", "error", compactErr)
	}
	return ferr
}

// caughtUp is what catching up with the file brought: the services that
// changed and the events.
type caughtUp struct {
	services map[string]*service
	events   []eventRecord
}

// catchUp brings the platform in memory up to date with the state file,
// under its lock and rt.mu: it applies the changes other instances
// appended, or loads the file again when it was replaced (all is then
// true: every service may have changed). A missing file is created.
func (rt *runtime) catchUp() (seen caughtUp, all bool, err error) {
	seen.services = map[string]*service{}
	if rt.pl != nil && !rt.reload {
		ok, err := rt.file.catchUp(rt.pl, func(c *change) {
			for id, s := range c.Services {
				seen.services[id] = s
			}
			seen.events = append(seen.events, c.Events...)
		})
		if err != nil || ok {
			return seen, false, err
		}
	}
	// First load, a replaced file, or a failed write.
	pl, err := rt.file.load()
	if isNotExist(err) {
		if pl, err = newPlatform(); err == nil {
			err = rt.file.rewrite(pl)
		}
	}
	if err != nil {
		return seen, false, err
	}
	first := rt.pl == nil
	rt.pl, rt.reload = pl, false
	if !first {
		// The feed hands on only the events it has not yet.
		seen.events = append(seen.events, pl.recentEvents()...)
	}
	return seen, !first, nil
}

// syncWeb makes the pages this process serves follow the services that
// changed (nil: removed).
func (rt *runtime) syncWeb(changed map[string]*service) {
	for id, s := range changed {
		rt.webs.sync(id, s, rt.set.deployment)
	}
}

// syncWebAll makes the pages this process serves follow the whole
// platform, after it was loaded.
func (rt *runtime) syncWebAll() {
	rt.mu.RLock()
	var serve []*service
	for _, s := range rt.pl.services {
		if s.HTTP && s.State == backend.ServiceRunning && s.Deployment == rt.set.deployment {
			serve = append(serve, s)
		}
	}
	rt.mu.RUnlock()
	rt.webs.syncServed(serve)
}

// read runs fn on the platform as of now: caught up with the file and
// with the changes that are due. fn must not keep the platform, only the
// services and networks it holds, which never change.
func (rt *runtime) read(ctx context.Context, fn func(pl *platform)) error {
	rt.mu.RLock()
	loaded := rt.pl != nil
	due := loaded && len(rt.pl.plans) > 0 && !rt.pl.plans[0].at.After(time.Now())
	rt.mu.RUnlock()
	if !loaded || due || !rt.file.fresh() {
		if err := rt.transact(ctx, nil, func(*tx) error { return errUnchanged }); err != nil {
			return err
		}
	}
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	fn(rt.pl)
	return nil
}

// service returns a service as of now, nil if there is none.
func (rt *runtime) service(ctx context.Context, id string) (*service, error) {
	var s *service
	err := rt.read(ctx, func(pl *platform) { s = pl.services[id] })
	return s, err
}

// watch returns a channel closed when the service next changes or goes
// away, or when the runtime stops.
func (rt *runtime) watch(id string) <-chan struct{} {
	rt.wmu.Lock()
	defer rt.wmu.Unlock()
	ch := rt.watchers[id]
	if ch == nil {
		ch = make(chan struct{})
		rt.watchers[id] = ch
	}
	return ch
}

func (rt *runtime) notify(ids map[string]*service) {
	if len(ids) == 0 {
		return
	}
	rt.wmu.Lock()
	defer rt.wmu.Unlock()
	for id := range ids {
		if ch := rt.watchers[id]; ch != nil {
			close(ch)
			delete(rt.watchers, id)
		}
	}
}

func (rt *runtime) notifyAll() {
	rt.wmu.Lock()
	defer rt.wmu.Unlock()
	for id, ch := range rt.watchers {
		close(ch)
		delete(rt.watchers, id)
	}
}

// waitFor waits until cond holds of the service (nil once gone) or ctx
// ends.
func (rt *runtime) waitFor(ctx context.Context, id string, cond func(*service) bool) error {
	for {
		changed := rt.watch(id)
		s, err := rt.service(ctx, id)
		if err != nil {
			return err
		}
		if cond(s) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-rt.stop:
			return fmt.Errorf("the sim back-end was configured again or closed: %w", sdk.ErrUnavailable)
		case <-changed:
		}
	}
}

// poke wakes the driver to plan its next wake-up anew.
func (rt *runtime) poke() {
	select {
	case rt.kick <- struct{}{}:
	default:
	}
}

// drive carries out planned changes when they are due and follows what
// other instances write, until close.
func (rt *runtime) drive() {
	defer close(rt.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-rt.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var lastErr string
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-rt.stop:
			return
		case <-rt.kick:
		case <-timer.C:
		}
		wait := pollInterval
		err := rt.read(ctx, func(*platform) {})
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			// Logged once per distinct problem, not every poll.
			if err.Error() != lastErr {
				rt.log.Error("cannot follow the simulated platform", "state_file", rt.set.statePath, "error", err)
				lastErr = err.Error()
			}
		default:
			lastErr = ""
			rt.mu.Lock()
			if p, ok := rt.pl.nextChange(); ok {
				wait = min(wait, max(time.Until(p.at), time.Millisecond))
			}
			rt.mu.Unlock()
		}
		timer.Reset(wait)
	}
}

// close stops the driver, waits for it, and ends the waits on this
// runtime.
func (rt *runtime) close() {
	rt.stopOnce.Do(func() { close(rt.stop) })
	<-rt.done
	rt.txMu.Lock()
	rt.file.close()
	rt.txMu.Unlock()
	rt.notifyAll()
	rt.cancelFollowers()
}
