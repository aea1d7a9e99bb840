package docker

import (
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
)

// hostCache keeps what List and Nodes took from a host's inspects, by
// container id, so that a pass inspects only the containers that changed:
// the listing's summary has the rest. It is safe for concurrent use.
type hostCache struct {
	mu       sync.Mutex
	details  map[string]details
	reserved map[string]reservation
	inspects int // made by List and Nodes, for tests
}

// details is what the summary lacks, read by an inspect when the
// container's summary state was key.
type details struct {
	key                   string
	exitCode              int
	oomKilled             bool
	message               string
	startedAt, finishedAt time.Time
}

// reservation is what Nodes counts for a running container. It is read
// once: a container's resources change only by Update, which drops it.
type reservation struct {
	cores  float64
	memory int64
}

func newHostCache() *hostCache {
	return &hostCache{details: map[string]details{}, reserved: map[string]reservation{}}
}

// summaryKey is what of a container's summary changes when its inspected
// details do: the state, and the status without its age ("Exited (3) 2
// minutes ago" is "exited Exited (3)"; "Up 5 seconds (Paused)" "running Up
// (Paused)"), which changes with the clock and not with the container. A
// container restarted by hand between two listings keeps the same key, and
// so its earlier start time, until its state changes; Zoe never restarts
// one (restart policy no).
func summaryKey(c container.Summary) string {
	var b strings.Builder
	b.WriteString(string(c.State))
	word, rest, _ := strings.Cut(c.Status, " ")
	b.WriteString(" " + word)
	for {
		i := strings.IndexByte(rest, '(')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], ')')
		if j < 0 {
			break
		}
		b.WriteString(" " + rest[i:i+j+1])
		rest = rest[i+j+1:]
	}
	return b.String()
}

// lookup returns the details of container id when they were read for key.
func (c *hostCache) lookup(id, key string) (details, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.details[id]
	return d, ok && d.key == key
}

func (c *hostCache) store(id string, d details) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.details[id] = d
}

// inspected counts an inspect.
func (c *hostCache) inspected() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inspects++
}

// keepDetails drops the details of every container not in ids, the
// host's whole listing: those containers are gone.
func (c *hostCache) keepDetails(ids map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.details {
		if !ids[id] {
			delete(c.details, id)
		}
	}
}

func (c *hostCache) reservation(id string) (reservation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.reserved[id]
	return r, ok
}

func (c *hostCache) storeReservation(id string, r reservation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reserved[id] = r
}

// keepReservations drops the reservations of every container not in ids,
// the host's running Zoe containers.
func (c *hostCache) keepReservations(ids map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.reserved {
		if !ids[id] {
			delete(c.reserved, id)
		}
	}
}

// forget drops what is kept of container id, whose resources changed.
func (c *hostCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.details, id)
	delete(c.reserved, id)
}

// counts reports the inspects made and the containers kept, for tests.
func (c *hostCache) counts() (inspects, details, reserved int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inspects, len(c.details), len(c.reserved)
}
