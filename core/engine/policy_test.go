package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/zoe-project/zoe/core/engine"
	"github.com/zoe-project/zoe/core/policy"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/backend"
)

// withVolumes adds volumes to the first service of a test ZApp.
func withVolumes(t *testing.T, desc []byte, vols ...zapp.Volume) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(desc, &m); err != nil {
		t.Fatal(err)
	}
	m["services"].([]any)[0].(map[string]any)["volumes"] = vols
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// specs records the specs the engine starts services with.
type specs struct {
	engine.Backend
	mu   sync.Mutex
	list []backend.ServiceSpec
}

func (s *specs) Start(ctx context.Context, spec backend.ServiceSpec) (backend.ServiceStatus, error) {
	s.mu.Lock()
	s.list = append(s.list, spec)
	s.mu.Unlock()
	return s.Backend.Start(ctx, spec)
}

func (s *specs) started() []backend.ServiceSpec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]backend.ServiceSpec(nil), s.list...)
}

func TestSubmitRefusedByPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{noEngine: true})
	one := zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true})
	for _, tc := range []struct{ path, want string }{
		{"/", "/ is not under a host path the administrator allows (no host path is allowed)"},
		{"/var/run/docker.sock", "/var/run/docker.sock is not under a host path"},
		{"/srv/../etc", `"/srv/../etc" has ".." elements`},
	} {
		_, err := e.eng.Submit(t.Context(), "alice", "bad", withVolumes(t, one, zapp.Volume{Name: "host", Path: tc.path}))
		var probs zapp.Problems
		if !errors.Is(err, sdk.ErrInvalidArgument) || !errors.As(err, &probs) || len(probs) != 1 ||
			probs[0].Path != "services[0].volumes[0].path" || !strings.Contains(probs[0].Message, tc.want) {
			t.Errorf("%s: %v, want services[0].volumes[0].path: %s", tc.path, err, tc.want)
		}
	}
	list, _, err := e.store.ListExecutions(t.Context(), state.Filter{})
	if err != nil || len(list) != 0 {
		t.Errorf("executions recorded: %v %v", list, err)
	}
}

func TestSubmitOwnerRoot(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{noEngine: true})
	zero := uint32(0)
	if _, err := e.store.RecordLogin(t.Context(), auth.Identity{Username: "toor", Role: auth.RoleUser, UID: &zero, GID: &zero}); err != nil {
		t.Fatal(err)
	}
	_, err := e.eng.Submit(t.Context(), "toor", "x", zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true}))
	if !errors.Is(err, sdk.ErrPermissionDenied) || !strings.Contains(err.Error(), "allow_root") {
		t.Errorf("an owner with uid 0: %v", err)
	}
}

// TestPolicyTightened: an execution accepted under a policy that allowed
// its host path does not start once the policy no longer does.
func TestPolicyTightened(t *testing.T) {
	t.Parallel()
	var rec *specs
	e := newEnv(t, options{noEngine: true, wrap: func(b engine.Backend) engine.Backend {
		rec = &specs{Backend: b}
		return rec
	}})
	data := filepath.Join(e.dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	e.cfg.Containers = policy.Policy{HostPaths: []policy.HostPath{{Path: data, ReadOnly: true}}}
	var err error
	if e.eng, err = engine.New(testutil.Logger(t).Named("engine"), e.cfg); err != nil {
		t.Fatal(err)
	}
	ex := e.submit(withVolumes(t, zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}),
		zapp.Volume{Name: "data", Path: data, ReadOnly: true}))

	e.cfg.Containers = policy.Policy{}
	e.restart()
	got := e.waitStatus(ex.ID, state.StatusError)
	if want := "the container policy refuses the ZApp: services[0].volumes[0].path: " + data +
		" is not under a host path the administrator allows"; !strings.Contains(got.ErrorMessage, want) {
		t.Errorf("error %q, want %q", got.ErrorMessage, want)
	}
	if n := len(rec.started()); n != 0 || e.startsOf(containerName(ex.ID, "alpha0")) != 0 {
		t.Errorf("%d services started", n)
	}
}

// TestPolicyLinkPlanted: a host path that became a symbolic link to /
// after the submission is refused before the start.
func TestPolicyLinkPlanted(t *testing.T) {
	t.Parallel()
	var rec *specs
	e := newEnv(t, options{noEngine: true, wrap: func(b engine.Backend) engine.Backend {
		rec = &specs{Backend: b}
		return rec
	}})
	scratch := filepath.Join(e.dir, "scratch")
	if err := os.MkdirAll(filepath.Join(scratch, "mine"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Read-only: someone on the host, not a container, plants the link.
	e.cfg.Containers = policy.Policy{HostPaths: []policy.HostPath{{Path: scratch, ReadOnly: true}}}
	var err error
	if e.eng, err = engine.New(testutil.Logger(t).Named("engine"), e.cfg); err != nil {
		t.Fatal(err)
	}
	ex := e.submit(withVolumes(t, zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}),
		zapp.Volume{Name: "scratch", Path: filepath.Join(scratch, "mine"), ReadOnly: true}))
	if err := os.Remove(filepath.Join(scratch, "mine")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(scratch, "mine")); err != nil {
		t.Fatal(err)
	}
	e.run()
	got := e.waitStatus(ex.ID, state.StatusError)
	if want := "leads to / through a symbolic link"; !strings.Contains(got.ErrorMessage, want) {
		t.Errorf("error %q, want %q", got.ErrorMessage, want)
	}
	if n := len(rec.started()); n != 0 {
		t.Errorf("%d services started", n)
	}
}

// TestRunAs: services run as the owner's ids, else as run_as, never with
// more rights than the policy gives.
func TestRunAs(t *testing.T) {
	t.Parallel()
	uid, gid := uint32(1000), uint32(1001)
	for _, tc := range []struct {
		name   string
		p      policy.Policy
		ids    bool
		user   string
		secure backend.Security
		pids   int64 // engine.Config.PidsLimit, which every spec carries
	}{
		{name: "no ids: nobody", user: "65534:65534"},
		{name: "no ids: run_as", p: policy.Policy{RunAs: &policy.IDs{UID: 4000, GID: 4001}}, user: "4000:4001", pids: 300},
		{name: "the owner's ids", p: policy.Policy{RunAs: &policy.IDs{UID: 4000, GID: 4001}}, ids: true, user: "1000:1001"},
		{name: "no ids, root allowed", p: policy.Policy{AllowRoot: true, KeepCapabilities: true},
			secure: backend.Security{AllowRoot: true, KeepCapabilities: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec *specs
			e := newEnv(t, options{noEngine: true, wrap: func(b engine.Backend) engine.Backend {
				rec = &specs{Backend: b}
				return rec
			}})
			e.cfg.Containers, e.cfg.PidsLimit = tc.p, tc.pids
			var err error
			if e.eng, err = engine.New(testutil.Logger(t).Named("engine"), e.cfg); err != nil {
				t.Fatal(err)
			}
			id := auth.Identity{Username: "alice", Role: auth.RoleUser}
			if tc.ids {
				id.UID, id.GID = &uid, &gid
			}
			if _, err := e.store.RecordLogin(t.Context(), id); err != nil {
				t.Fatal(err)
			}
			e.run()
			ex := e.submit(zappJSON(t, false, svc{name: "alpha", ess: 1, total: 1, monitor: true, env: forever()}))
			e.waitStatus(ex.ID, state.StatusRunning)
			list := rec.started()
			if len(list) != 1 || list[0].User != tc.user || list[0].Security != tc.secure || list[0].Resources.PidsLimit != tc.pids {
				t.Fatalf("started %+v, want user %q, %+v and pids limit %d", list, tc.user, tc.secure, tc.pids)
			}
			// The workspace belongs to whom the services run as, and
			// ZOE_UID and ZOE_GID say who that is.
			want := strings.Split(tc.user, ":")
			if tc.user == "" {
				want = []string{"", ""}
			}
			if env := list[0].Environment; env["ZOE_UID"] != want[0] || env["ZOE_GID"] != want[1] {
				t.Errorf("ZOE_UID %q ZOE_GID %q, want %q", env["ZOE_UID"], env["ZOE_GID"], want)
			}
			fi, err := os.Stat(filepath.Join(e.dir, "ws", deployment, "alice"))
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if owner := fmt.Sprintf("%d:%d", st.Uid, st.Gid); tc.user != "" && owner != tc.user {
				t.Errorf("the workspace belongs to %s, want %s", owner, tc.user)
			}
		})
	}
}
