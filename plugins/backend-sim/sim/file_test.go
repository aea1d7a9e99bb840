package sim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/sdk/backend"
)

// bigNodes holds thousands of services.
func bigNodes() map[string]any {
	return map[string]any{"node": map[string]any{
		"node1": map[string]any{"cores": 1e6, "memory": "1000TiB", "images": []string{"img"}},
	}}
}

// Changes append lines until they outweigh the snapshot; then the file is
// one snapshot again. Another instance following the file meanwhile sees
// every service and every event once, in order, whether it read the lines
// before the file was replaced or loaded the new one, as long as it looks
// at least once between two compactions (its driver does every 100 ms; the
// test makes sure with a List every 100 starts, far less than a
// compaction's worth).
func TestCompactionKeepsEverything(t *testing.T) {
	path := stateFile(t)
	a, b := open(t, path, bigNodes()), open(t, path, bigNodes())
	events := subscribe(t, b)
	const n = 4000 // about 2 MiB of changes: compacted at least once
	s := spec("", "RUN=forever")
	s.Resources = backend.Resources{Cores: 0.001, MemoryReservation: 1 << 20}
	s.Labels = map[string]string{"zoe.deployment": "test", "zoe.owner": "someone"}
	for i := range n {
		s.Name = fmt.Sprintf("svc-%05d", i)
		start(t, a, s)
		if i%100 == 0 {
			if _, err := b.List(ctxFor(t), backend.ListOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if lines := bytes.Count(raw, []byte("\n")); lines >= n {
		t.Errorf("the state file has %d lines after %d starts: never compacted", lines, n)
	}
	for i := range n {
		if e := next(t, events, fmt.Sprintf("svc-%05d", i)); e.Kind != backend.EventStarted {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	select {
	case e := <-events:
		t.Errorf("an event twice or unexpected: %+v", e)
	default:
	}
	for _, p := range []backend.Backend{a, b, open(t, path, bigNodes())} {
		list, err := p.List(ctxFor(t), backend.ListOptions{})
		if err != nil || len(list) != n || list[n-1].Name != fmt.Sprintf("svc-%05d", n-1) {
			t.Fatalf("List = %d services, %v; want %d", len(list), err, n)
		}
	}
}

// A line cut short by a process killed while writing it is cut off by the
// next instance: the platform is as it was before that change.
func TestTornLineIsCutOff(t *testing.T) {
	path := stateFile(t)
	first := open(t, path, nil)
	start(t, first, spec("kept", "RUN=forever"))
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"services":{"torn":{"id":"torn","na`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	second := open(t, path, nil)
	start(t, second, spec("after", "RUN=forever"))
	list, err := open(t, path, nil).List(ctxFor(t), backend.ListOptions{})
	if err != nil || len(list) != 2 || list[0].Name != "after" || list[1].Name != "kept" {
		t.Errorf("List = %+v, %v; want after and kept", list, err)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte(`"torn"`)) {
		t.Errorf("the torn line is still in the file:\n%s", raw)
	}
}

// A state file of the first format (one JSON object rewritten on every
// change, the first log line stored) is read, and rewritten in the new one
// so that an older plugin refuses it rather than miss changes.
func TestFormat1IsConverted(t *testing.T) {
	path := stateFile(t)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	old := map[string]any{"format": 1, "id": "0123456789abcdef", "rev": 7, "seq": 1,
		"services": map[string]any{"abc": map[string]any{
			"id": "abc", "name": "svc", "deployment": "test", "node": "node1", "image": "img", "ip": "172.17.0.2",
			"state": "running", "started_at": at, "exit_code": 0, "end_code": 0,
			"resources": map[string]any{"cores": 1, "memory_reservation": 1 << 30},
			"logs": []map[string]any{{"time": at, "stream": "stdout", "line": "started svc on node1"},
				{"time": at.Add(1), "stream": "stdout", "line": "hello"}},
		}},
		"networks": map[string]any{}, "pulled": map[string]any{}, "next_subnet": 1, "bridge_hosts": 1,
		"events": []map[string]any{{"seq": 1, "deployment": "test", "event": map[string]any{"Kind": "started", "ServiceName": "svc"}}},
	}
	b, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p := open(t, path, nil)
	list, err := p.List(ctxFor(t), backend.ListOptions{})
	if err != nil || len(list) != 1 || list[0].State != backend.ServiceRunning || !list[0].StartedAt.Equal(at) {
		t.Fatalf("List = %+v, %v; want svc running since %s", list, err, at)
	}
	ch, err := p.Logs(ctxFor(t), list[0].Handle, backend.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l := range ch {
		lines = append(lines, string(l.Line))
	}
	if want := []string{"started svc on node1", "hello"}; !slices.Equal(lines, want) {
		t.Errorf("logs %q, want %q", lines, want)
	}
	raw, _ := os.ReadFile(path)
	if first, _, _ := strings.Cut(string(raw), "\n"); !strings.Contains(first, `"format":2`) {
		t.Errorf("the file was not rewritten in format 2: %.200s", first)
	}
}
