package sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/plugins/backend-sim/sim"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// wait bounds every wait for the simulation in these tests.
const wait = 10 * time.Second

// testNodes is the cluster most tests run on: node1 has the image "img",
// node2 is small and has a gpu, off is disabled.
func testNodes() map[string]any {
	return map[string]any{
		"node1": map[string]any{"cores": 4, "memory": "8GiB", "images": []string{"img"}, "address": "10.9.0.1"},
		"node2": map[string]any{"cores": 2, "memory": "4GiB", "labels": []string{"gpu"}},
		"off":   map[string]any{"cores": 8, "memory": "8GiB", "disabled": true},
	}
}

// block returns a configuration block on stateFile with testNodes, with
// overrides (a nil value deletes the attribute).
func block(t testing.TB, stateFile string, overrides map[string]any) []byte {
	t.Helper()
	b := map[string]any{"node": testNodes(), "default_run": "1h", "pull_images": true}
	if stateFile != "" {
		b["state_file"] = stateFile
	}
	maps.Copy(b, overrides)
	maps.DeleteFunc(b, func(_ string, v any) bool { return v == nil })
	js, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// open returns an instance configured on stateFile for the deployment
// "test", closed at the end of the test.
func open(t testing.TB, stateFile string, overrides map[string]any) *sim.Plugin {
	t.Helper()
	return openAs(t, stateFile, "test", overrides)
}

func openAs(t testing.TB, stateFile, deployment string, overrides map[string]any) *sim.Plugin {
	t.Helper()
	p := sim.New(testLogger(t))
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	err := p.Configure(context.Background(), sdk.Config{JSON: block(t, stateFile, overrides), Deployment: deployment})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return p
}

func testLogger(t testing.TB) *slog.Logger { return testutil.PluginLogger(t) }

// stateFile names a state file in a fresh directory.
func stateFile(t testing.TB) string { return filepath.Join(t.TempDir(), "sim.json") }

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// testUser is who the tests' services run as: without Security.AllowRoot
// the simulator, like every back-end, refuses a root or unknown user.
const testUser = "12345:23456"

// spec is a service of 1 core and 1 GiB on image "img", run as testUser,
// with the given environment knobs ("RUN=forever" for ZOE_SIM_RUN=forever).
func spec(name string, knobs ...string) backend.ServiceSpec {
	env := map[string]string{}
	for _, k := range knobs {
		k, v, _ := strings.Cut(k, "=")
		env["ZOE_SIM_"+k] = v
	}
	return backend.ServiceSpec{Name: name, Image: "img", Environment: env, User: testUser,
		Resources: backend.Resources{Cores: 1, MemoryReservation: 1 << 30}}
}

func start(t testing.TB, p backend.Backend, s backend.ServiceSpec) backend.ServiceStatus {
	t.Helper()
	st, err := p.Start(ctxFor(t), s)
	if err != nil {
		t.Fatalf("Start %s: %v", s.Name, err)
	}
	return st
}

func subscribe(t testing.TB, p backend.Backend) <-chan backend.Event {
	t.Helper()
	// The stream lasts as long as the test: with ctxFor's bound it closed
	// after 10 s, before a test that starts thousands of services under
	// load had read it (next bounds each wait instead).
	ch, err := p.Events(t.Context())
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	return ch
}

// next returns the next event of the service, skipping others.
func next(t testing.TB, events <-chan backend.Event, name string) backend.Event {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("event stream closed while waiting for an event of %q", name)
			}
			if e.ServiceName == name {
				return e
			}
		case <-timeout:
			t.Fatalf("no event of %q within %s", name, wait)
		}
	}
}

// expect checks that the service's next events are of the given kinds.
func expect(t testing.TB, events <-chan backend.Event, name string, kinds ...backend.EventKind) []backend.Event {
	t.Helper()
	var got []backend.Event
	for _, k := range kinds {
		e := next(t, events, name)
		if e.Kind != k {
			t.Fatalf("event %d of %q is %+v, want %s (all wanted: %v)", len(got), name, e, k, kinds)
		}
		got = append(got, e)
	}
	return got
}

// waitFor polls cond until it holds or the test's wait is over.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", wait, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func inspect(t testing.TB, p backend.Backend, h backend.Handle) backend.ServiceStatus {
	t.Helper()
	st, err := p.Inspect(ctxFor(t), h)
	if err != nil {
		t.Fatalf("Inspect %s: %v", h.ID, err)
	}
	return st
}

func wantCategory(t testing.TB, what string, err, cat error) {
	t.Helper()
	if cat == nil {
		if err != nil {
			t.Errorf("%s: %v, want no error", what, err)
		}
		return
	}
	if !errors.Is(err, cat) {
		t.Errorf("%s: %v, want %v", what, err, cat)
	}
}
