package api

import (
	"context"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// keptCache holds answers read at one version of the store
// (Store.Version) and forgets them all when a newer version comes. The
// values are shared by the requests that get them: read-only.
type keptCache[T any] struct {
	mu      sync.Mutex
	version uint64
	m       map[string]T
	loads   singleflight.Group

	// afterMiss, nil but in tests, runs in Load between a miss and
	// joining the loads: a test ends another load there, to show that
	// a caller coming in right after it does not load again.
	afterMiss func()
}

// maxCachedReads bounds a cache; a full one starts again. Keys longer
// than maxCachedKey are not kept: with the values (pages of at most
// MaxLimit executions) they bound what a cache holds.
const (
	maxCachedReads = 256
	maxCachedKey   = 4 << 10
)

// Get returns the value put under key at version, if any.
func (c *keptCache[T]) Get(version uint64, key string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	if !ok || c.version != version {
		var zero T
		return zero, false
	}
	return v, true
}

// Put keeps v under key for version, the Version read before v was: a
// value is never kept under a version older than what it shows. A value
// of an older version than the cache's is dropped: a slow request does
// not throw away what the newer ones kept.
func (c *keptCache[T]) Put(version uint64, key string, v T) {
	if len(key) > maxCachedKey {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.m != nil && version < c.version:
		return
	case c.m == nil || version > c.version || len(c.m) >= maxCachedReads:
		c.version, c.m = version, map[string]T{}
	}
	c.m[key] = v
}

// Load returns the value kept under key at version or, when there is
// none, what load returns, and keeps it. Callers missing the same key at
// the same version together share one load (right after a write, every
// client's next request misses); it runs without ctx's cancellation, for
// the others, and at most loadTimeout.
func (c *keptCache[T]) Load(ctx context.Context, version uint64, key string, load func(context.Context) (T, error)) (T, error) {
	if v, ok := c.Get(version, key); ok {
		return v, nil
	}
	if c.afterMiss != nil {
		c.afterMiss()
	}
	ch := c.loads.DoChan(strconv.FormatUint(version, 10)+" "+key, func() (_ any, err error) {
		// singleflight panics again where nothing can recover: a bug in
		// a load would end the daemon rather than its requests.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("a read panicked: %v\n%s", r, debug.Stack())
			}
		}()
		// A caller that missed just before the previous load of this key
		// ended comes here after it: the value is kept by now, and a
		// second load would read the same thing again.
		if v, ok := c.Get(version, key); ok {
			return v, nil
		}
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
		defer cancel()
		v, err := load(lctx)
		if err == nil {
			c.Put(version, key, v)
		}
		return v, err
	})
	select {
	case r := <-ch:
		v, _ := r.Val.(T)
		return v, r.Err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// loadTimeout bounds a load shared by several callers.
const loadTimeout = 30 * time.Second
