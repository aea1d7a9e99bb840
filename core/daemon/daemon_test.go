package daemon

// In-process tests of Run and Validate with the real plugin binaries, built
// once in TestMain. The zoe binary's own behaviour (signals, exit codes) is
// tested out of process in cmd/zoe.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	zoeclient "github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/pluginhost"
	"github.com/zoe-project/zoe/internal/testutil"
)

var binDir string

// kube is the Kubernetes control plane of the package's tests, started by
// the first that needs it.
var kube = testutil.NewKube()

func TestMain(m *testing.M) {
	// The parallel tests mostly wait on Docker and daemon processes.
	testutil.RaiseParallel(8)
	code := testutil.RunWithBinaries(m, "zoe-daemon-test-", true, &binDir)
	kube.Stop()
	swarmEngine.stop()
	os.Exit(code)
}

const baseConfig = `deployment_name = "unit"
data_dir        = "data"

auth "file" {
  users_file = "users.csv"
}

workspace "dir" {
  base_path = "ws"
}
`

// setup writes a users file and the configuration text (prefixed with
// listen on port 0 of 127.0.0.1: the daemon takes a free port itself, which
// serveDaemon and startZoe learn when it serves; a port found free by the
// test could be taken by another before the daemon binds it) into a
// temporary directory; it returns the configuration file and options that
// log into buffers shown on failure.
func setup(t *testing.T, text string) (string, Options, *testutil.SyncBuffer) {
	t.Helper()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("wonderland"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), fmt.Appendf(nil, "alice,%s,admin\n", hash), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "zoe.hcl")
	if err := os.WriteFile(file, fmt.Appendf(nil, "listen = %q\n%s", anyPort, text), 0o600); err != nil {
		t.Fatal(err)
	}
	diags, logs := &testutil.SyncBuffer{}, &testutil.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s\nlog:\n%s", diags, logs)
		}
	})
	return file, Options{
		ConfigFile: file, Executable: filepath.Join(binDir, "zoe"), Version: "1.2.3-test",
		Diagnostics: diags, LogOutput: logs,
	}, diags
}

// gone tells whether a process has ended (or is a zombie).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	s := string(b)
	state := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
	return state == "Z" || state == "X"
}

// noChildren checks that the test process has no child process left, not
// even an unreaped one, once the plugins were stopped. The tests calling it
// do not call t.Parallel: Go runs them all before it starts any parallel
// test, so no other test's plugins or daemons are about.
func noChildren(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // not a process, or one that just ended
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) {
			t.Errorf("child process left behind: %s", strings.TrimSpace(s[:strings.LastIndexByte(s, ')')+1]))
		}
	}
}

// getJSON gets url as alice, the admin of setup's users file: the details
// of the health check are for admins.
func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Minute} // a hang bound
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("alice", "wonderland")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}

func TestRunServesUntilCancelled(t *testing.T) {
	_, opts, _ := setup(t, baseConfig)
	ready := make(chan net.Addr, 1)
	opts.Ready = func(a net.Addr) { ready <- a }
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, opts) }()

	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-errc:
		t.Fatalf("Run returned before serving: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not call Ready within 2 minutes")
	}
	base := "http://" + addr.String() + "/api/v1"

	var info zoeclient.Info
	if code := getJSON(t, base+"/info", &info); code != http.StatusOK ||
		info != (zoeclient.Info{Name: "zoe", Version: "1.2.3-test", APIVersion: "v1", DeploymentName: "unit"}) {
		t.Errorf("GET /info: %d %+v", code, info)
	}
	var h zoeclient.Health
	if code := getJSON(t, base+"/health", &h); code != http.StatusOK || h.Status != "ok" || len(h.Plugins) != 2 {
		t.Fatalf("GET /health: %d %+v", code, h)
	}
	var pids []int
	for _, p := range h.Plugins {
		if p.State != string(pluginhost.StateReady) || p.PID <= 0 {
			t.Errorf("plugin %s %s: %+v, want ready with a pid", p.Kind, p.Name, p)
		}
		pids = append(pids, p.PID)
	}
	// Run (not Validate) configures the workspace plugin for real.
	if fi, err := os.Stat(filepath.Join(filepath.Dir(opts.ConfigFile), "ws", "unit")); err != nil || !fi.IsDir() {
		t.Errorf("the workspace directory of the deployment was not created: %v", err)
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run after cancel: %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20s of the cancel")
	}
	// Run stops its plugins before it returns.
	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("plugin process %d still runs after Run returned", pid)
		}
	}
	noChildren(t)
	if _, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
		t.Errorf("the API still listens on %s after Run returned", addr)
	}
}

func TestRunListenError(t *testing.T) {
	file, opts, _ := setup(t, baseConfig)
	// Take an address first, then configure it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	listenOn(t, file, addr)
	opts.Ready = func(net.Addr) { t.Error("Ready called although the address is taken") }
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = Run(ctx, opts)
	if err == nil || errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Run on a taken address: %v, want a listen error naming %s", err, addr)
	}
	noChildren(t)
}

func TestInvalidConfig(t *testing.T) {
	cases := []struct {
		name, text, marker, want string
	}{
		{"syntax", strings.Replace(baseConfig, `"users.csv"`, "", 1), "users_file", "Invalid expression"},
		{"plugin schema", strings.Replace(baseConfig, "  users_file", "  colour = \"red\"\n  users_file", 1), "colour", "Unsupported argument"},
		{"plugin semantics", strings.Replace(baseConfig, "users.csv", "missing.csv", 1), "missing.csv", "Cannot use users file"},
		{"unknown plugin", strings.Replace(baseConfig, `workspace "dir"`, `workspace "nope"`, 1), `workspace "nope"`, "Unknown workspace plugin"},
	}
	for _, c := range cases {
		for _, fn := range []struct {
			name string
			call func(context.Context, Options) error
		}{{"Validate", Validate}, {"Run", Run}} {
			t.Run(c.name+"/"+fn.name, func(t *testing.T) {
				file, opts, diags := setup(t, c.text)
				opts.Ready = func(net.Addr) { t.Error("Ready called for a broken configuration") }
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				err := fn.call(ctx, opts)
				if !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("%s: %v, want ErrInvalidConfig", fn.name, err)
				}
				full := "listen = \"\"\n" + c.text // the same line numbers as the file
				line := strings.Count(full[:strings.Index(full, c.marker)], "\n") + 1
				want := fmt.Sprintf("on %s line %d", file, line)
				if d := diags.String(); !strings.Contains(d, want) || !strings.Contains(d, c.want) {
					t.Errorf("diagnostics do not say %q and %q:\n%s", want, c.want, d)
				}
				noChildren(t)
			})
		}
	}
}

func TestValidateCreatesNothing(t *testing.T) {
	t.Parallel()
	file, opts, diags := setup(t, baseConfig)
	if err := Validate(t.Context(), opts); err != nil {
		t.Fatalf("Validate: %v\n%s", err, diags)
	}
	if d := diags.String(); d != "" {
		t.Errorf("diagnostics for a valid file:\n%s", d)
	}
	for _, dir := range []string{"ws", "data"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(file), dir)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Validate created %s (stat: %v)", dir, err)
		}
	}
}

// One run of Validate reports the core's errors and the plugins' together.
func TestValidateReportsCoreAndPluginErrorsAtOnce(t *testing.T) {
	t.Parallel()
	file, opts, diags := setup(t, `scheduler { policy = "LIFO" }
auth "file" {
  users_file = "users.csv"
  colour     = "red"
}
workspace "dir" {
  base_path = "ws"
}
`)
	err := Validate(context.Background(), opts)
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Validate: %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{
		"on " + file + " line 2, in scheduler", // listen is line 1
		"Invalid scheduler policy",
		"on " + file + " line 5, in auth \"file\"",
		`An argument named "colour" is not expected here.`,
	} {
		if !strings.Contains(diags.String(), want) {
			t.Errorf("diagnostics lack %q:\n%s", want, diags)
		}
	}
}

// The daemon runs on either store, chosen in the configuration; health says
// which and that it answers.
func TestRunOnEitherStore(t *testing.T) {
	tests := []struct {
		name, state string
		want        string // prefix of the store's description in health
	}{
		{"sqlite default", "", "sqlite "},
		{"sqlite file", "state {\n  sqlite = \"other.db\"\n}\n", "sqlite "},
		{"postgres", "state {\n  postgres = env(\"ZOE_TEST_PG_DSN\")\n}\n", "postgres"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "postgres" {
				t.Setenv("ZOE_TEST_PG_DSN", testutil.StartPostgres(t))
			}
			_, opts, _ := setup(t, tt.state+baseConfig)
			ready := make(chan net.Addr, 1)
			opts.Ready = func(a net.Addr) { ready <- a }
			ctx, cancel := context.WithCancel(t.Context())
			errc := make(chan error, 1)
			go func() { errc <- Run(ctx, opts) }()
			defer func() {
				cancel()
				if err := <-errc; err != nil {
					t.Errorf("Run: %v", err)
				}
			}()
			var addr net.Addr
			select {
			case addr = <-ready:
			case err := <-errc:
				errc <- err
				t.Fatalf("Run returned before serving: %v", err)
			case <-time.After(2 * time.Minute):
				t.Fatal("Run did not call Ready within 2 minutes")
			}
			var h zoeclient.Health
			if code := getJSON(t, "http://"+addr.String()+"/api/v1/health", &h); code != http.StatusOK ||
				!strings.HasPrefix(h.State.Store, tt.want) || h.State.SchemaVersion < 1 || h.State.Error != "" {
				t.Fatalf("GET /health: %d %+v", code, h.State)
			}
			if strings.Contains(h.State.Store, "postgres://") {
				t.Errorf("health shows the DSN: %q", h.State.Store)
			}
			dir := filepath.Dir(opts.ConfigFile)
			switch tt.name {
			case "sqlite default":
				if _, err := os.Stat(filepath.Join(dir, "data", "zoe.db")); err != nil {
					t.Errorf("no database in data_dir: %v", err)
				}
			case "sqlite file":
				if _, err := os.Stat(filepath.Join(dir, "data", "other.db")); err != nil {
					t.Errorf("no database at the configured file: %v", err)
				}
			}
		})
	}
}

// brokenCase is one of core/config's broken configurations
// (core/config/testdata/broken.json).
type brokenCase struct {
	Name string   `json:"name"`
	Src  string   `json:"src"`
	Want []string `json:"want"`
}

// `zoe server` runs what `zoe config validate` runs, first: for every
// broken configuration of core/config's table, and for files whose core
// and plugin blocks are wrong together, Run writes the diagnostics
// Validate writes, and leaves nothing behind: no data directory, no
// database, no plugin process.
func TestRunAndValidateAgree(t *testing.T) {
	t.Setenv("ZOE_TEST_UNSET", "")
	b, err := os.ReadFile(filepath.Join("..", "config", "testdata", "broken.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []brokenCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	cases = append(cases,
		brokenCase{Name: "core and plugin errors", Src: `listen = "localhost"
scheduler { policy = "LIFO" }
auth "file" {
  users_file = "users.csv"
  colour     = "red"
}
workspace "dir" {
  base_path = "ws"
  size      = 3
}
backend "sim" {
  default_run = "soon"
}
`, Want: []string{"Invalid listen address", "Invalid scheduler policy", "Unsupported argument", "Unsupported argument", "Invalid duration"}},
		brokenCase{Name: "only a plugin is wrong", Src: strings.NewReplacer("users.csv", "missing.csv", `data_dir        = "data"`, "").Replace(baseConfig), Want: []string{"Cannot use users file"}})
	for _, c := range cases {
		if len(c.Want) == 0 {
			continue // valid as far as core/config goes: Run would serve it
		}
		t.Run(c.Name, func(t *testing.T) {
			dir := t.TempDir()
			// At the end, so that the case's lines keep their numbers.
			src := c.Src + "\ndata_dir = \"data\"\n"
			file := filepath.Join(dir, "zoe.hcl")
			if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "users.csv"), []byte("alice,x,admin\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			out := map[string]string{}
			for _, fn := range []struct {
				name string
				call func(context.Context, Options) error
			}{{"Validate", Validate}, {"Run", Run}} {
				diags, logs := &testutil.SyncBuffer{}, &testutil.SyncBuffer{}
				opts := Options{ConfigFile: file, Executable: filepath.Join(binDir, "zoe"), Version: "test",
					Diagnostics: diags, LogOutput: logs, Ready: func(net.Addr) { t.Errorf("%s served a broken file", fn.name) }}
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				err := fn.call(ctx, opts)
				cancel()
				if !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("%s: %v, want ErrInvalidConfig\n%s", fn.name, err, diags)
				}
				if strings.Contains(logs.String(), "[ERROR]") {
					t.Errorf("%s logged an error besides the diagnostics:\n%s", fn.name, logs)
				}
				out[fn.name] = diags.String()
				for _, left := range []string{"data", "ws"} {
					if _, err := os.Stat(filepath.Join(dir, left)); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("%s left %s behind (stat: %v)", fn.name, left, err)
					}
				}
				noChildren(t)
			}
			if out["Run"] != out["Validate"] || strings.Contains(out["Run"], `Duplicate argument`) {
				t.Errorf("zoe server's diagnostics:\n%s\nzoe config validate's:\n%s", out["Run"], out["Validate"])
			}
			// The file's own errors, and maybe more: the plugin blocks of
			// the table are incomplete.
			if n := strings.Count(out["Run"], "Error: "); n < len(c.Want) {
				t.Errorf("%d errors, want at least %d:\n%s", n, len(c.Want), out["Run"])
			}
			for _, w := range c.Want {
				if _, summary, _ := strings.Cut(w, ": "); !strings.Contains(out["Run"], "Error: "+summary) &&
					!strings.Contains(out["Run"], "Error: "+w) {
					t.Errorf("no %q in:\n%s", w, out["Run"])
				}
			}
		})
	}
}

// A plugin binary refused for its permissions is reported as that, with
// the command that fixes it, not as an unknown plugin.
func TestUnsafePluginBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "zoe-plugin-workspace-dir")
	b, err := os.ReadFile(filepath.Join(binDir, "zoe-plugin-workspace-dir"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bin, 0o775); err != nil {
		t.Fatal(err)
	}
	file, opts, diags := setup(t, strings.Replace(baseConfig, `workspace "dir" {`, fmt.Sprintf("workspace \"dir\" {\n  binary = %q", bin), 1))
	if err := Validate(t.Context(), opts); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Validate: %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{
		`Error: Refused workspace plugin "dir"`,
		"on " + file + " line 9", // listen and data_dir come first
		"plugin binary " + bin + " is group-writable (mode 0775): others than its owner could replace it; chmod go-w " + bin + ".",
	} {
		// The rendering wraps long lines.
		if !strings.Contains(strings.Join(strings.Fields(diags.String()), " "), want) {
			t.Errorf("diagnostics lack %q:\n%s", want, diags)
		}
	}
	if strings.Contains(diags.String(), "Unknown") {
		t.Errorf("a refused binary is reported as unknown:\n%s", diags)
	}
}
