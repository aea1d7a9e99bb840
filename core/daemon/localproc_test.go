package daemon

// The third-party back-end of examples/backend-localproc, written from
// sdk/README.md alone and built in a module of its own, runs a ZApp through
// a real `zoe server`; its plugin process is killed with SIGKILL while the
// service runs, and the service outlives it, is taken back by the restarted
// plugin and ends when the execution is terminated.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	zoeclient "github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/testutil"
)

const localprocConfig = `deployment_name = "lptest"
data_dir        = "data"

auth "file" {
  users_file = "users.csv"
}

workspace "dir" {
  base_path = "ws"
}

backend "localproc" {
  allow_shared_host = true
  images = {
    "zoe-test/sh:1" = "/bin/sh"
  }
}
`

func TestThirdPartyBackendThroughTheDaemon(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		// localproc switches to the services' users, which needs root, as
		// the Docker tests need the engine: the suite runs as root.
		t.Fatal("localproc runs services as other users, which needs root: run the tests as root")
	}
	plugin := buildLocalproc(t)
	file, _, _ := setup(t, localprocConfig)
	// Processes on the host reach the workspace through its parents, which
	// t.TempDir makes private; the services run as another user.
	for d := filepath.Dir(file); d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	server := startZoe(t, file)
	alice := apiClient{t: t, base: server.api(), user: "alice", pass: "wonderland"}

	// A marker no other process has in its command line.
	marker := strconv.Itoa(40000 + os.Getpid()%20000)
	app, err := json.Marshal(map[string]any{
		"name": "localproc-app", "version": 3, "will_end": false, "size": 1,
		"services": []map[string]any{{
			"name": "shell", "image": "zoe-test/sh:1", "monitor": true, "essential_count": 1, "total_count": 1,
			"startup_order": 0, "ports": []any{}, "volumes": []any{}, "environment": [][2]string{},
			"resources": map[string]any{"memory": map[string]any{"min": 64 << 20, "max": 256 << 20},
				"cores": map[string]any{"min": 0.5, "max": nil}},
			// Quoted words reach the program as they are written.
			"command": "-c 'echo hello from localproc; exec sleep " + marker + "'",
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ex := alice.submit("lp", app)
	ex = alice.await(ex.ID, "running", "error", "terminated")
	if ex.Status != "running" {
		t.Fatalf("execution %d is %s: %s", ex.ID, ex.Status, ex.ErrorMessage)
	}
	svc := ex.Services[0]
	waitUntil(t, "the service's output", func() (bool, string) {
		out := serviceLog(t, alice, svc.ID)
		return strings.Contains(out, "hello from localproc"), out
	})
	sleeper := processWithArgs(t, "sleep", marker)
	if sleeper == 0 {
		t.Fatal("the service's process is not running")
	}

	// Kill the plugin process, not the services it started.
	before := pluginStatus(t, alice, "backend")
	if before.PID == 0 {
		t.Fatalf("the back-end plugin has no process: %+v", before)
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", before.PID)); exe != plugin {
		t.Fatalf("the back-end's process runs %q, want %q", exe, plugin)
	}
	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the plugin restarted", func() (bool, string) {
		st := pluginStatus(t, alice, "backend")
		return st.Restarts > before.Restarts && st.State == "ready" && st.PID != before.PID, fmt.Sprintf("%+v", st)
	})
	// A second service in the same deployment starts through the new
	// process while the first one still runs: the engine has passed since.
	ex2 := alice.submit("lp2", app)
	ex2 = alice.await(ex2.ID, "running", "error", "terminated")
	if ex2.Status != "running" {
		t.Fatalf("execution %d after the restart is %s: %s", ex2.ID, ex2.Status, ex2.ErrorMessage)
	}
	if ex = alice.execution(ex.ID); ex.Status != "running" {
		t.Fatalf("execution %d after the plugin's SIGKILL is %s: %s", ex.ID, ex.Status, ex.ErrorMessage)
	}
	if !alive(sleeper) {
		t.Fatal("the service died with the plugin process")
	}

	for _, id := range []int64{ex.ID, ex2.ID} {
		if code := alice.do("POST", fmt.Sprintf("/executions/%d/terminate", id), nil, nil); code != http.StatusOK &&
			code != http.StatusAccepted {
			t.Fatalf("terminate %d: %d", id, code)
		}
		if ex := alice.await(id, "terminated", "error"); ex.Status != "terminated" {
			t.Errorf("execution %d ended %s: %s", id, ex.Status, ex.ErrorMessage)
		}
	}
	waitUntil(t, "the services' processes gone", func() (bool, string) {
		pid := processWithArgs(t, "sleep", marker)
		return pid == 0, fmt.Sprint("pid ", pid)
	})
	if t.Failed() {
		t.Logf("zoe server output:\n%s", server.out)
	}
}

// buildLocalproc builds the example back-end, a module of its own, into
// the daemon's plugin directory.
func buildLocalproc(t *testing.T) string {
	t.Helper()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(binDir, "zoe-plugin-backend-localproc")
	// go run -exec cp links it once while its sources stay (see
	// testutil.Build).
	cmd := exec.Command("go", "run", "-exec", "cp", ".", out)
	cmd.Dir = filepath.Join(root, "examples", "backend-localproc")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build examples/backend-localproc: %v\n%s", err, b)
	}
	if err := os.Chmod(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

func serviceLog(t *testing.T, c apiClient, id int64) string {
	t.Helper()
	req, err := http.NewRequest("GET", fmt.Sprintf("%s/services/%d/logs", c.base, id), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(c.user, c.pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.String()
}

func pluginStatus(t *testing.T, c apiClient, kind string) zoeclient.PluginStatus {
	t.Helper()
	var list zoeclient.PluginList
	if code := c.do("GET", "/plugins", nil, &list); code != http.StatusOK {
		t.Fatalf("GET /plugins: %d", code)
	}
	for _, p := range list.Plugins {
		if p.Kind == kind {
			return p
		}
	}
	t.Fatalf("no %s plugin in %+v", kind, list)
	return zoeclient.PluginStatus{}
}

// processWithArgs returns the pid of a live process whose command line is
// exactly these words, 0 if there is none.
func processWithArgs(t *testing.T, args ...string) int {
	t.Helper()
	want := strings.Join(args, "\x00") + "\x00"
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && string(b) == want && alive(pid) {
			return pid
		}
	}
	return 0
}

func alive(pid int) bool { return !gone(pid) }
