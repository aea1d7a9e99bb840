package plugintest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/backend/backendrpc"
	"github.com/zoe-project/zoe/sdk/handshake"
	"github.com/zoe-project/zoe/sdk/workspace"
)

// serveEnv makes this test binary serve the memory back-end as a plugin
// process instead of running tests: the suite's Process.
const serveEnv = "ZOE_PLUGINTEST_SERVE_MEM"

// brokenEnv makes TestBrokenPlugin run the suite on the plugin of that
// flaw (see brokenPlugins); TestSuiteFindsBrokenPlugins runs it so.
const brokenEnv = "ZOE_PLUGINTEST_BROKEN"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) != "" {
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: handshake.Config(),
			VersionedPlugins: map[int]plugin.PluginSet{handshake.ProtocolVersion: {
				string(sdk.KindBackend): &backendrpc.Plugin{Impl: &memBackend{}}}},
			GRPCServer: plugin.DefaultGRPCServer,
		})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// memSuite is the suite on the memory back-end; its platform is the file
// path, its plugin processes on procFile ("" for their own memory).
func memSuite(t *testing.T, path, procFile string, flaws memFlaws) BackendSuite {
	t.Setenv(serveEnv, "1") // inherited by the plugin processes only
	platform := newMemPlatform(path)
	block, err := json.Marshal(map[string]any{"state_file": procFile, "flaws": flaws})
	if err != nil {
		t.Fatal(err)
	}
	return BackendSuite{
		New: func(*testing.T) backend.Backend {
			return &memBackend{p: platform, dep: "conformance", flaws: flaws}
		},
		Process: func(*testing.T) (string, sdk.Config) {
			return os.Args[0], sdk.Config{JSON: block, Deployment: "conformance"}
		},
		LongRunning: func() backend.ServiceSpec {
			return backend.ServiceSpec{Image: "sleeper", Ports: []backend.Port{{Port: 8080, Protocol: "tcp"}},
				Resources: backend.Resources{Cores: 1}}
		},
		Exiting: func() backend.ServiceSpec {
			return backend.ServiceSpec{Image: "job", Environment: map[string]string{"EXIT_CODE": "3"}}
		},
		Timeout: 10 * time.Second,
		NoProbe: "an in-memory double runs no program",
	}
}

func TestBackendConformanceOfMemoryPlugin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "platform.json")
	RunBackendConformance(t, memSuite(t, path, path, memFlaws{}))
}

// brokenPlugins break one rule each, and the suite's subtests that must
// fail for it.
var brokenPlugins = map[string]struct {
	run  func(t *testing.T)
	fail []string
}{
	"services die with the process": {
		run: func(t *testing.T) {
			RunBackendConformance(t, memSuite(t, filepath.Join(t.TempDir(), "platform.json"), "", memFlaws{}))
		},
		fail: []string{"restart_as_a_separate_process"},
	},
	"List ignores labels": {
		run: func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "platform.json")
			RunBackendConformance(t, memSuite(t, path, path, memFlaws{ListIgnoresLabels: true}))
		},
		fail: []string{"list_by_labels"},
	},
	"Start replaces a service of the same name": {
		run: func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "platform.json")
			RunBackendConformance(t, memSuite(t, path, path, memFlaws{StartReplaces: true}))
		},
		fail: []string{"names_are_unique"},
	},
	"Recover reads the handle before it looks the ID up": {
		run: func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "platform.json")
			RunBackendConformance(t, memSuite(t, path, path, memFlaws{RecoverReadsFirst: true}))
		},
		fail: []string{"unknown_handles_are_not_found"},
	},
	"handles reach another deployment's services": {
		run: func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "platform.json")
			RunBackendConformance(t, memSuite(t, path, path, memFlaws{HandlesCrossDeployments: true}))
		},
		fail: []string{"deployments_are_apart"},
	},
	"workspace on a relative host path": {
		run: func(t *testing.T) {
			RunWorkspaceConformance(t, WorkspaceSuite{New: func(*testing.T) workspace.Provider {
				return &memWorkspace{base: "workspaces"}
			}})
		},
		fail: []string{"prepare"},
	},
}

// TestBrokenPlugin runs the suite on one broken plugin when
// TestSuiteFindsBrokenPlugins asks for it, and does nothing otherwise.
func TestBrokenPlugin(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		return
	}
	brokenPlugins[name].run(t)
}

// The suite fails each broken plugin exactly where it breaks the contract,
// and passes it everywhere else.
func TestSuiteFindsBrokenPlugins(t *testing.T) {
	failed := regexp.MustCompile(`(?m)^\s*--- FAIL: TestBrokenPlugin/([^/\s]+) `)
	for name, b := range brokenPlugins {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenPlugin$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the suite passed a plugin whose %s (error %v):\n%s", name, err, out)
			}
			var got []string
			for _, m := range failed.FindAllStringSubmatch(string(out), -1) {
				got = append(got, m[1])
			}
			slices.Sort(got)
			if !slices.Equal(got, b.fail) {
				t.Errorf("the suite failed %v for a plugin whose %s; want %v:\n%s", got, name, b.fail, out)
			}
		})
	}
}

// The conversions must carry every field across the wire.
func TestBackendFieldsSurviveTheWire(t *testing.T) {
	mem := &memBackend{p: newMemPlatform(""), dep: "d"}
	p := Backend(t, mem)
	spec := backend.ServiceSpec{
		Name: "svc", Hostname: "svc-1-prod", Image: "img", Command: []string{"a", "b c"}, WorkDir: "/w",
		Environment: map[string]string{"K": "V"}, Labels: map[string]string{"zoe.x": "y"},
		Resources: backend.Resources{MemoryReservation: 1, MemoryLimit: 2, Cores: 1.5, ShmSize: 3, PidsLimit: 4},
		Volumes:   []backend.Volume{{HostPath: "/h", MountPoint: "/m", ReadOnly: true}, {VolumeName: "v", MountPoint: "/v"}},
		Ports:     []backend.Port{{Port: 80, Protocol: "tcp", Name: "http"}}, Network: "", Node: "node1", ExecutionID: "42", User: "1000:1000",
		Security: backend.Security{AllowRoot: true, AllowPrivilegeEscalation: true, KeepCapabilities: true},
	}
	st, err := p.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	got := mem.p.mem.Services[st.Handle.ID].Spec
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", spec) {
		t.Errorf("spec after the wire:\n%+v\nwant\n%+v", got, spec)
	}
	if err := p.(backend.Updater).Update(context.Background(), st.Handle, backend.Resources{Cores: 3}); err != nil {
		t.Fatal(err)
	}
	if c := mem.p.mem.Services[st.Handle.ID].Spec.Resources.Cores; c != 3 {
		t.Errorf("cores after Update = %v, want 3", c)
	}
	list, err := p.List(context.Background(), backend.ListOptions{Labels: map[string]string{"zoe.x": "y"}})
	if err != nil || len(list) != 1 || list[0].Labels["zoe.x"] != "y" {
		t.Errorf("List by a label = %+v, %v; want the service with its labels", list, err)
	}
}

// bare is a back-end with none of the optional interfaces.
type bare struct{ backend.Backend }

// Over the wire, the client has every optional method; the plugin's
// capabilities say which it implements, and the others answer
// sdk.ErrUnsupported.
func TestOptionalInterfacesOverTheWire(t *testing.T) {
	ctx := context.Background()
	full := Backend(t, &memBackend{p: newMemPlatform(""), dep: "d"})
	caps, err := full.Capabilities(ctx)
	if err != nil || caps != (backend.Capabilities{PullsImages: true, Updater: true, Closer: true}) {
		t.Errorf("capabilities of a plugin with every optional interface: %+v, %v", caps, err)
	}
	if err := full.(backend.Closer).Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	none := Backend(t, bare{&memBackend{p: newMemPlatform(""), dep: "d"}})
	caps, err = none.Capabilities(ctx)
	if err != nil || caps != (backend.Capabilities{PullsImages: true}) {
		t.Errorf("capabilities of a plugin with no optional interface: %+v, %v", caps, err)
	}
	if err := none.(backend.Updater).Update(ctx, backend.Handle{ID: "x"}, backend.Resources{}); !errors.Is(err, sdk.ErrUnsupported) {
		t.Errorf("Update of a plugin without it: %v, want sdk.ErrUnsupported", err)
	}
	if err := none.(backend.Closer).Close(ctx); !errors.Is(err, sdk.ErrUnsupported) || !strings.Contains(err.Error(), "nothing to close") {
		t.Errorf("Close of a plugin without it: %v, want sdk.ErrUnsupported", err)
	}
}
