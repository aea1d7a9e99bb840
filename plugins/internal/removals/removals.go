// Package removals remembers ids for a while: what a back-end removed
// itself, so that the platform's report of the removal is not taken for a
// service that vanished (and, in the Docker back-end, the containers its
// events said were OOM-killed).
package removals

import (
	"sync"
	"time"
)

// Set holds ids removed in the last Keep. It is safe for concurrent use.
type Set struct {
	keep time.Duration
	now  func() time.Time

	mu sync.Mutex
	at map[string]time.Time
}

// New returns an empty set that forgets an id keep after it was added.
func New(keep time.Duration) *Set {
	return &Set{keep: keep, now: time.Now, at: map[string]time.Time{}}
}

// Add remembers id, and forgets the ids older than the set's keep.
func (s *Set) Add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, t := range s.at {
		if now.Sub(t) > s.keep {
			delete(s.at, k)
		}
	}
	s.at[id] = now
}

// Has tells whether id was added less than the set's keep ago.
func (s *Set) Has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.at[id]
	return ok && s.now().Sub(t) <= s.keep
}
