package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk"
)

// errNoExecution: the store has no such execution.
var errNoExecution = errors.New("no such execution")

// target is what the proxy knows of one execution, as read at one store
// version.
type target struct {
	owner    string
	status   state.Status
	services map[string]service
}

type service struct {
	status state.ServiceStatus
	// ports by number, tcp only: the proxy speaks HTTP.
	ports map[int]port
	// token is the instance's ZOE_PROXY_TOKEN (zapp.Instance.ProxyToken),
	// presented to it with each request; "" for none.
	token string
}

type port struct {
	// proxy: the ZApp marks the port "proxy": true.
	proxy bool
	// addr is where Zoe recorded the port published, "" when it has not.
	addr string
}

// lookups reads targets from the store, and reuses one while the store's
// version stays: any write (a status change among them) makes the next
// request read again, so a terminated execution is refused at once.
type lookups struct {
	store Store
	mu    sync.Mutex
	cache map[int64]cached
}

type cached struct {
	version uint64
	t       *target
}

// maxCached bounds the cache; it is emptied when full (one read each of
// the executions in use refills it).
const maxCached = 4096

func newLookups(s Store) *lookups { return &lookups{store: s, cache: map[int64]cached{}} }

// get returns the execution's target, from the cache when the store has
// not changed since it was read.
func (l *lookups) get(ctx context.Context, id int64) (*target, error) {
	v, ok := l.store.Version(ctx)
	if ok {
		l.mu.Lock()
		c, hit := l.cache[id]
		l.mu.Unlock()
		if hit && c.version == v {
			return c.t, nil
		}
	}
	// The version is read before the data: a write in between makes the
	// entry stale at once, never a stale entry look fresh.
	t, err := l.read(ctx, id)
	if err != nil || !ok {
		return t, err
	}
	l.mu.Lock()
	if len(l.cache) >= maxCached {
		clear(l.cache)
	}
	l.cache[id] = cached{v, t}
	l.mu.Unlock()
	return t, nil
}

// read reads the execution's target from the store.
func (l *lookups) read(ctx context.Context, id int64) (*target, error) {
	ex, err := l.store.GetExecution(ctx, id)
	if errors.Is(err, sdk.ErrNotFound) {
		return nil, errNoExecution
	}
	if err != nil {
		return nil, fmt.Errorf("reading execution %d: %w", id, err)
	}
	t := &target{owner: ex.Owner, status: ex.Status, services: map[string]service{}}
	if !ex.Status.Active() {
		return t, nil // nothing more is needed to refuse it
	}
	svs, err := l.store.Services(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading the services of execution %d: %w", id, err)
	}
	eps, err := l.store.Endpoints(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading the endpoints of execution %d: %w", id, err)
	}
	byID := make(map[int64]string, len(svs))
	for _, sv := range svs {
		byID[sv.ID] = sv.Name
		s := service{status: sv.Status, ports: map[int]port{}}
		// The instance's ports say which are proxied; a description that
		// does not decode proxies nothing.
		var in struct {
			Ports      []zapp.Port `json:"ports"`
			ProxyToken string      `json:"proxy_token"`
		}
		if len(sv.Description) > 0 && json.Unmarshal(sv.Description, &in) == nil {
			s.token = in.ProxyToken
			for _, p := range in.Ports {
				if (p.Protocol == "" || p.Protocol == "tcp") && p.PortNumber > 0 {
					pt := s.ports[p.PortNumber]
					pt.proxy = pt.proxy || p.Proxy
					s.ports[p.PortNumber] = pt
				}
			}
		}
		t.services[sv.Name] = s
	}
	for _, ep := range eps {
		name, ok := byID[ep.ServiceID]
		if !ok {
			name = ep.ServiceName
		}
		s, ok := t.services[name]
		if !ok || (ep.Protocol != "" && ep.Protocol != "tcp") {
			continue
		}
		pt, ok := s.ports[ep.Port]
		if !ok {
			continue // a port the description does not declare: not proxied
		}
		// The published address, not the service's IP: the IP is on the
		// execution's network, which the daemon is not on when the
		// back-end's host is another machine (and backend-sim's IPs are
		// not real); the published address is where Zoe itself says the
		// port is reached.
		if ep.ExternalAddress != "" && ep.ExternalPort > 0 && ep.ExternalPort < 1<<16 {
			pt.addr = net.JoinHostPort(ep.ExternalAddress, strconv.Itoa(ep.ExternalPort))
		}
		s.ports[ep.Port] = pt
	}
	return t, nil
}
