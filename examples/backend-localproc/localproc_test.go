package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/plugintest"
)

const testUser = "12345:23456"

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("runs services as " + testUser + ", which localproc can do only as root: run the tests as root")
	}
}

// open serves a configured back-end over in-process gRPC, in a state
// directory of its own, which it returns too.
func open(t *testing.T) (backend.Backend, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Deployment = "unit"
	t.Cleanup(removeTestCgroups)
	return plugintest.Backend(t, configured(t, cfg)), dir
}

// removeTestCgroups removes the cgroups the tests left: localproc removes
// services' cgroups, not the deployments' above them. A cgroup still in
// use stays, to be seen.
func removeTestCgroups() {
	for _, ctrl := range controllers {
		var dirs []string
		_ = filepath.WalkDir(filepath.Join("/sys/fs/cgroup", ctrl, "zoe-localproc-test"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for _, d := range slices.Backward(dirs) {
			_ = os.Remove(d)
		}
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openDir is a new directory every user may use.
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "localproc-open-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runToEnd starts spec, waits for it to exit, and returns its status and
// its output, a line each ("stderr: " before the lines of stderr).
func runToEnd(t *testing.T, b backend.Backend, spec backend.ServiceSpec) (backend.ServiceStatus, []string) {
	t.Helper()
	ctx := testCtx(t)
	if spec.Name == "" {
		spec.Name = fmt.Sprintf("t%d", time.Now().UnixNano())
	}
	if spec.User == "" {
		spec.User = testUser
	}
	st, err := b.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = b.Remove(context.Background(), st.Handle, true) })
	ch, err := b.Logs(ctx, st.Handle, backend.LogOptions{Follow: true})
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	var lines []string
	for e := range ch {
		if e.Time.IsZero() {
			t.Errorf("line %q has no time", e.Line)
		}
		prefix := ""
		if e.Stream == backend.Stderr {
			prefix = "stderr: "
		}
		lines = append(lines, prefix+string(e.Line))
	}
	if ctx.Err() != nil {
		t.Fatalf("the service did not end: %v", ctx.Err())
	}
	st, err = b.Inspect(ctx, st.Handle)
	if err != nil || st.State != backend.ServiceExited {
		t.Fatalf("Inspect after the output ended = %+v, %v; want exited", st, err)
	}
	return st, lines
}

func fields(lines []string) map[string]string {
	f := map[string]string{}
	for _, l := range lines {
		if k, v, ok := strings.Cut(l, ":"); ok {
			f[k] = strings.TrimSpace(v)
		}
	}
	return f
}

// TestPolicy reads from inside a service what the suite's probe would:
// the user, no_new_privs, the capabilities and the limits.
func TestPolicy(t *testing.T) {
	needRoot(t)
	b, _ := open(t)
	script := `grep -E '^(Uid|Gid|Groups|NoNewPrivs|CapInh|CapPrm|CapEff|CapBnd|CapAmb):' /proc/self/status
for c in pids:pids.max memory:memory.limit_in_bytes cpu:cpu.cfs_quota_us; do
  ctrl=${c%%:*}; file=${c#*:}
  echo "$file: $(cat /sys/fs/cgroup/$ctrl$(grep ":$ctrl:" /proc/self/cgroup | cut -d: -f3)/$file)"
done`
	var dockerMask uint64
	for _, c := range dockerCaps {
		dockerMask |= 1 << c
	}
	ids := "12345\t12345\t12345\t12345"
	cases := []struct {
		name string
		sec  backend.Security
		res  backend.Resources
		want map[string]string
	}{
		{"strictest", backend.Security{}, backend.Resources{}, map[string]string{
			"Uid": ids, "Gid": strings.ReplaceAll(ids, "12345", "23456"), "Groups": "", "NoNewPrivs": "1",
			"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
			"CapBnd": "0000000000000000", "CapAmb": "0000000000000000", "pids.max": "1024"}},
		{"escalation, default capabilities, limits", backend.Security{AllowPrivilegeEscalation: true, KeepCapabilities: true},
			backend.Resources{PidsLimit: 77, MemoryLimit: 64 << 20, Cores: 0.1, CoresLimit: 0.5}, map[string]string{
				"Uid": ids, "NoNewPrivs": "0", "CapEff": "0000000000000000", "CapBnd": fmt.Sprintf("%016x", dockerMask),
				"pids.max": "77", "memory.limit_in_bytes": strconv.Itoa(64 << 20), "cpu.cfs_quota_us": "50000"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := sh(script)
			spec.Security, spec.Resources = c.sec, c.res
			st, lines := runToEnd(t, b, spec)
			if st.ExitCode != 0 {
				t.Fatalf("exit code %d: %q", st.ExitCode, lines)
			}
			got := fields(lines)
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (output %q)", k, got[k], v, lines)
				}
			}
		})
	}
}

// TestRefused: what localproc cannot honour is refused before anything is
// made.
func TestRefused(t *testing.T) {
	needRoot(t)
	b, _ := open(t)
	dir := openDir(t)
	missing := filepath.Join(dir, "missing", "dir")
	cases := []struct {
		name string
		edit func(*backend.ServiceSpec)
		want error
	}{
		{"an unknown image", func(s *backend.ServiceSpec) { s.Image = "zoe-test/nothing:1" }, sdk.ErrNotFound},
		{"root allowed but asked", func(s *backend.ServiceSpec) { s.User, s.Security.AllowRoot = "0:0", true }, sdk.ErrInvalidArgument},
		{"the plugin's user, root", func(s *backend.ServiceSpec) { s.User, s.Security.AllowRoot = "", true }, sdk.ErrInvalidArgument},
		{"a uid without gid", func(s *backend.ServiceSpec) { s.User, s.Security.AllowRoot = "12345", true }, sdk.ErrInvalidArgument},
		{"a read-only volume", func(s *backend.ServiceSpec) {
			s.Volumes = []backend.Volume{{HostPath: dir, MountPoint: "/mnt/workspace", ReadOnly: true}}
		}, sdk.ErrInvalidArgument},
		{"a missing host path", func(s *backend.ServiceSpec) {
			s.Volumes = []backend.Volume{{HostPath: missing, MountPoint: "/mnt/workspace"}}
		}, sdk.ErrInvalidArgument},
		{"two volumes, one variable", func(s *backend.ServiceSpec) {
			s.Volumes = []backend.Volume{{HostPath: dir, MountPoint: "/mnt/a-b"}, {HostPath: dir, MountPoint: "/mnt/a_b"}}
		}, sdk.ErrInvalidArgument},
		{"a relative working directory", func(s *backend.ServiceSpec) { s.WorkDir = "sub" }, sdk.ErrInvalidArgument},
		{"another node", func(s *backend.ServiceSpec) { s.Node = "elsewhere" }, sdk.ErrInvalidArgument},
		{"an unknown network", func(s *backend.ServiceSpec) { s.Network = "zoe-unit-none" }, sdk.ErrInvalidArgument},
		{"a name that is a path", func(s *backend.ServiceSpec) { s.Name = "../escape" }, sdk.ErrInvalidArgument},
		{"a negative process limit", func(s *backend.ServiceSpec) { s.Resources.PidsLimit = -2 }, sdk.ErrInvalidArgument},
		{"a NUL in an argument", func(s *backend.ServiceSpec) { s.Command = []string{"-c", "true\x00"} }, sdk.ErrInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t)
			spec := sh("true")
			spec.Name, spec.User = "refused", testUser
			c.edit(&spec)
			if st, err := b.Start(ctx, spec); !errors.Is(err, c.want) {
				t.Errorf("Start = %+v, %v; want %v", st, err, c.want)
			}
			if list, err := b.List(ctx, backend.ListOptions{}); err != nil || len(list) != 0 {
				t.Errorf("List after a refused Start = %+v, %v; want nothing", list, err)
			}
		})
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the missing host path was created: %v", err)
	}
}

// TestVolumesAndEnvironment: each volume is a variable naming its host
// directory, a working directory under a mount point is the host's, and
// the two streams are told apart.
func TestVolumesAndEnvironment(t *testing.T) {
	needRoot(t)
	b, _ := open(t)
	ws := openDir(t)
	if err := os.Mkdir(filepath.Join(ws, "sub"), 0o777); err != nil {
		t.Fatal(err)
	}
	spec := sh(`pwd; echo "ws: $ZOE_VOLUME_WORKSPACE"; echo "data: $ZOE_VOLUME_DATA"; echo "host: $HOSTNAME"; echo "mine: $MINE"
touch "$ZOE_VOLUME_DATA/written" && echo "data writable: yes"; echo oops >&2`)
	spec.Hostname, spec.WorkDir = "web", "/mnt/workspace/sub"
	spec.Environment = map[string]string{"MINE": "a value", "ZOE_VOLUME_WORKSPACE": "overridden"}
	spec.Volumes = []backend.Volume{{HostPath: ws, MountPoint: "/mnt/workspace"}, {VolumeName: "data", MountPoint: "/mnt/data"}}
	st, lines := runToEnd(t, b, spec)
	if st.ExitCode != 0 || len(lines) == 0 {
		t.Fatalf("exit code %d: %q", st.ExitCode, lines)
	}
	// The order of stdout's lines is the program's; stderr is another pipe,
	// read apart, so its line may come anywhere among them.
	var stdout []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "stderr: ") {
			stdout = append(stdout, l)
		}
	}
	got := fields(lines)
	want := map[string]string{"ws": ws, "host": "web", "mine": "a value", "data writable": "yes", "stderr": "oops"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (output %q)", k, got[k], v, lines)
		}
	}
	if len(stdout) == 0 || stdout[0] != filepath.Join(ws, "sub") {
		t.Errorf("working directory: output %q, want %q first on stdout", lines, filepath.Join(ws, "sub"))
	}
	if !strings.HasSuffix(got["data"], "/unit/data") {
		t.Errorf("the named volume is at %q, want volumes_dir's unit/data", got["data"])
	}
}

// TestEnds: a program that ignores SIGTERM is killed after the grace
// period, and what a service started in the background ends with it.
func TestEnds(t *testing.T) {
	needRoot(t)
	b, _ := open(t)
	ctx := testCtx(t)
	spec := sh(`trap '' TERM; sleep 1000 & echo "child: $!"; while :; do sleep 1; done`)
	spec.Name, spec.User = "stubborn", testUser
	st, err := b.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer func() { _ = b.Remove(ctx, st.Handle, true) }()
	ch, err := b.Logs(ctx, st.Handle, backend.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	e := <-ch
	child, err := strconv.Atoi(strings.TrimPrefix(string(e.Line), "child: "))
	if err != nil {
		t.Fatalf("first line %q", e.Line)
	}
	if err := b.Stop(ctx, st.Handle, 100*time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if st, err = b.Inspect(ctx, st.Handle); err != nil || st.State != backend.ServiceExited || st.ExitCode != 128+9 {
		t.Errorf("after Stop: %+v, %v; want exited with 137 (SIGKILL)", st, err)
	}
	if _, alive := procStart(child); alive {
		t.Errorf("the background process %d outlived its service", child)
	}
}

// TestSupervisorKilled: a service whose supervisor was killed is exited
// with -1, and Remove kills its program.
func TestSupervisorKilled(t *testing.T) {
	needRoot(t)
	b, stateDir := open(t)
	ctx := testCtx(t)
	// It writes nothing: with its supervisor gone, a write would end it
	// (SIGPIPE), and this test checks that Remove does.
	spec := sh(`while :; do sleep 1; done`)
	spec.Name, spec.User = "orphan", testUser
	st, err := b.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	var sv status
	if err := readJSON(filepath.Join(stateDir, "unit", "services", spec.Name, statusFile), &sv); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(sv.SupervisorPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for {
		if st, err = b.Inspect(ctx, st.Handle); err != nil || st.State == backend.ServiceExited {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the service is still running after its supervisor was killed")
		case <-time.After(poll):
		}
	}
	if err != nil || st.ExitCode != -1 || st.Message == "" {
		t.Errorf("Inspect = %+v, %v; want exited, -1, with a message", st, err)
	}
	if _, alive := procStart(sv.PID); !alive {
		t.Fatalf("the program %d ended with its supervisor: this test checks that Remove ends it", sv.PID)
	}
	if err := b.Remove(ctx, st.Handle, true); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, alive := procStart(sv.PID); alive {
		t.Errorf("the program %d outlived Remove", sv.PID)
	}
}

// TestLogFile: lines keep their order, times and streams; a long line is
// cut; output beyond the limit is dropped with a note.
func TestLogFile(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), logFile))
	if err != nil {
		t.Fatal(err)
	}
	w := &logWriter{f: f, max: 150 << 10} // room for y's line, not z's
	long := strings.Repeat("x", maxLine+10)
	copyLines(strings.NewReader("one\ntwo\n\n"+long+"\nlast, no newline"), 'o', w)
	copyLines(strings.NewReader("err\n"), 'e', w)
	copyLines(strings.NewReader(strings.Repeat("y", maxLine-1)+"\n"+strings.Repeat("z", maxLine-1)+"\n"), 'o', w)
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	r := &logReader{br: bufio.NewReaderSize(f, maxLine)}
	var got []string
	var last time.Time
	for line, ok := r.next(); ok; line, ok = r.next() {
		e, ok := parseLine(line)
		if !ok || e.Time.Before(last) {
			t.Fatalf("line %q: parsed %v, time %v after %v", line, ok, e.Time, last)
		}
		last = e.Time
		got = append(got, string(e.Stream)+" "+string(e.Line))
	}
	want := []string{"stdout one", "stdout two", "stdout ", "stdout " + long[:maxLine], "stdout " + long[maxLine:],
		"stdout last, no newline", "stderr err", "stdout " + strings.Repeat("y", maxLine-1),
		"stderr [localproc: output beyond max_log_bytes dropped]"}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d: %.80q", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %.80q, want %.80q", i, got[i], want[i])
		}
	}
}

// TestPlanNotRoot: a plugin that does not run as root runs services only as
// itself, cannot cut the bounding set, and so needs no_new_privs.
func TestPlanNotRoot(t *testing.T) {
	s := &setup{deployment: "unit", dir: t.TempDir(), images: map[string]string{shImage: "/bin/sh"},
		node: "local", address: "127.0.0.1", uid: 1000, gid: 1000, maxLog: 1 << 20,
		cgroups: cgroups{usable: []string{"pids"}}}
	cases := []struct {
		name string
		user string
		sec  backend.Security
		res  backend.Resources
		want error
	}{
		{"itself", "1000:1000", backend.Security{}, backend.Resources{}, nil},
		{"itself, by an empty user", "", backend.Security{AllowRoot: true}, backend.Resources{}, nil},
		{"another user", "1001:1000", backend.Security{}, backend.Resources{}, sdk.ErrInvalidArgument},
		{"escalation with every capability dropped", "1000:1000", backend.Security{AllowPrivilegeEscalation: true},
			backend.Resources{}, sdk.ErrInvalidArgument},
		{"escalation with the default capabilities", "1000:1000",
			backend.Security{AllowPrivilegeEscalation: true, KeepCapabilities: true}, backend.Resources{}, nil},
		{"a memory limit without a memory cgroup", "1000:1000", backend.Security{}, backend.Resources{MemoryLimit: 1 << 30},
			sdk.ErrInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := sh("true")
			spec.Name, spec.User, spec.Security, spec.Resources = "svc", c.user, c.sec, c.res
			rec, _, err := s.plan(spec)
			if !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
				t.Fatalf("plan = %v, want %v", err, c.want)
			}
			if err == nil && (rec.SetUser || rec.SetCaps || rec.UID != 1000 || rec.NoNewPrivs == c.sec.AllowPrivilegeEscalation) {
				t.Errorf("record %+v: want no user change, no capability change, uid 1000, no_new_privs unless escalation", rec)
			}
		})
	}
}

// TestConfigure: what the block gets wrong is a diagnostic on its attribute,
// and a failed Configure leaves the previous configuration in force.
func TestConfigure(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := map[string]any{"allow_shared_host": true, "images": map[string]string{shImage: "/bin/sh"},
		"address": "127.0.0.1", "node_name": "", "cgroup_root": "/sys/fs/cgroup", "cgroup_parent": "p",
		"max_log_bytes": 1000, "volumes_dir": "", "state_dir": ""}
	cases := []struct {
		name      string
		edit      func(map[string]any)
		attribute string
	}{
		{"isolation not acknowledged", func(m map[string]any) { m["allow_shared_host"] = false }, "allow_shared_host"},
		{"a relative executable", func(m map[string]any) { m["images"] = map[string]string{"x": "bin/sh"} }, "images"},
		{"a missing executable", func(m map[string]any) { m["images"] = map[string]string{"x": "/no/such/file"} }, "images"},
		{"not executable", func(m map[string]any) { m["images"] = map[string]string{"x": plain} }, "images"},
		{"no room for output", func(m map[string]any) { m["max_log_bytes"] = 0 }, "max_log_bytes"},
		{"a cgroup above its root", func(m map[string]any) { m["cgroup_parent"] = "../x" }, "cgroup_parent"},
	}
	b := New(slog.New(slog.NewTextHandler(testWriter{t}, nil)), binary)
	cfg := sdk.Config{Deployment: "unit", DataDir: dir, ConfigDir: dir}
	var err error
	if cfg.JSON, err = json.Marshal(good); err != nil {
		t.Fatal(err)
	}
	if err := b.Configure(context.Background(), cfg); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			block := maps.Clone(good)
			c.edit(block)
			bad := cfg
			if bad.JSON, err = json.Marshal(block); err != nil {
				t.Fatal(err)
			}
			var diags sdk.Diagnostics
			if err := b.Configure(context.Background(), bad); !errors.As(err, &diags) || len(diags) != 1 ||
				len(diags[0].Path) != 1 || diags[0].Path[0] != c.attribute {
				t.Fatalf("Configure = %#v; want one diagnostic on %s", err, c.attribute)
			}
			if nodes, err := b.Nodes(context.Background()); err != nil || len(nodes) != 1 || len(nodes[0].Images) != 1 || nodes[0].Images[0] != shImage {
				t.Errorf("Nodes after a failed Configure = %+v, %v; want the previous configuration's images", nodes, err)
			}
		})
	}
	t.Run("validate only makes nothing", func(t *testing.T) {
		other := t.TempDir()
		v := cfg
		v.DataDir, v.ValidateOnly = other, true
		if err := New(b.log, binary).Configure(context.Background(), v); err != nil {
			t.Fatalf("Configure: %v", err)
		}
		if entries, _ := os.ReadDir(other); len(entries) != 0 {
			t.Errorf("ValidateOnly made %v", entries)
		}
	})
	t.Run("not configured", func(t *testing.T) {
		if _, err := New(b.log, binary).List(context.Background(), backend.ListOptions{}); !errors.Is(err, sdk.ErrUnavailable) {
			t.Errorf("List before Configure = %v, want sdk.ErrUnavailable", err)
		}
	})
}
