package docker

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

func TestSummaryKey(t *testing.T) {
	tests := []struct {
		state  container.ContainerState
		status string
		want   string
	}{
		{container.StateCreated, "Created", "created Created"},
		{container.StateRunning, "Up Less than a second", "running Up"},
		{container.StateRunning, "Up 3 hours", "running Up"},
		{container.StateRunning, "Up About a minute (healthy)", "running Up (healthy)"},
		{container.StatePaused, "Up 2 minutes (Paused)", "paused Up (Paused)"},
		{container.StateExited, "Exited (3) 5 seconds ago", "exited Exited (3)"},
		{container.StateExited, "Exited (137) About an hour ago", "exited Exited (137)"},
		{container.StateRestarting, "Restarting (1) 2 seconds ago", "restarting Restarting (1)"},
		{container.StateDead, "Dead", "dead Dead"},
		{container.StateExited, "Exited (1", "exited Exited"},
		{container.StateExited, "", "exited "},
	}
	for _, tt := range tests {
		if got := summaryKey(container.Summary{State: tt.state, Status: tt.status}); got != tt.want {
			t.Errorf("summaryKey(%s, %q) = %q, want %q", tt.state, tt.status, got, tt.want)
		}
	}
}

// fakeEngine answers the few calls List and Nodes make, and counts the
// inspects of each container.
type fakeEngine struct {
	mu         sync.Mutex
	containers map[string]fakeContainer
	inspects   map[string]int
}

type fakeContainer struct {
	state     container.ContainerState
	status    string
	exitCode  int
	labels    map[string]string
	nanoCPUs  int64
	memoryRes int64
}

func (f *fakeEngine) set(id string, c fakeContainer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.labels == nil {
		c.labels = map[string]string{}
	}
	c.labels[LabelDeployment] = "d"
	f.containers[id] = c
}

func (f *fakeEngine) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, id)
}

// counts returns the inspects made since the last call, by container.
func (f *fakeEngine) counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.inspects
	f.inspects = map[string]int{}
	return out
}

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := r.URL.Path
	if i := strings.Index(path[1:], "/"); strings.HasPrefix(path, "/v") && i > 0 {
		path = path[i+1:]
	}
	var out any
	switch id, ok := strings.CutSuffix(strings.TrimPrefix(path, "/containers/"), "/json"); {
	case path == "/_ping":
		w.Header().Set("Api-Version", "1.41")
		return
	case path == "/info":
		out = map[string]any{"NCPU": 4, "MemTotal": 8 << 30}
	case path == "/images/json":
		out = []any{}
	case path == "/containers/json":
		all := r.URL.Query().Get("all") == "1"
		list := []container.Summary{}
		for id, c := range f.containers {
			if all || c.state == container.StateRunning {
				list = append(list, container.Summary{ID: id, Names: []string{"/" + id}, Labels: c.labels, State: c.state, Status: c.status})
			}
		}
		out = list
	case ok && !strings.Contains(id, "/"):
		c, found := f.containers[id]
		if !found {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": "no such container: " + id})
			return
		}
		f.inspects[id]++
		out = container.InspectResponse{ID: id, Name: "/" + id, Config: &container.Config{Labels: c.labels},
			State:      &container.State{Status: c.state, ExitCode: c.exitCode, StartedAt: "2026-01-02T03:04:05Z"},
			HostConfig: &container.HostConfig{Resources: container.Resources{NanoCPUs: c.nanoCPUs, MemoryReservation: c.memoryRes}}}
	default:
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func fakeHost(t *testing.T) (*fakeEngine, *host) {
	t.Helper()
	f := &fakeEngine{containers: map[string]fakeContainer{}, inspects: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cli, err := client.New(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithAPIVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return f, &host{name: "n", cli: cli, external: "127.0.0.1", cache: newHostCache()}
}

func listHost(t *testing.T, h *host) map[string]int {
	t.Helper()
	res, err := h.cli.ContainerList(context.Background(), client.ContainerListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	sts, err := h.statuses(context.Background(), res.Items, true)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int{}
	for _, st := range sts {
		codes[st.Name] = st.ExitCode
	}
	return codes
}

// TestListInspects: a container is inspected when it first appears and
// when its state changes; not when only its age does.
func TestListInspects(t *testing.T) {
	f, h := fakeHost(t)
	f.set("a", fakeContainer{state: container.StateRunning, status: "Up 2 seconds"})
	f.set("b", fakeContainer{state: container.StateRunning, status: "Up 2 seconds"})
	steps := []struct {
		name   string
		change func()
		want   map[string]int // inspects
		codes  map[string]int
	}{
		{"first listing", nil, map[string]int{"a": 1, "b": 1}, map[string]int{"a": 0, "b": 0}},
		{"older", func() {
			f.set("a", fakeContainer{state: container.StateRunning, status: "Up 2 minutes"})
			f.set("b", fakeContainer{state: container.StateRunning, status: "Up 2 minutes"})
		}, map[string]int{}, map[string]int{"a": 0, "b": 0}},
		{"b exited", func() {
			f.set("b", fakeContainer{state: container.StateExited, status: "Exited (3) 1 second ago", exitCode: 3})
		},
			map[string]int{"b": 1}, map[string]int{"a": 0, "b": 3}},
		{"a new one, a gone", func() {
			f.remove("a")
			f.set("c", fakeContainer{state: container.StateCreated, status: "Created"})
		}, map[string]int{"c": 1}, map[string]int{"b": 3, "c": 0}},
	}
	for _, s := range steps {
		if s.change != nil {
			s.change()
		}
		codes := listHost(t, h)
		if got := f.counts(); !maps.Equal(got, s.want) {
			t.Errorf("%s: inspects %v, want %v", s.name, got, s.want)
		}
		if !maps.Equal(codes, s.codes) {
			t.Errorf("%s: exit codes %v, want %v", s.name, codes, s.codes)
		}
	}
	if _, kept, _ := h.cache.counts(); kept != 2 {
		t.Errorf("%d containers kept, want 2 (a is gone)", kept)
	}
}

// TestNodeReservations: a running container's resources are inspected
// once, counted from its label (else its cap), and forgotten when it is
// gone or updated.
func TestNodeReservations(t *testing.T) {
	f, h := fakeHost(t)
	p := New(slog.New(slog.DiscardHandler))
	f.set("a", fakeContainer{state: container.StateRunning, status: "Up 1 second", labels: map[string]string{LabelCores: "0.5"}, nanoCPUs: 2e9, memoryRes: 1 << 20})
	f.set("b", fakeContainer{state: container.StateRunning, status: "Up 1 second", nanoCPUs: 1e9, memoryRes: 2 << 20})
	f.set("c", fakeContainer{state: container.StateExited, status: "Exited (0) 1 second ago", labels: map[string]string{LabelCores: "8"}})
	steps := []struct {
		name   string
		change func()
		want   map[string]int
		cores  float64
		memory int64
	}{
		{"first", nil, map[string]int{"a": 1, "b": 1}, 1.5, 3 << 20},
		{"again", nil, map[string]int{}, 1.5, 3 << 20},
		{"a gone", func() { f.remove("a") }, map[string]int{}, 1, 2 << 20},
		{"b updated", func() {
			h.cache.forget("b")
			f.set("b", fakeContainer{state: container.StateRunning, status: "Up 1 second", nanoCPUs: 1e9, memoryRes: 4 << 20})
		},
			map[string]int{"b": 1}, 1, 4 << 20},
	}
	for _, s := range steps {
		if s.change != nil {
			s.change()
		}
		n := p.node(context.Background(), h)
		if got := f.counts(); !maps.Equal(got, s.want) {
			t.Errorf("%s: inspects %v, want %v", s.name, got, s.want)
		}
		if n.CoresReserved != s.cores || n.MemoryReserved != s.memory {
			t.Errorf("%s: reserved %v cores, %d bytes; want %v, %d", s.name, n.CoresReserved, n.MemoryReserved, s.cores, s.memory)
		}
	}
	if _, _, kept := h.cache.counts(); kept != 1 {
		t.Errorf("%d reservations kept, want 1", kept)
	}
}

// TestCacheConcurrent: Lists and Nodes at once, while containers change
// (run with -race).
func TestCacheConcurrent(t *testing.T) {
	f, h := fakeHost(t)
	p := New(slog.New(slog.DiscardHandler))
	for _, id := range []string{"a", "b", "c"} {
		f.set(id, fakeContainer{state: container.StateRunning, status: "Up 1 second"})
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				if (i+j)%5 == 0 {
					f.set("b", fakeContainer{state: []container.ContainerState{container.StateRunning, container.StateExited}[j%2], status: "x"})
				}
				res, err := h.cli.ContainerList(context.Background(), client.ContainerListOptions{All: true})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := h.statuses(context.Background(), res.Items, true); err != nil {
					t.Error(err)
				}
				p.node(context.Background(), h)
			}
		})
	}
	wg.Wait()
}
