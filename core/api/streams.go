package api

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/zoe-project/zoe/client"
)

// streamCounts counts the open streams (events, followed logs) of each
// user: a stream holds a goroutine, a connection's stream and a poll of
// the store for as long as the client likes.
type streamCounts struct {
	mu sync.Mutex
	m  map[string]int
}

// openStream counts a stream of c's user, or answers 429 when they have
// MaxStreamsPerUser open already. The caller calls done once the stream
// ends.
func (s *Server) openStream(w http.ResponseWriter, c *caller) (done func(), ok bool) {
	name := c.name()
	sc := &s.streams
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.m[name] >= s.cfg.MaxStreamsPerUser {
		w.Header().Set("Retry-After", "5")
		s.error(w, http.StatusTooManyRequests, client.CodeTooManyRequests,
			fmt.Sprintf("you have %d streams open (events and followed logs), the most allowed; close one first", sc.m[name]))
		return nil, false
	}
	if sc.m == nil {
		sc.m = map[string]int{}
	}
	sc.m[name]++
	var once sync.Once
	return func() {
		once.Do(func() {
			sc.mu.Lock()
			defer sc.mu.Unlock()
			if sc.m[name]--; sc.m[name] <= 0 {
				delete(sc.m, name)
			}
		})
	}, true
}

// openStreams is how many streams name has open.
func (s *Server) openStreams(name string) int {
	s.streams.mu.Lock()
	defer s.streams.mu.Unlock()
	return s.streams.m[name]
}
