package sim_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/plugins/backend-sim/sim"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/hclschema"
)

// diagPaths returns the paths of the error diagnostics in err.
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
	p := sim.New(nil)
	if info := p.Info(); info.Name != "sim" || info.Version == "" || info.Description == "" {
		t.Errorf("Info() = %+v", info)
	}
	if _, err := hclschema.Spec(p.Schema()); err != nil {
		t.Errorf("the core cannot use the schema: %v", err)
	}
}

func TestConfigureDiagnostics(t *testing.T) {
	node := func(attrs map[string]any) map[string]any {
		n := map[string]any{"cores": 4, "memory": "8GiB"}
		for k, v := range attrs {
			n[k] = v
		}
		return map[string]any{"node1": n}
	}
	tests := []struct {
		name      string
		overrides map[string]any
		dataDir   string
		want      []string // diagnostic paths; nil for success
	}{
		{"good", nil, "", nil},
		{"bad memory", map[string]any{"node": node(map[string]any{"memory": "lots"})}, "", []string{"node.node1.memory"}},
		{"unknown memory unit", map[string]any{"node": node(map[string]any{"memory": "8 parsecs"})}, "", []string{"node.node1.memory"}},
		{"zero memory", map[string]any{"node": node(map[string]any{"memory": "0GiB"})}, "", []string{"node.node1.memory"}},
		{"zero cores", map[string]any{"node": node(map[string]any{"cores": 0})}, "", []string{"node.node1.cores"}},
		{"both wrong", map[string]any{"node": node(map[string]any{"cores": -1, "memory": "x"})}, "", []string{"node.node1.cores", "node.node1.memory"}},
		{"no node", map[string]any{"node": map[string]any{}}, "", []string{"node"}},
		{"bad default run", map[string]any{"default_run": "soon"}, "", []string{"default_run"}},
		{"negative default run", map[string]any{"default_run": "-1s"}, "", []string{"default_run"}},
		{"empty state file", map[string]any{"state_file": ""}, "", []string{"state_file"}},
		{"no state file and no data dir", map[string]any{"state_file": nil}, "", []string{"state_file"}},
		{"default state file", map[string]any{"state_file": nil}, t.TempDir(), nil},
		{"unknown attribute", map[string]any{"colour": "red"}, "", []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The state file's directory first: cleanups run last first,
			// and the plugin may still write there until it is closed.
			path := stateFile(t)
			p := sim.New(testLogger(t))
			t.Cleanup(func() { _ = p.Close(context.Background()) })
			err := p.Configure(context.Background(), sdk.Config{
				JSON: block(t, path, tt.overrides), Deployment: "test", DataDir: tt.dataDir})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Configure: %v", err)
				}
				return
			}
			if got := diagPaths(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics at %q, want %q (%v)", got, tt.want, err)
			}
			if _, err := p.Nodes(context.Background()); !errors.Is(err, sdk.ErrUnavailable) {
				t.Errorf("Nodes after a failed Configure: %v, want sdk.ErrUnavailable", err)
			}
		})
	}
}

func TestDefaultStateFile(t *testing.T) {
	data := t.TempDir()
	p := sim.New(testLogger(t))
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	if err := p.Configure(t.Context(), sdk.Config{JSON: block(t, "", nil), Deployment: "prod", DataDir: data}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, "backend-sim", "prod.json")); err != nil {
		t.Errorf("default state file: %v", err)
	}
}

func TestRelativeStateFileResolvesAgainstConfigDir(t *testing.T) {
	dir := t.TempDir()
	p := sim.New(testLogger(t))
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	if err := p.Configure(t.Context(), sdk.Config{JSON: block(t, "state/sim.json", nil), ConfigDir: dir}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "sim.json")); err != nil {
		t.Errorf("state file: %v", err)
	}
}

func TestValidateOnly(t *testing.T) {
	t.Run("writes nothing", func(t *testing.T) {
		dir := t.TempDir()
		p := sim.New(testLogger(t))
		t.Cleanup(func() { _ = p.Close(context.Background()) })
		cfg := sdk.Config{JSON: block(t, "", nil), Deployment: "prod", DataDir: filepath.Join(dir, "data"), ValidateOnly: true}
		if err := p.Configure(t.Context(), cfg); err != nil {
			t.Fatalf("Configure: %v", err)
		}
		var found []string
		_ = filepath.WalkDir(dir, func(path string, _ fs.DirEntry, _ error) error {
			if path != dir {
				found = append(found, path)
			}
			return nil
		})
		if len(found) > 0 {
			t.Errorf("ValidateOnly created %v", found)
		}
		if _, err := p.Nodes(t.Context()); !errors.Is(err, sdk.ErrUnavailable) {
			t.Errorf("Nodes after ValidateOnly: %v, want sdk.ErrUnavailable (not configured)", err)
		}
	})
	t.Run("still checks", func(t *testing.T) {
		p := sim.New(testLogger(t))
		cfg := sdk.Config{JSON: block(t, stateFile(t), map[string]any{"node": map[string]any{}}), ValidateOnly: true}
		if got := diagPaths(t, p.Configure(t.Context(), cfg)); !slices.Equal(got, []string{"node"}) {
			t.Errorf("diagnostics at %q, want node", got)
		}
	})
	t.Run("corrupt state file", func(t *testing.T) {
		path := stateFile(t)
		if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, validate := range []bool{true, false} {
			p := sim.New(testLogger(t))
			t.Cleanup(func() { _ = p.Close(context.Background()) })
			cfg := sdk.Config{JSON: block(t, path, nil), ValidateOnly: validate}
			if got := diagPaths(t, p.Configure(t.Context(), cfg)); !slices.Equal(got, []string{"state_file"}) {
				t.Errorf("ValidateOnly=%v: diagnostics at %q, want state_file", validate, got)
			}
		}
		if b, _ := os.ReadFile(path); string(b) != "{not json" {
			t.Errorf("the corrupt state file was overwritten: %q", b)
		}
	})
	t.Run("unwritable directory", func(t *testing.T) {
		if !testutil.Unprivileged(t) {
			return
		}
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		p := sim.New(testLogger(t))
		cfg := sdk.Config{JSON: block(t, filepath.Join(dir, "x", "sim.json"), nil), ValidateOnly: true}
		if got := diagPaths(t, p.Configure(t.Context(), cfg)); !slices.Equal(got, []string{"state_file"}) {
			t.Errorf("diagnostics at %q, want state_file", got)
		}
	})
}

// The block a user writes decodes against the schema, and Configure takes
// the result: the path the core and the plugin share.
func TestHCLBlock(t *testing.T) {
	src := `
state_file = "` + stateFile(t) + `"
node "node1" {
  cores   = 8
  memory  = "32GiB"
  labels  = ["ssd"]
  images  = ["zoe/notebook:1.0"]
  address = "192.0.2.10"
}
node "gpu1" {
  cores    = 16
  memory   = "64GB"
  labels   = ["gpu"]
  disabled = true
}
default_run = "90s"
pull_images = false
`
	f, diags := hclsyntax.ParseConfig([]byte(src), "sim.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	p := sim.New(testLogger(t))
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	js, diags := hclschema.Decode(f.Body, p.Schema(), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if err := p.Configure(t.Context(), sdk.Config{JSON: js, Deployment: "test"}); err != nil {
		t.Fatalf("Configure(%s): %v", js, err)
	}
	nodes, err := p.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []backend.Node{
		{Name: "gpu1", Address: "127.0.0.1", Cores: 16, MemoryBytes: 64e9, Labels: []string{"gpu"}, Images: []string{},
			State: backend.NodeDisabled, StateDetail: "disabled in the configuration"},
		{Name: "node1", Address: "192.0.2.10", Cores: 8, MemoryBytes: 32 << 30, Labels: []string{"ssd"},
			Images: []string{"zoe/notebook:1.0"}, State: backend.NodeReady},
	}
	if len(nodes) != len(want) {
		t.Fatalf("Nodes = %+v, want %+v", nodes, want)
	}
	for i := range want {
		g, w := nodes[i], want[i]
		if g.Name != w.Name || g.Address != w.Address || g.Cores != w.Cores || g.MemoryBytes != w.MemoryBytes ||
			!slices.Equal(g.Labels, w.Labels) || !slices.Equal(g.Images, w.Images) || g.State != w.State ||
			g.StateDetail != w.StateDetail {
			t.Errorf("node %d = %+v, want %+v", i, g, w)
		}
	}
	// pull_images = false: an image missing on node1 is refused.
	_, err = p.Start(t.Context(), backend.ServiceSpec{Name: "x", Image: "other", Node: "node1", User: testUser})
	if !errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "image other is not on node node1") {
		t.Errorf("Start with a missing image: %v", err)
	}
}
