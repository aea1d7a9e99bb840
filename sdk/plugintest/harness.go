// Package plugintest runs a plugin in-process behind real gRPC, and holds one
// conformance suite per plugin kind that every plugin, Zoe's or a third
// party's, runs from its own tests:
//
//	func TestConformance(t *testing.T) {
//		plugintest.RunAuthConformance(t, plugintest.AuthSuite{New: ..., Accounts: ...})
//	}
//
// The harness returns the client side of the plugin, so the protobuf
// conversions, streams and error categories of the wire are all exercised.
// LaunchBackend goes further: it runs the plugin's binary as a process of
// its own, as the core does, so that the back-end suite can kill it and
// check that the services outlive it. sdk/README.md says what each suite
// checks.
//
// # The probe
//
// The back-end suite sees the container policy from inside a service by
// running a probe image (BackendSuite.ProbeImage): the program
// github.com/zoe-project/zoe/sdk/plugintest/probe, standard library only,
// as the image's entrypoint (not under /probe, where the suite mounts its
// volumes). Build it with
//
//	CGO_ENABLED=0 go build -o prog github.com/zoe-project/zoe/sdk/plugintest/probe
//
// It prints "key: value" lines and exits 0; the suite reads them through
// Logs and wants, under the strictest policy: uid 12345, gid 23456, no 0
// among the groups, NoNewPrivs 1, the five Cap* masks (CapInh, CapPrm,
// CapEff, CapBnd, CapAmb, hexadecimal) 0, "ns net", "ns pid" and "ns ipc"
// links that are neither the host's initial namespaces nor the test's,
// "write /probe/rw: ok", "write /probe/ro: read-only file system",
// "pids.max: 1024" and "memory.max: 67108864" (the spec's 64 MiB). Run as
// uid 0 with Security.AllowRoot it wants "uid: 0" and no capabilities; with
// KeepCapabilities and AllowPrivilegeEscalation, "NoNewPrivs: 0", a CapBnd
// that is not 0 and within Docker's default set, and "pids.max: 77". A
// back-end may refuse these two looser runs with sdk.ErrInvalidArgument.
//
// A back-end without a probe sets NoProbe to say why; the suite then skips
// "policy: inside the container" and "policy: a missing host path" (which
// starts the probe with a volume whose host path does not exist).
package plugintest

import (
	"testing"

	"github.com/zoe-project/zoe/sdk/auth/authrpc"
	"github.com/zoe-project/zoe/sdk/backend/backendrpc"
	"github.com/zoe-project/zoe/sdk/workspace/workspacerpc"

	"github.com/hashicorp/go-plugin"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/workspace"
)

func dispense[T any](t testing.TB, kind sdk.Kind, p plugin.Plugin) T {
	t.Helper()
	client, server := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{string(kind): p})
	t.Cleanup(func() {
		// Server first: closing the client first makes the server stop
		// itself concurrently, a data race inside go-plugin.
		server.Stop()
		_ = client.Close()
	})
	raw, err := client.Dispense(string(kind))
	if err != nil {
		t.Fatalf("dispense %s plugin: %v", kind, err)
	}
	v, ok := raw.(T)
	if !ok {
		t.Fatalf("dispensed %s plugin is a %T", kind, raw)
	}
	return v
}

// Auth serves impl over in-process gRPC and returns the core's side of it.
func Auth(t testing.TB, impl auth.Authenticator) auth.Authenticator {
	return dispense[auth.Authenticator](t, sdk.KindAuth, &authrpc.Plugin{Impl: impl})
}

// Workspace serves impl over in-process gRPC and returns the core's side.
func Workspace(t testing.TB, impl workspace.Provider) workspace.Provider {
	return dispense[workspace.Provider](t, sdk.KindWorkspace, &workspacerpc.Plugin{Impl: impl})
}

// Backend serves impl over in-process gRPC and returns the core's side.
func Backend(t testing.TB, impl backend.Backend) backend.Backend {
	return dispense[backend.Backend](t, sdk.KindBackend, &backendrpc.Plugin{Impl: impl})
}
