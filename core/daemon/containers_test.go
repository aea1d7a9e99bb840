package daemon

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/config"
	"github.com/zoe-project/zoe/sdk"
)

// Host paths that only the plugins' configurations or the host's links
// reveal are refused by Validate and Run, at the host_path block.
func TestForbiddenHostPaths(t *testing.T) {
	cases := []struct{ name, hostPath, want string }{
		{"inside the workspaces", "@DIR@/ws/unit/bob", "lies under @DIR@/ws, the users' workspaces (base_path of workspace \"dir\")"},
		{"holding the workspaces", "@DIR@/ws", "is the users' workspaces"},
		{"the users file", "@DIR@/users.csv", "is the users file (users_file of auth \"file\")"},
		{"a link to /etc", "@DIR@/link", "@DIR@/link leads to /etc through a symbolic link: /etc is the host's configuration"},
		{"a link to the data directory", "@DIR@/datalink", "leads to @DIR@/data through a symbolic link"},
		{"the plugins' directory", "@BIN@", "@BIN@ is the directory of Zoe's binary and plugins"},
		{"a link that leads nowhere", "@DIR@/nowhere", "@DIR@/nowhere cannot be checked on this host: @DIR@/nowhere is a symbolic link to a path that does not exist"},
	}
	for _, c := range cases {
		for _, fn := range []struct {
			name string
			call func(context.Context, Options) error
		}{{"Validate", Validate}, {"Run", Run}} {
			t.Run(c.name+"/"+fn.name, func(t *testing.T) {
				file, opts, diags := setup(t, baseConfig+"containers {\n  host_path \"/srv/datasets\" {}\n  host_path \""+
					c.hostPath+"\" {}\n}\n")
				dir := filepath.Dir(file)
				text, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(strings.NewReplacer("@DIR@", dir, "@BIN@", binDir).Replace(string(text))), 0o600); err != nil {
					t.Fatal(err)
				}
				// Validate does not create the data directory.
				if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
					t.Fatal(err)
				}
				for link, target := range map[string]string{"link": "/etc", "datalink": filepath.Join(dir, "data"),
					"nowhere": filepath.Join(dir, "missing")} {
					if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
						t.Fatal(err)
					}
				}
				opts.Ready = func(net.Addr) { t.Error("Ready called for a forbidden host path") }
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				if err := fn.call(ctx, opts); !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("%s: %v, want ErrInvalidConfig", fn.name, err)
				}
				// The diagnostics are wrapped at 100 columns.
				d := strings.Join(strings.Fields(diags.String()), " ")
				for _, want := range []string{"Forbidden host path", "on " + file + " line 14",
					strings.NewReplacer("@DIR@", dir, "@BIN@", binDir).Replace(c.want)} {
					if !strings.Contains(d, want) {
						t.Errorf("diagnostics lack %q:\n%s", want, d)
					}
				}
				if strings.Count(d, "Error:") != 1 {
					t.Errorf("more than one error:\n%s", d)
				}
				noChildren(t)
			})
		}
	}
}

func TestPluginPaths(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///custom/docker.sock")
	cfg := &config.Config{Dir: "/etc/zoe", PluginDir: "/opt/zoe", Plugins: []*config.Plugin{
		{Kind: sdk.KindAuth, Name: "file"}, {Kind: sdk.KindAuth, Name: "ldap"},
		{Kind: sdk.KindWorkspace, Name: "dir"}, {Kind: sdk.KindBackend, Name: "docker"},
	}}
	plugins := &Plugins{Configs: map[*config.Plugin][]byte{
		cfg.Plugins[0]: []byte(`{"users_file": "users.csv"}`),
		cfg.Plugins[1]: []byte(`{"server": "ldaps://x"}`),
		cfg.Plugins[2]: []byte(`{"base_path": "/srv/ws", "deployment_path": null}`),
		cfg.Plugins[3]: []byte(`{"host": {"n1": {"address": "unix:///run/other.sock"}, "n2": {"address": "tcp://10.0.0.1:2376"}}}`),
	}}
	var got []string
	for _, r := range pluginPaths(cfg, plugins, "/usr/bin/zoe") {
		got = append(got, r.Path+" "+r.Why)
	}
	want := []string{
		"/custom/docker.sock the Docker socket (DOCKER_HOST): whoever can use it owns the host",
		`/etc/zoe/users.csv the users file (users_file of auth "file")`,
		`/srv/ws the users' workspaces (base_path of workspace "dir")`,
		`/run/other.sock the Docker socket of host "n1" of backend "docker": whoever can use it owns the host`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
