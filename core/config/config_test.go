package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/zoe-project/zoe/core/policy"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/backend"
)

// at renders where a diagnostic is reported: "file:LINE,COL: Summary".
func at(d *hcl.Diagnostic) string {
	if d.Subject == nil {
		return "<no subject>: " + d.Summary
	}
	return fmt.Sprintf("%s:%d,%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, d.Summary)
}

func locations(diags hcl.Diagnostics) []string {
	var out []string
	for _, d := range diags {
		out = append(out, at(d))
	}
	slices.Sort(out) // hcl reports unknown attributes in map order
	return out
}

func TestParseErrors(t *testing.T) {
	t.Setenv("ZOE_TEST_UNSET", "")
	tests := []struct {
		name   string
		src    string
		want   []string // every diagnostic, "bad.hcl:LINE,COL: Summary"
		detail string   // substring of the first diagnostic's detail
	}{
		{
			name: "syntax error",
			src:  "listen = \"127.0.0.1:5001\"\nscheduler {\n  policy = \n}\n",
			want: []string{"bad.hcl:3,12: Invalid expression"},
		},
		{
			name: "unclosed block",
			src:  "scheduler {\n  policy = \"FIFO\"\n",
			want: []string{"bad.hcl:1,11: Unclosed configuration block"},
		},
		{
			name:   "unknown attribute",
			src:    "\nlistenn = \"127.0.0.1:5001\"\n",
			want:   []string{"bad.hcl:2,1: Unsupported argument"},
			detail: `Did you mean "listen"?`,
		},
		{
			name:   "unknown block",
			src:    "schedular {\n}\n",
			want:   []string{"bad.hcl:1,1: Unsupported block type"},
			detail: `Did you mean "scheduler"?`,
		},
		{
			name: "unknown attribute in core block",
			src:  "limits {\n  max_cores = 3\n}\n",
			want: []string{"bad.hcl:2,3: Unsupported argument"},
		},
		{
			name:   "number where host:port expected",
			src:    "listen = 5\n",
			want:   []string{"bad.hcl:1,10: Invalid listen address"},
			detail: `"5" is not host:port`,
		},
		{
			name:   "wrong type",
			src:    "listen = [\"127.0.0.1:5001\"]\nscheduler {\n  backfill = \"maybe\"\n}\n",
			want:   []string{"bad.hcl:1,10: Incorrect attribute value type", "bad.hcl:3,14: Incorrect attribute value type"},
			detail: "string required",
		},
		{
			name: "bad port",
			src:  "listen = \"localhost:0\"\n",
			want: []string{"bad.hcl:1,10: Invalid listen address"},
		},
		{
			name: "bad deployment name",
			src:  "deployment_name = \"Prod\"\n",
			want: []string{"bad.hcl:1,19: Invalid deployment name"},
		},
		{
			name:   "bad enum value",
			src:    "scheduler {\n  policy = \"LIFO\"\n}\n",
			want:   []string{"bad.hcl:2,12: Invalid scheduler policy"},
			detail: `use one of "FIFO", "SIZE", "DYNSIZE"`,
		},
		{
			name:   "enum in wrong case",
			src:    "log_level = \"INFO\"\n",
			want:   []string{"bad.hcl:1,13: Invalid log level"},
			detail: `Did you mean "info"?`,
		},
		{
			name: "bad placement",
			src:  "scheduler {\n  placement = \"spread\"\n}\n",
			want: []string{"bad.hcl:2,15: Invalid placement"},
		},
		{
			name:   "bad size",
			src:    "limits {\n  max_service_memory = \"64 GB!\"\n}\n",
			want:   []string{"bad.hcl:2,24: Invalid size"},
			detail: `invalid size "64 GB!"`,
		},
		{
			name: "fractional and zero limits",
			src:  "limits {\n  max_service_memory = 1.5\n  max_service_cores = 0\n}\n",
			want: []string{"bad.hcl:2,24: Invalid size", "bad.hcl:3,23: Invalid core limit"},
		},
		{
			name: "bad service logs",
			src:  "service_logs {\n  max_file_size = 100\n  max_files = 2.5\n}\n",
			want: []string{"bad.hcl:2,19: Invalid log file size", "bad.hcl:3,15: Invalid number of log files"},
		},
		{
			name:   "bad duration",
			src:    "auth \"file\" {\n  start_timeout = \"30 seconds\"\n}\n",
			want:   []string{"bad.hcl:2,19: Invalid duration"},
			detail: `"30 seconds" is not a duration`,
		},
		{
			name: "negative duration",
			src:  "auth \"file\" {\n  start_timeout = \"-1s\"\n}\n",
			want: []string{"bad.hcl:2,19: Invalid duration"},
		},
		{
			name:   "bad checksum prefix",
			src:    "workspace \"dir\" {\n  checksum = \"md5:d41d8cd98f00b204e9800998ecf8427e\"\n}\n",
			want:   []string{"bad.hcl:2,14: Invalid checksum"},
			detail: `does not start with "sha256:"`,
		},
		{
			name:   "short checksum",
			src:    "workspace \"dir\" {\n  checksum = \"sha256:abc\"\n}\n",
			want:   []string{"bad.hcl:2,14: Invalid checksum"},
			detail: "not 64 hex digits",
		},
		{
			name:   "duplicate plugin label",
			src:    "auth \"file\" {}\nauth \"ldap\" {}\nauth \"file\" {}\n",
			want:   []string{"bad.hcl:3,6: Duplicate plugin name"},
			detail: "bad.hcl:1,1-12",
		},
		{
			name: "same label in different kinds is fine",
			src:  "auth \"x\" {}\nworkspace \"x\" {}\nbackend \"x\" {}\n",
		},
		{
			name:   "two workspace blocks",
			src:    "workspace \"dir\" {}\n\nworkspace \"nfs\" {}\n",
			want:   []string{"bad.hcl:3,1: Duplicate workspace block"},
			detail: "the first one is at bad.hcl:1,1-16",
		},
		{
			name: "two backend blocks",
			src:  "backend \"docker\" {}\nbackend \"docker\" {}\n",
			want: []string{"bad.hcl:2,1: Duplicate backend block"},
		},
		{
			name: "plugin without label",
			src:  "auth {\n}\n",
			want: []string{"bad.hcl:1,6: Missing name for auth"},
		},
		{
			name: "bad plugin name",
			src:  "auth \"File_1\" {}\n",
			want: []string{"bad.hcl:1,6: Invalid plugin name"},
		},
		{
			name:   "state with both stores",
			src:    "state {\n  sqlite   = \"zoe.db\"\n  postgres = \"postgres://x\"\n}\n",
			want:   []string{"bad.hcl:3,3: Conflicting state stores"},
			detail: "exactly one",
		},
		{
			name: "state with both stores reports errors inside them too",
			src:  "state {\n  sqlite   = \"zoe.db\"\n  postgres = env(\"ZOE_TEST_SURELY_UNSET\")\n}\n",
			want: []string{"bad.hcl:3,14: Error in function call", "bad.hcl:3,3: Conflicting state stores"},
		},
		{
			name: "empty state",
			src:  "state {\n}\n",
			want: []string{"bad.hcl:1,1: Missing state store"},
		},
		{
			name: "duplicate core block",
			src:  "tls {\n  cert_file = \"c\"\n  key_file = \"k\"\n}\ntls {\n  cert_file = \"c\"\n  key_file = \"k\"\n}\n",
			want: []string{"bad.hcl:5,1: Duplicate tls block"},
		},
		{
			name: "tls missing key and empty cert",
			src:  "tls {\n  cert_file = \"\"\n}\n",
			want: []string{"bad.hcl:1,5: Missing required argument", "bad.hcl:2,15: Invalid path"},
		},
		{
			name:   "env of an unset variable",
			src:    "state {\n  postgres = env(\"ZOE_TEST_SURELY_UNSET\")\n}\n",
			want:   []string{"bad.hcl:2,14: Error in function call"},
			detail: `environment variable "ZOE_TEST_SURELY_UNSET" is not set`,
		},
		{
			name: "env of an unset variable in a plugin's reserved attribute",
			src:  "auth \"file\" {\n  binary = env(\"ZOE_TEST_SURELY_UNSET\")\n}\n",
			want: []string{"bad.hcl:2,12: Error in function call"},
		},
		{
			name: "env of a set but empty variable is empty, not unset",
			src:  "state {\n  postgres = env(\"ZOE_TEST_UNSET\", \"x\")\n}\n",
			want: []string{"bad.hcl:2,14: Invalid state store"},
		},
		{
			name: "unknown function and variable",
			src:  "listen = nope(\"x\")\nshop_dir = here\n",
			want: []string{"bad.hcl:1,10: Call to unknown function", "bad.hcl:2,12: Variables not allowed"},
		},
		{
			name: "three independent errors",
			src:  "listen = \"localhost\"\n\nscheduler {\n  policy = \"LIFO\"\n}\n\nauth \"file\" {\n  start_timeout = \"soon\"\n}\n",
			want: []string{"bad.hcl:1,10: Invalid listen address", "bad.hcl:4,12: Invalid scheduler policy", "bad.hcl:8,19: Invalid duration"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := Parse("bad.hcl", []byte(tt.src))
			if cfg == nil || cfg.Files["bad.hcl"] == nil {
				t.Fatal("Parse must return a Config holding the parsed file")
			}
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if got := locations(diags); !slices.Equal(got, want) {
				t.Fatalf("diagnostics\n got %q\nwant %q\n%v", got, want, diags)
			}
			for _, d := range diags {
				if d.Severity != hcl.DiagError {
					t.Errorf("%s: severity %v, want error", at(d), d.Severity)
				}
			}
			if tt.detail != "" && !strings.Contains(diags[0].Detail, tt.detail) {
				t.Errorf("detail %q does not contain %q", diags[0].Detail, tt.detail)
			}
		})
	}
}

func TestLoadThreeErrors(t *testing.T) {
	path := filepath.Join("testdata", "three-errors.hcl")
	cfg, diags := Load(path)
	want := []string{path + ":1,10: Invalid listen address", path + ":4,12: Invalid scheduler policy", path + ":8,19: Invalid duration"}
	var got []string
	for _, d := range diags {
		got = append(got, at(d)) // in file order, not sorted here
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	// The Config is still usable for further checks.
	if len(cfg.Plugins) != 1 || cfg.Plugins[0].Name != "file" || cfg.Plugins[0].StartTimeout != DefaultStartTimeout {
		t.Fatalf("plugins: %+v", cfg.Plugins)
	}
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, cfg.Files, diags); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Error: Invalid scheduler policy", "on " + path + " line 4, in scheduler:", `policy = "LIFO"`} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("rendered diagnostics lack %q:\n%s", s, buf.String())
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	cfg, diags := Load(filepath.Join(t.TempDir(), "nope.hcl"))
	if cfg == nil || len(diags) != 1 || diags[0].Summary != "Failed to read configuration file" {
		t.Fatalf("got %v, %v", cfg, diags)
	}
}

func TestLoadFull(t *testing.T) {
	t.Setenv("ZOE_TEST_PG_DSN", "postgres://zoe:pw@db/zoe")
	path := filepath.Join("testdata", "full.hcl")
	cfg, diags := Load(path)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	sum := []byte{0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
		0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55}
	want := &Config{
		File: filepath.Join(dir, "full.hcl"), Dir: dir,
		Listen: "0.0.0.0:8080", DeploymentName: "test-1",
		DataDir: filepath.Join(dir, "data"), PluginDir: "/opt/zoe/plugins",
		LogLevel: "debug", ShopDir: filepath.Join(dir, "shop"),
		TLS:         &TLS{CertFile: filepath.Join(dir, "tls/cert.pem"), KeyFile: "/etc/zoe/key.pem"},
		State:       State{Postgres: "postgres://zoe:pw@db/zoe"},
		Scheduler:   Scheduler{Policy: "DYNSIZE", Placement: "waterfill", Backfill: true},
		Limits:      Limits{MaxServiceCores: 2.5, MaxServiceMemory: 3 << 29},
		ServiceLogs: ServiceLogs{MaxFileSize: 1 << 20, MaxFiles: 5},
		Containers: Containers{RunAs: policy.IDs{UID: 1000, GID: 100}, AllowRoot: true, AllowPrivilegeEscalation: true,
			KeepCapabilities: true, PidsLimit: 4096, Images: []string{"zoe/*", "registry.example.org/lab/*"},
			HostPaths: []HostPath{{Path: "/srv/datasets", ReadOnly: true},
				{Path: "/srv/scratch", Roles: []auth.Role{auth.RoleAdmin, auth.RoleUser}}}},
		Plugins: []*Plugin{
			{Kind: sdk.KindAuth, Name: "ldap", Checksum: sum, StartTimeout: time.Minute},
			{Kind: sdk.KindAuth, Name: "file", StartTimeout: DefaultStartTimeout, Binary: filepath.Join(dir, "bin/zoe-auth-file")},
			{Kind: sdk.KindWorkspace, Name: "dir", StartTimeout: DefaultStartTimeout},
			{Kind: sdk.KindBackend, Name: "docker", StartTimeout: DefaultStartTimeout},
		},
	}
	defLines := []int{29, 36, 41, 45}
	for i, p := range cfg.Plugins {
		if p.Body == nil || p.DefRange.Start.Line != defLines[i] {
			t.Errorf("plugin %s: body %v, defined at line %d, want %d", p.Name, p.Body, p.DefRange.Start.Line, defLines[i])
		}
		p.Body, p.DefRange = nil, hcl.Range{}
	}
	for i := range cfg.Containers.HostPaths {
		cfg.Containers.HostPaths[i].Range = hcl.Range{}
	}
	if cfg.Files[path] == nil {
		t.Errorf("Files lacks %s: %v", path, cfg.Files)
	}
	cfg.Files = nil
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got  %+v\nwant %+v", cfg, want)
	}
	if s := cfg.State.String(); strings.Contains(s, "pw") {
		t.Errorf("State.String leaks the DSN: %s", s)
	}
}

func TestParseDefaults(t *testing.T) {
	for _, src := range []string{"", "# nothing\n", "listen = null\nscheduler {}\nlimits {}\n"} {
		cfg, diags := Parse("/etc/zoe/zoe.hcl", []byte(src))
		if len(diags) > 0 {
			t.Fatal(diags)
		}
		want := &Config{
			File: "/etc/zoe/zoe.hcl", Dir: "/etc/zoe",
			Listen: "127.0.0.1:5001", DeploymentName: "prod", DataDir: "/var/lib/zoe", LogLevel: "info",
			State:       State{SQLite: "/var/lib/zoe/zoe.db"},
			Scheduler:   Scheduler{Policy: "FIFO", Placement: "average"},
			Limits:      Limits{MaxServiceCores: 16, MaxServiceMemory: 64 << 30},
			ServiceLogs: ServiceLogs{MaxFileSize: DefaultLogFileSize, MaxFiles: DefaultLogFiles},
			Containers:  Containers{RunAs: policy.IDs{UID: policy.Nobody, GID: policy.Nobody}, PidsLimit: backend.DefaultPidsLimit},
		}
		cfg.Files = nil
		if !reflect.DeepEqual(cfg, want) {
			t.Fatalf("%q:\n got  %+v\nwant %+v", src, cfg, want)
		}
	}
}

func TestRelativePaths(t *testing.T) {
	tests := []struct {
		name, src string
		check     func(*Config) (got, want string)
	}{
		{"data_dir", `data_dir = "../data"`, func(c *Config) (string, string) { return c.DataDir, "/etc/data" }},
		{"default sqlite follows data_dir", `data_dir = "d"`, func(c *Config) (string, string) { return c.State.SQLite, "/etc/zoe/d/zoe.db" }},
		{"sqlite relative to data_dir", "data_dir = \"/srv/zoe\"\nstate { sqlite = \"db/z.db\" }",
			func(c *Config) (string, string) { return c.State.SQLite, "/srv/zoe/db/z.db" }},
		{"sqlite absolute", `state { sqlite = "/tmp/z.db" }`, func(c *Config) (string, string) { return c.State.SQLite, "/tmp/z.db" }},
		{"plugin_dir", `plugin_dir = "./plugins"`, func(c *Config) (string, string) { return c.PluginDir, "/etc/zoe/plugins" }},
		{"shop_dir", `shop_dir = "shop/"`, func(c *Config) (string, string) { return c.ShopDir, "/etc/zoe/shop" }},
		{"tls", "tls {\n cert_file = \"c.pem\"\n key_file = \"/k.pem\"\n}",
			func(c *Config) (string, string) { return c.TLS.CertFile + " " + c.TLS.KeyFile, "/etc/zoe/c.pem /k.pem" }},
		{"binary", `auth "file" { binary = "bin/f" }`, func(c *Config) (string, string) { return c.Plugins[0].Binary, "/etc/zoe/bin/f" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := Parse("/etc/zoe/zoe.hcl", []byte(tt.src))
			if len(diags) > 0 {
				t.Fatal(diags)
			}
			if got, want := tt.check(cfg); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}

	// A relative file name resolves against the working directory.
	cfg, _ := Parse("zoe.hcl", nil)
	if !filepath.IsAbs(cfg.File) || filepath.Dir(cfg.File) != cfg.Dir {
		t.Fatalf("File %q, Dir %q", cfg.File, cfg.Dir)
	}
}

func TestPluginDecode(t *testing.T) {
	t.Setenv("ZOE_TEST_USERS", "people.csv")
	src := `auth "file" {
  checksum   = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
  users_file = env("ZOE_TEST_USERS")
  dir        = "rel/dir"
}
auth "bad" {
  users_file = 3
  extra      = true
}
`
	cfg, diags := Parse("/etc/zoe/zoe.hcl", []byte(src))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	schema := sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "users_file", Type: "string", Required: true},
		{Name: "dir", Type: "string", Default: "."},
		{Name: "users_limit", Type: "number"},
	}}
	got, diags := cfg.Plugins[0].Decode(schema, cfg.EvalContext())
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	// Reserved attributes stay with the core; plugin paths stay as written.
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"users_file": "people.csv", "dir": "rel/dir", "users_limit": nil}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %s", got)
	}

	_, diags = cfg.Plugins[1].Decode(schema, cfg.EvalContext())
	if got, want := locations(diags), []string{"/etc/zoe/zoe.hcl:8,3: Unsupported argument"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}

	diags = cfg.Plugins[0].Diagnostics(sdk.Diagnostics{
		sdk.AttributeError("users_file", "Cannot read users file", "no such file"),
		{Severity: sdk.SeverityError, Summary: "Bad block"},
	})
	if got, want := locations(diags), []string{"/etc/zoe/zoe.hcl:1,1: Bad block", "/etc/zoe/zoe.hcl:3,16: Cannot read users file"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestEnvFunc(t *testing.T) {
	t.Setenv("ZOE_TEST_SET", "v")
	t.Setenv("ZOE_TEST_EMPTY", "")
	tests := []struct {
		expr, want, err string
	}{
		{`env("ZOE_TEST_SET")`, "v", ""},
		{`env("ZOE_TEST_SET", "d")`, "v", ""},
		{`env("ZOE_TEST_EMPTY", "d")`, "", ""},
		{`env("ZOE_TEST_SURELY_UNSET", "d")`, "d", ""},
		{`lower(env("ZOE_TEST_SURELY_UNSET", "ABC"))`, "abc", ""},
		{`join(",", ["a", trimspace(" b ")])`, "a,b", ""},
		{`env("ZOE_TEST_SURELY_UNSET")`, "", `environment variable "ZOE_TEST_SURELY_UNSET" is not set`},
		{`env("A", "b", "c")`, "", "at most one default"},
		{`env()`, "", "Not enough function arguments"},
		{`env(null)`, "", "Invalid function argument"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			cfg, diags := Parse("/z.hcl", []byte("shop_dir = "+tt.expr+"\n"))
			if tt.err != "" {
				if len(diags) != 1 || !strings.Contains(diags[0].Summary+" "+diags[0].Detail, tt.err) {
					t.Fatalf("got %v, want an error about %q", diags, tt.err)
				}
				return
			}
			if len(diags) > 0 {
				t.Fatal(diags)
			}
			want := ""
			if tt.want != "" {
				want = "/" + tt.want
			}
			if cfg.ShopDir != want {
				t.Fatalf("got %q, want %q", cfg.ShopDir, want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"1048576", 1 << 20, ""},
		{"512B", 512, ""},
		{"64GiB", 64 << 30, ""},
		{"64 GiB", 64 << 30, ""},
		{"1.5KiB", 1536, ""},
		{"2KB", 2000, ""},
		{"3mb", 3e6, ""},
		{"1TB", 1e12, ""},
		{"2TiB", 2 << 40, ""},
		{" 7 MiB ", 7 << 20, ""},
		{"9223372036854775807", 9223372036854775807, ""},
		{"9223372036854775808", 0, "too large"},
		{"8388608TiB", 0, "too large"},
		{"1.5", 0, "not a whole number"},
		{"0.1B", 0, "not a whole number"},
		{"64G", 0, `unknown unit "G"`},
		{"64 PB", 0, "unknown unit"},
		{"", 0, "invalid size"},
		{"GiB", 0, "invalid size"},
		{"-1GiB", 0, "invalid size"},
		{"1e3", 0, "invalid size"},
		{"1/2", 0, "invalid size"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseSize(%q) = %d, %v; want error %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestDiagnosticsInFileOrder(t *testing.T) {
	// Decoding reads checksum before start_timeout and unknown attributes
	// first; the report still follows the file.
	src := "auth \"f\" {\n  start_timeout = \"x\"\n  checksum = \"y\"\n}\nlissten = 1\n"
	_, diags := Parse("o.hcl", []byte(src))
	var got []string
	for _, d := range diags {
		got = append(got, at(d))
	}
	want := []string{"o.hcl:2,19: Invalid duration", "o.hcl:3,14: Invalid checksum", "o.hcl:5,1: Unsupported argument"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
