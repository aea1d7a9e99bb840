package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/sdk/auth"
)

// A third party's plugin: its own module, requiring the SDK module and
// nothing of Zoe's core. The replace stands for "go get" of a tagged
// sdk/vX.Y.Z; it points at the SDK's directory, never the repository root.
// The SDK's requirements are listed as go mod tidy would list them: offline,
// an incomplete list would send the go command after the go.mod files of
// old dependencies that the SDK's own build never needed.
const outOfTreeGoMod = `module example.com/zoe-plugin-auth-hello

go 1.26.0

require github.com/zoe-project/zoe/sdk v0.0.0-00010101000000-000000000000

require (
SDK_REQUIREMENTS)

replace github.com/zoe-project/zoe/sdk => SDK_DIR
`

const outOfTreeMain = `package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/serve"
)

type hello struct{ log *slog.Logger }

func (h *hello) Info() sdk.Info { return sdk.Info{Name: "hello", Version: "1.2.3"} }
func (h *hello) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{{Name: "greeting", Type: "string", Help: "what to say"}}}
}
func (h *hello) Configure(context.Context, sdk.Config) error { h.log.Info("configured"); return nil }
func (h *hello) Authenticate(_ context.Context, user, _ string) (auth.Identity, error) {
	return auth.Identity{}, fmt.Errorf("%s: %w", user, sdk.ErrInvalidCredentials)
}
func (h *hello) Lookup(_ context.Context, user string) (auth.Identity, error) {
	return auth.Identity{}, fmt.Errorf("%s: %w", user, sdk.ErrNotFound)
}
func (h *hello) Generation(context.Context) (uint64, error) { return 1, nil }

func main() {
	serve.Serve(func(log *slog.Logger) sdk.Plugin { return &hello{log: log} }, serve.Command{
		Name: "greet", Usage: "NAME...", Help: "greet people",
		Run: func(_ context.Context, args []string) error {
			fmt.Println("hello", strings.Join(args, " "))
			return nil
		},
	})
}
`

// The module cache holds what the SDK's own build needed, and nothing must be
// fetched: offline, the build can only use the SDK module and what it
// requires. A plugin that imports Zoe's core does not build.
func TestOutOfTreePluginBuildsAgainstTheSDKAlone(t *testing.T) {
	sdkDir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(sdkDir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(sdkDir, "go.mod"))
	if err != nil || !slices.Contains(strings.Split(string(mod), "\n"), "module github.com/zoe-project/zoe/sdk") {
		t.Fatalf("%s is not the SDK module's directory: %v", sdkDir, err)
	}
	var reqs strings.Builder
	for _, block := range strings.Split(string(mod), "require (\n")[1:] {
		block, _, _ = strings.Cut(block, ")")
		for line := range strings.Lines(block) {
			path, version, _ := strings.Cut(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), "// indirect")), " ")
			if path != "" {
				reqs.WriteString("\t" + path + " " + version + " // indirect\n")
			}
		}
	}
	if !strings.Contains(reqs.String(), "github.com/hashicorp/go-plugin ") {
		t.Fatalf("no requirements read from the SDK's go.mod:\n%s", mod)
	}
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", strings.NewReplacer("SDK_DIR", sdkDir, "SDK_REQUIREMENTS", reqs.String()).Replace(outOfTreeGoMod))
	write("go.sum", string(sum))
	write("main.go", outOfTreeMain)

	goCmd := func(args ...string) *exec.Cmd {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
		return cmd
	}
	bin := filepath.Join(dir, "zoe-plugin-auth-hello")
	if out, err := goCmd("build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build of the out-of-tree plugin: %v\n%s", err, out)
	}

	t.Run("links only the SDK and what it requires", func(t *testing.T) {
		out, err := goCmd("list", "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}", ".").Output()
		if err != nil {
			t.Fatal(err)
		}
		mods := strings.Fields(string(out))
		if !slices.Contains(mods, "github.com/zoe-project/zoe/sdk") {
			t.Errorf("the plugin does not link the SDK module: %v", mods)
		}
		if slices.Contains(mods, "github.com/zoe-project/zoe") {
			t.Errorf("the plugin links Zoe's core module")
		}
		for _, mod := range mods {
			// The core's module and modules only the core needs.
			for _, core := range []string{"github.com/jackc/", "modernc.org/", "github.com/spf13/cobra", "github.com/moby/"} {
				if strings.HasPrefix(mod, core) {
					t.Errorf("the plugin links %s", mod)
				}
			}
		}
	})

	t.Run("importing the core does not build", func(t *testing.T) {
		write("core.go", "package main\n\nimport _ \"github.com/zoe-project/zoe/core/state\"\n")
		defer os.Remove(filepath.Join(dir, "core.go"))
		// readonly: no module in the build list provides the package, and
		// none is looked for. (The message depends on what the module cache
		// holds; the import is what fails either way.)
		cmd := goCmd("build", "-o", os.DevNull, ".")
		cmd.Env = append(cmd.Env, "GOFLAGS=-mod=readonly")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.HasPrefix(string(out), "core.go:3:8: ") {
			t.Fatalf("a plugin importing the core built, or failed for another reason: %v\n%s", err, out)
		}
	})

	t.Run("describe", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, "describe")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("describe: %v\n%s", err, stderr.String())
		}
		var got struct {
			Info struct {
				Kind, Name, Version string
				APIVersions         []string
			}
			Schema struct{ Attributes []struct{ Name, Type string } }
		}
		if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
			t.Fatalf("describe printed no JSON: %v\n%s", err, stdout.String())
		}
		if got.Info.Kind != "auth" || got.Info.Name != "hello" || got.Info.Version != "1.2.3" ||
			!slices.Equal(got.Info.APIVersions, []string{auth.APIVersion}) ||
			len(got.Schema.Attributes) != 1 || got.Schema.Attributes[0].Name != "greeting" {
			t.Errorf("describe: %s", stdout.String())
		}
	})

	t.Run("its own command", func(t *testing.T) {
		out, err := exec.Command(bin, "greet", "alice", "bob").Output()
		if err != nil || string(out) != "hello alice bob\n" {
			t.Errorf("greet: %q, %v", out, err)
		}
		cmd := exec.Command(bin, "nope")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		var exit *exec.ExitError
		if err := cmd.Run(); !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(stderr.String(), "zoe-plugin-auth-hello greet NAME...") {
			t.Errorf("unknown command: %v, stderr %q; want exit 2 and the usage", err, stderr.String())
		}
	})
}
