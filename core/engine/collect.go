package engine

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/zoe-project/zoe/core/logs"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// logKey names a service's log.
type logKey struct {
	exec    int64
	service string
}

// collector copies one container's output into the service's log. It is
// started by the pass for every service that runs and stopped, once the
// container has ended, by drain.
type collector struct {
	handle backend.Handle
	cancel context.CancelFunc
	// finish is closed when the container has ended: the collector reads
	// what remains and stops.
	finish     chan struct{}
	finishOnce sync.Once
	done       chan struct{}
}

func (c *collector) stop() { c.finishOnce.Do(func() { close(c.finish) }) }

func (c *collector) finishing() bool {
	select {
	case <-c.finish:
		return true
	default:
		return false
	}
}

// collect makes sure a collector follows the service's container h.
func (e *Engine) collect(k logKey, h backend.Handle) {
	if e.cfg.Logs == nil || h.ID == "" {
		return
	}
	e.collectorFor(k, h)
}

// following tells whether a collector follows the service's container of
// handle already, or nothing is to be collected (no log store).
func (e *Engine) following(execID int64, service, handle string) bool {
	if e.cfg.Logs == nil {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.collectors[logKey{execID, service}]
	return c != nil && c.handle.ID == handle
}

// collectorFor returns the collector of k for h, starting one if needed; a
// collector of another container of the service is cancelled first, so
// that a service has one writer at a time.
func (e *Engine) collectorFor(k logKey, h backend.Handle) *collector {
	for {
		e.mu.Lock()
		c := e.collectors[k]
		if c == nil {
			ctx, cancel := context.WithCancel(e.runCtx)
			c = &collector{handle: h, cancel: cancel, finish: make(chan struct{}), done: make(chan struct{})}
			e.collectors[k] = c
			e.wg.Go(func() { e.runCollector(ctx, k, c) })
			e.mu.Unlock()
			return c
		}
		e.mu.Unlock()
		if c.handle.ID == h.ID {
			return c
		}
		c.cancel()
		<-c.done // it leaves the map before it is done
	}
}

// drain collects what remains of an ended container's output, bounded by
// LogDrain, and stops its collector: called after the container stopped and
// before it is removed. Without a collector (the daemon restarted since the
// container ended) one is started to read the output once. start false
// (the container is gone) only stops a collector there is.
func (e *Engine) drain(k logKey, h backend.Handle, start bool) {
	if e.cfg.Logs == nil {
		return
	}
	var c *collector
	if start && h.ID != "" {
		c = e.collectorFor(k, h)
	} else {
		e.mu.Lock()
		c = e.collectors[k]
		e.mu.Unlock()
		if c == nil {
			return
		}
	}
	c.stop()
	t := time.NewTimer(e.cfg.LogDrain)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		e.log.Warn("gave up waiting for the rest of a service's output", "execution", k.exec, "service", k.service,
			"after", e.cfg.LogDrain)
		c.cancel()
		<-c.done
	}
}

// closeLog ends a service's log for good, once its execution ends: its
// followers return.
func (e *Engine) closeLog(k logKey) {
	if e.cfg.Logs == nil {
		return
	}
	e.drain(k, backend.Handle{}, false)
	if err := e.cfg.Logs.Close(k.exec, k.service); err != nil {
		e.log.Warn("cannot close a service's log", "execution", k.exec, "service", k.service, "error", err)
	}
}

// runCollector follows the container's output into the log, subscribing
// again when the stream ends or breaks while the container runs (the
// back-end plugin restarted). Each subscription starts at the time of the
// last stored line and the writer drops what it has (logs.Writer.Resync), so
// nothing is stored twice and what was written while no one listened (the
// daemon was down) is not lost.
func (e *Engine) runCollector(ctx context.Context, k logKey, c *collector) {
	log := e.log.With("execution", k.exec, "service", k.service)
	defer func() {
		c.cancel()
		e.mu.Lock()
		if e.collectors[k] == c {
			delete(e.collectors, k)
		}
		e.mu.Unlock()
		close(c.done)
	}()
	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	// pause waits before the next try; false when the collector is to stop.
	// A finish request cuts it short (the last subscription follows at
	// once), unless the try failed: failures are retried at the back-off's
	// pace until drain gives up.
	pause := func(failed bool) bool {
		t := time.NewTimer(backoff)
		defer t.Stop()
		backoff = min(2*backoff, maxBackoff)
		finish := c.finish
		if failed {
			finish = nil
		}
		select {
		case <-ctx.Done():
			return false
		case <-finish:
		case <-t.C:
		}
		return true
	}
	var w *logs.Writer
	for {
		var err error
		if w, err = e.cfg.Logs.Open(k.exec, k.service, c.handle.ID); err == nil {
			break
		}
		log.Warn("cannot open a service's log", "error", err)
		if c.finishing() || !pause(true) {
			return
		}
	}
	defer w.Close()
	backoff = minBackoff
	warned := false // once per collector: a full disk would flood the log
	for {
		// The last subscription, once the container has ended, does not
		// follow: it reads what is there and ends.
		last := c.finishing()
		failed := true
		ch, err := e.cfg.Backend.Logs(ctx, c.handle, backend.LogOptions{Follow: !last, Since: w.Since()})
		if err != nil {
			// Once the container has ended, a failed read is tried again
			// (the plugin may be restarting) until drain gives up on it.
			if ctx.Err() != nil || errors.Is(err, sdk.ErrNotFound) && c.finishing() {
				return
			}
			log.Debug("cannot read a service's output; trying again", "error", err, "in", backoff)
		} else {
			w.Resync()
			since := time.Now()
			n, err := e.copyLog(ctx, ch, w)
			switch {
			case ctx.Err() != nil, errors.Is(err, sdk.ErrNotFound):
				return // stopped, or the log was removed with its execution
			case err != nil:
				// Not stored (a full disk?): read again from the last
				// stored line after a pause, so that nothing is skipped.
				if !warned {
					log.Warn("cannot store a service's output; trying again", "error", err)
					warned = true
				}
			case last:
				// A read that started after the container ended has it all.
				return
			default:
				// A follow stream ended: the container stopped, or the
				// plugin did. The next turn reads what is left, or
				// follows again.
				log.Debug("a service's output stream ended", "in", backoff)
				failed = false
			}
			if n > 0 || time.Since(since) > maxBackoff {
				backoff = minBackoff
			}
		}
		if !pause(failed) {
			return
		}
	}
}

// copyLog appends a stream's entries to the log until it ends or an entry
// cannot be stored; it returns how many were new.
func (e *Engine) copyLog(ctx context.Context, ch <-chan backend.LogEntry, w *logs.Writer) (int, error) {
	n := 0
	for {
		select {
		case <-ctx.Done():
			return n, nil
		case le, ok := <-ch:
			if !ok {
				return n, nil
			}
			stream := logs.Stdout
			if le.Stream == backend.Stderr {
				stream = logs.Stderr
			}
			stored, err := w.Append(logs.Entry{Time: le.Time, Stream: stream, Line: le.Line})
			if err != nil {
				return n, err
			}
			if stored {
				n++
			}
		}
	}
}
