package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/zoe-project/zoe/sdk/backend"
)

// This file helps the tests of back-end plugins on a real platform (the
// Docker and swarm back-ends'): names of their own, an execution network,
// services, and waits on what the platform does.

// RandomSuffix is 8 random hex digits: a name made with it is the test's
// own on a platform that other tests use too.
func RandomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ServiceUser is who StartService runs a service as when its spec names
// no user: back-ends refuse an image's own user, which may be root, unless
// the spec allows root.
const ServiceUser = "12345:23456"

// CreateNetwork creates an execution network of a name of its own on p.
func CreateNetwork(t testing.TB, ctx context.Context, p backend.Backend) string {
	t.Helper()
	id, err := p.CreateNetwork(ctx, backend.NetworkSpec{Name: "zoe-test-net-" + RandomSuffix(), Labels: map[string]string{"zoe.execution": "test"}})
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	return id
}

// StartService starts spec on network net, as ServiceUser when it names no
// user and does not allow root, with a name of its own when it has none
// and that name as its hostname when it has none.
func StartService(t testing.TB, ctx context.Context, p backend.Backend, net string, spec backend.ServiceSpec) backend.ServiceStatus {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "svc-" + RandomSuffix()
	}
	if spec.User == "" && !spec.Security.AllowRoot {
		spec.User = ServiceUser
	}
	if spec.Hostname == "" {
		spec.Hostname = spec.Name
	}
	spec.Network = net
	st, err := p.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start %s: %v", spec.Name, err)
	}
	return st
}

// WaitUntil polls cond every 100 ms until it holds, failing t with what and
// cond's last description once ctx ends. (WaitFor is the same with a
// timeout and a faster poll, for what costs less to ask.)
func WaitUntil(t testing.TB, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	for {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s; last: %s", what, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitEvent waits for an event of kind about the service named name.
func WaitEvent(t testing.TB, ctx context.Context, events <-chan backend.Event, name string, kind backend.EventKind) backend.Event {
	t.Helper()
	return WaitEvents(t, ctx, events, name, kind)[kind]
}

// WaitEvents waits for an event of each kind about the service named name,
// in any order: a platform reports an OOM kill and the exit it causes
// apart, in no set order (a loaded Docker engine can send the oom event
// after the die).
func WaitEvents(t testing.TB, ctx context.Context, events <-chan backend.Event, name string, kinds ...backend.EventKind) map[backend.EventKind]backend.Event {
	t.Helper()
	got := map[backend.EventKind]backend.Event{}
	for len(got) < len(kinds) {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("event stream closed before %v of %s (got %v)", kinds, name, slices.Collect(maps.Keys(got)))
			}
			if _, seen := got[e.Kind]; e.ServiceName == name && !seen && slices.Contains(kinds, e.Kind) {
				got[e.Kind] = e
			}
		case <-ctx.Done():
			t.Fatalf("no %v events for %s (got %v)", kinds, name, slices.Collect(maps.Keys(got)))
		}
	}
	return got
}

// LogLines returns the lines a service wrote so far.
func LogLines(t testing.TB, ctx context.Context, p backend.Backend, h backend.Handle) []backend.LogEntry {
	t.Helper()
	ch, err := p.Logs(ctx, h, backend.LogOptions{})
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	var out []backend.LogEntry
	for e := range ch {
		out = append(out, e)
	}
	return out
}
