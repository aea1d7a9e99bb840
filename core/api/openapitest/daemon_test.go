package openapitest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/daemon"
	"github.com/zoe-project/zoe/internal/testutil"
)

var binDir string

func TestMain(m *testing.M) {
	os.Exit(testutil.RunWithBinaries(m, "zoe-openapi-bin-", true, &binDir))
}

// The users of the test daemon and their passwords.
var passwords = map[string]string{
	"root":  "root-secret",  // admin
	"alice": "alice-secret", // user
	"bob":   "bob-secret",   // user
	"gus":   "gus-secret",   // guest
}

// version is the test daemon's: the info.version of the kept document.
const version = "dev" // as writedoc.Version

const simConfig = `deployment_name = "openapitest"
data_dir        = "data"
shop_dir        = %q

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
  }
}
`

// startDaemon runs a daemon (the real binaries, backend-sim, SQLite) until
// the test ends and returns its API's base URL.
func startDaemon(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	var users []testutil.User
	for _, u := range []struct{ name, role string }{{"root", "admin"}, {"alice", "user"}, {"bob", "user"}, {"gus", "guest"}} {
		users = append(users, testutil.User{Name: u.name, Password: passwords[u.name], Role: u.role})
	}
	testutil.WriteUsersFile(t, filepath.Join(dir, "users.csv"), users...)
	// Port 0: the daemon's listener gets a free port, given by Ready.
	file := filepath.Join(dir, "zoe.hcl")
	text := fmt.Sprintf("listen = %q\n"+simConfig, "127.0.0.1:0", filepath.Join(root, "examples", "shop"))
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs)
		}
	})
	ready := make(chan net.Addr, 1)
	opts := daemon.Options{
		ConfigFile: file, Executable: filepath.Join(binDir, "zoe"), Version: version,
		Diagnostics: logs, LogOutput: logs, Ready: func(a net.Addr) { ready <- a },
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- daemon.Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		if err, running := <-errc; running && err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	select {
	case a := <-ready:
		return "http://" + a.String() + "/api/v1"
	case err := <-errc:
		close(errc)
		t.Fatalf("the daemon stopped before serving: %v", err)
	case <-time.After(2 * time.Minute): // a loaded machine starts the plugins slowly
		t.Fatalf("the daemon did not serve within 2 minutes; its log:\n%s", logs)
	}
	return ""
}
