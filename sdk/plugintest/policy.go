package plugintest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// probeUser is who the suite's services run as: no user of any image.
const probeUser = "12345:23456"

// dockerDefaultCaps is the mask of Docker's default capabilities, the most
// Security.KeepCapabilities keeps: CHOWN, DAC_OVERRIDE, FOWNER, FSETID,
// KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT,
// MKNOD, AUDIT_WRITE and SETFCAP (bits 0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18,
// 27, 29 and 31 of /proc/self/status's Cap* lines).
const dockerDefaultCaps = 0xa80425fb

// probeMemory is the memory limit of the probe's strictest run.
const probeMemory = 64 << 20

// checkRootRefused: a spec that would run as root, or as a user the image
// could map to root, without Security.AllowRoot is refused with
// sdk.ErrInvalidArgument and leaves nothing on the platform; so is one in
// the root group.
func checkRootRefused(t *testing.T, p backend.Backend, s BackendSuite) {
	// "12345" has no gid: the platform would pick the group, perhaps root's.
	for _, user := range []string{"", "0", "0:0", "00:23456", "root", "root:root", "12345:0", "12345"} {
		t.Run(fmt.Sprintf("user %q", user), func(t *testing.T) {
			ctx := ctxFor(t, s.Timeout)
			_, spec := prepare(t, ctx, p, s.LongRunning())
			spec.User, spec.Security = user, backend.Security{}
			st, err := p.Start(ctx, spec)
			if !errors.Is(err, sdk.ErrInvalidArgument) {
				t.Errorf("Start as %q without AllowRoot = %+v, %v; want sdk.ErrInvalidArgument", user, st, err)
			}
			checkNothingLeft(t, ctx, p, spec.Name)
		})
	}
}

// checkMissingHostPath: a host path that does not exist is an error of
// Start, is not created, and leaves nothing on the platform. It runs the
// probe image, so a back-end with NoProbe is not asked.
func checkMissingHostPath(t *testing.T, p backend.Backend, s BackendSuite) {
	if s.ProbeImage == "" {
		if s.NoProbe == "" {
			t.Fatal("BackendSuite: set ProbeImage, or NoProbe saying why the back-end cannot run it")
		}
		t.Skip("no probe image: " + s.NoProbe)
	}
	local := s.ProbeDir == nil
	base := ""
	if local {
		base = t.TempDir()
	} else {
		base = s.ProbeDir(t)
	}
	missing := base + "/zoe-conformance-missing-" + randomSuffix() + "/dir"
	ctx := ctxFor(t, s.Timeout)
	_, spec := prepare(t, ctx, p, backend.ServiceSpec{Image: s.ProbeImage, Command: []string{"/data"},
		Volumes: []backend.Volume{{HostPath: missing, MountPoint: "/data"}}})
	if st, err := p.Start(ctx, spec); err == nil {
		_ = p.Remove(ctx, st.Handle, true)
		t.Errorf("Start with the missing host path %s = %+v; want an error", missing, st)
	}
	checkNothingLeft(t, ctx, p, spec.Name)
	if _, err := os.Stat(missing[:strings.LastIndex(missing, "/")]); local && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the missing host path was created: %v", err)
	}
}

// The initial namespaces of every Linux host have these fixed inode numbers
// (include/linux/proc_ns.h): a container in one of them shares the host's.
const (
	hostIPCNamespace = "ipc:[4026531839]"
	hostPIDNamespace = "pid:[4026531836]"
)

// checkProbe runs the probe image under three policies and reads from its
// output that the back-end applied each, the process limit included (the
// default for 0, else the spec's), and the memory limit. A back-end may
// refuse the two looser policies (sdk.ErrInvalidArgument): it may always be
// stricter than the spec.
func checkProbe(t *testing.T, open func(*testing.T) backend.Backend, s BackendSuite) {
	if s.ProbeImage == "" {
		if s.NoProbe == "" {
			t.Fatal("BackendSuite: set ProbeImage, or NoProbe saying why the back-end cannot run it")
		}
		t.Skip("no probe image: " + s.NoProbe)
	}
	dir := ""
	if s.ProbeDir != nil {
		dir = s.ProbeDir(t)
	} else {
		dir = t.TempDir()
		// The probe runs as an ordinary user: the directory is open to
		// all, so that only the mount's read-only flag can refuse a write.
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	noCaps := func(f map[string]string) error {
		for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
			if n, err := strconv.ParseUint(f[k], 16, 64); err != nil || n != 0 {
				return fmt.Errorf("%s = %q, want no capability", k, f[k])
			}
		}
		return nil
	}
	noNewPrivs := func(f map[string]string) error {
		if f["NoNewPrivs"] != "1" {
			return fmt.Errorf("NoNewPrivs = %q, want 1", f["NoNewPrivs"])
		}
		return nil
	}
	wantPids := func(value string) func(map[string]string) error {
		if s.PidsLimitAbove != "" {
			return func(map[string]string) error { return nil }
		}
		return want("pids.max", value)
	}
	if s.PidsLimitAbove != "" {
		t.Logf("pids.max not read from the probe: %s", s.PidsLimitAbove)
	}
	cases := []struct {
		name      string
		user      string
		sec       backend.Security
		res       backend.Resources
		mayRefuse bool
		checks    []func(map[string]string) error
	}{
		{"strictest", probeUser, backend.Security{}, backend.Resources{MemoryLimit: probeMemory}, false, []func(map[string]string) error{
			want("uid", "12345"), want("gid", "23456"), noRootGroup, noNewPrivs, noCaps, ownNamespaces,
			want("write /probe/rw", "ok"), want("write /probe/ro", "read-only file system"),
			wantPids(strconv.Itoa(backend.DefaultPidsLimit)), want("memory.max", strconv.Itoa(probeMemory)),
		}},
		{"root allowed, nothing more", "0:0", backend.Security{AllowRoot: true}, backend.Resources{}, true, []func(map[string]string) error{
			want("uid", "0"), noNewPrivs, noCaps, ownNamespaces, want("write /probe/ro", "read-only file system"),
		}},
		{"escalation and default capabilities allowed", probeUser,
			backend.Security{AllowPrivilegeEscalation: true, KeepCapabilities: true}, backend.Resources{PidsLimit: 77}, true,
			[]func(map[string]string) error{
				want("uid", "12345"), want("NoNewPrivs", "0"), ownNamespaces, wantPids("77"),
				func(f map[string]string) error {
					n, err := strconv.ParseUint(f["CapBnd"], 16, 64)
					switch {
					case err != nil || n == 0:
						return fmt.Errorf("CapBnd = %q, want the platform's default capabilities", f["CapBnd"])
					case n&^dockerDefaultCaps != 0:
						return fmt.Errorf("CapBnd = %q has capabilities beyond Docker's default set (%x): %x",
							f["CapBnd"], dockerDefaultCaps, n&^dockerDefaultCaps)
					}
					return nil
				},
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := open(t)
			ctx := ctxFor(t, s.Timeout)
			events, err := p.Events(ctx)
			if err != nil {
				t.Fatalf("Events: %v", err)
			}
			_, spec := prepare(t, ctx, p, backend.ServiceSpec{Image: s.ProbeImage,
				Command: []string{"/probe/rw", "/probe/ro"}, User: c.user, Security: c.sec,
				Resources: c.res,
				Volumes:   []backend.Volume{{HostPath: dir, MountPoint: "/probe/rw"}, {HostPath: dir, MountPoint: "/probe/ro", ReadOnly: true}}})
			st, err := p.Start(ctx, spec)
			if c.mayRefuse && errors.Is(err, sdk.ErrInvalidArgument) {
				checkNothingLeft(t, ctx, p, spec.Name)
				t.Skipf("the back-end refuses the probe as %q with %+v (stricter than the spec, which it may be): %v", c.user, c.sec, err)
			}
			if err != nil {
				t.Fatalf("Start the probe as %q with %+v and %+v: %v", c.user, c.sec, c.res, err)
			}
			defer func() { _ = p.Remove(ctx, st.Handle, true) }()
			e := waitEvent(t, ctx, events, spec.Name, backend.EventExited)
			fields, lines := probeOutput(t, ctx, p, st.Handle)
			if e.ExitCode != 0 {
				t.Fatalf("the probe exited with %d: %q", e.ExitCode, lines)
			}
			for _, check := range c.checks {
				if err := check(fields); err != nil {
					t.Errorf("%v (probe output %q)", err, lines)
				}
			}
		})
	}
}

func want(key, value string) func(map[string]string) error {
	return func(f map[string]string) error {
		if f[key] != value {
			return fmt.Errorf("%s = %q, want %q", key, f[key], value)
		}
		return nil
	}
}

func noRootGroup(f map[string]string) error {
	if slices.Contains(strings.Fields(f["groups"]), "0") {
		return fmt.Errorf("groups = %q: the root group is not asked for", f["groups"])
	}
	return nil
}

// ownNamespaces: the probe is in none of the host's initial namespaces,
// nor in this process's (the same host, when the platform runs here).
func ownNamespaces(f map[string]string) error {
	for _, ns := range []string{"net", "pid", "ipc"} {
		got := f["ns "+ns]
		if got == "" || strings.HasPrefix(got, "unreadable") {
			return fmt.Errorf("ns %s = %q, want the namespace", ns, got)
		}
		if got == hostIPCNamespace || got == hostPIDNamespace {
			return fmt.Errorf("ns %s = %q: the host's", ns, got)
		}
		if mine, err := os.Readlink("/proc/self/ns/" + ns); err == nil && mine == got {
			return fmt.Errorf("ns %s = %q: the same as the test's", ns, got)
		}
	}
	return nil
}

// probeOutput reads the probe's "key: value" lines.
func probeOutput(t *testing.T, ctx context.Context, p backend.Backend, h backend.Handle) (map[string]string, []string) {
	t.Helper()
	ch, err := p.Logs(ctx, h, backend.LogOptions{})
	if err != nil {
		t.Fatalf("Logs of the probe: %v", err)
	}
	fields := map[string]string{}
	var lines []string
	for e := range ch {
		line := strings.TrimRight(string(e.Line), "\r\n")
		lines = append(lines, line)
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields, lines
}
