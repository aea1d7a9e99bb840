package docker_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// TestPolicyConfig: the container the engine holds says what the policy
// says, for the strictest policy and for one that allows everything it can.
func TestPolicyConfig(t *testing.T) {
	t.Parallel()
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	cli := dockerClient(t)
	net := testutil.CreateNetwork(t, ctx, p)
	dir := t.TempDir()
	cases := []struct {
		name        string
		user        string
		sec         backend.Security
		pids        int64 // asked for
		capDrop     []string
		securityOpt []string
		wantPids    int64
	}{
		{"strictest", testutil.ServiceUser, backend.Security{}, 0, []string{"ALL"}, []string{"no-new-privileges:true"}, backend.DefaultPidsLimit},
		{"all allowed", "0:0", backend.Security{AllowRoot: true, AllowPrivilegeEscalation: true, KeepCapabilities: true}, -1, nil, nil, -1},
		{"a process limit", testutil.ServiceUser, backend.Security{}, 300, []string{"ALL"}, []string{"no-new-privileges:true"}, 300},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := testutil.StartService(t, ctx, p, net, backend.ServiceSpec{Image: testimages.HTTPService, User: c.user, Security: c.sec,
				Resources: backend.Resources{PidsLimit: c.pids},
				Volumes:   []backend.Volume{{HostPath: dir, MountPoint: "/data", ReadOnly: true}}})
			res, err := cli.ContainerInspect(ctx, st.Handle.ID, client.ContainerInspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cfg, hc := res.Container.Config, res.Container.HostConfig
			if cfg.User != c.user {
				t.Errorf("User = %q, want %q", cfg.User, c.user)
			}
			if hc.Privileged || len(hc.CapAdd) > 0 || !slices.Equal(hc.CapDrop, c.capDrop) || !slices.Equal(hc.SecurityOpt, c.securityOpt) {
				t.Errorf("Privileged %v, CapAdd %v, CapDrop %v, SecurityOpt %v; want not privileged, nothing added, %v dropped, %v",
					hc.Privileged, hc.CapAdd, hc.CapDrop, hc.SecurityOpt, c.capDrop, c.securityOpt)
			}
			// Docker stores no limit (-1) as none (nil).
			if unlimited := hc.PidsLimit == nil || *hc.PidsLimit <= 0; (c.wantPids == -1) != unlimited ||
				(!unlimited && *hc.PidsLimit != c.wantPids) {
				t.Errorf("PidsLimit = %v, want %d", ptr(hc.PidsLimit), c.wantPids)
			}
			if hc.PidMode.IsHost() || hc.IpcMode != container.IPCModePrivate || hc.UTSMode.IsHost() || string(hc.NetworkMode) != net {
				t.Errorf("PidMode %q, IpcMode %q, UTSMode %q, NetworkMode %q; want private namespaces on network %s",
					hc.PidMode, hc.IpcMode, hc.UTSMode, hc.NetworkMode, net)
			}
			if len(hc.Binds) > 0 || len(hc.Mounts) != 1 || hc.Mounts[0].Type != mount.TypeBind || hc.Mounts[0].Source != dir ||
				hc.Mounts[0].Target != "/data" || !hc.Mounts[0].ReadOnly {
				t.Errorf("Binds %v, Mounts %+v; want one read-only bind mount of %s", hc.Binds, hc.Mounts, dir)
			}
		})
	}
}

// TestPolicyRefusals: what the back-end refuses, before anything exists:
// a missing host path is not created, the host's network is not joined.
func TestPolicyRefusals(t *testing.T) {
	t.Parallel()
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	net := testutil.CreateNetwork(t, ctx, p)
	missing := filepath.Join(t.TempDir(), "no", "such", "dir")
	cases := []struct {
		name string
		spec backend.ServiceSpec
	}{
		{"a missing host path", backend.ServiceSpec{Network: net, Volumes: []backend.Volume{{HostPath: missing, MountPoint: "/data"}}}},
		{"a relative host path", backend.ServiceSpec{Network: net, Volumes: []backend.Volume{{HostPath: "data", MountPoint: "/data"}}}},
		{"a relative mount point", backend.ServiceSpec{Network: net, Volumes: []backend.Volume{{HostPath: t.TempDir(), MountPoint: "data"}}}},
		{"a host path and a volume", backend.ServiceSpec{Network: net, Volumes: []backend.Volume{{HostPath: t.TempDir(), VolumeName: "v", MountPoint: "/data"}}}},
		{"the host's network", backend.ServiceSpec{Network: "host"}},
		{"another container's network", backend.ServiceSpec{Network: "container:x"}},
		{"root without AllowRoot", backend.ServiceSpec{Network: net, User: "0:0"}},
		{"the root group without AllowRoot", backend.ServiceSpec{Network: net, User: "12345:0"}},
		{"a negative process limit", backend.ServiceSpec{Network: net, Resources: backend.Resources{PidsLimit: -2}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := c.spec
			spec.Name, spec.Image = "refused-"+testutil.RandomSuffix(), testimages.HTTPService
			if spec.User == "" {
				spec.User = testutil.ServiceUser
			}
			if _, err := p.Start(ctx, spec); !errors.Is(err, sdk.ErrInvalidArgument) {
				t.Errorf("Start = %v, want sdk.ErrInvalidArgument", err)
			}
			list, err := p.List(ctx, backend.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range list {
				if s.Name == spec.Name {
					t.Errorf("a refused spec left container %s", s.Handle.ID)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the missing host path's parent: %v, want it still missing", err)
	}
}

// TestNamedVolume: a named volume is a mount of type volume, created by the
// engine when missing, read-only when asked.
func TestNamedVolume(t *testing.T) {
	t.Parallel()
	cli := dockerClient(t)
	vol := "zoe-test-vol-" + testutil.RandomSuffix()
	// Registered first, so it runs last: after the deployment's clean-up
	// removed the container that uses the volume.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if _, err := cli.VolumeRemove(ctx, vol, client.VolumeRemoveOptions{Force: true}); err != nil {
			t.Logf("cleanup: remove volume %s: %v", vol, err)
		}
	})
	p := open(t, deployment(t), nil)
	ctx := ctxFor(t)
	st := testutil.StartService(t, ctx, p, testutil.CreateNetwork(t, ctx, p), backend.ServiceSpec{Image: testimages.HTTPService,
		Volumes: []backend.Volume{{VolumeName: vol, MountPoint: "/data", ReadOnly: true}}})
	res, err := cli.ContainerInspect(ctx, st.Handle.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Container.HostConfig.Mounts
	if len(m) != 1 || m[0].Type != mount.TypeVolume || m[0].Source != vol || m[0].Target != "/data" || !m[0].ReadOnly {
		t.Errorf("Mounts = %+v; want the read-only volume %s at /data", m, vol)
	}
}

// ptr shows what a pointer points to, or nil.
func ptr[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
