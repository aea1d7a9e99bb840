package api

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestKeptCache(t *testing.T) {
	type op struct {
		put     bool
		version uint64
		key     string
		val     int
		hit     bool // for a get
	}
	for _, tc := range []struct {
		name string
		ops  []op
	}{
		{"empty", []op{{version: 0, key: "a"}, {version: 1, key: "a"}}},
		{"kept at its version only", []op{
			{put: true, version: 3, key: "a", val: 1},
			{version: 3, key: "a", val: 1, hit: true},
			{version: 2, key: "a"},
			{version: 4, key: "a"},
			{version: 3, key: "b"},
		}},
		{"a newer version forgets the older", []op{
			{put: true, version: 3, key: "a", val: 1},
			{put: true, version: 4, key: "b", val: 2},
			{version: 4, key: "b", val: 2, hit: true},
			{version: 4, key: "a"},
			{version: 3, key: "a"},
		}},
		{"an older value does not displace newer ones", []op{
			{put: true, version: 4, key: "a", val: 1},
			{put: true, version: 3, key: "b", val: 2},
			{version: 4, key: "a", val: 1, hit: true},
			{version: 3, key: "b"},
			{version: 4, key: "b"},
		}},
		{"replaced at the same version", []op{
			{put: true, version: 4, key: "a", val: 1},
			{put: true, version: 4, key: "a", val: 2},
			{version: 4, key: "a", val: 2, hit: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c keptCache[int]
			for i, o := range tc.ops {
				if o.put {
					c.Put(o.version, o.key, o.val)
					continue
				}
				v, ok := c.Get(o.version, o.key)
				if ok != o.hit || ok && v != o.val {
					t.Errorf("op %d: get %q at %d = %d, %v; want %d, %v", i, o.key, o.version, v, ok, o.val, o.hit)
				}
			}
		})
	}
	t.Run("bounded", func(t *testing.T) {
		var c keptCache[int]
		const n = 10000
		for i := range n {
			c.Put(1, fmt.Sprint(i), i)
		}
		kept := 0
		for i := range n {
			if v, ok := c.Get(1, fmt.Sprint(i)); ok {
				if v != i {
					t.Fatalf("%d holds %d", i, v)
				}
				kept++
			}
		}
		if kept == 0 || kept > 1000 {
			t.Errorf("%d of %d values kept", kept, n)
		}
		if v, ok := c.Get(1, fmt.Sprint(n-1)); !ok || v != n-1 {
			t.Errorf("the last value put is gone: %d, %v", v, ok)
		}
	})
}

func TestKeptCacheLoad(t *testing.T) {
	t.Run("callers share one load", func(t *testing.T) {
		var c keptCache[int]
		var loads atomic.Int32
		release := make(chan struct{})
		load := func(context.Context) (int, error) {
			loads.Add(1)
			<-release
			return 7, nil
		}
		var wg sync.WaitGroup
		got := make([]int, 8)
		for i := range got {
			wg.Go(func() {
				v, err := c.Load(t.Context(), 1, "k", load)
				if err != nil {
					t.Error(err)
				}
				got[i] = v
			})
		}
		// Every caller waits on the one load before it ends.
		for loads.Load() == 0 {
			runtime.Gosched()
		}
		close(release)
		wg.Wait()
		if n := loads.Load(); n != 1 {
			t.Errorf("%d loads for 8 callers", n)
		}
		if !slices.Equal(got, []int{7, 7, 7, 7, 7, 7, 7, 7}) {
			t.Errorf("got %v", got)
		}
		if v, err := c.Load(t.Context(), 1, "k", func(context.Context) (int, error) { return 0, errors.New("loaded again") }); v != 7 || err != nil {
			t.Errorf("kept value: %d, %v", v, err)
		}
	})
	// The interleaving behind "2 loads for 8 callers", forced: a caller
	// misses the cache, then the load in flight ends and keeps its value,
	// and only then does the caller join the loads, finding none in
	// flight. It must take the kept value rather than load again.
	t.Run("a caller missing just before a load ends does not load again", func(t *testing.T) {
		var c keptCache[int]
		var loads atomic.Int32
		started, release := make(chan struct{}), make(chan struct{})
		first := make(chan error, 1)
		go func() {
			_, err := c.Load(t.Context(), 1, "k", func(context.Context) (int, error) {
				loads.Add(1)
				close(started)
				<-release
				return 7, nil
			})
			first <- err
		}()
		<-started
		// The first caller is past its miss (in its load): the hook is
		// the second caller's alone.
		c.afterMiss = func() {
			close(release)
			if err := <-first; err != nil {
				t.Errorf("first caller: %v", err)
			}
		}
		v, err := c.Load(t.Context(), 1, "k", func(context.Context) (int, error) {
			loads.Add(1)
			return 8, nil
		})
		if v != 7 || err != nil {
			t.Errorf("second caller: %d, %v; want the kept 7", v, err)
		}
		if n := loads.Load(); n != 1 {
			t.Errorf("%d loads for 2 callers", n)
		}
	})
	t.Run("errors are not kept", func(t *testing.T) {
		var c keptCache[int]
		if _, err := c.Load(t.Context(), 1, "k", func(context.Context) (int, error) { return 0, errors.New("boom") }); err == nil {
			t.Fatal("no error")
		}
		if v, err := c.Load(t.Context(), 1, "k", func(context.Context) (int, error) { return 3, nil }); v != 3 || err != nil {
			t.Errorf("after an error: %d, %v", v, err)
		}
	})
	t.Run("a panic is an error", func(t *testing.T) {
		var c keptCache[int]
		_, err := c.Load(t.Context(), 1, "k", func(context.Context) (int, error) { panic("bug") })
		if err == nil || !strings.Contains(err.Error(), "bug") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("a caller that leaves does not stop the load", func(t *testing.T) {
		var c keptCache[int]
		release := make(chan struct{})
		ctx, cancel := context.WithCancel(t.Context())
		started := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := c.Load(ctx, 1, "k", func(lctx context.Context) (int, error) {
				close(started)
				<-release
				return 5, lctx.Err()
			})
			done <- err
		}()
		<-started
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("the caller that left: %v", err)
		}
		close(release)
		// The load ends, not cancelled, and its value is kept for the
		// next caller.
		v, err := c.Load(t.Context(), 1, "k", func(context.Context) (int, error) { return 0, errors.New("loaded again") })
		if v != 5 || err != nil {
			t.Errorf("after: %d, %v", v, err)
		}
	})
	t.Run("long keys are not kept", func(t *testing.T) {
		var c keptCache[int]
		long := strings.Repeat("k", 10<<10)
		c.Put(1, long, 1)
		if _, ok := c.Get(1, long); ok {
			t.Error("a 10 KiB key was kept")
		}
	})
}
