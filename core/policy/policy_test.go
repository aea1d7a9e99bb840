package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/core/policy"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/backend"
)

// host builds directories ZApps may mount in a temporary directory:
// datasets (read-only, holding links someone on the host planted: to /, to
// a workspace, to nowhere, to the read-write directory), scratch
// (read-write, holding a link to / a container could have planted), admin
// (read-write, for admins), linked (read-write, a link to scratch), and
// ws, the workspaces' base.
func host(t *testing.T) (dir string, p policy.Policy) {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"datasets/a", "scratch", "admin", "ws/alice", "ws/bob"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"datasets/root":    "/",
		"datasets/bob":     filepath.Join(dir, "ws", "bob"),
		"datasets/scratch": filepath.Join(dir, "scratch"),
		"datasets/gone":    filepath.Join(dir, "nothing", "here"),
		"datasets/inner":   "a-relative-target",
		"scratch/root":     "/",
		"linked":           filepath.Join(dir, "scratch"),
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	return dir, policy.Policy{
		HostPaths: []policy.HostPath{
			{Path: filepath.Join(dir, "datasets"), ReadOnly: true},
			{Path: filepath.Join(dir, "scratch")},
			{Path: filepath.Join(dir, "admin"), Roles: []auth.Role{auth.RoleAdmin}},
			{Path: filepath.Join(dir, "linked")},
		},
		Reserved: []string{filepath.Join(dir, "ws")},
	}
}

func app(image string, vols ...zapp.Volume) *zapp.App {
	return &zapp.App{Name: "app", Version: 3, Services: []zapp.Service{
		{Name: "first", Image: "zoe/ok:1"},
		{Name: "second", Image: image, Volumes: vols},
	}}
}

func TestCheckVolumes(t *testing.T) {
	dir, p := host(t)
	allowed := "(allowed: " + dir + "/datasets read-only, " + dir + "/scratch read-write, " + dir + "/linked read-write)"
	tests := []struct {
		name     string
		path     string
		readOnly bool
		role     auth.Role
		also     string
		want     string // "" when allowed; else a part of the message
	}{
		{name: "root", path: "/", want: "/ is not under a host path the administrator allows " + allowed},
		{name: "Docker socket", path: "/var/run/docker.sock", want: "/var/run/docker.sock is not under a host path"},
		{name: "etc", path: "/etc", readOnly: true, want: "/etc is not under a host path the administrator allows " + allowed},
		{name: "dot-dot out of an allowed directory", path: dir + "/datasets/../../etc", readOnly: true,
			want: `has ".." elements`},
		{name: "dot-dot staying inside", path: dir + "/datasets/a/..", readOnly: true, want: `has ".." elements`},
		{name: "not clean", path: dir + "/datasets//a/", readOnly: true, want: `is not written clean; write "` + dir + `/datasets/a"`},
		{name: "another user's workspace", path: dir + "/ws/bob", want: "is not under a host path"},
		{name: "a link to another user's workspace", path: dir + "/datasets/bob", readOnly: true,
			want: "leads to " + dir + "/ws/bob through a symbolic link, which is not under"},
		{name: "a link to / in an allowed directory", path: dir + "/datasets/root", readOnly: true,
			want: "leads to / through a symbolic link"},
		{name: "under a link to /", path: dir + "/datasets/root/etc", readOnly: true,
			want: "leads to /etc through a symbolic link"},
		{name: "a missing directory under a link to /", path: dir + "/datasets/root/zoe-policy-test-missing", readOnly: true,
			want: "leads to /zoe-policy-test-missing through a symbolic link"},
		{name: "a link that leads nowhere", path: dir + "/datasets/gone", readOnly: true,
			want: "is a symbolic link to a path that does not exist"},
		{name: "a relative link that leads nowhere", path: dir + "/datasets/inner/x", readOnly: true, want: "does not exist"},
		{name: "a link to the read-write directory, read", path: dir + "/datasets/scratch", readOnly: true},
		{name: "a link into the read-write directory", path: dir + "/datasets/scratch/x", readOnly: true,
			want: "leads to " + dir + "/scratch/x through a symbolic link, inside " + dir + "/scratch, which containers can write to"},
		{name: "read-write on a read-only directory", path: dir + "/datasets/a",
			want: dir + "/datasets/a is under " + dir + "/datasets, which the administrator allows read-only; set read_only to true"},
		{name: "read-only on a read-only directory", path: dir + "/datasets/a", readOnly: true},
		{name: "the allowed directory itself", path: dir + "/datasets", readOnly: true},
		{name: "read-write on a read-write directory", path: dir + "/scratch"},
		{name: "read-only on a read-write directory", path: dir + "/scratch", readOnly: true},
		// Issue 12's review: a first service plants a link in a
		// read-write directory, a later one mounts it.
		{name: "a link planted in a read-write directory", path: dir + "/scratch/root",
			want: "lies inside " + dir + "/scratch, which containers can write to: a read-write host path is mounted whole"},
		{name: "a missing directory under a read-write one", path: dir + "/scratch/new/dir", want: "is mounted whole"},
		{name: "under a read-write directory, read-only", path: dir + "/scratch/new", readOnly: true, want: "is mounted whole"},
		{name: "an allowed directory that is a link", path: dir + "/linked"},
		{name: "under an allowed directory that is a link", path: dir + "/linked/x", want: "is mounted whole"},
		{name: "a prefix that is not a parent", path: dir + "/datasetsX", readOnly: true, want: "is not under a host path"},
		{name: "a directory for admins, by a user", path: dir + "/admin",
			want: dir + "/admin is under " + dir + "/admin, which the administrator allows only for the roles admin"},
		{name: "a directory for admins, by an admin", path: dir + "/admin", role: auth.RoleAdmin},
		{name: "the owner's workspace", path: dir + "/scratch", also: dir + "/scratch/ws/alice",
			want: "overlaps " + dir + "/scratch/ws/alice, which no ZApp may mount"},
		{name: "relative", path: "srv", want: "must be an absolute host path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			role := tc.role
			if role == "" {
				role = auth.RoleUser
			}
			var also []string
			if tc.also != "" {
				also = append(also, tc.also)
			}
			probs := p.Check(app("zoe/ok:1", zapp.Volume{Name: "ok", Path: dir + "/datasets", ReadOnly: true},
				zapp.Volume{Name: "v", Path: tc.path, ReadOnly: tc.readOnly}), role, also...)
			if tc.want == "" {
				if probs != nil {
					t.Fatalf("refused: %v", probs)
				}
				return
			}
			if len(probs) != 1 || probs[0].Path != "services[1].volumes[1].path" || !strings.Contains(probs[0].Message, tc.want) {
				t.Fatalf("problems %q, want one at services[1].volumes[1].path with %q", probs, tc.want)
			}
		})
	}
}

func TestCheckReservedUnderAllowed(t *testing.T) {
	// A host_path holding a reserved path is refused by the configuration;
	// the policy refuses the reserved path anyway.
	p := policy.Policy{HostPaths: []policy.HostPath{{Path: "/"}}, Reserved: []string{"/srv/zoe/ws"}}
	for path, want := range map[string]string{
		"/var/run/docker.sock": "overlaps /var/run/docker.sock",
		"/run":                 "overlaps /run/docker.sock",
		"/":                    "overlaps /var/run/docker.sock",
		"/proc/1":              "overlaps /proc",
		"/srv/zoe/ws/bob":      "overlaps /srv/zoe/ws",
		"/srv":                 "overlaps /srv/zoe/ws",
	} {
		probs := p.Check(app("x", zapp.Volume{Name: "v", Path: path}), auth.RoleAdmin)
		if len(probs) != 1 || !strings.Contains(probs[0].Message, want) {
			t.Errorf("%s: %v, want %q", path, probs, want)
		}
	}
}

func TestNoHostPath(t *testing.T) {
	var p policy.Policy
	probs := p.Check(app("x", zapp.Volume{Name: "v", Path: "/srv/data", ReadOnly: true}), auth.RoleAdmin)
	want := zapp.Problems{{Path: "services[1].volumes[0].path",
		Message: "/srv/data is not under a host path the administrator allows (no host path is allowed)"}}
	if !reflect.DeepEqual(probs, want) {
		t.Errorf("%q, want %q", probs, want)
	}
}

func TestCheckImages(t *testing.T) {
	p := policy.Policy{Images: []string{"zoe/*", "registry.example.org/lab/*"}}
	for image, ok := range map[string]bool{
		"zoe/ok:1":                                true,
		"zoe/ok@sha256:0123":                      true,
		"registry.example.org/lab/notebook:2":     true,
		"zoe/a/b":                                 false,
		"docker.io/zoe/ok:1":                      false,
		"registry.example.org/lab2/x":             false,
		"registry.example.org/lab/../other/image": false,
		"evil/zoe/x":                              false,
	} {
		probs := p.Check(app(image), auth.RoleUser)
		switch {
		case ok && probs != nil:
			t.Errorf("%s refused: %v", image, probs)
		case !ok && (len(probs) != 1 || probs[0].Path != "services[1].image" ||
			!strings.Contains(probs[0].Message, "is not an image the administrator allows (allowed: zoe/*, registry.example.org/lab/*)")):
			t.Errorf("%s: %v", image, probs)
		}
	}
	if probs := (&policy.Policy{}).Check(app("anything/at:all"), auth.RoleUser); probs != nil {
		t.Errorf("no patterns: %v", probs)
	}
}

func TestRun(t *testing.T) {
	u := func(n uint32) *uint32 { return &n }
	tests := []struct {
		name     string
		p        policy.Policy
		uid, gid *uint32
		user     string
		sec      backend.Security
		err      bool
	}{
		{name: "owner's ids", uid: u(1000), gid: u(1001), user: "1000:1001"},
		{name: "owner's uid only", p: policy.Policy{RunAs: &policy.IDs{UID: 7, GID: 8}}, uid: u(1000), user: "1000:8"},
		{name: "no ids: nobody", user: "65534:65534"},
		{name: "no ids: run_as", p: policy.Policy{RunAs: &policy.IDs{UID: 500, GID: 600}}, user: "500:600"},
		{name: "no ids, root allowed: the image's user", p: policy.Policy{AllowRoot: true}, user: "",
			sec: backend.Security{AllowRoot: true}},
		{name: "owner uid 0", uid: u(0), gid: u(0), err: true},
		{name: "owner uid 0, root allowed", p: policy.Policy{AllowRoot: true}, uid: u(0), gid: u(0), user: "0:0",
			sec: backend.Security{AllowRoot: true}},
		{name: "owner gid 0", uid: u(1234), gid: u(0), err: true},
		{name: "owner gid 0, root allowed", p: policy.Policy{AllowRoot: true}, uid: u(1234), gid: u(0), user: "1234:0",
			sec: backend.Security{AllowRoot: true}},
		{name: "root allowed, owner with ids", p: policy.Policy{AllowRoot: true}, uid: u(1000), gid: u(1000), user: "1000:1000"},
		{name: "escalation and capabilities", p: policy.Policy{AllowPrivilegeEscalation: true, KeepCapabilities: true},
			user: "65534:65534", sec: backend.Security{AllowPrivilegeEscalation: true, KeepCapabilities: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			user, sec, err := tc.p.Run(tc.uid, tc.gid)
			if tc.err {
				if !errors.Is(err, sdk.ErrPermissionDenied) || !strings.Contains(err.Error(), "allow_root") {
					t.Fatalf("%q %+v %v, want a permission error naming allow_root", user, sec, err)
				}
				return
			}
			if err != nil || user != tc.user || sec != tc.sec {
				t.Fatalf("%q %+v %v, want %q %+v", user, sec, err, tc.user, tc.sec)
			}
		})
	}
}

func TestOverlaps(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"/srv", "/srv", true}, {"/srv/a", "/srv", true}, {"/srv", "/srv/a", true}, {"/", "/x", true},
		{"/srv/ab", "/srv/a", false}, {"/srv/a", "/srv/b", false},
	} {
		if got := policy.Overlaps(tc.a, tc.b); got != tc.want {
			t.Errorf("Overlaps(%s, %s) = %v", tc.a, tc.b, got)
		}
	}
}
