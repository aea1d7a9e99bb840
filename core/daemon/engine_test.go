package daemon

// The lifecycle engine wired into the daemon: end to end through the
// minimal API, and a real `zoe server` killed with SIGKILL in the middle of
// executions and started again.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	zoeclient "github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/plugins/backend-sim/sim"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

const simConfig = `deployment_name = "simtest"
data_dir        = "data"

auth "file" {
  users_file = "users.csv"
}

workspace "dir" {
  base_path = "ws"
}

backend "sim" {
  default_run = "1h"
  pull_images = true
  node "node1" {
    cores  = 16
    memory = "64GiB"
    images = ["zoe/notebook:1.0"]
  }
  node "node2" {
    cores  = 16
    memory = "64GiB"
  }
}
`

// apiClient calls the API as a user.
type apiClient struct {
	t          *testing.T
	base       string
	user, pass string
}

func (c apiClient) do(method, path string, body any, v any) int {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req) // a hang bound
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			c.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

func (c apiClient) execution(id int64) zoeclient.Execution {
	c.t.Helper()
	var ex zoeclient.Execution
	if code := c.do("GET", fmt.Sprintf("/executions/%d", id), nil, &ex); code != http.StatusOK {
		c.t.Fatalf("GET execution %d: %d", id, code)
	}
	return ex
}

func (c apiClient) await(id int64, status ...string) zoeclient.Execution {
	c.t.Helper()
	var ex zoeclient.Execution
	waitUntil(c.t, fmt.Sprintf("execution %d %v", id, status), func() (bool, string) {
		ex = c.execution(id)
		return slices.Contains(status, ex.Status), ex.Status + " " + ex.ErrorMessage
	})
	return ex
}

func (c apiClient) submit(name string, desc json.RawMessage) zoeclient.Execution {
	c.t.Helper()
	var raw json.RawMessage
	if code := c.do("POST", "/executions", map[string]any{"name": name, "description": desc}, &raw); code != http.StatusCreated {
		c.t.Fatalf("POST /executions: %d %s", code, raw)
	}
	var ex zoeclient.Execution
	if err := json.Unmarshal(raw, &ex); err != nil {
		c.t.Fatal(err)
	}
	return ex
}

// serveDaemon runs the daemon in this process until the test ends and
// returns the address it serves on.
func serveDaemon(t *testing.T, opts Options) net.Addr {
	t.Helper()
	ready := make(chan net.Addr, 1)
	opts.Ready = func(a net.Addr) { ready <- a }
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-errc:
		errc <- err // for the cleanup, which waits for it
		t.Fatalf("Run returned before serving: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not serve within 2 minutes")
	}
	return addr
}

// The bound only ends a hang: the Docker tests share the engine with the
// rest of the suite, and under go test -p 8 on two cores starting four
// containers took more than 27 s once (the bound was 30 s).
func waitUntil(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	last := ""
	for time.Now().Before(deadline) {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last: %s", what, last)
}

func addGuest(t *testing.T, file string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("visitor"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(filepath.Dir(file), "users.csv"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "gus,%s,guest\n", hash); err != nil {
		t.Fatal(err)
	}
}

func notebook(t *testing.T) json.RawMessage {
	t.Helper()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "examples", "shop", "notebook", "notebook.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExecutionsAPIEndToEnd(t *testing.T) {
	t.Parallel()
	file, opts, _ := setup(t, simConfig)
	addGuest(t, file)
	addr := serveDaemon(t, opts)
	base := "http://" + addr.String() + "/api/v1"
	alice := apiClient{t: t, base: base, user: "alice", pass: "wonderland"}

	var e zoeclient.Error
	if code := (apiClient{t: t, base: base}).do("POST", "/executions", map[string]any{}, &e); code != http.StatusUnauthorized {
		t.Errorf("without credentials: %d", code)
	}
	if code := (apiClient{t: t, base: base, user: "alice", pass: "nope"}).do("GET", "/executions/1", nil, &e); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", code)
	}
	if code := (apiClient{t: t, base: base, user: "gus", pass: "visitor"}).do("GET", "/executions/1", nil, &e); code != http.StatusForbidden {
		t.Errorf("guest: %d %+v", code, e)
	}
	e = zoeclient.Error{}
	bad := json.RawMessage(`{"name": "x", "version": 3, "will_end": false, "services": []}`)
	if code := alice.do("POST", "/executions", map[string]any{"name": "bad", "description": bad}, &e); code != http.StatusBadRequest ||
		e.Error.Code != "invalid_argument" || len(e.Error.Details) == 0 {
		t.Errorf("invalid ZApp: %d %+v", code, e)
	}

	ex := alice.submit("my notebook", notebook(t))
	if ex.Status != "submitted" || ex.Owner != "alice" || ex.Name != "my notebook" {
		t.Fatalf("submitted: %+v", ex)
	}
	run := alice.await(ex.ID, "running")
	if len(run.Services) != 1 || run.Services[0].Status != "running" || len(run.Endpoints) != 1 ||
		run.Endpoints[0].URL == "" || run.Endpoints[0].ExternalPort == 0 {
		t.Errorf("running: %+v", run)
	}
	if code := alice.do("POST", fmt.Sprintf("/executions/%d/terminate", ex.ID), nil, &zoeclient.Execution{}); code != http.StatusAccepted {
		t.Fatalf("terminate: %d", code)
	}
	end := alice.await(ex.ID, "terminated")
	var tos []string
	for _, ev := range end.Events {
		if ev.Service == "" {
			tos = append(tos, ev.To)
		}
	}
	if want := []string{"submitted", "queued", "starting", "running", "cleaning_up", "terminated"}; !slices.Equal(tos, want) {
		t.Errorf("events %v, want %v", tos, want)
	}
	if code := alice.do("GET", "/executions/999", nil, &e); code != http.StatusNotFound {
		t.Errorf("unknown execution: %d", code)
	}
}

// zoeServer is a real `zoe server` process.
type zoeServer struct {
	cmd  *exec.Cmd
	out  *testutil.SyncBuffer
	done chan struct{}
	addr string // where it serves, from its ready line
}

// anyPort is the listen address of the tests' daemons: the daemon takes a
// free port itself and says which in its ready line.
const anyPort = "127.0.0.1:0"

var readyLine = regexp.MustCompile(`zoe is ready: url=http://([^/ ]+)/`)

// listenOn sets the listen address of the configuration setup wrote.
func listenOn(t *testing.T, file, addr string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	old := fmt.Sprintf("listen = %q\n", anyPort)
	if !bytes.HasPrefix(b, []byte(old)) {
		t.Fatalf("%s does not start with %s", file, old)
	}
	if err := os.WriteFile(file, fmt.Appendf(nil, "listen = %q\n%s", addr, b[len(old):]), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startZoe starts `zoe server` on the configuration file and waits until
// its API answers, at the address its ready line gives.
func startZoe(t *testing.T, file string) *zoeServer {
	t.Helper()
	s := &zoeServer{out: &testutil.SyncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(filepath.Join(binDir, "zoe"), "server", "-config", file)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(20 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.done
			}
		}
		if t.Failed() {
			t.Logf("zoe server output:\n%s", s.out)
		}
	})
	waitUntil(t, "zoe is ready", func() (bool, string) {
		select {
		case <-s.done:
			t.Fatalf("zoe server exited before it served:\n%s", s.out)
		default:
		}
		if m := readyLine.FindStringSubmatch(s.out.String()); m != nil {
			s.addr = m[1]
			return true, ""
		}
		return false, s.out.String()
	})
	waitUntil(t, "the API", func() (bool, string) {
		resp, err := http.Get("http://" + s.addr + "/api/v1/health")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return s
}

// api is the base URL of the server's API.
func (s *zoeServer) api() string { return "http://" + s.addr + "/api/v1" }

func (s *zoeServer) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.done
}

func simApp(t *testing.T, services ...map[string]any) json.RawMessage {
	t.Helper()
	for _, s := range services {
		s["image"] = "zoe/test:1"
		s["resources"] = map[string]any{"memory": map[string]any{"min": 1 << 30, "max": nil}, "cores": map[string]any{"min": 1, "max": nil}}
		s["ports"], s["volumes"], s["command"] = []any{}, []any{}, nil
		if s["environment"] == nil {
			s["environment"] = [][2]string{{"ZOE_SIM_RUN", "forever"}}
		}
		if s["startup_order"] == nil {
			s["startup_order"] = 0
		}
		s["monitor"] = false
		if s["total_count"] == nil {
			s["total_count"] = s["essential_count"]
		}
	}
	services[0]["monitor"] = true
	b, err := json.Marshal(map[string]any{"name": "crash-app", "version": 3, "will_end": false, "size": 1, "services": services})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDaemonKilledMidway(t *testing.T) {
	t.Parallel()
	file, _, _ := setup(t, simConfig)
	dir := filepath.Dir(file)
	ctx := t.Context()

	// The operator's view of the platform: counts every start.
	ctl := sim.New(testutil.PluginLogger(t).With("plugin", "ctl"))
	blk, err := json.Marshal(map[string]any{"state_file": filepath.Join(dir, "data", "backend-sim", "simtest.json"),
		"default_run": "1h", "pull_images": true,
		"node": map[string]any{"node1": map[string]any{"cores": 16, "memory": "64GiB"}, "node2": map[string]any{"cores": 16, "memory": "64GiB"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data", "backend-sim"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Configure(ctx, sdk.Config{JSON: blk, Deployment: "simtest", DataDir: filepath.Join(dir, "data"), ConfigDir: dir}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Close(context.Background()) })
	evs, err := ctl.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	starts := map[string]int{}
	go func() {
		for ev := range evs {
			if ev.Kind == backend.EventStarted {
				mu.Lock()
				starts[ev.ServiceName]++
				mu.Unlock()
			}
		}
	}()

	srv := startZoe(t, file)
	alice := apiClient{t: t, base: srv.api(), user: "alice", pass: "wonderland"}

	// A: running. C: cleaning up, slowly. B: starting, slowly.
	a := alice.submit("running", simApp(t, map[string]any{"name": "alpha", "essential_count": 1},
		map[string]any{"name": "alphaw", "essential_count": 1, "total_count": 2}))
	alice.await(a.ID, "running")
	handles := map[string]string{}
	c := alice.submit("cleaning", simApp(t, map[string]any{"name": "gamma", "essential_count": 1,
		"environment": [][2]string{{"ZOE_SIM_RUN", "forever"}, {"ZOE_SIM_TERM_TIME", "3s"}}}))
	alice.await(c.ID, "running")
	b := alice.submit("starting", simApp(t, map[string]any{"name": "beta", "essential_count": 1},
		map[string]any{"name": "betaslow", "essential_count": 2, "startup_order": 1,
			"environment": [][2]string{{"ZOE_SIM_RUN", "forever"}, {"ZOE_SIM_START_DELAY", "2s"}}}))
	alice.await(b.ID, "starting")
	waitUntil(t, "beta's slow services starting", func() (bool, string) {
		for _, s := range alice.execution(b.ID).Services {
			if s.Name == "betaslow0" {
				return s.Status == "starting", s.Status
			}
		}
		return false, "no betaslow0"
	})
	if code := alice.do("POST", fmt.Sprintf("/executions/%d/terminate", c.ID), nil, &zoeclient.Execution{}); code != http.StatusAccepted {
		t.Fatalf("terminate: %d", code)
	}
	alice.await(c.ID, "cleaning_up")
	list, err := ctl.List(ctx, backend.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range list {
		handles[st.Name] = st.Handle.ID
	}
	srv.kill(t)

	alice.base = startZoe(t, file).api()
	alice.await(c.ID, "terminated")
	alice.await(b.ID, "running")
	if ex := alice.execution(a.ID); ex.Status != "running" {
		t.Errorf("A is %s after the restart", ex.Status)
	}
	list, err = ctl.List(ctx, backend.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]backend.ServiceStatus{}
	for _, st := range list {
		names[st.Name] = st
	}
	for _, n := range []string{"alpha0", "alphaw0", "alphaw1"} {
		cn := fmt.Sprintf("%s-%d-simtest", n, a.ID)
		if st, ok := names[cn]; !ok || st.State != backend.ServiceRunning || st.Handle.ID != handles[cn] {
			t.Errorf("%s after the restart: %+v (handle before %s)", cn, st, handles[cn])
		}
	}
	if _, ok := names[fmt.Sprintf("gamma0-%d-simtest", c.ID)]; ok {
		t.Errorf("C's service is left behind")
	}
	waitUntil(t, "every start event", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(starts) >= 7, fmt.Sprint(starts)
	})
	mu.Lock()
	for n, k := range starts {
		if k != 1 {
			t.Errorf("%s started %d times", n, k)
		}
	}
	if len(starts) != 7 {
		t.Errorf("starts: %v, want 7 services", starts)
	}
	mu.Unlock()

	for _, id := range []int64{a.ID, b.ID} {
		if code := alice.do("POST", fmt.Sprintf("/executions/%d/terminate", id), nil, &zoeclient.Execution{}); code != http.StatusAccepted {
			t.Fatalf("terminate: %d", code)
		}
		alice.await(id, "terminated")
	}
	if list, err := ctl.List(ctx, backend.ListOptions{}); err != nil || len(list) != 0 {
		t.Errorf("left on the platform: %+v %v", list, err)
	}
	// No network is left behind either, those of the executions caught
	// cleaning up and starting by the kill included: their names are free.
	for _, id := range []int64{a.ID, b.ID, c.ID} {
		if _, err := ctl.CreateNetwork(ctx, backend.NetworkSpec{Name: fmt.Sprintf("zoe-simtest-%d", id)}); err != nil {
			t.Errorf("the network of execution %d: %v", id, err)
		}
	}
}
