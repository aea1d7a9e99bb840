package docker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/dockerapi"
	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/plugins/backend-docker/docker"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

func TestConfigure(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name  string
		block map[string]any
		path  string // of the expected diagnostic; "" for none
	}{
		{"local engine by default", nil, ""},
		{"a host block", map[string]any{"host": map[string]any{"n1": map[string]any{"address": "tcp://10.0.0.1:2376", "external_address": "10.0.0.1", "labels": []string{"gpu"}}}}, ""},
		{"a bad address", map[string]any{"host": map[string]any{"n1": map[string]any{"address": "bogus://x y"}}}, "host.n1.address"},
		{"missing TLS files", map[string]any{"host": map[string]any{"n1": map[string]any{"address": "tcp://10.0.0.1:2376",
			"tls": map[string]any{"ca_file": filepath.Join(dir, "ca.pem"), "cert_file": filepath.Join(dir, "c.pem"), "key_file": filepath.Join(dir, "k.pem")}}}}, "host.n1.tls.ca_file"},
		{"an unknown attribute", map[string]any{"hosts": 1}, "invalid configuration"},
		{"cores of its own", map[string]any{"host": map[string]any{"n1": map[string]any{"cores": 12.5}}}, ""},
		{"negative cores", map[string]any{"host": map[string]any{"n1": map[string]any{"cores": -2}}}, "host.n1.cores"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var js []byte
			if c.block != nil {
				js, _ = json.Marshal(c.block)
			}
			p := docker.New(slog.New(slog.DiscardHandler))
			defer func() { _ = p.Close(context.Background()) }()
			err := p.Configure(context.Background(), sdk.Config{JSON: js, Deployment: "d"})
			if c.path == "" {
				if err != nil {
					t.Fatalf("Configure: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.path) {
				t.Fatalf("Configure = %v, want a diagnostic about %s", err, c.path)
			}
		})
	}
}

func TestNodes(t *testing.T) {
	t.Parallel()
	dep := deployment(t)
	p := open(t, dep, map[string]any{"host": map[string]any{"n1": map[string]any{"labels": []string{"ssd"}, "external_address": "10.1.2.3", "cores": 64}}})
	ctx := ctxFor(t)
	net := testutil.CreateNetwork(t, ctx, p)
	testutil.StartService(t, ctx, p, net, backend.ServiceSpec{Image: testimages.HTTPService,
		Resources: backend.Resources{Cores: 0.25, MemoryReservation: 16 << 20, MemoryLimit: 64 << 20}})
	nodes, err := p.Nodes(ctx)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("Nodes = %+v, %v; want one node", nodes, err)
	}
	n := nodes[0]
	for _, c := range []struct {
		what string
		ok   bool
	}{
		{"named n1", n.Name == "n1"},
		{"ready", n.State == backend.NodeReady},
		{"with its configured cores and the engine's memory", n.Cores == 64 && n.MemoryBytes > 0},
		{"labelled ssd", slices.Equal(n.Labels, []string{"ssd"})},
		{"at its external address", n.Address == "10.1.2.3"},
		{"holding the test images", slices.Contains(n.Images, testimages.HTTPService)},
		{"with the service's reservations", n.CoresReserved >= 0.25 && n.MemoryReserved >= 16<<20},
	} {
		if !c.ok {
			t.Errorf("node %+v: not %s", n, c.what)
		}
	}
	// Without cores, the engine's CPUs.
	info, err := dockerClient(t).Info(ctx, client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nodes, err := open(t, dep, nil).Nodes(ctx); err != nil || len(nodes) != 1 || nodes[0].Cores != float64(info.Info.NCPU) {
		t.Errorf("Nodes without cores = %+v, %v; want the engine's %d CPUs", nodes, err, info.Info.NCPU)
	}
}

// TestDNSNames: a worker reaches its master by the master's hostname on the
// execution network.
func TestDNSNames(t *testing.T) {
	t.Parallel()
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	events, err := p.Events(ctx)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	net := testutil.CreateNetwork(t, ctx, p)
	master := "master-" + testutil.RandomSuffix()
	testutil.StartService(t, ctx, p, net, backend.ServiceSpec{Name: master, Hostname: master, Image: testimages.HTTPService})
	w := testutil.StartService(t, ctx, p, net, backend.ServiceSpec{Image: testimages.Worker, Environment: map[string]string{"MASTER": master + ":8080"}})
	if e := testutil.WaitEvent(t, ctx, events, w.Name, backend.EventExited); e.ExitCode != 0 {
		t.Errorf("worker exited with %d: %q", e.ExitCode, testutil.LogLines(t, ctx, p, w.Handle))
	}
	lines := testutil.LogLines(t, ctx, p, w.Handle)
	want := "answer: hello from " + master
	if !slices.ContainsFunc(lines, func(e backend.LogEntry) bool { return string(e.Line) == want }) {
		t.Errorf("worker's output %q: want a line %q", lines, want)
	}
}

// TestPublishedPort: a declared port answers HTTP on the host.
func TestPublishedPort(t *testing.T) {
	t.Parallel()
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	net := testutil.CreateNetwork(t, ctx, p)
	st := testutil.StartService(t, ctx, p, net, backend.ServiceSpec{Image: testimages.HTTPService, Ports: []backend.Port{{Port: 8080, Protocol: "tcp"}}})
	if len(st.Ports) != 1 || st.Ports[0].Port != 8080 || st.Ports[0].HostPort == 0 || st.Ports[0].HostAddress != "127.0.0.1" {
		t.Fatalf("Start's ports %+v: want 8080 published on 127.0.0.1", st.Ports)
	}
	if st.IP == "" {
		t.Errorf("Start returned no IP on the execution network")
	}
	url := fmt.Sprintf("http://%s:%d/", st.Ports[0].HostAddress, st.Ports[0].HostPort)
	hc := &http.Client{Timeout: 2 * time.Second}
	testutil.WaitUntil(t, ctx, "the published port to answer", func() (bool, string) {
		resp, err := hc.Get(url)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.HasPrefix(string(body), "hello from "), string(body)
	})
}

// TestWorkspace: a job writes into its bind-mounted workspace; the file
// appears in the host directory; a read-only mount refuses the write.
func TestWorkspace(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		readOnly bool
		exit     int
	}{
		{"read-write", false, 0},
		{"read-only", true, 1},
	}
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	events, err := p.Events(ctx)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	net := testutil.CreateNetwork(t, ctx, p)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			// The job runs as testutil.ServiceUser: only the mount's flag may refuse.
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			st := testutil.StartService(t, ctx, p, net, backend.ServiceSpec{Image: testimages.Job,
				Environment: map[string]string{"ZOE_WORKSPACE": "/workspace", "CONTENT": "hello workspace"},
				Volumes:     []backend.Volume{{HostPath: dir, MountPoint: "/workspace", ReadOnly: c.readOnly}}})
			if e := testutil.WaitEvent(t, ctx, events, st.Name, backend.EventExited); e.ExitCode != c.exit {
				t.Fatalf("job exited with %d, want %d: %q", e.ExitCode, c.exit, testutil.LogLines(t, ctx, p, st.Handle))
			}
			b, err := os.ReadFile(filepath.Join(dir, "job-output.txt"))
			if c.readOnly {
				if err == nil {
					t.Errorf("the job wrote %q through a read-only mount", b)
				}
				return
			}
			if err != nil || string(b) != "hello workspace\n" {
				t.Errorf("workspace file = %q, %v; want the job's content", b, err)
			}
			if fi, err := os.Stat(filepath.Join(dir, "job-output.txt")); err == nil {
				if st := fi.Sys().(*syscall.Stat_t); st.Uid != 12345 || st.Gid != 23456 {
					t.Errorf("workspace file owned by %d:%d, want the service's user %s", st.Uid, st.Gid, testutil.ServiceUser)
				}
			}
		})
	}
}

// TestOOM: a service over its memory limit is reported OOM-killed.
func TestOOM(t *testing.T) {
	t.Parallel()
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	events, err := p.Events(ctx)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	net := testutil.CreateNetwork(t, ctx, p)
	st := testutil.StartService(t, ctx, p, net, backend.ServiceSpec{Image: testimages.OOM, Resources: backend.Resources{MemoryLimit: 32 << 20}})
	e := testutil.WaitEvents(t, ctx, events, st.Name, backend.EventOOMKilled, backend.EventExited)[backend.EventExited]
	if e.ExitCode != 137 {
		t.Errorf("exit code %d, want 137", e.ExitCode)
	}
	got, err := p.Inspect(ctx, st.Handle)
	if err != nil || !got.OOMKilled || got.State != backend.ServiceExited {
		t.Errorf("Inspect = %+v, %v; want exited and OOM-killed", got, err)
	}
}

func TestLogs(t *testing.T) {
	t.Parallel()
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	net := testutil.CreateNetwork(t, ctx, p)
	st := testutil.StartService(t, ctx, p, net, backend.ServiceSpec{Image: testimages.HTTPService, Environment: map[string]string{"TICK": "100ms"}})
	testutil.WaitUntil(t, ctx, "three ticks", func() (bool, string) {
		n := 0
		for _, e := range testutil.LogLines(t, ctx, p, st.Handle) {
			if strings.HasPrefix(string(e.Line), "tick ") {
				n++
			}
		}
		return n >= 3, fmt.Sprint(n, " ticks")
	})
	all := testutil.LogLines(t, ctx, p, st.Handle)
	cases := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"stdout and stderr, stamped", func(t *testing.T) {
			if all[0].Time.IsZero() {
				t.Errorf("entry %+v has no time", all[0])
			}
			if !slices.ContainsFunc(all, func(e backend.LogEntry) bool {
				return e.Stream == backend.Stdout && string(e.Line) == "listening on :8080"
			}) {
				t.Errorf("no stdout line \"listening on :8080\" in %q", all)
			}
			if !slices.ContainsFunc(all, func(e backend.LogEntry) bool {
				return e.Stream == backend.Stderr && strings.HasPrefix(string(e.Line), "hostname ")
			}) {
				t.Errorf("no stderr line \"hostname ...\" in %q", all)
			}
		}},
		{"tail", func(t *testing.T) {
			ch, err := p.Logs(ctx, st.Handle, backend.LogOptions{Tail: 2})
			if err != nil {
				t.Fatalf("Logs: %v", err)
			}
			n := 0
			for range ch {
				n++
			}
			if n != 2 {
				t.Errorf("Tail 2 gave %d lines", n)
			}
		}},
		{"follow", func(t *testing.T) {
			fctx, cancel := context.WithCancel(ctx)
			defer cancel()
			ch, err := p.Logs(fctx, st.Handle, backend.LogOptions{Follow: true, Tail: 1})
			if err != nil {
				t.Fatalf("Logs: %v", err)
			}
			seen := map[string]bool{}
			deadline := time.After(10 * time.Second)
			for len(seen) < 5 {
				select {
				case e, ok := <-ch:
					if !ok {
						t.Fatalf("the followed stream ended after %d lines", len(seen))
					}
					seen[string(e.Line)] = true
				case <-deadline:
					t.Fatalf("following gave only %d lines in 10s", len(seen))
				}
			}
			cancel()
			for range ch { // closed when the context ends
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, c.check)
	}
}

// TestLongLogLine: a line of 2.5 MiB, which the engine keeps in parts of
// 16 KiB each with a time of its own, comes back as the line's text alone
// (none of the parts' times in it), cut in parts of at most
// dockerapi.MaxLogLine, each with the line's time; then the next line.
func TestLongLogLine(t *testing.T) {
	t.Parallel()
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	net := testutil.CreateNetwork(t, ctx, p)
	const n = 5 << 19
	st := testutil.StartService(t, ctx, p, net, backend.ServiceSpec{Image: testimages.Job,
		Environment: map[string]string{"LONG_LINE": strconv.Itoa(n)}})
	testutil.WaitUntil(t, ctx, "the job to exit", func() (bool, string) {
		got, err := p.Inspect(ctx, st.Handle)
		return err == nil && got.State == backend.ServiceExited, fmt.Sprint(got.State, err)
	})
	var got []string
	total := 0
	entries := testutil.LogLines(t, ctx, p, st.Handle)
	for i, e := range entries {
		l := string(e.Line)
		if strings.HasPrefix(l, "x") {
			total += len(l)
			if strings.Trim(l, "x") != "" || len(l) > dockerapi.MaxLogLine || !e.Time.Equal(entries[0].Time) {
				t.Errorf("part %d: %d bytes at %s, not only x (the engine's times in it?) or over %d bytes or not at the line's time %s",
					i, len(l), e.Time, dockerapi.MaxLogLine, entries[0].Time)
			}
			l = fmt.Sprintf("%d x", len(l))
		}
		got = append(got, l)
	}
	want := []string{"1048576 x", "1048576 x", "524288 x", "exiting with 0"}
	if !slices.Equal(got, want) || total != n {
		t.Errorf("log: %q (%d x), want %q", got, total, want)
	}
}

// TestList: each deployment lists its own containers, in every state.
func TestList(t *testing.T) {
	t.Parallel()
	// The deployments first: each waits for the engine's lock, which a
	// test needing the engine alone may hold for minutes, and that wait
	// must not eat the context's time.
	a, b := open(t, deployment(t), nil), open(t, deployment(t), nil)
	ctx := ctxFor(t)
	netA, netB := testutil.CreateNetwork(t, ctx, a), testutil.CreateNetwork(t, ctx, b)
	runA := testutil.StartService(t, ctx, a, netA, backend.ServiceSpec{Image: testimages.HTTPService})
	doneA := testutil.StartService(t, ctx, a, netA, backend.ServiceSpec{Image: testimages.Job})
	runB := testutil.StartService(t, ctx, b, netB, backend.ServiceSpec{Image: testimages.HTTPService})
	testutil.WaitUntil(t, ctx, "the job to exit", func() (bool, string) {
		st, err := a.Inspect(ctx, doneA.Handle)
		return err == nil && st.State == backend.ServiceExited, fmt.Sprint(st.State, err)
	})
	cases := []struct {
		name string
		p    backend.Backend
		want []string
	}{
		{"deployment a", a, []string{runA.Name, doneA.Name}},
		{"deployment b", b, []string{runB.Name}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			list, err := c.p.List(ctx, backend.ListOptions{})
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			var got []string
			for _, s := range list {
				got = append(got, s.Name)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(c.want))
			if !slices.Equal(got, want) {
				t.Errorf("List names %v, want %v", got, want)
			}
		})
	}
}

// TestRecover: a second instance takes services back from their handles.
func TestRecover(t *testing.T) {
	t.Parallel()
	dep := deployment(t)
	first, second := open(t, dep, nil), open(t, dep, nil)
	ctx := ctxFor(t)
	net := testutil.CreateNetwork(t, ctx, first)
	st := testutil.StartService(t, ctx, first, net, backend.ServiceSpec{Image: testimages.HTTPService})
	gone := testutil.StartService(t, ctx, first, net, backend.ServiceSpec{Image: testimages.HTTPService})
	if err := first.Remove(ctx, gone.Handle, true); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	stranger := open(t, deployment(t), nil)
	theirs := testutil.StartService(t, ctx, stranger, testutil.CreateNetwork(t, ctx, stranger), backend.ServiceSpec{Image: testimages.HTTPService})
	cases := []struct {
		name    string
		h       backend.Handle
		wantErr error
	}{
		{"full handle", st.Handle, nil},
		{"again: idempotent", st.Handle, nil},
		{"id only", backend.Handle{ID: st.Handle.ID}, nil},
		{"removed container", gone.Handle, sdk.ErrNotFound},
		// The ID decides: what names nothing of ours is not found,
		// whatever the State.
		{"removed container, garbled state", backend.Handle{ID: gone.Handle.ID, Version: 1, State: []byte("{")}, sdk.ErrNotFound},
		{"removed container, a newer plugin's version", backend.Handle{ID: gone.Handle.ID, Version: 99, State: gone.Handle.State}, sdk.ErrNotFound},
		{"the container's name for its id", backend.Handle{ID: st.Name}, sdk.ErrNotFound},
		{"an id prefix", backend.Handle{ID: st.Handle.ID[:12]}, sdk.ErrNotFound},
		{"another deployment's container", theirs.Handle, sdk.ErrNotFound},
		{"another deployment's container, by id", backend.Handle{ID: theirs.Handle.ID}, sdk.ErrNotFound},
		{"a newer plugin's version", backend.Handle{ID: st.Handle.ID, Version: 99, State: st.Handle.State}, sdk.ErrUnsupported},
		{"garbled state", backend.Handle{ID: st.Handle.ID, Version: 1, State: []byte("{")}, sdk.ErrInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := second.Recover(ctx, c.h)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Errorf("Recover: %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil || got.Name != st.Name || got.State != backend.ServiceRunning || got.Handle.ID != st.Handle.ID {
				t.Errorf("Recover = %+v, %v; want %s running", got, err, st.Name)
			}
		})
	}
}

// TestStartErrors: a taken name, a missing image that cannot be pulled.
func TestStartErrors(t *testing.T) {
	t.Parallel()
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	events, err := p.Events(ctx)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	net := testutil.CreateNetwork(t, ctx, p)
	taken := testutil.StartService(t, ctx, p, net, backend.ServiceSpec{Image: testimages.HTTPService})
	// A registry on a closed port: the pull fails at once.
	ln, err := net0()
	if err != nil {
		t.Fatal(err)
	}
	absent := ln + "/zoe-test/absent:1"
	cases := []struct {
		name    string
		spec    backend.ServiceSpec
		wantErr error
		text    string
	}{
		{"name taken", backend.ServiceSpec{Name: taken.Name, Image: testimages.HTTPService, User: testutil.ServiceUser}, sdk.ErrAlreadyExists, "exists"},
		{"image cannot be pulled", backend.ServiceSpec{Name: "pull-" + testutil.RandomSuffix(), Image: absent, User: testutil.ServiceUser}, nil, "pull image"},
		{"no image", backend.ServiceSpec{Name: "x-" + testutil.RandomSuffix(), User: testutil.ServiceUser}, sdk.ErrInvalidArgument, "image"},
		// Refused before the pull: nothing happens on the host.
		{"root before the pull", backend.ServiceSpec{Name: "root-" + testutil.RandomSuffix(), Image: absent}, sdk.ErrInvalidArgument, "root"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.spec.Network = net
			_, err := p.Start(ctx, c.spec)
			if err == nil || !strings.Contains(err.Error(), c.text) || (c.wantErr != nil && !errors.Is(err, c.wantErr)) {
				t.Errorf("Start = %v; want an error about %q (%v)", err, c.text, c.wantErr)
			}
		})
	}
	testutil.WaitEvent(t, ctx, events, cases[1].spec.Name, backend.EventImagePull)
}

// net0 returns the address of a TCP port nothing listens on.
func net0() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// TestUnreachableEngine: an engine that does not answer is an unreachable
// node, and every call on it fails with sdk.ErrUnavailable.
func TestUnreachableEngine(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "closed.sock")
	p := open(t, "zoe-test-"+testutil.RandomSuffix(), map[string]any{"host": map[string]any{"dead": map[string]any{"address": "unix://" + sock}}})
	ctx := ctxFor(t)
	nodes, err := p.Nodes(ctx)
	if err != nil || len(nodes) != 1 || nodes[0].State != backend.NodeUnreachable || nodes[0].StateDetail == "" {
		t.Fatalf("Nodes = %+v, %v; want one unreachable node with a reason", nodes, err)
	}
	h := backend.Handle{ID: "abc"}
	cases := []struct {
		name string
		call func() error
	}{
		{"CreateNetwork", func() error { _, err := p.CreateNetwork(ctx, backend.NetworkSpec{Name: "n"}); return err }},
		{"Start", func() error {
			_, err := p.Start(ctx, backend.ServiceSpec{Name: "s", Image: testimages.Job, User: testutil.ServiceUser})
			return err
		}},
		{"Inspect", func() error { _, err := p.Inspect(ctx, h); return err }},
		{"List", func() error { _, err := p.List(ctx, backend.ListOptions{}); return err }},
		{"Events", func() error { _, err := p.Events(ctx); return err }},
		{"Logs", func() error { _, err := p.Logs(ctx, h, backend.LogOptions{}); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, sdk.ErrUnavailable) {
				t.Errorf("%s: %v, want sdk.ErrUnavailable", c.name, err)
			}
		})
	}
}

// TestCores: Cores is a reservation (CPU shares, the label Nodes counts),
// CoresLimit the only cap. (TestNodeReservations counts the labels exactly,
// against a fake engine: here other tests' containers may come and go.)
func TestCores(t *testing.T) {
	t.Parallel()
	// 3.25 cores reserved, more than the engine has here: no other test
	// reserving cores runs meanwhile, in this package or another.
	dep := exclusiveDeployment(t)
	p := open(t, dep, nil)
	ctx := ctxFor(t)
	cli := dockerClient(t)
	net := testutil.CreateNetwork(t, ctx, p)
	cases := []struct {
		name       string
		r          backend.Resources
		wantNano   int64
		wantShares int64
	}{
		{"a cap", backend.Resources{Cores: 0.5, CoresLimit: 1.5}, 1.5e9, 512},
		{"no cap", backend.Resources{Cores: 0.75}, 0, 768},
		{"two cores, capped at them", backend.Resources{Cores: 2, CoresLimit: 2}, 2e9, 2048},
		{"the smallest weight", backend.Resources{Cores: 0.001}, 0, 2},
	}
	sum := 0.0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := testutil.StartService(t, ctx, p, net, backend.ServiceSpec{Image: testimages.HTTPService, Resources: c.r})
			sum += c.r.Cores
			res, err := cli.ContainerInspect(ctx, st.Handle.ID, client.ContainerInspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			r := res.Container.HostConfig.Resources
			if r.NanoCPUs != c.wantNano || r.CPUShares != c.wantShares {
				t.Errorf("NanoCPUs %d, CPUShares %d; want %d, %d", r.NanoCPUs, r.CPUShares, c.wantNano, c.wantShares)
			}
			if got := res.Container.Config.Labels[docker.LabelCores]; got != strconv.FormatFloat(c.r.Cores, 'g', -1, 64) {
				t.Errorf("label %s = %q, want %v", docker.LabelCores, got, c.r.Cores)
			}
		})
	}
	// Every Zoe container on the engine counts, whatever its deployment:
	// at least these.
	nodes, err := p.Nodes(ctx)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("Nodes = %+v, %v; want one node", nodes, err)
	}
	if got := nodes[0].CoresReserved; got < sum-1e-9 {
		t.Errorf("CoresReserved = %v, want at least %v (these services' reservations)", got, sum)
	}
}
