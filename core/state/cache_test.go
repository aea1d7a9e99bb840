package state_test

import (
	"fmt"
	"testing"

	"github.com/zoe-project/zoe/core/state"
)

func TestVersionedCache(t *testing.T) {
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
			var c state.VersionedCache[int]
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
		var c state.VersionedCache[int]
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
