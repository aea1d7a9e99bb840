// Package testutil holds helpers shared by Zoe's tests.
package testutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// ModuleRoot returns the directory of the repository's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the zoe module")
	}
	return filepath.Dir(mod), nil
}

// Build compiles the given packages of the module (paths relative to its
// root, e.g. "cmd/zoe" or "plugins/auth-file") into dir, each named as
// names[i]. It is meant for TestMain: out-of-process tests run the real
// binaries.
//
// In the unprivileged re-run of one test (see Unprivileged) it builds
// nothing: that test needs no binary, and nobody cannot use the go cache.
func Build(dir string, pkgs map[string]string) error {
	if os.Getenv(unprivilegedEnv) != "" {
		return nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	prebuilt := os.Getenv(PrebuiltEnv)
	for name, pkg := range pkgs {
		if prebuilt != "" && name == installedName(pkg) {
			if err := copyBinary(filepath.Join(prebuilt, name), filepath.Join(dir, name)); err == nil {
				continue
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		// go run keeps the binaries it links in the build cache (since
		// Go 1.24), go build -o links them again each time: with -exec cp
		// it copies the binary to dir instead of running it, so a binary
		// is linked once for every test package and every make test that
		// finds its sources unchanged.
		cmd := exec.Command("go", "run", "-exec", "cp", "./"+pkg, filepath.Join(dir, name))
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./%s: %v\n%s", pkg, err, out)
		}
		// The plugin host runs only binaries no one else can write,
		// whatever the umask.
		if err := os.Chmod(filepath.Join(dir, name), 0o755); err != nil {
			return err
		}
	}
	return os.Chmod(dir, 0o755)
}

// PrebuiltEnv names a directory of the core and plugin binaries built
// once for a whole test run (make test builds them first, under their
// installed names): Build copies them from there instead of asking the go
// command once per test package (about 65 go commands, each loading the
// module's packages to find them up to date).
const PrebuiltEnv = "ZOE_TEST_PREBUILT"

// installedName is the name cmd/zoe or plugins/<name> is installed under,
// "" for any other package.
func installedName(pkg string) string {
	switch dir, name := path.Split(pkg); {
	case pkg == "cmd/zoe":
		return "zoe"
	case dir == "plugins/" && name != "":
		return "zoe-plugin-" + name
	}
	return ""
}

// copyBinary copies a binary with cp, not with a file this process opens
// for writing: a child forked meanwhile by another goroutine would hold
// that file open, and running the copy would fail (text file busy).
func copyBinary(from, to string) error {
	if _, err := os.Stat(from); err != nil {
		return err
	}
	if out, err := exec.Command("cp", from, to).CombinedOutput(); err != nil {
		return fmt.Errorf("cp %s %s: %v: %s", from, to, err, out)
	}
	return os.Chmod(to, 0o755)
}

// Binaries are the core and plugin binaries under their installed names.
func Binaries() map[string]string {
	return map[string]string{
		"zoe":                      "cmd/zoe",
		"zoe-plugin-auth-file":     "plugins/auth-file",
		"zoe-plugin-workspace-dir": "plugins/workspace-dir",
	}
}

// RunWithBinaries is a TestMain body for out-of-process tests: it builds
// the core and plugin binaries (Binaries, plus backend-sim when sim) into a
// temporary directory, sets *dir to it, runs the tests and removes it.
func RunWithBinaries(m interface{ Run() int }, prefix string, sim bool, dir *string) int {
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(d)
	bins := Binaries()
	if sim {
		bins["zoe-plugin-backend-sim"] = "plugins/backend-sim"
	}
	if err := Build(d, bins); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		return 1
	}
	*dir = d
	return m.Run()
}
