package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestInstalledName(t *testing.T) {
	for pkg, want := range map[string]string{
		"cmd/zoe":                    "zoe",
		"plugins/auth-file":          "zoe-plugin-auth-file",
		"plugins/backend-docker":     "zoe-plugin-backend-docker",
		"plugins/":                   "",
		"plugins/auth-file/authfile": "",
		"internal/testplugins/hang":  "",
		"cmd/zoe/sub":                "",
	} {
		if got := installedName(pkg); got != want {
			t.Errorf("installedName(%q) = %q, want %q", pkg, got, want)
		}
	}
}

// TestBuildFromPrebuilt: with $ZOE_TEST_PREBUILT set, Build copies the
// core's and plugins' binaries found there (make test builds them once)
// and builds what is not there.
func TestBuildFromPrebuilt(t *testing.T) {
	prebuilt, dir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(prebuilt, "zoe"), []byte("the prebuilt zoe"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv(PrebuiltEnv, prebuilt)
	err := Build(dir, map[string]string{
		"zoe":                      "cmd/zoe",               // copied
		"zoe-plugin-workspace-dir": "plugins/workspace-dir", // not there: built
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "zoe")); err != nil || string(b) != "the prebuilt zoe" {
		t.Errorf("zoe: %q %v, want the prebuilt one", b, err)
	}
	for _, name := range []string{"zoe", "zoe-plugin-workspace-dir"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o755 || fi.Size() == 0 {
			t.Errorf("%s: %v %v, want a 0755 file", name, fi, err)
		}
	}
}
