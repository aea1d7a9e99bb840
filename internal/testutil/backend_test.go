package testutil

import (
	"context"
	"testing"
	"time"

	"github.com/zoe-project/zoe/sdk/backend"
)

// startRecorder is a back-end whose Start records the spec; its other
// methods are not called here.
type startRecorder struct {
	backend.Backend
	got backend.ServiceSpec
}

func (r *startRecorder) Start(_ context.Context, spec backend.ServiceSpec) (backend.ServiceStatus, error) {
	r.got = spec
	return backend.ServiceStatus{Name: spec.Name}, nil
}

func TestStartService(t *testing.T) {
	tests := []struct {
		name         string
		spec         backend.ServiceSpec
		user         string
		wantName     string // "" for a random one
		wantHostname string // "" for the name
	}{
		{"defaults", backend.ServiceSpec{}, ServiceUser, "", ""},
		{"named", backend.ServiceSpec{Name: "a"}, ServiceUser, "a", ""},
		{"its own hostname and user", backend.ServiceSpec{Name: "a", Hostname: "h", User: "1:2"}, "1:2", "a", "h"},
		{"root allowed", backend.ServiceSpec{Name: "a", Security: backend.Security{AllowRoot: true}}, "", "a", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &startRecorder{}
			StartService(t, context.Background(), r, "net", tt.spec)
			g := r.got
			wantHostname := tt.wantHostname
			if wantHostname == "" {
				wantHostname = g.Name
			}
			if g.User != tt.user || g.Network != "net" || len(g.Name) == 0 || (tt.wantName != "" && g.Name != tt.wantName) || g.Hostname != wantHostname {
				t.Errorf("Start got %+v; want user %q, network net, name %q, hostname %q", g, tt.user, tt.wantName, wantHostname)
			}
		})
	}
}

// TestWaitEvents: the kinds asked for of the service asked for, in any
// order; the others are passed over.
func TestWaitEvents(t *testing.T) {
	events := make(chan backend.Event, 8)
	for _, e := range []backend.Event{
		{ServiceName: "other", Kind: backend.EventExited},
		{ServiceName: "s", Kind: backend.EventStarted},
		{ServiceName: "s", Kind: backend.EventExited, ExitCode: 137},
		{ServiceName: "s", Kind: backend.EventExited, ExitCode: 1},
		{ServiceName: "s", Kind: backend.EventOOMKilled},
	} {
		events <- e
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := WaitEvents(t, ctx, events, "s", backend.EventOOMKilled, backend.EventExited)
	if len(got) != 2 || got[backend.EventExited].ExitCode != 137 || got[backend.EventOOMKilled].ServiceName != "s" {
		t.Errorf("WaitEvents = %+v; want the first exit of s, and its OOM kill", got)
	}
}

func TestRandomSuffix(t *testing.T) {
	a, b := RandomSuffix(), RandomSuffix()
	if len(a) != 8 || a == b {
		t.Errorf("RandomSuffix = %q, then %q; want 8 hex digits, not twice the same", a, b)
	}
}
