package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/core/policy"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/backend"
)

func TestContainersErrors(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		want   []string // every diagnostic, "bad.hcl:LINE,COL: Summary"
		detail string   // substring of the first diagnostic's detail
	}{
		{
			name:   "run_as not uid:gid",
			src:    "containers {\n  run_as = \"nobody\"\n}\n",
			want:   []string{"bad.hcl:2,12: Invalid run_as"},
			detail: `"nobody" is not uid:gid`,
		},
		{
			name: "run_as uid only",
			src:  "containers {\n  run_as = \"1000\"\n}\n",
			want: []string{"bad.hcl:2,12: Invalid run_as"},
		},
		{
			name: "run_as out of range",
			src:  "containers {\n  run_as = \"4294967295:1\"\n}\n",
			want: []string{"bad.hcl:2,12: Invalid run_as"},
		},
		{
			name:   "run_as root without allow_root",
			src:    "containers {\n  run_as = \"0:0\"\n}\n",
			want:   []string{"bad.hcl:2,12: Invalid run_as"},
			detail: "allow_root is false",
		},
		{
			name: "allow_root not a bool",
			src:  "containers {\n  allow_root = \"yes please\"\n}\n",
			want: []string{"bad.hcl:2,16: Incorrect attribute value type"},
		},
		{
			name:   "run_as the root group without allow_root",
			src:    "containers {\n  run_as = \"1234:0\"\n}\n",
			want:   []string{"bad.hcl:2,12: Invalid run_as"},
			detail: "gid 0",
		},
		{
			name:   "pids_limit 0",
			src:    "containers {\n  pids_limit = 0\n}\n",
			want:   []string{"bad.hcl:2,16: Invalid pids_limit"},
			detail: "-1 for no limit",
		},
		{
			name: "pids_limit below -1",
			src:  "containers {\n  pids_limit = -5\n}\n",
			want: []string{"bad.hcl:2,16: Invalid pids_limit"},
		},
		{
			name: "pids_limit not whole",
			src:  "containers {\n  pids_limit = 10.5\n}\n",
			want: []string{"bad.hcl:2,16: Invalid pids_limit"},
		},
		{
			name: "pids_limit not a number",
			src:  "containers {\n  pids_limit = \"many\"\n}\n",
			want: []string{"bad.hcl:2,16: Incorrect attribute value type"},
		},
		{
			name:   "bad image pattern",
			src:    "containers {\n  images = [\"zoe/*\", \"zoe/[\"]\n}\n",
			want:   []string{"bad.hcl:2,12: Invalid image pattern"},
			detail: `"zoe/[" is not an image pattern`,
		},
		{
			name: "empty image pattern",
			src:  "containers {\n  images = [\"\"]\n}\n",
			want: []string{"bad.hcl:2,12: Invalid image pattern"},
		},
		{
			name:   "relative host path",
			src:    "containers {\n  host_path \"srv/data\" {}\n}\n",
			want:   []string{"bad.hcl:2,13: Invalid host path"},
			detail: "must be an absolute path",
		},
		{
			name:   "dot-dot",
			src:    "containers {\n  host_path \"/srv/datasets/../../etc\" {}\n}\n",
			want:   []string{"bad.hcl:2,13: Invalid host path"},
			detail: `has ".." elements`,
		},
		{
			name:   "root",
			src:    "containers {\n  host_path \"/\" {}\n}\n",
			want:   []string{"bad.hcl:2,13: Forbidden host path"},
			detail: "/ holds /var/run/docker.sock, the Docker socket",
		},
		{
			name:   "the Docker socket",
			src:    "containers {\n  host_path \"/var/run/docker.sock\" {}\n}\n",
			want:   []string{"bad.hcl:2,13: Forbidden host path"},
			detail: "/var/run/docker.sock is the Docker socket",
		},
		{
			name:   "a directory holding the Docker socket",
			src:    "containers {\n  host_path \"/run/\" {}\n}\n",
			want:   []string{"bad.hcl:2,13: Forbidden host path"},
			detail: "/run holds /run/docker.sock",
		},
		{
			name:   "under etc",
			src:    "containers {\n  host_path \"/etc/ssl\" {}\n}\n",
			want:   []string{"bad.hcl:2,13: Forbidden host path"},
			detail: "/etc/ssl lies under /etc, the host's configuration",
		},
		{
			name: "proc sys dev root boot",
			src: "containers {\n  host_path \"/proc\" {}\n  host_path \"/sys/fs\" {}\n  host_path \"/dev\" {}\n" +
				"  host_path \"/root\" {}\n  host_path \"/boot\" {}\n}\n",
			want: []string{"bad.hcl:2,13: Forbidden host path", "bad.hcl:3,13: Forbidden host path",
				"bad.hcl:4,13: Forbidden host path", "bad.hcl:5,13: Forbidden host path", "bad.hcl:6,13: Forbidden host path"},
		},
		{
			name:   "the data directory, set after the block",
			src:    "containers {\n  host_path \"/srv/zoe\" {}\n}\ndata_dir = \"/srv/zoe/data\"\n",
			want:   []string{"bad.hcl:2,13: Forbidden host path"},
			detail: "/srv/zoe holds /srv/zoe/data, Zoe's data directory (data_dir)",
		},
		{
			name:   "the default data directory",
			src:    "containers {\n  host_path \"/var/lib\" {}\n}\n",
			want:   []string{"bad.hcl:2,13: Forbidden host path"},
			detail: "/var/lib holds /var/lib/zoe, Zoe's data directory",
		},
		{
			name:   "the state database elsewhere",
			src:    "state {\n  sqlite = \"/srv/db/zoe.db\"\n}\ncontainers {\n  host_path \"/srv/db\" {}\n}\n",
			want:   []string{"bad.hcl:5,13: Forbidden host path"},
			detail: "Zoe's state database",
		},
		{
			name:   "the shop",
			src:    "shop_dir = \"/srv/shop\"\ncontainers {\n  host_path \"/srv/shop/notebook\" {}\n}\n",
			want:   []string{"bad.hcl:3,13: Forbidden host path"},
			detail: "the ZApp shop",
		},
		{
			name:   "duplicate after cleaning",
			src:    "containers {\n  host_path \"/srv/data\" {}\n  host_path \"/srv//data/\" {}\n}\n",
			want:   []string{"bad.hcl:3,13: Duplicate host_path block"},
			detail: "/srv/data is already allowed at bad.hcl:2,13-24",
		},
		{
			name:   "a host path inside a read-write one",
			src:    "containers {\n  host_path \"/srv/scratch\" { read_only = false }\n  host_path \"/srv/scratch/data\" {}\n}\n",
			want:   []string{"bad.hcl:3,13: Overlapping host paths"},
			detail: "/srv/scratch is read-write, so containers can write there",
		},
		{
			name:   "a read-write host path inside a read-only one",
			src:    "containers {\n  host_path \"/srv/data\" {}\n  host_path \"/srv/data/tmp\" { read_only = false }\n}\n",
			want:   []string{"bad.hcl:3,13: Overlapping host paths"},
			detail: "/srv/data/tmp is read-write",
		},
		{
			name:   "unknown role",
			src:    "containers {\n  host_path \"/srv/data\" {\n    roles = [\"user\", \"root\"]\n  }\n}\n",
			want:   []string{"bad.hcl:3,13: Invalid role"},
			detail: `"root" is not a role`,
		},
		{
			name: "no roles",
			src:  "containers {\n  host_path \"/srv/data\" {\n    roles = []\n  }\n}\n",
			want: []string{"bad.hcl:3,13: Invalid roles"},
		},
		{
			name: "read_only not a bool",
			src:  "containers {\n  host_path \"/srv/data\" {\n    read_only = \"no\"\n  }\n}\n",
			want: []string{"bad.hcl:3,17: Incorrect attribute value type"},
		},
		{
			name: "unknown attribute",
			src:  "containers {\n  volumes = []\n}\n",
			want: []string{"bad.hcl:2,3: Unsupported argument"},
		},
		{
			name: "host_path without a label",
			src:  "containers {\n  host_path {}\n}\n",
			want: []string{"bad.hcl:2,13: Missing path for host_path"},
		},
		{
			name: "duplicate block",
			src:  "containers {}\ncontainers {}\n",
			want: []string{"bad.hcl:2,1: Duplicate containers block"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Parse("bad.hcl", []byte(tt.src))
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if got := locations(diags); !slices.Equal(got, want) {
				t.Fatalf("diagnostics\n got %q\nwant %q\n%v", got, want, diags)
			}
			if tt.detail != "" && !strings.Contains(diags[0].Detail, tt.detail) {
				t.Errorf("detail %q does not contain %q", diags[0].Detail, tt.detail)
			}
		})
	}
}

func TestContainersPolicy(t *testing.T) {
	cfg, diags := Parse("/etc/zoe/zoe.hcl", []byte(`
containers {
  run_as = "500:600"
  images = ["zoe/*"]
  host_path "/srv/datasets" {}
  host_path "/srv/scratch" {
    read_only = false
    roles     = ["admin"]
  }
}
`))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	got := cfg.Containers.Policy(cfg.ReservedPaths()...)
	want := policy.Policy{RunAs: &policy.IDs{UID: 500, GID: 600}, Images: []string{"zoe/*"},
		HostPaths: []policy.HostPath{{Path: "/srv/datasets", ReadOnly: true},
			{Path: "/srv/scratch", Roles: []auth.Role{auth.RoleAdmin}}},
		Reserved: []string{"/var/lib/zoe", "/etc/zoe/zoe.hcl", "/var/lib/zoe/zoe.db"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestDefaultRunAs(t *testing.T) {
	for _, c := range []struct {
		euid, egid int
		want       policy.IDs
	}{
		{0, 0, policy.IDs{UID: policy.Nobody, GID: policy.Nobody}},
		{1000, 100, policy.IDs{UID: 1000, GID: 100}},
		{-1, -1, policy.IDs{UID: policy.Nobody, GID: policy.Nobody}}, // Windows: no ids
	} {
		if got := defaultRunAs(c.euid, c.egid); got != c.want {
			t.Errorf("defaultRunAs(%d, %d) = %v, want %v", c.euid, c.egid, got, c.want)
		}
	}
}

// pids_limit: absent is the default, never unlimited; -1 is none; the root
// group is allowed with allow_root.
func TestContainersPidsLimit(t *testing.T) {
	for _, c := range []struct {
		src  string
		want int64
	}{
		{"", backend.DefaultPidsLimit},
		{"containers {}\n", backend.DefaultPidsLimit},
		{"containers {\n  pids_limit = 200\n}\n", 200},
		{"containers {\n  pids_limit = -1\n}\n", -1},
		{"containers {\n  run_as = \"1234:0\"\n  allow_root = true\n}\n", backend.DefaultPidsLimit},
	} {
		cfg, diags := Parse("zoe.hcl", []byte(c.src))
		if diags.HasErrors() {
			t.Fatalf("%q: %v", c.src, diags)
		}
		if cfg.Containers.PidsLimit != c.want {
			t.Errorf("%q: PidsLimit = %d, want %d", c.src, cfg.Containers.PidsLimit, c.want)
		}
	}
}
