package sim

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/zoe-project/zoe/sdk/backend"
)

// pollInterval is how often an instance looks at the state file for what
// other instances did, and the longest a planned change waits past its time
// when this instance was not told of it.
const pollInterval = 100 * time.Millisecond

// errUnchanged tells mutate that the transaction changed nothing, so there
// is nothing to write.
var errUnchanged = errors.New("unchanged")

// runtime is one configuration of the simulation: the settings, the state
// file and the goroutine that carries out planned changes on time.
type runtime struct {
	log  *slog.Logger
	set  settings
	feed *feed

	// txMu orders this instance's own transactions; the flock orders them
	// with everybody else's.
	txMu sync.Mutex

	mu sync.Mutex
	// cache is the last platform read or written, with the bytes of the
	// file it came from: reading a file is cheap, decoding it is not.
	cache    *platform
	cacheRaw []byte
	// changed is closed and replaced whenever cache moves on.
	changed chan struct{}

	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newRuntime(log *slog.Logger, set settings, f *feed) *runtime {
	return &runtime{log: log, set: set, feed: f, changed: make(chan struct{}),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

func (rt *runtime) lockPath() string { return rt.set.statePath + ".lock" }

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
		rt.feed.begin(pl.ID, pl.Seq)
		rt.removeStaleTemps()
	}
	_, err := rt.transact(ctx, begin, func(pl *platform, now time.Time) error {
		for _, s := range pl.Services {
			if _, ok := rt.set.node(s.Node); !ok && s.Deployment == rt.set.deployment && s.State == backend.ServiceRunning {
				s.VanishAt = now
				strays = append(strays, s.Name)
			}
		}
		return nil
	})
	if len(strays) > 0 {
		rt.log.Warn("services on nodes that are no longer configured vanished", "services", strays)
	}
	return err
}

// removeStaleTemps removes the temporary files of writers killed mid-write.
// It runs under the lock, when no writer can be at work.
func (rt *runtime) removeStaleTemps() {
	dir, base := filepath.Split(rt.set.statePath)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), base+".tmp-") {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			rt.log.Warn("cannot remove a stale temporary state file", "path", e.Name(), "error", err)
		}
	}
}

// mutate runs fn on a fresh copy of the platform, under the state file's
// lock, after carrying out the changes that are due, and saves the result.
// fn must check everything before it modifies anything: on error, its
// changes are saved if the due changes made the platform change anyway. The
// platform returned is saved and must not be modified.
func (rt *runtime) mutate(ctx context.Context, fn func(pl *platform, now time.Time) error) (*platform, error) {
	return rt.transact(ctx, nil, fn)
}

// transact is mutate with a look at the platform as read, before anything
// is carried out.
func (rt *runtime) transact(ctx context.Context, before func(*platform), fn func(pl *platform, now time.Time) error) (*platform, error) {
	rt.txMu.Lock()
	defer rt.txMu.Unlock()
	unlock, err := lockFile(ctx, rt.lockPath())
	if err != nil {
		return nil, err
	}
	defer unlock()
	raw, err := os.ReadFile(rt.set.statePath)
	fresh := isNotExist(err)
	var pl *platform
	switch {
	case fresh:
		pl, err = newPlatform()
	case err == nil:
		pl, err = rt.decode(raw, true)
	}
	if err != nil {
		return nil, err
	}
	if before != nil {
		before(pl)
	}
	now := time.Now()
	changed := pl.advance(now) || fresh
	ferr := fn(pl, now)
	if errors.Is(ferr, errUnchanged) {
		ferr = nil
	} else if ferr == nil {
		pl.advance(now)
		changed = true
	}
	if changed {
		pl.Rev++
		raw, err := writePlatform(rt.set.statePath, pl)
		if err != nil {
			return nil, err
		}
		rt.publish(pl, raw)
		rt.feed.deliver(pl, rt.set.deployment)
		rt.poke()
	}
	if ferr != nil {
		return nil, ferr
	}
	return pl, nil
}

// publish makes pl, read from or written as raw, the cached platform
// unless a later revision is cached.
func (rt *runtime) publish(pl *platform, raw []byte) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.cache != nil && rt.cache.ID == pl.ID && rt.cache.Rev > pl.Rev {
		return
	}
	moved := rt.cache != pl
	rt.cache, rt.cacheRaw = pl, raw
	if moved {
		close(rt.changed)
		rt.changed = make(chan struct{})
	}
}

// decode returns the platform a state file's content holds: the cached one
// when the content is the cached content (a copy when the caller means to
// modify it), else the content decoded, which becomes the cached one.
func (rt *runtime) decode(raw []byte, modify bool) (*platform, error) {
	rt.mu.Lock()
	c, same := rt.cache, rt.cache != nil && bytes.Equal(raw, rt.cacheRaw)
	rt.mu.Unlock()
	if same {
		if modify {
			return c.clone(), nil
		}
		return c, nil
	}
	pl, err := decodePlatform(rt.set.statePath, raw)
	if err != nil {
		return nil, err
	}
	if !modify {
		rt.publish(pl, raw)
	}
	return pl, nil
}

// changes returns a channel closed when the cached platform next changes.
func (rt *runtime) changes() <-chan struct{} {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.changed
}

// current returns the platform as the state file has it now, without the
// lock: the file is only ever replaced whole. The result must not be
// modified.
func (rt *runtime) current() (*platform, error) {
	raw, err := os.ReadFile(rt.set.statePath)
	if isNotExist(err) {
		// Deleted behind the plugin's back: an empty platform, which the
		// next transaction saves anew.
		return &platform{Format: stateFormat, Services: map[string]*service{}, Networks: map[string]*network{}, Pulled: map[string][]string{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return rt.decode(raw, false)
}

// view returns the platform as of now, carrying out due changes first, and
// hands on the events other instances wrote.
func (rt *runtime) view(ctx context.Context) (*platform, error) {
	pl, err := rt.current()
	if err != nil {
		return nil, err
	}
	if pl.due(time.Now()) {
		return rt.mutate(ctx, func(*platform, time.Time) error { return errUnchanged })
	}
	rt.feed.deliver(pl, rt.set.deployment)
	return pl, nil
}

// waitFor waits until cond holds of the platform or ctx ends.
func (rt *runtime) waitFor(ctx context.Context, cond func(*platform) bool) error {
	for {
		changed := rt.changes()
		pl, err := rt.view(ctx)
		if err != nil {
			return err
		}
		if cond(pl) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-time.After(pollInterval):
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
		pl, err := rt.view(ctx)
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
			if at, ok := pl.nextChange(); ok {
				wait = min(wait, max(time.Until(at), time.Millisecond))
			}
		}
		timer.Reset(wait)
	}
}

// close stops the driver and waits for it.
func (rt *runtime) close() {
	rt.stopOnce.Do(func() { close(rt.stop) })
	<-rt.done
}
