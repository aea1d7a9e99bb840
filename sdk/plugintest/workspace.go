package plugintest

import (
	"context"
	"errors"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/workspace"
)

// WorkspaceSuite describes a workspace plugin to the conformance suite.
type WorkspaceSuite struct {
	// New returns a configured provider that holds no workspace yet.
	New func(t *testing.T) workspace.Provider
}

// RunWorkspaceConformance checks a workspace plugin through the wire.
func RunWorkspaceConformance(t *testing.T, s WorkspaceSuite) {
	open := func(t *testing.T) workspace.Provider { return Workspace(t, s.New(t)) }
	ctx := context.Background()
	alice := workspace.User{Username: "alice"}
	bob := workspace.User{Username: "bob.smith"}

	t.Run("info and schema", func(t *testing.T) {
		checkBase(t, open(t), sdk.KindWorkspace, workspace.APIVersion)
	})
	t.Run("prepare", func(t *testing.T) {
		p := open(t)
		if ok, err := p.Exists(ctx, alice); err != nil || ok {
			t.Fatalf("Exists before Prepare = %v, %v; want false, nil", ok, err)
		}
		m, err := p.Prepare(ctx, alice)
		if err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		if m.MountPoint != workspace.MountPoint {
			t.Errorf("mount point %q, want %q", m.MountPoint, workspace.MountPoint)
		}
		if (m.HostPath == "") == (m.VolumeName == "") {
			t.Errorf("mount %+v: want exactly one of HostPath and VolumeName", m)
		}
		// Back-ends refuse a relative host path (backend.CheckVolumes): it
		// would resolve against wherever the platform runs.
		if m.HostPath != "" && !path.IsAbs(m.HostPath) {
			t.Errorf("host path %q is relative: want an absolute path on the platform's nodes", m.HostPath)
		}
		if ok, err := p.Exists(ctx, alice); err != nil || !ok {
			t.Errorf("Exists after Prepare = %v, %v; want true, nil", ok, err)
		}
		again, err := p.Prepare(ctx, alice)
		if err != nil || again != m {
			t.Errorf("second Prepare = %+v, %v; want %+v (idempotent)", again, err, m)
		}
	})
	t.Run("users are isolated", func(t *testing.T) {
		p := open(t)
		a, err := p.Prepare(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		b, err := p.Prepare(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		if a.HostPath == b.HostPath && a.VolumeName == b.VolumeName {
			t.Errorf("alice and bob share the workspace %+v", a)
		}
	})
	t.Run("unsafe usernames are refused", func(t *testing.T) {
		p := open(t)
		for _, name := range []string{"", ".", "..", "../alice", "a/b", "/etc", "a\x00b", `a\b`} {
			u := workspace.User{Username: name}
			if _, err := p.Prepare(ctx, u); !errors.Is(err, sdk.ErrInvalidArgument) {
				t.Errorf("Prepare(%q): error %v, want sdk.ErrInvalidArgument", name, err)
			}
			if _, err := p.Exists(ctx, u); !errors.Is(err, sdk.ErrInvalidArgument) {
				t.Errorf("Exists(%q): error %v, want sdk.ErrInvalidArgument", name, err)
			}
		}
	})
	t.Run("size", func(t *testing.T) {
		p := open(t)
		if _, err := p.Size(ctx, alice); !errors.Is(err, sdk.ErrNotFound) && !errors.Is(err, sdk.ErrUnsupported) {
			t.Errorf("Size of a missing workspace: error %v, want sdk.ErrNotFound or sdk.ErrUnsupported", err)
		}
		m, err := p.Prepare(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		before, err := p.Size(ctx, alice)
		if errors.Is(err, sdk.ErrUnsupported) {
			return
		}
		if err != nil || before < 0 {
			t.Fatalf("Size = %d, %v", before, err)
		}
		if m.HostPath == "" {
			return
		}
		if _, err := os.Stat(m.HostPath); err != nil {
			return // not visible from where the test runs
		}
		if err := os.WriteFile(filepath.Join(m.HostPath, "conformance.bin"), make([]byte, 1000), 0o600); err != nil {
			t.Fatal(err)
		}
		after, err := p.Size(ctx, alice)
		if err != nil || after != before+1000 {
			t.Errorf("Size after writing 1000 bytes = %d, %v; want %d", after, err, before+1000)
		}
	})
}
