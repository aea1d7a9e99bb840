package dirws

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/workspace"
)

func blockJSON(t *testing.T, attrs map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(attrs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// configured returns a provider configured on a fresh base directory for the
// deployment "prod", and the deployment directory.
func configured(t *testing.T) (*Plugin, string) {
	t.Helper()
	base := t.TempDir()
	p := New(slog.New(slog.DiscardHandler))
	cfg := sdk.Config{JSON: blockJSON(t, map[string]any{"base_path": base}), Deployment: "prod"}
	if err := p.Configure(t.Context(), cfg); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return p, filepath.Join(base, "prod")
}

func ptr(v uint32) *uint32 { return &v }

func statT(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

// diagPaths returns the attribute paths of the diagnostics in err.
func diagPaths(t *testing.T, err error) []string {
	t.Helper()
	var diags sdk.Diagnostics
	if !errors.As(err, &diags) {
		t.Fatalf("error %v (%T) is not sdk.Diagnostics", err, err)
	}
	var paths []string
	for _, d := range diags {
		if d.Summary == "" || d.Detail == "" {
			t.Errorf("diagnostic %+v lacks summary or detail", d)
		}
		paths = append(paths, strings.Join(d.Path, "."))
	}
	return paths
}

func TestInfoAndSchema(t *testing.T) {
	p := New(nil)
	if info := p.Info(); info.Name != "dir" || info.Version != Version || info.Description == "" {
		t.Errorf("Info() = %+v", info)
	}
	attrs := map[string]sdk.Attribute{}
	for _, a := range p.Schema().Attributes {
		attrs[a.Name] = a
		if slices.Contains(sdk.ReservedAttributes(), a.Name) {
			t.Errorf("schema uses reserved attribute %q", a.Name)
		}
	}
	if a, ok := attrs["base_path"]; !ok || !a.Required || a.Type != "string" {
		t.Errorf("base_path = %+v, want required string", a)
	}
	if a, ok := attrs["deployment_path"]; !ok || a.Required || a.Type != "string" || a.Default != nil {
		t.Errorf("deployment_path = %+v, want optional string without default", a)
	}
}

func TestValidateUsername(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"a", true},
		{"Alice.Smith", true},
		{"bob_1", true},
		{"carol-x", true},
		{"dave@example.org", true},
		{"1234", true},
		{"a..b", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"/abs", false},
		{"../etc", false},
		{`a\b`, false},
		{"a\x00b", false},
		{".hidden", false},
		{"-rf", false},
		{strings.Repeat("x", 65), false},
		{"al ice", false},
		{"é", false},
		{"a:b", false},
		{"a*", false},
		{"a\n", false},
		{"\xff", false},
	}
	for _, tt := range tests {
		err := validateUsername(tt.name)
		if tt.ok && err != nil {
			t.Errorf("validateUsername(%q) = %v, want nil", tt.name, err)
		}
		if !tt.ok && !errors.Is(err, sdk.ErrInvalidArgument) {
			t.Errorf("validateUsername(%q) = %v, want ErrInvalidArgument", tt.name, err)
		}
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name       string
		attrs      func(base string) map[string]any
		deployment string
		setup      func(t *testing.T, base string)
		wantDir    string   // relative to base, when OK
		wantPaths  []string // diagnostic paths, when not OK
	}{
		{
			name:       "deployment path defaults to deployment name",
			attrs:      func(b string) map[string]any { return map[string]any{"base_path": b} },
			deployment: "prod",
			wantDir:    "prod",
		},
		{
			name:       "null deployment path defaults too",
			attrs:      func(b string) map[string]any { return map[string]any{"base_path": b, "deployment_path": nil} },
			deployment: "prod",
			wantDir:    "prod",
		},
		{
			name:       "explicit deployment path",
			attrs:      func(b string) map[string]any { return map[string]any{"base_path": b, "deployment_path": "zoe-prod"} },
			deployment: "prod",
			wantDir:    "zoe-prod",
		},
		{
			name:       "missing base chain is created",
			attrs:      func(b string) map[string]any { return map[string]any{"base_path": filepath.Join(b, "x", "y")} },
			deployment: "prod",
			wantDir:    "x/y/prod",
		},
		{
			name:       "existing deployment dir",
			attrs:      func(b string) map[string]any { return map[string]any{"base_path": b} },
			deployment: "prod",
			setup:      func(t *testing.T, b string) { mkdir(t, filepath.Join(b, "prod")) },
			wantDir:    "prod",
		},
		{
			name:       "base is a symlink to a directory",
			attrs:      func(b string) map[string]any { return map[string]any{"base_path": filepath.Join(b, "link")} },
			deployment: "prod",
			setup: func(t *testing.T, b string) {
				mkdir(t, filepath.Join(b, "real"))
				symlink(t, "real", filepath.Join(b, "link"))
			},
			wantDir: "real/prod",
		},
		{
			name:       "empty base path",
			attrs:      func(string) map[string]any { return map[string]any{"base_path": ""} },
			deployment: "prod",
			wantPaths:  []string{"base_path"},
		},
		{
			name:       "base is a file",
			attrs:      func(b string) map[string]any { return map[string]any{"base_path": filepath.Join(b, "f")} },
			deployment: "prod",
			setup:      func(t *testing.T, b string) { writeFile(t, filepath.Join(b, "f"), 1) },
			wantPaths:  []string{"base_path"},
		},
		{
			name:       "base below a file",
			attrs:      func(b string) map[string]any { return map[string]any{"base_path": filepath.Join(b, "f", "sub")} },
			deployment: "prod",
			setup:      func(t *testing.T, b string) { writeFile(t, filepath.Join(b, "f"), 1) },
			wantPaths:  []string{"base_path"},
		},
		{
			name:       "deployment dir is a file",
			attrs:      func(b string) map[string]any { return map[string]any{"base_path": b} },
			deployment: "prod",
			setup:      func(t *testing.T, b string) { writeFile(t, filepath.Join(b, "prod"), 1) },
			wantPaths:  []string{"deployment_path"},
		},
		{
			name:       "deployment path with slash",
			attrs:      func(b string) map[string]any { return map[string]any{"base_path": b, "deployment_path": "a/b"} },
			deployment: "prod",
			wantPaths:  []string{"deployment_path"},
		},
		{
			name:       "deployment path with backslash",
			attrs:      func(b string) map[string]any { return map[string]any{"base_path": b, "deployment_path": `a\b`} },
			deployment: "prod",
			wantPaths:  []string{"deployment_path"},
		},
		{
			name:       "deployment path dot dot",
			attrs:      func(b string) map[string]any { return map[string]any{"base_path": b, "deployment_path": ".."} },
			deployment: "prod",
			wantPaths:  []string{"deployment_path"},
		},
		{
			name:       "deployment path dot",
			attrs:      func(b string) map[string]any { return map[string]any{"base_path": b, "deployment_path": "."} },
			deployment: "prod",
			wantPaths:  []string{"deployment_path"},
		},
		{
			name:       "explicit empty deployment path",
			attrs:      func(b string) map[string]any { return map[string]any{"base_path": b, "deployment_path": ""} },
			deployment: "prod",
			wantPaths:  []string{"deployment_path"},
		},
		{
			name:      "no deployment name to default to",
			attrs:     func(b string) map[string]any { return map[string]any{"base_path": b} },
			wantPaths: []string{"deployment_path"},
		},
		{
			name:       "unsafe deployment name as default",
			attrs:      func(b string) map[string]any { return map[string]any{"base_path": b} },
			deployment: "../etc",
			wantPaths:  []string{"deployment_path"},
		},
		{
			name:      "both attributes bad",
			attrs:     func(string) map[string]any { return map[string]any{"base_path": "", "deployment_path": ".."} },
			wantPaths: []string{"base_path", "deployment_path"},
		},
		{
			name:       "unknown attribute",
			attrs:      func(b string) map[string]any { return map[string]any{"base_path": b, "bogus": 1} },
			deployment: "prod",
			wantPaths:  []string{""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, base)
			}
			p := New(slog.New(slog.DiscardHandler))
			err := p.Configure(t.Context(), sdk.Config{JSON: blockJSON(t, tt.attrs(base)), Deployment: tt.deployment})
			if tt.wantPaths != nil {
				if got := diagPaths(t, err); !slices.Equal(got, tt.wantPaths) {
					t.Errorf("diagnostic paths = %q, want %q (%v)", got, tt.wantPaths, err)
				}
				if _, err := p.Exists(t.Context(), workspace.User{Username: "alice"}); !errors.Is(err, sdk.ErrUnavailable) {
					t.Errorf("Exists after failed Configure = %v, want ErrUnavailable", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Configure: %v", err)
			}
			dir := filepath.Join(base, tt.wantDir)
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				t.Fatalf("deployment dir %s: %v", dir, err)
			}
			m, err := p.Prepare(t.Context(), workspace.User{Username: "alice"})
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if !filepath.IsAbs(m.HostPath) || filepath.Base(m.HostPath) != "alice" || !sameFile(t, filepath.Dir(m.HostPath), dir) {
				t.Errorf("HostPath = %s, want <abs>/alice in %s", m.HostPath, dir)
			}
			if fi, _ := os.Stat(dir); fi.Mode().Perm() != baseMode && tt.setup == nil {
				t.Errorf("mode of %s = %v, want %v", dir, fi.Mode().Perm(), baseMode)
			}
		})
	}
}

func TestConfigureRelativeBase(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)
	p := New(slog.New(slog.DiscardHandler))
	if err := p.Configure(t.Context(), sdk.Config{JSON: blockJSON(t, map[string]any{"base_path": "ws"}), Deployment: "prod"}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	m, err := p.Prepare(t.Context(), workspace.User{Username: "alice"})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if !filepath.IsAbs(m.HostPath) || !sameFile(t, m.HostPath, filepath.Join(wd, "ws", "prod", "alice")) {
		t.Errorf("HostPath = %s, want %s", m.HostPath, filepath.Join(wd, "ws", "prod", "alice"))
	}
}

func TestConfigureRelativeToConfigDir(t *testing.T) {
	t.Chdir(t.TempDir())
	confDir := t.TempDir()
	p := New(slog.New(slog.DiscardHandler))
	cfg := sdk.Config{JSON: blockJSON(t, map[string]any{"base_path": "ws"}), Deployment: "prod", ConfigDir: confDir}
	if err := p.Configure(t.Context(), cfg); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	m, err := p.Prepare(t.Context(), workspace.User{Username: "alice"})
	if want := filepath.Join(confDir, "ws", "prod", "alice"); err != nil || m.HostPath != want {
		t.Errorf("Prepare = %s, %v; want %s", m.HostPath, err, want)
	}
}

func TestConfigureValidateOnly(t *testing.T) {
	tests := []struct {
		name      string
		basePath  func(base string) string
		deplPath  any
		setup     func(t *testing.T, base string)
		wantPaths []string
	}{
		{name: "missing base in writable dir", basePath: func(b string) string { return filepath.Join(b, "x", "y") }},
		{name: "existing base", basePath: func(b string) string { return b }},
		{
			name:     "existing deployment dir",
			basePath: func(b string) string { return b },
			setup:    func(t *testing.T, b string) { mkdir(t, filepath.Join(b, "prod")) },
		},
		{
			name:      "base is a file",
			basePath:  func(b string) string { return filepath.Join(b, "f") },
			setup:     func(t *testing.T, b string) { writeFile(t, filepath.Join(b, "f"), 1) },
			wantPaths: []string{"base_path"},
		},
		{
			name:      "base below a file",
			basePath:  func(b string) string { return filepath.Join(b, "f", "sub") },
			setup:     func(t *testing.T, b string) { writeFile(t, filepath.Join(b, "f"), 1) },
			wantPaths: []string{"base_path"},
		},
		{
			name:      "deployment dir is a file",
			basePath:  func(b string) string { return b },
			setup:     func(t *testing.T, b string) { writeFile(t, filepath.Join(b, "prod"), 1) },
			wantPaths: []string{"deployment_path"},
		},
		{
			name:      "bad deployment path",
			basePath:  func(b string) string { return b },
			deplPath:  "..",
			wantPaths: []string{"deployment_path"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, base)
			}
			before := tree(t, base)
			attrs := map[string]any{"base_path": tt.basePath(base)}
			if tt.deplPath != nil {
				attrs["deployment_path"] = tt.deplPath
			}
			p := New(slog.New(slog.DiscardHandler))
			err := p.Configure(t.Context(), sdk.Config{JSON: blockJSON(t, attrs), Deployment: "prod", ValidateOnly: true})
			if tt.wantPaths == nil && err != nil {
				t.Fatalf("Configure: %v", err)
			}
			if tt.wantPaths != nil {
				if got := diagPaths(t, err); !slices.Equal(got, tt.wantPaths) {
					t.Errorf("diagnostic paths = %q, want %q (%v)", got, tt.wantPaths, err)
				}
			}
			if after := tree(t, base); !slices.Equal(before, after) {
				t.Errorf("ValidateOnly changed %s: %q -> %q", base, before, after)
			}
			// Validation does not configure the provider.
			if _, err := p.Prepare(t.Context(), workspace.User{Username: "alice"}); !errors.Is(err, sdk.ErrUnavailable) {
				t.Errorf("Prepare after ValidateOnly = %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestConfigureUnwritable(t *testing.T) {
	if !testutil.Unprivileged(t) {
		return
	}
	base := t.TempDir()
	mkdir(t, filepath.Join(base, "prod"))
	if err := os.Chmod(filepath.Join(base, "prod"), 0o555); err != nil {
		t.Fatal(err)
	}
	for _, validate := range []bool{false, true} {
		p := New(slog.New(slog.DiscardHandler))
		err := p.Configure(t.Context(), sdk.Config{JSON: blockJSON(t, map[string]any{"base_path": base}), Deployment: "prod", ValidateOnly: validate})
		if got := diagPaths(t, err); !slices.Equal(got, []string{"deployment_path"}) {
			t.Errorf("ValidateOnly=%v: diagnostic paths = %q (%v)", validate, got, err)
		}
	}
}

func TestReconfigure(t *testing.T) {
	p, _ := configured(t)
	base2 := t.TempDir()
	if err := p.Configure(t.Context(), sdk.Config{JSON: blockJSON(t, map[string]any{"base_path": base2}), Deployment: "other"}); err != nil {
		t.Fatalf("second Configure: %v", err)
	}
	// A failed Configure keeps the last good configuration.
	if err := p.Configure(t.Context(), sdk.Config{JSON: blockJSON(t, map[string]any{"base_path": ""}), Deployment: "x"}); err == nil {
		t.Fatal("Configure with empty base_path succeeded")
	}
	m, err := p.Prepare(t.Context(), workspace.User{Username: "alice"})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if want := filepath.Join(base2, "other", "alice"); m.HostPath != want {
		t.Errorf("HostPath = %s, want %s", m.HostPath, want)
	}
}

func TestUnconfigured(t *testing.T) {
	p := New(slog.New(slog.DiscardHandler))
	u := workspace.User{Username: "alice"}
	if _, err := p.Prepare(t.Context(), u); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("Prepare = %v, want ErrUnavailable", err)
	}
	if _, err := p.Exists(t.Context(), u); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("Exists = %v, want ErrUnavailable", err)
	}
	if _, err := p.Size(t.Context(), u); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("Size = %v, want ErrUnavailable", err)
	}
}

func TestPrepareCreates(t *testing.T) {
	p, dir := configured(t)
	u := workspace.User{Username: "alice"}
	if ok, err := p.Exists(t.Context(), u); err != nil || ok {
		t.Fatalf("Exists before Prepare = %v, %v; want false", ok, err)
	}
	m, err := p.Prepare(t.Context(), u)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	want := workspace.Mount{HostPath: filepath.Join(dir, "alice"), MountPoint: workspace.MountPoint}
	if m != want {
		t.Errorf("Prepare = %+v, want %+v", m, want)
	}
	fi, err := os.Lstat(m.HostPath)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("workspace %s: %v, %v; want directory with mode 0700", m.HostPath, fi, err)
	}
	if ok, err := p.Exists(t.Context(), u); err != nil || !ok {
		t.Errorf("Exists after Prepare = %v, %v; want true", ok, err)
	}

	// Idempotent: content survives and the mount is the same.
	writeFile(t, filepath.Join(m.HostPath, "data"), 10)
	m2, err := p.Prepare(t.Context(), u)
	if err != nil || m2 != m {
		t.Fatalf("second Prepare = %+v, %v; want %+v", m2, err, m)
	}
	if _, err := os.Stat(filepath.Join(m.HostPath, "data")); err != nil {
		t.Errorf("content lost: %v", err)
	}
}

func TestPrepareDeploymentDirGone(t *testing.T) {
	p, dir := configured(t)
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Prepare(t.Context(), workspace.User{Username: "alice"}); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("Prepare = %v, want ErrUnavailable", err)
	}
}

func TestInvalidUsernameRejected(t *testing.T) {
	p, dir := configured(t)
	for _, name := range []string{"", ".", "..", "../x", "a/b", `a\b`, "a\x00", "-x", ".x"} {
		u := workspace.User{Username: name}
		if _, err := p.Prepare(t.Context(), u); !errors.Is(err, sdk.ErrInvalidArgument) {
			t.Errorf("Prepare(%q) = %v, want ErrInvalidArgument", name, err)
		}
		if _, err := p.Exists(t.Context(), u); !errors.Is(err, sdk.ErrInvalidArgument) {
			t.Errorf("Exists(%q) = %v, want ErrInvalidArgument", name, err)
		}
		if _, err := p.Size(t.Context(), u); !errors.Is(err, sdk.ErrInvalidArgument) {
			t.Errorf("Size(%q) = %v, want ErrInvalidArgument", name, err)
		}
	}
	if got := tree(t, filepath.Dir(dir)); !slices.Equal(got, []string{"prod"}) {
		t.Errorf("base holds %q after invalid names, want only prod", got)
	}
}

func TestPrepareRefusesNonDirectory(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, path, outside string)
	}{
		{"symlink to directory", func(t *testing.T, path, outside string) { symlink(t, outside, path) }},
		{"dangling symlink", func(t *testing.T, path, outside string) { symlink(t, filepath.Join(outside, "nope"), path) }},
		{"regular file", func(t *testing.T, path, _ string) { writeFile(t, path, 3) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, dir := configured(t)
			outside := t.TempDir()
			if err := os.Chmod(outside, 0o751); err != nil {
				t.Fatal(err)
			}
			before := statT(t, outside)
			path := filepath.Join(dir, "alice")
			tt.plant(t, path, outside)
			u := workspace.User{Username: "alice", UID: ptr(4242), GID: ptr(4343)}

			_, err := p.Prepare(t.Context(), u)
			if !errors.Is(err, sdk.ErrConflict) {
				t.Errorf("Prepare = %v, want ErrConflict", err)
			}
			// The symlink's target was neither chowned nor chmodded.
			if after := statT(t, outside); after.Uid != before.Uid || after.Gid != before.Gid || after.Mode != before.Mode {
				t.Errorf("target changed: uid %d->%d gid %d->%d mode %o->%o",
					before.Uid, after.Uid, before.Gid, after.Gid, before.Mode, after.Mode)
			}
			if _, err := os.Lstat(path); err != nil {
				t.Errorf("planted entry removed: %v", err)
			}
			if ok, err := p.Exists(t.Context(), u); err != nil || ok {
				t.Errorf("Exists = %v, %v; want false", ok, err)
			}
			if _, err := p.Size(t.Context(), u); !errors.Is(err, sdk.ErrNotFound) {
				t.Errorf("Size = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestPrepareConcurrent(t *testing.T) {
	p, dir := configured(t)
	var uid, gid *uint32
	if os.Geteuid() == 0 {
		uid, gid = ptr(5000), ptr(5001)
	}
	const n = 32
	var wg sync.WaitGroup
	errs := make([]error, n)
	mounts := make([]workspace.Mount, n)
	for i := range n {
		wg.Go(func() {
			name := "alice"
			if i%4 == 0 {
				name = "bob"
			}
			mounts[i], errs[i] = p.Prepare(context.Background(), workspace.User{Username: name, UID: uid, GID: gid})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Prepare #%d: %v", i, err)
		} else if base := filepath.Base(mounts[i].HostPath); filepath.Dir(mounts[i].HostPath) != dir || (base != "alice" && base != "bob") {
			t.Errorf("Prepare #%d: HostPath = %s", i, mounts[i].HostPath)
		}
	}
	if got := tree(t, dir); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("deployment dir holds %q", got)
	}
}

func TestPrepareOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Run("not root", func(t *testing.T) {
			p, dir := configured(t)
			u := workspace.User{Username: "alice", UID: ptr(uint32(os.Geteuid() + 1))}
			_, err := p.Prepare(t.Context(), u)
			if !errors.Is(err, sdk.ErrPermissionDenied) || !strings.Contains(err.Error(), "must run as root") {
				t.Errorf("Prepare = %v, want ErrPermissionDenied saying the plugin must run as root", err)
			}
			if _, err := os.Lstat(filepath.Join(dir, "alice")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("workspace left behind after failed chown: %v", err)
			}
		})
		return
	}
	// Steps run in order on one workspace, each from the previous owner.
	steps := []struct {
		name             string
		uid, gid         *uint32
		wantUID, wantGID uint32
	}{
		{"uid and gid", ptr(12345), ptr(23456), 12345, 23456},
		{"neither keeps owner", nil, nil, 12345, 23456},
		{"same owner again", ptr(12345), ptr(23456), 12345, 23456},
		{"gid only", nil, ptr(777), 12345, 777},
		{"uid only", ptr(888), nil, 888, 777},
	}
	p, dir := configured(t)
	path := filepath.Join(dir, "alice")
	for _, s := range steps {
		if _, err := p.Prepare(t.Context(), workspace.User{Username: "alice", UID: s.uid, GID: s.gid}); err != nil {
			t.Fatalf("%s: Prepare: %v", s.name, err)
		}
		if st := statT(t, path); st.Uid != s.wantUID || st.Gid != s.wantGID {
			t.Errorf("%s: owner = %d:%d, want %d:%d", s.name, st.Uid, st.Gid, s.wantUID, s.wantGID)
		}
	}

	// A root-owned directory left by the original Zoe (Docker created it) is
	// given to its user.
	old := filepath.Join(dir, "bob")
	mkdir(t, old)
	if _, err := p.Prepare(t.Context(), workspace.User{Username: "bob", UID: ptr(4000), GID: ptr(4001)}); err != nil {
		t.Fatalf("Prepare bob: %v", err)
	}
	if st := statT(t, old); st.Uid != 4000 || st.Gid != 4001 {
		t.Errorf("bob's owner = %d:%d, want 4000:4001", st.Uid, st.Gid)
	}
}

func TestSize(t *testing.T) {
	p, _ := configured(t)
	u := workspace.User{Username: "alice"}
	if _, err := p.Size(t.Context(), u); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("Size before Prepare = %v, want ErrNotFound", err)
	}
	m, err := p.Prepare(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := p.Size(t.Context(), u); err != nil || n != 0 {
		t.Errorf("Size of empty workspace = %d, %v; want 0", n, err)
	}

	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "big"), 5000)
	writeFile(t, filepath.Join(m.HostPath, "a"), 100)
	mkdir(t, filepath.Join(m.HostPath, "sub", "deeper"))
	writeFile(t, filepath.Join(m.HostPath, "sub", "b"), 20)
	writeFile(t, filepath.Join(m.HostPath, "sub", "deeper", "c"), 3)
	symlink(t, filepath.Join(outside, "big"), filepath.Join(m.HostPath, "link-file"))
	symlink(t, outside, filepath.Join(m.HostPath, "link-dir"))
	symlink(t, "nowhere", filepath.Join(m.HostPath, "dangling"))
	if err := syscall.Mkfifo(filepath.Join(m.HostPath, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Size(t.Context(), u); err != nil || n != 123 {
		t.Errorf("Size = %d, %v; want 123", n, err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := p.Size(ctx, u); !errors.Is(err, context.Canceled) {
		t.Errorf("Size with canceled context = %v, want context.Canceled", err)
	}
	if _, err := p.Prepare(ctx, u); !errors.Is(err, context.Canceled) {
		t.Errorf("Prepare with canceled context = %v, want context.Canceled", err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, size int) {
	t.Helper()
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// tree lists every path under root, relative to it.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != root {
			rel, _ := filepath.Rel(root, path)
			paths = append(paths, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// A workspace left open to others (as Docker made them for the original
// Zoe) is closed again when prepared.
func TestPrepareTightensAnOpenWorkspace(t *testing.T) {
	p, dir := configured(t)
	ws := filepath.Join(dir, "alice")
	if err := os.Mkdir(ws, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ws, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Prepare(t.Context(), workspace.User{Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(ws); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("mode after Prepare = %v, %v; want 0700", fi.Mode().Perm(), err)
	}
}

// A base or deployment directory others may write is refused: they could
// plant a victim's workspace in advance.
func TestConfigureRefusesSharedDirectories(t *testing.T) {
	for _, which := range []string{"base_path", "deployment_path"} {
		t.Run(which, func(t *testing.T) {
			base := t.TempDir()
			shared := base
			if which == "deployment_path" {
				shared = filepath.Join(base, "prod")
				if err := os.Mkdir(shared, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
				t.Fatal(err)
			}
			p := New(slog.New(slog.DiscardHandler))
			err := p.Configure(t.Context(), sdk.Config{JSON: blockJSON(t, map[string]any{"base_path": base}), Deployment: "prod"})
			var d sdk.Diagnostics
			if !errors.As(err, &d) || len(d) != 1 || d[0].Path[0] != which || !strings.Contains(d[0].Detail, "chmod go-w") {
				t.Fatalf("Configure = %v, want a diagnostic at %s", err, which)
			}
		})
	}
}

// A base or deployment directory of another user is refused, whatever
// its mode: its owner could plant or move workspaces in it.
func TestConfigureRefusesForeignDirectories(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test gives a directory to another user, which takes root (CI runs as root)")
		}
		t.Skip("giving a directory to another user takes root")
	}
	for _, which := range []string{"base_path", "deployment_path"} {
		t.Run(which, func(t *testing.T) {
			base := t.TempDir()
			foreign := base
			if which == "deployment_path" {
				foreign = filepath.Join(base, "prod")
				if err := os.Mkdir(foreign, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chown(foreign, 4242, 4242); err != nil {
				t.Fatal(err)
			}
			p := New(slog.New(slog.DiscardHandler))
			err := p.Configure(t.Context(), sdk.Config{JSON: blockJSON(t, map[string]any{"base_path": base}), Deployment: "prod"})
			var d sdk.Diagnostics
			if !errors.As(err, &d) || len(d) != 1 || d[0].Path[0] != which || !strings.Contains(d[0].Detail, "belongs to uid 4242") {
				t.Fatalf("Configure = %v, want a diagnostic at %s", err, which)
			}
		})
	}
}
