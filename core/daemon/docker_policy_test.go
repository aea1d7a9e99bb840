package daemon

// The container policy on the real Docker engine: the reproduction of the
// host takeover of issue 12 (a user mounting host paths read-write) and who
// containers run as when the users file gives no ids.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/crypto/bcrypt"

	zoeclient "github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/testimages"
)

// withHostVolume adds a volume of the host path to the first service.
func withHostVolume(t *testing.T, app json.RawMessage, name, path string, readOnly bool) json.RawMessage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(app, &m); err != nil {
		t.Fatal(err)
	}
	m["services"].([]any)[0].(map[string]any)["volumes"] = []any{
		map[string]any{"name": name, "path": path, "read_only": readOnly}}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDockerContainerPolicy(t *testing.T) {
	t.Parallel()
	env := newDockerEnv(t)
	dir := filepath.Dir(env.file)
	// carol is in the users file without uid and gid.
	hash, err := bcrypt.GenerateFromPassword([]byte("pw-carol"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "users.csv"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(f, "carol,%s,user\n", hash); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// A directory of the host like the one the review wrote a root-owned
	// file into, and one the administrator lets ZApps write to.
	host := t.TempDir()
	secret, scratch := filepath.Join(host, "secret"), filepath.Join(host, "scratch")
	for _, d := range []string{secret, scratch} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(scratch, 0o777); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.OpenFile(env.file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(cfg, "\ncontainers {\n  run_as = \"4242:4343\"\n  host_path %q {\n    read_only = false\n  }\n}\n", scratch); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Close(); err != nil {
		t.Fatal(err)
	}
	env.start(t)
	holdCores(t, false)

	t.Run("host paths not allowed are refused at submission", func(t *testing.T) {
		alice := env.user(t, "alice")
		for _, path := range []string{secret, "/", "/var/run/docker.sock", scratch + "/../secret", filepath.Join(env.ws, env.dep, "bob")} {
			app := withHostVolume(t, batchApp(t, testimages.Job, 64*mib,
				[2]string{"OUTPUT", "/mnt/host/pwned"}, [2]string{"CONTENT", "owned"}), "host", path, false)
			var e zoeclient.Error
			code := alice.do("POST", "/executions", map[string]any{"name": "takeover", "description": app}, &e)
			d := e.Error.Details
			if code != http.StatusBadRequest || len(d) != 1 || d[0].Path != "description.services[0].volumes[0].path" ||
				!strings.Contains(d[0].Message, path) {
				t.Errorf("%s: %d %+v, want 400 at description.services[0].volumes[0].path", path, code, e.Error)
			}
		}
		var list zoeclient.ExecutionList
		if code := alice.do("GET", "/executions", nil, &list); code != http.StatusOK || len(list.Executions) != 0 {
			t.Errorf("executions recorded: %d %+v", code, list)
		}
		if c := env.containers(t); len(c) != 0 {
			t.Errorf("containers started: %v", c)
		}
		if _, err := os.Lstat(filepath.Join(secret, "pwned")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the host file was written: %v", err)
		}
	})

	t.Run("containers of a user without ids run as run_as", func(t *testing.T) {
		carol := env.user(t, "carol")
		ex := carol.submit("as run_as", withHostVolume(t, batchApp(t, testimages.Job, 64*mib,
			[2]string{"OUTPUT", "/mnt/scratch/carol.txt"}, [2]string{"CONTENT", "carol"}), "scratch", scratch, false))
		if got := carol.await(ex.ID, "terminated", "error"); got.Status != "terminated" {
			t.Fatalf("%s %q", got.Status, got.ErrorMessage)
		}
		for _, p := range []string{filepath.Join(scratch, "carol.txt"), filepath.Join(env.ws, env.dep, "carol")} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != 4242 || st.Gid != 4343 {
				t.Errorf("%s: uid %d gid %d, want run_as 4242:4343", p, st.Uid, st.Gid)
			}
		}
		env.gone(t, ex.ID)
	})

	// Once an execution has run, again: nothing wrote to the host.
	if _, err := os.Lstat(filepath.Join(secret, "pwned")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the host file was written: %v", err)
	}
}
