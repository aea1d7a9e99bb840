package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
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

// brokenCase is a configuration with errors and every diagnostic Parse
// reports for it, "bad.hcl:LINE,COL: Summary". The table is a file,
// testdata/broken.json, so that the daemon's tests run the same files
// through both `zoe config validate` and `zoe server`.
type brokenCase struct {
	Name   string   `json:"name"`
	Src    string   `json:"src"`
	Want   []string `json:"want"`
	Detail string   `json:"detail"` // substring of the first diagnostic's detail
}

func brokenCases(t *testing.T) []brokenCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "broken.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []brokenCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatalf("testdata/broken.json: %v", err)
	}
	if len(cases) == 0 {
		t.Fatal("testdata/broken.json has no cases")
	}
	return cases
}

func TestParseErrors(t *testing.T) {
	t.Setenv("ZOE_TEST_UNSET", "")
	for _, tt := range brokenCases(t) {
		t.Run(tt.Name, func(t *testing.T) {
			cfg, diags := Parse("bad.hcl", []byte(tt.Src))
			if cfg == nil || cfg.Files["bad.hcl"] == nil {
				t.Fatal("Parse must return a Config holding the parsed file")
			}
			want := slices.Clone(tt.Want)
			slices.Sort(want)
			if got := locations(diags); !slices.Equal(got, want) {
				t.Fatalf("diagnostics\n got %q\nwant %q\n%v", got, want, diags)
			}
			for _, d := range diags {
				if d.Severity != hcl.DiagError {
					t.Errorf("%s: severity %v, want error", at(d), d.Severity)
				}
			}
			if tt.Detail != "" && !strings.Contains(diags[0].Detail, tt.Detail) {
				t.Errorf("detail %q does not contain %q", diags[0].Detail, tt.Detail)
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
