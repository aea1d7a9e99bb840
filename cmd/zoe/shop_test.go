package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShopCheck(t *testing.T) {
	broken := t.TempDir()
	for name, text := range map[string]string{
		// One entry with a bad manifest key, one with a ZApp file over the
		// limits, one fine but without a logo (a warning only).
		"bad/manifest.json": `{"version": 1, "zapps": [{"category": "C", "name": "N", "description": "app.json",
			"readable_descr": "README.md", "parameters": [], "colour": "red"}]}`,
		"bad/app.json":      readExample(t, "batch/batch.json", "", ""),
		"bad/README.md":     "# Bad\n",
		"big/manifest.json": `{"version": 1, "zapps": [{"category": "C", "name": "Big", "description": "big.json", "readable_descr": "README.md", "parameters": []}]}`,
		"big/big.json":      readExample(t, "batch/batch.json", `"cores": {"min": 1,`, `"cores": {"min": 64,`),
		"big/README.md":     "# Big\n",
		"ok/manifest.json":  `{"version": 1, "zapps": [{"category": "C", "name": "Fine", "description": "batch.json", "readable_descr": "README.md", "parameters": []}]}`,
		"ok/batch.json":     readExample(t, "batch/batch.json", "", ""),
		"ok/README.md":      "# Fine\n",
	} {
		p := filepath.Join(broken, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := newFixture(t)
	smallLimits := f.write(t, baseConfig+"\nlimits {\n  max_service_cores = 0.75\n}\n")
	badConfig := filepath.Join(f.dir, "bad.hcl")
	if err := os.WriteFile(badConfig, []byte("limits {\n  max_service_cores = -1\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Abs("../../examples/shop")
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"examples", []string{"shop", "check", examples}, 0,
			[]string{"Notebooks\n  notebook-0  Jupyter notebook", "dask-0  Dask cluster with a notebook",
				"parameter worker: service_count, int 1..16 step 1, default none", "batch-0",
				"visible to: all except guest", "3 entries, 0 errors, 0 warnings"}, nil},
		{"broken", []string{"shop", "check", broken}, 1,
			[]string{"ok-0  Fine",
				"error: " + filepath.Join(broken, "bad/manifest.json") + ": zapps[0].colour: unknown key",
				"error: " + filepath.Join(broken, "big/big.json") + ": services[0].resources.cores.min:",
				"warning: " + filepath.Join(broken, "ok/logo.png") + ": the entry ok-0 has no logo",
				"1 entry, 2 errors, 3 warnings"},
			[]string{"zoe: " + broken + ": 2 errors"}},
		{"limits from the configuration", []string{"shop", "check", "-config", smallLimits, examples}, 1,
			[]string{"examples/shop/batch/batch.json: services[0].resources.cores.min:", "dask-0", "2 entries, 1 error"},
			[]string{"zoe: " + examples + ": 1 error"}},
		{"invalid configuration", []string{"shop", "check", "--config", badConfig, examples}, 1,
			nil, []string{"max_service_cores must be a number greater than 0", "zoe: configuration " + badConfig + " is invalid"}},
		{"no directory", []string{"shop", "check"}, 1,
			nil, []string{"zoe: no shop directory"}},
		{"missing directory", []string{"shop", "check", filepath.Join(broken, "nope")}, 1,
			nil, []string{"zoe: shop directory:", "no such file or directory"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runZoe(t, "", c.args...)
			if r.code != c.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, c.code, r.stdout, r.stderr)
			}
			for _, s := range c.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			for _, s := range c.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
		})
	}
}

// readExample returns an example ZApp file with old replaced by new.
func readExample(t *testing.T, name, old, new string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../../examples/shop", name))
	if err != nil {
		t.Fatal(err)
	}
	if old != "" && !strings.Contains(string(data), old) {
		t.Fatalf("%s lacks %q", name, old)
	}
	return strings.Replace(string(data), old, new, 1)
}
