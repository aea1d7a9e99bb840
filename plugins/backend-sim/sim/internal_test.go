package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/zoe-project/zoe/sdk/backend"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"32GiB", 32 << 30, false},
		{"1.5 GB", 1.5e9, false},
		{"512mib", 512 << 20, false},
		{"1048576", 1 << 20, false},
		{"2TiB", 2 << 40, false},
		{"7B", 7, false},
		{"", 0, true},
		{"GiB", 0, true},
		{"-1GiB", 0, true},
		{"1.5B", 0, true},
		{"8 parsecs", 0, true},
		{"99999999999TiB", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for in, want := range map[int64]string{0: "0 B", 1 << 30: "1 GiB", 1536 << 20: "1.5 GiB", 100: "100 B"} {
		if got := formatSize(in); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", in, got, want)
		}
	}
}

// events returns a platform holding n events of the deployment "d".
func eventsPlatform(n int) *platform {
	pl := &platform{ID: "p"}
	for i := range n {
		pl.emit("d", backend.Event{Kind: backend.EventStarted, ServiceName: fmt.Sprint(i)})
	}
	return pl
}

// A subscriber that falls hopelessly behind has its stream closed; the
// others carry on, and delivery never waits for it.
func TestHopelesslyBehindSubscriberIsClosed(t *testing.T) {
	f := newFeed(slog.New(slog.DiscardHandler))
	defer f.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	slow, err := f.subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := f.subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.begin("p", 0)
	got := 0
	// Batches of maxEvents, as the state file's window holds, read by fast
	// but not by slow, until slow is more than maxPending behind besides
	// what its channel buffers.
	for batch := 0; batch*maxEvents <= maxPending+subscriberBuffer+1; batch++ {
		pl := &platform{ID: "p", Seq: uint64(batch * maxEvents)}
		for i := range maxEvents {
			pl.emit("d", backend.Event{Kind: backend.EventStarted, ServiceName: fmt.Sprint(batch, "-", i)})
		}
		f.deliver(pl, "d")
		for range maxEvents {
			select {
			case <-fast:
				got++
			case <-ctx.Done():
				t.Fatalf("the fast subscriber got %d events", got)
			}
		}
	}
	n := 0
	for range slow {
		n++
	}
	if n > maxPending {
		t.Errorf("the slow subscriber got %d events before its stream closed, more than %d", n, maxPending)
	}
}

// Events with no subscriber wait for the first one; later subscribers get
// only what comes after them.
func TestBacklogGoesToTheNextSubscriber(t *testing.T) {
	f := newFeed(slog.New(slog.DiscardHandler))
	defer f.close()
	f.begin("p", 0)
	f.deliver(eventsPlatform(3), "d")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, _ := f.subscribe(ctx)
	second, _ := f.subscribe(ctx)
	for i := range 3 {
		if e := <-first; e.ServiceName != fmt.Sprint(i) {
			t.Fatalf("backlog event %d = %+v", i, e)
		}
	}
	pl := eventsPlatform(4)
	f.deliver(pl, "d")
	f.deliver(pl, "d") // seen twice: handed on once
	for _, ch := range []<-chan backend.Event{first, second} {
		if e := <-ch; e.ServiceName != "3" {
			t.Errorf("event %+v, want service 3", e)
		}
	}
	select {
	case e := <-first:
		t.Errorf("unexpected event %+v", e)
	case e := <-second:
		t.Errorf("unexpected event %+v", e)
	default:
	}
}

// A transaction modifies a clone of the cached platform, which readers
// share: the clone must share nothing modifiable with it.
func TestCloneIsDeep(t *testing.T) {
	pl, err := newPlatform()
	if err != nil {
		t.Fatal(err)
	}
	pl.Services["s"] = &service{ID: "s", Name: "svc", Labels: map[string]string{"a": "b"},
		Ports: []backend.PublishedPort{{Port: 1}}, Logs: []logLine{{Line: "x"}}, State: backend.ServiceRunning}
	pl.Networks["n"] = &network{ID: "n", Labels: map[string]string{"c": "d"}}
	pl.Pulled["node1"] = []string{"img"}
	pl.emit("d", backend.Event{Kind: backend.EventStarted})
	before, _ := json.Marshal(pl)
	c := pl.clone()
	if got, _ := json.Marshal(c); string(got) != string(before) {
		t.Fatalf("clone differs:\n%s\n%s", got, before)
	}
	s := c.Services["s"]
	s.Name, s.Labels["a"], s.Ports[0].Port, s.Logs[0].Line = "changed", "changed", 2, "changed"
	s.Logs = append(s.Logs, logLine{Line: "more"})
	c.Networks["n"].Labels["c"] = "changed"
	c.Pulled["node1"][0] = "changed"
	c.Events[0].Event.Kind = backend.EventExited
	c.emit("d", backend.Event{})
	delete(c.Services, "s")
	if after, _ := json.Marshal(pl); string(after) != string(before) {
		t.Errorf("changing the clone changed the original:\n%s\n%s", after, before)
	}
}
