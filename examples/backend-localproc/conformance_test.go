package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/plugintest"
)

// binary is the plugin, built once by TestMain: the suite runs it as the
// core does, and the back-ends of the test's process run it as their
// services' supervisor.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "localproc-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "zoe-plugin-backend-localproc")
	// go run keeps the binary it links in the build cache; -exec cp
	// copies it out instead of running it.
	build := exec.Command("go", "run", "-exec", "cp", ".", binary)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the plugin:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// shImage runs /bin/sh: the test's services are shell scripts.
const shImage = "zoe-test/sh:1"

// testConfig is the block of a test: every back-end of one test shares
// its state directory, as the processes of one machine would. Named
// volumes go to a directory open to all (t.TempDir's are not).
func testConfig(t *testing.T, stateDir string) sdk.Config {
	t.Helper()
	block, err := json.Marshal(map[string]any{
		"allow_shared_host": true,
		"images":            map[string]string{shImage: "/bin/sh"},
		"state_dir":         stateDir,
		"volumes_dir":       openDir(t),
		"address":           "127.0.0.1",
		"node_name":         "local",
		"cgroup_root":       "/sys/fs/cgroup",
		"cgroup_parent":     "zoe-localproc-test",
		"max_log_bytes":     1 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	return sdk.Config{JSON: block, Deployment: "conformance", DataDir: stateDir, ConfigDir: stateDir}
}

func configured(t *testing.T, cfg sdk.Config) *Backend {
	t.Helper()
	b := New(slog.New(slog.NewTextHandler(testWriter{t}, nil)), binary)
	if err := b.Configure(context.Background(), cfg); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func sh(script string) backend.ServiceSpec {
	return backend.ServiceSpec{Image: shImage, Command: []string{"-c", script}}
}

func TestConformance(t *testing.T) {
	needRoot(t)
	cfg := testConfig(t, t.TempDir())
	t.Cleanup(removeTestCgroups)
	plugintest.RunBackendConformance(t, plugintest.BackendSuite{
		New:     func(t *testing.T) backend.Backend { return configured(t, cfg) },
		Process: func(*testing.T) (string, sdk.Config) { return binary, cfg },
		LongRunning: func() backend.ServiceSpec {
			return sh(`echo one; echo two; trap 'echo bye; exit 0' TERM; while :; do sleep 1 & wait $!; done`)
		},
		Exiting: func() backend.ServiceSpec { return sh("exit 3") },
		NoProbe: "localproc runs no container: its services share this machine's network, PID, IPC and mount " +
			"namespaces and cannot have read-only mounts, which the probe checks; TestPolicy checks the user, " +
			"no_new_privs, capabilities and process limit from inside instead",
	})
}
