package api_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/testutil"
)

// TestContainerPolicy: ZApps the container policy refuses get a 400 naming
// the JSON path and the rule, whoever submits them; admins get only what
// the configuration grants to their role.
func TestContainerPolicy(t *testing.T) {
	host := t.TempDir()
	for _, d := range []string{"datasets", "admin"} {
		if err := os.Mkdir(filepath.Join(host, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, fmt.Sprintf(simConfig, filepath.Join(root, "examples", "shop"))+fmt.Sprintf(`
containers {
  images = ["zoe/*"]
  host_path %q {}
  host_path %q {
    read_only = false
    roles     = ["admin"]
  }
}
`, filepath.Join(host, "datasets"), filepath.Join(host, "admin")))
	alice, admin := e.as("alice"), e.as("root")
	withVolume := func(path string, readOnly bool) map[string]any {
		a := app("vol", nil)
		a["services"].([]any)[0].(map[string]any)["volumes"] = []any{
			map[string]any{"name": "host", "path": path, "read_only": readOnly}}
		return a
	}
	const volPath = "description.services[0].volumes[0].path"
	for _, tc := range []struct {
		name string
		w    who
		zapp map[string]any
		path string // the detail's path; "" for 201
		want string
	}{
		{"a user mounting /", alice, withVolume("/", false), volPath,
			"/ is not under a host path the administrator allows (allowed: " + host + "/datasets read-only)"},
		{"an admin mounting /", admin, withVolume("/", false), volPath,
			"/ is not under a host path the administrator allows (allowed: " + host + "/datasets read-only, " + host + "/admin read-write)"},
		{"the Docker socket", admin, withVolume("/var/run/docker.sock", false), volPath, "is not under a host path"},
		{"dot-dot", alice, withVolume(host+"/datasets/../../../etc", true), volPath, `has ".." elements`},
		{"read-write on a read-only path", alice, withVolume(host+"/datasets", false), volPath,
			"which the administrator allows read-only; set read_only to true"},
		{"an admins' path by a user", alice, withVolume(host+"/admin/x", true), volPath,
			"which the administrator allows only for the roles admin"},
		{"an image not allowed", alice, func() map[string]any {
			a := app("img", nil)
			a["services"].([]any)[0].(map[string]any)["image"] = "evil/miner:1"
			return a
		}(), "description.services[0].image", `"evil/miner:1" is not an image the administrator allows (allowed: zoe/*)`},
		// The review's attack: a first service plants a link to / in a
		// read-write path, a later one mounts the link.
		{"a path inside a read-write host path", admin, withVolume(host+"/admin/planted", false), volPath,
			"which containers can write to: a read-write host path is mounted whole"},
		{"a user reading datasets", alice, withVolume(host+"/datasets/a", true), "", ""},
		{"an admin writing to the admins' path", admin, withVolume(host+"/admin", false), "", ""},
	} {
		r := e.do(tc.w, "POST", "/executions", map[string]any{"name": "p", "description": tc.zapp})
		if tc.path == "" {
			if r.status != http.StatusCreated {
				t.Errorf("%s: %d %s, want 201", tc.name, r.status, r.body)
			}
			continue
		}
		eb := r.apiError(t)
		if r.status != http.StatusBadRequest || eb.Code != client.CodeInvalidArgument || len(eb.Details) != 1 ||
			eb.Details[0].Path != tc.path || !strings.Contains(eb.Details[0].Message, tc.want) {
			t.Errorf("%s: %d %s, want 400 with %s: %s", tc.name, r.status, r.body, tc.path, tc.want)
		}
	}
}
