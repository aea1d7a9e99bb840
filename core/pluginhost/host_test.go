package pluginhost

// Out-of-process tests: the real plugin binaries, started by the real host.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/bcrypt"

	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/backend"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "zoe-pluginhost-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	err = testutil.Build(dir, map[string]string{
		"zoe-plugin-auth-file":      "plugins/auth-file",
		"zoe-plugin-workspace-dir":  "plugins/workspace-dir",
		"zoe-plugin-auth-hang":      "internal/testplugins/hang",
		"zoe-plugin-auth-benchbare": "internal/testplugins/benchbare",
		"zoe-plugin-backend-closer": "internal/testplugins/closer",
		"zoe-plugin-auth-busy":      "internal/testplugins/busy",
		"zoe-plugin-auth-stderr":    "internal/testplugins/stderr",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func fastTiming() Timing {
	return Timing{PingInterval: 200 * time.Millisecond, PingTimeout: time.Second,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond, FailedAfter: 3}
}

// usersFile writes a users file with alice (a user, password "wonderland").
func usersFile(t testing.TB) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("wonderland"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(path, fmt.Appendf(nil, "alice,%s,user\nbob,plain-pw,admin\n", hash), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func authSpec(t testing.TB, users string) Spec {
	path, err := Find(binDir, sdk.KindAuth, "file")
	if err != nil {
		t.Fatal(err)
	}
	return Spec{
		Kind: sdk.KindAuth, Name: "file", Path: path, StartTimeout: 10 * time.Second, Dir: t.TempDir(),
		Setup: func(ctx context.Context, p sdk.Plugin) error {
			return p.Configure(ctx, sdk.Config{JSON: fmt.Appendf(nil, `{"users_file":%q}`, users), APIVersion: auth.APIVersion})
		},
	}
}

func startAuth(t *testing.T, spec Spec) *Plugin {
	t.Helper()
	p, err := Start(context.Background(), testutil.Logger(t), spec, fastTiming())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(p.Stop)
	return p
}

func login(p *Plugin) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, err := Auth{p}.Authenticate(ctx, "alice", "wonderland")
	if err == nil && (id.Username != "alice" || id.Role != auth.RoleUser) {
		err = fmt.Errorf("got identity %+v", id)
	}
	return err
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie is dead, only not yet reaped.
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func TestStartAndUse(t *testing.T) {
	p := startAuth(t, authSpec(t, usersFile(t)))
	st := p.Status()
	if st.State != StateReady || st.Version == "" || st.PID == 0 || st.Restarts != 0 {
		t.Fatalf("status %+v", st)
	}
	if err := login(p); err != nil {
		t.Fatal(err)
	}
	_, err := Auth{p}.Authenticate(context.Background(), "alice", "wrong")
	if !errors.Is(err, sdk.ErrInvalidCredentials) {
		t.Errorf("wrong password: %v, want sdk.ErrInvalidCredentials across the process boundary", err)
	}
}

// A signal to the core's process group (a terminal's, timeout(1)'s) does
// not reach the plugins: the core stops them itself.
func TestPluginHasItsOwnProcessGroup(t *testing.T) {
	p := startAuth(t, authSpec(t, usersFile(t)))
	pid := p.Status().PID
	pgid, err := syscall.Getpgid(pid)
	if err != nil {
		t.Fatal(err)
	}
	if pgid != pid || pgid == syscall.Getpgrp() {
		t.Errorf("the plugin's process group is %d (its pid %d, the core's group %d), want its own", pgid, pid, syscall.Getpgrp())
	}
}

func TestKilledPluginIsRestartedAndUsable(t *testing.T) {
	p := startAuth(t, authSpec(t, usersFile(t)))
	for round := 1; round <= 2; round++ {
		old := p.Status().PID
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the plugin to come back", 2*time.Minute, func() bool {
			st := p.Status()
			return st.State == StateReady && st.Restarts == round
		})
		st := p.Status()
		if st.PID == old || !alive(st.PID) {
			t.Errorf("round %d: pid %d after the restart (old %d), want a new live process", round, st.PID, old)
		}
		if !strings.Contains(st.LastError, "") || st.Restarts != round {
			t.Errorf("status %+v", st)
		}
		if err := login(p); err != nil {
			t.Errorf("round %d: login after the restart: %v", round, err)
		}
	}
}

func TestUnavailableWhileRestarting(t *testing.T) {
	spec := authSpec(t, usersFile(t))
	block := make(chan struct{})
	setup := spec.Setup
	restarted := false
	spec.Setup = func(ctx context.Context, p sdk.Plugin) error {
		if restarted {
			<-block // hold the restart so that the state can be observed
		}
		restarted = true
		return setup(ctx, p)
	}
	p := startAuth(t, spec)
	if err := syscall.Kill(p.Status().PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restart to begin", 2*time.Minute, func() bool { return p.Status().State == StateRestarting })
	if err := login(p); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("login while restarting: %v, want sdk.ErrUnavailable", err)
	}
	close(block)
	waitFor(t, "ready", 2*time.Minute, func() bool { return p.Status().State == StateReady })
	if err := login(p); err != nil {
		t.Error(err)
	}
}

func TestHangingPluginIsGivenUp(t *testing.T) {
	path, err := Find(binDir, sdk.KindAuth, "hang")
	if err != nil {
		t.Fatal(err)
	}
	// The error names the start_timeout: Start gave up on it, not on
	// go-plugin's own default of a minute.
	_, err = Start(context.Background(), testutil.Logger(t), Spec{
		Kind: sdk.KindAuth, Name: "hang", Path: path, StartTimeout: 500 * time.Millisecond, Dir: t.TempDir(),
	}, fastTiming())
	if !errors.Is(err, sdk.ErrDeadlineExceeded) || !strings.HasSuffix(err.Error(), "did not start within 500ms (start_timeout)") {
		t.Fatalf("Start of a hanging plugin: %v, want a start timeout error", err)
	}
}

func TestChecksum(t *testing.T) {
	spec := authSpec(t, usersFile(t))
	bin, err := os.ReadFile(spec.Path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)

	spec.Checksum = sum[:]
	startAuth(t, spec) // the right checksum starts it

	bad := sum
	bad[0] ^= 0xff
	spec.Checksum = bad[:]
	_, err = Start(context.Background(), testutil.Logger(t), spec, fastTiming())
	if !errors.Is(err, sdk.ErrPermissionDenied) || !strings.HasSuffix(err.Error(), "does not match the checksum in the configuration; refusing to run it") {
		t.Fatalf("Start with a wrong checksum: %v, want a refusal", err)
	}
}

func TestRefusedConfigurationFailsStart(t *testing.T) {
	spec := authSpec(t, filepath.Join(t.TempDir(), "missing.csv"))
	_, err := Start(context.Background(), testutil.Logger(t), spec, fastTiming())
	var d sdk.Diagnostics
	if !errors.As(err, &d) || !d.HasErrors() || d[0].Path[0] != "users_file" {
		t.Fatalf("Start with a missing users file: %v, want diagnostics about users_file", err)
	}
}

func TestWrongKindIsRefused(t *testing.T) {
	path, err := Find(binDir, sdk.KindWorkspace, "dir")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Start(context.Background(), testutil.Logger(t), Spec{Kind: sdk.KindAuth, Name: "dir", Path: path, Dir: t.TempDir()}, fastTiming())
	if err == nil || !strings.Contains(err.Error(), "is a workspace plugin, not a auth plugin") {
		t.Fatalf("Start of a workspace binary as auth: %v", err)
	}
}

func TestStopEndsTheProcess(t *testing.T) {
	p, err := Start(context.Background(), testutil.Logger(t), authSpec(t, usersFile(t)), fastTiming())
	if err != nil {
		t.Fatal(err)
	}
	pid := p.Status().PID
	p.Stop()
	p.Stop() // twice is fine
	if st := p.Status(); st.State != StateStopped {
		t.Errorf("state %s after Stop", st.State)
	}
	waitFor(t, "the plugin process to end", 2*time.Minute, func() bool { return !alive(pid) })
	if err := login(p); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("login after Stop: %v, want sdk.ErrUnavailable", err)
	}
}

func TestRestartsGoOnAfterFailure(t *testing.T) {
	users := usersFile(t)
	spec := authSpec(t, users)
	p := startAuth(t, spec)
	// Make every restart fail: the plugin refuses a missing users file.
	hidden := users + ".hidden"
	if err := os.Rename(users, hidden); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(p.Status().PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "state failed", 2*time.Minute, func() bool { return p.Status().State == StateFailed })
	if st := p.Status(); !strings.Contains(st.LastError, "users_file") {
		t.Errorf("last error %q does not say why", st.LastError)
	}
	// Repaired, it comes back by itself.
	if err := os.Rename(hidden, users); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "recovery", 2*time.Minute, func() bool { return p.Status().State == StateReady })
	if err := login(p); err != nil {
		t.Error(err)
	}
}

// TestRestartChecksTheBinary: a restart checks the binary again, as the
// daemon's start did: one made writable by others since is not run, and
// the plugin comes back once it is mended.
func TestRestartChecksTheBinary(t *testing.T) {
	spec := authSpec(t, usersFile(t))
	b, err := os.ReadFile(spec.Path)
	if err != nil {
		t.Fatal(err)
	}
	spec.Path = filepath.Join(t.TempDir(), filepath.Base(spec.Path))
	if err := os.WriteFile(spec.Path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	p := startAuth(t, spec)
	if err := os.Chmod(spec.Path, 0o775); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(p.Status().PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "state failed", 2*time.Minute, func() bool { return p.Status().State == StateFailed })
	if st := p.Status(); !strings.Contains(st.LastError, "group-writable") {
		t.Errorf("last error %q does not say why", st.LastError)
	}
	if err := os.Chmod(spec.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "recovery", 2*time.Minute, func() bool { return p.Status().State == StateReady })
	if err := login(p); err != nil {
		t.Error(err)
	}
}

// A plugin that dies soon after every start backs off and ends up failed,
// instead of restarting at full speed forever.
func TestCrashLoopEndsFailed(t *testing.T) {
	p := startAuth(t, authSpec(t, usersFile(t)))
	sawFailed := false
	for i := 0; i < 6 && !sawFailed; i++ {
		var pid int
		waitFor(t, "a running instance", 2*time.Minute, func() bool {
			st := p.Status()
			pid = st.PID
			return st.State == StateReady && pid != 0
		})
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			st := p.Status()
			if st.State == StateFailed {
				sawFailed = true
				break
			}
			if st.State == StateReady && st.PID != pid {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if !sawFailed {
		t.Fatalf("after repeated crashes right after start the state never became failed: %+v", p.Status())
	}
}

// Stop does not wait for a restarting plugin that hangs before its
// handshake: the process is killed at once.
func TestStopDuringHungRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "zoe-plugin-auth-file")
	copyFile := func(from string) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		// Rename over the old file: a running binary cannot be rewritten.
		tmp := path + ".new"
		if err := os.WriteFile(tmp, b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(filepath.Join(binDir, "zoe-plugin-auth-file"))
	spec := authSpec(t, usersFile(t))
	spec.Path = path
	// The restart below would wait this long for the hanging binary: Stop
	// returning within the test's bound shows it killed it instead.
	spec.StartTimeout = time.Hour
	p, err := Start(context.Background(), testutil.Logger(t), spec, fastTiming())
	if err != nil {
		t.Fatal(err)
	}
	copyFile(filepath.Join(binDir, "zoe-plugin-auth-hang"))
	if err := syscall.Kill(p.Status().PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restart to begin", 2*time.Minute, func() bool { return p.Status().State == StateRestarting })
	waitFor(t, "the hanging binary to be started", 2*time.Minute, func() bool { return running(path) })
	stopped := make(chan struct{})
	go func() { p.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(2 * time.Minute): // a hang bound: the start timeout is an hour
		t.Fatal("Stop waits for a restart hanging in its handshake")
	}
	waitFor(t, "the hanging binary to end", 2*time.Minute, func() bool { return !running(path) })
}

// running tells whether a live process runs the binary at path.
func running(path string) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == path && alive(pid) {
			return true
		}
	}
	return false
}

// What a plugin logs reaches the core's log with its level, message and
// attributes, and the core's level bounds what the plugin sends.
func TestPluginLogsReachTheCoresLog(t *testing.T) {
	for _, tc := range []struct {
		level hclog.Level
		want  bool
	}{{hclog.Debug, true}, {hclog.Warn, false}} {
		t.Run(tc.level.String(), func(t *testing.T) {
			out := &testutil.SyncBuffer{}
			log := hclog.New(&hclog.LoggerOptions{Name: "core", Level: hclog.Trace, Output: out, JSONFormat: true})
			users := usersFile(t)
			spec := authSpec(t, users)
			spec.LogLevel = tc.level
			p, err := Start(context.Background(), log, spec, fastTiming())
			if err != nil {
				t.Fatal(err)
			}
			// Stop returns once go-plugin has read all of the plugin's stderr.
			p.Stop()
			var loaded map[string]any
			for line := range strings.SplitSeq(out.String(), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) == nil && m["@message"] == "loaded users file" {
					loaded = m
				}
			}
			if !tc.want {
				if loaded != nil {
					t.Errorf("an info line passed the plugin's warn level: %v", loaded)
				}
				return
			}
			if loaded == nil {
				t.Fatalf("the plugin's line is not in the core's log:\n%s", out)
			}
			if loaded["@level"] != "info" || loaded["path"] != users || loaded["users"] != 2.0 {
				t.Errorf("forwarded as %v, want level info, path %s, users 2", loaded, users)
			}
			// The plugin named once; the time is the core's line's own.
			if loaded["@module"] != "core.plugin.auth-file" || loaded["timestamp"] != nil || loaded["plugin_time"] != nil {
				t.Errorf("forwarded as %v, want module core.plugin.auth-file and no second time stamp", loaded)
			}
		})
	}
}

// exitLines are the lines of the log in out that say the plugin process
// exited, as "level: error".
func exitLines(t *testing.T, out string) []string {
	t.Helper()
	var lines []string
	for line := range strings.SplitSeq(out, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["@message"] == exitMessage {
			e, _ := m["error"].(string)
			lines = append(lines, fmt.Sprintf("%s: %s", m["@level"], e))
		}
	}
	return lines
}

// A process the host ends on purpose (a stop, a refused configuration)
// exits as expected: at debug, not as an error, even when it was killed.
// A plugin that dies by itself is still an error.
func TestDeliberateEndsAreNotErrors(t *testing.T) {
	logTo := func() (*testutil.SyncBuffer, hclog.Logger) {
		out := &testutil.SyncBuffer{}
		return out, hclog.New(&hclog.LoggerOptions{Name: "core", Level: hclog.Trace, Output: out, JSONFormat: true})
	}
	t.Run("stop", func(t *testing.T) {
		out, log := logTo()
		p, err := Start(context.Background(), log, authSpec(t, usersFile(t)), fastTiming())
		if err != nil {
			t.Fatal(err)
		}
		p.Stop()
		if got := exitLines(t, out.String()); len(got) != 1 || got[0] != "debug: " {
			t.Errorf("exit lines %q, want one at debug", got)
		}
	})
	t.Run("refused configuration", func(t *testing.T) {
		out, log := logTo()
		if _, err := Start(context.Background(), log, authSpec(t, filepath.Join(t.TempDir(), "missing.csv")), fastTiming()); err == nil {
			t.Fatal("Start with a missing users file succeeded")
		}
		// Killed, the process's error is "signal: killed", or "context
		// canceled" when its command's context ended first: either way
		// at debug.
		if got := exitLines(t, out.String()); len(got) != 1 || !strings.HasPrefix(got[0], "debug: ") {
			t.Errorf("exit lines %q, want one at debug", got)
		}
	})
	t.Run("crash", func(t *testing.T) {
		out, log := logTo()
		p, err := Start(context.Background(), log, authSpec(t, usersFile(t)), fastTiming())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Stop()
		if err := syscall.Kill(p.Status().PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the exit to be logged", 2*time.Minute, func() bool { return len(exitLines(t, out.String())) > 0 })
		if got := exitLines(t, out.String()); got[0] != "error: signal: killed" {
			t.Errorf("exit lines %q, want the crash at error", got)
		}
	})
}

// A plugin cannot crash the core, nor write to its terminal, through its
// stderr: hostile lines (wrong types in hclog's fields, a 1 MiB line,
// invalid UTF-8, escape sequences) reach the core's log escaped and cut,
// and the plugin serves on.
func TestHostileStderr(t *testing.T) {
	path, err := Find(binDir, sdk.KindAuth, "stderr")
	if err != nil {
		t.Fatal(err)
	}
	out := &testutil.SyncBuffer{}
	// Text, as a terminal gets it.
	log := hclog.New(&hclog.LoggerOptions{Name: "core", Level: hclog.Trace, Output: out})
	p, err := Start(context.Background(), log, Spec{
		Kind: sdk.KindAuth, Name: "stderr", Path: path, StartTimeout: 10 * time.Second, Dir: t.TempDir(),
		LogLevel: hclog.Trace,
	}, fastTiming())
	if err != nil {
		t.Fatal(err)
	}
	a := Auth{p}
	if id, err := a.Authenticate(context.Background(), "alice", "wonderland"); err != nil || id.Username != "alice" {
		t.Fatalf("Authenticate = %v, %v", id, err)
	}
	if _, err := a.Authenticate(context.Background(), "again", ""); err != nil {
		t.Fatal(err)
	}
	if id, err := a.Authenticate(context.Background(), "alice", "wonderland"); err != nil || id.Username != "alice" {
		t.Fatalf("Authenticate after the hostile lines = %v, %v", id, err)
	}
	// Written three times: at the start, and again on stderr and on
	// os.Stderr, which go-plugin forwards over gRPC, later.
	testutil.WaitFor(t, 10*time.Second, "the hostile lines in the log", func() (bool, string) {
		n := strings.Count(out.String(), "hostile lines written")
		return n == 3, fmt.Sprintf("%d times", n)
	})
	p.Stop()
	if st := p.Status(); st.Restarts != 0 {
		t.Errorf("restarted %d times: %s", st.Restarts, st.LastError)
	}
	got := out.String()
	for _, bad := range []string{"\x1b", "\x07", "\u009b", "\xff"} {
		if strings.Contains(got, bad) {
			t.Errorf("%q reached the log raw", bad)
		}
	}
	if !utf8.ValidString(got) {
		t.Error("the log is not valid UTF-8")
	}
	for _, want := range []string{
		`esc \x1b[31mred\x1b[0m \u009b2J`, `plain esc \x1b[2J\x1b]0;title\a`, "bad utf8 \ufffd\ufffd", `plain bad utf8 \xff`,
		"truncated_bytes=", `_@caller={}`, `_@message2=x`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("%q is not in the log", want)
		}
	}
	if len(got) > 1<<20 {
		t.Errorf("the log has %d bytes: the 1 MiB lines were not cut", len(got))
	}
}

// A back-end with backend.Closer is closed before its process is stopped:
// its Close ran (and wrote its marker) by the time Stop returns.
func TestStopClosesABackend(t *testing.T) {
	path, err := Find(binDir, sdk.KindBackend, "closer")
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "closed")
	p, err := Start(context.Background(), testutil.Logger(t), Spec{
		Kind: sdk.KindBackend, Name: "closer", Path: path, StartTimeout: 10 * time.Second, Dir: t.TempDir(),
		Setup: func(ctx context.Context, p sdk.Plugin) error {
			return p.Configure(ctx, sdk.Config{JSON: fmt.Appendf(nil, `{"marker":%q}`, marker), APIVersion: backend.APIVersion})
		},
	}, fastTiming())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	caps, err := Backend{p}.Capabilities(context.Background())
	if err != nil || !caps.Closer || caps.Updater {
		t.Errorf("Capabilities = %+v, %v; want a Closer and no Updater", caps, err)
	}
	if err := (Backend{p}).Update(context.Background(), backend.Handle{ID: "x"}, backend.Resources{}); !errors.Is(err, sdk.ErrUnsupported) {
		t.Errorf("Update of a back-end without it: %v, want sdk.ErrUnsupported", err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("closed before Stop: %v", err)
	}
	p.Stop()
	if b, err := os.ReadFile(marker); err != nil || string(b) != "closed" {
		t.Errorf("after Stop the marker reads %q, %v; want the plugin closed", b, err)
	}
}

// startBusy starts the busy test plugin, whose health checks can be made
// to take long while it burns a core, and returns it with its host's log.
func startBusy(t *testing.T, timing Timing) (*Plugin, *testutil.SyncBuffer) {
	t.Helper()
	path, err := Find(binDir, sdk.KindAuth, "busy")
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	})
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Debug, Output: logs})
	p, err := Start(context.Background(), log, Spec{
		Kind: sdk.KindAuth, Name: "busy", Path: path, StartTimeout: 10 * time.Second, Dir: t.TempDir(),
	}, timing)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(p.Stop)
	return p, logs
}

// healthChecks is how many health checks the busy plugin has received.
func healthChecks(t *testing.T, p *Plugin) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, err := Auth{p}.Authenticate(ctx, "checks", "")
	if err != nil {
		t.Fatalf("ask the busy plugin: %v", err)
	}
	n, err := strconv.Atoi(id.Username)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func setBusy(t *testing.T, p *Plugin, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := (Auth{p}).Authenticate(ctx, "busy", d.String()); err != nil {
		t.Fatalf("make the plugin busy: %v", err)
	}
}

// busyTiming pings every 200ms with a 500ms timeout: the busy plugin's
// checks, at 700ms, all time out.
func busyTiming() Timing {
	t := fastTiming()
	t.PingTimeout, t.PingFailures, t.BusyTimeout = 500*time.Millisecond, 3, time.Minute
	return t
}

// A plugin whose health checks go unanswered while it works is busy, not
// dead: it is not restarted, however many checks time out in a row.
func TestBusyPluginIsNotRestarted(t *testing.T) {
	timing := busyTiming()
	p, logs := startBusy(t, timing)
	pid := p.Status().PID
	setBusy(t, p, 700*time.Millisecond)
	from := healthChecks(t, p)
	want := from + 2*timing.PingFailures
	waitFor(t, fmt.Sprintf("%d unanswered health checks", want-from), 30*time.Second, func() bool {
		return healthChecks(t, p) >= want || p.Status().Restarts > 0
	})
	setBusy(t, p, 0)
	// Two answered checks: the host has judged every busy one.
	from = healthChecks(t, p)
	waitFor(t, "answered health checks", 2*time.Minute, func() bool { return healthChecks(t, p) >= from+2 })
	if st := p.Status(); st.Restarts != 0 || st.PID != pid || st.State != StateReady {
		t.Errorf("status after a busy spell %+v, want the same process (%d), ready, never restarted", st, pid)
	}
	if n := strings.Count(logs.String(), "the plugin is busy"); n < timing.PingFailures {
		t.Errorf("the host judged the plugin busy %d times, want at least %d", n, timing.PingFailures)
	}
}

// A plugin that stops answering because it is stopped (SIGSTOP) is dead:
// restarted after PingFailures checks in a row.
func TestStoppedPluginIsRestarted(t *testing.T) {
	p, logs := startBusy(t, busyTiming())
	pid := p.Status().PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	waitFor(t, "a restart", 2*time.Minute, func() bool {
		st := p.Status()
		return st.Restarts == 1 && st.State == StateReady
	})
	if st := p.Status(); st.PID == pid {
		t.Errorf("status %+v, want a new process", st)
	}
	if l := logs.String(); !strings.Contains(l, "3 in a row") || !strings.Contains(l, "the process is stopped") {
		t.Errorf("the host did not say the plugin was restarted after 3 checks failed while it was stopped")
	}
	waitFor(t, "the stopped process to be killed", 2*time.Minute, func() bool { return !alive(pid) })
	healthChecks(t, p) // the new process answers
}

// Busy is no excuse forever: a plugin that answers no health check for
// BusyTimeout is restarted, working or not.
func TestBusyTimeout(t *testing.T) {
	timing := busyTiming()
	timing.BusyTimeout = 3 * time.Second
	p, logs := startBusy(t, timing)
	setBusy(t, p, time.Hour)
	waitFor(t, "a restart", 2*time.Minute, func() bool { return p.Status().Restarts == 1 })
	if !strings.Contains(logs.String(), "the longest a busy plugin may go without answering") {
		t.Errorf("the host did not say the plugin was restarted for being busy too long")
	}
}
