package daemon

// Two daemons, each with a store of its own, given one deployment name on
// the real Docker engine (two copies of one configuration): the second
// refuses to start, naming the conflict, and leaves the first one's
// container and network alone; with -take-over it removes them and starts.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	dockerclient "github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testutil"
)

// secondConfig writes a configuration of env's deployment in a directory of
// its own (another data_dir, so another SQLite store) and returns it.
func (env *dockerEnv) secondConfig(t *testing.T) (file string) {
	t.Helper()
	dir := t.TempDir()
	users, err := os.ReadFile(filepath.Join(filepath.Dir(env.file), "users.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), users, 0o600); err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(dir, "zoe.hcl")
	if err := os.WriteFile(file, fmt.Appendf(nil, "listen = %q\n"+dockerConfig, anyPort, env.dep), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// zoeServerArgs runs `zoe server` with args until it exits or the test
// ends; wait returns its output and exit status; out is its output so far.
func zoeServerArgs(t *testing.T, args ...string) (wait func(time.Duration) (string, error), stop func(), out *testutil.SyncBuffer) {
	t.Helper()
	out = &testutil.SyncBuffer{}
	cmd := exec.Command(filepath.Join(binDir, "zoe"), append([]string{"server"}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var exitErr error
	exited := false
	wait = func(d time.Duration) (string, error) {
		t.Helper()
		if !exited {
			select {
			case exitErr = <-done:
				exited = true
			case <-time.After(d):
				t.Fatalf("zoe server %s did not exit within %s; output:\n%s", strings.Join(args, " "), d, out)
			}
		}
		return out.String(), exitErr
	}
	stop = func() {
		if exited {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case exitErr = <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			exitErr = <-done
		}
		exited = true
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("zoe server %s output:\n%s", strings.Join(args, " "), out)
		}
	})
	return wait, stop, out
}

func TestDeploymentOfTwoStores(t *testing.T) {
	t.Parallel()
	env := newDockerEnv(t)
	ctx := t.Context()

	// Daemon A runs an execution.
	a := env.start(t)
	holdCores(t, false)
	alice := env.user(t, "alice")
	ex := alice.submit("hello", exampleApp(t, "hello.json"))
	alice.await(ex.ID, "running")
	name := env.container(ex.ID, "web0")
	containers := env.containers(t, ex.ID)
	id, ok := containers[name]
	if !ok || len(containers) != 1 {
		t.Fatalf("containers of A: %v, want %s", containers, name)
	}
	network := fmt.Sprintf("zoe-%s-%d", env.dep, ex.ID)
	if nets := env.networks(t, ex.ID); len(nets) != 1 || nets[0] != network {
		t.Fatalf("networks of A: %v, want %s", nets, network)
	}
	inspected, err := env.cli.ContainerInspect(ctx, id, dockerclient.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	storeA := inspected.Container.Config.Labels["zoe.store"]
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(storeA) {
		t.Fatalf("A's container is labelled zoe.store=%q, want its store's identity", storeA)
	}
	netA, err := env.cli.NetworkInspect(ctx, network, dockerclient.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := netA.Network.Labels["zoe.store"]; got != storeA {
		t.Errorf("A's network is labelled zoe.store=%q, want %s", got, storeA)
	}

	fileB := env.secondConfig(t)
	t.Run("B refuses to start", func(t *testing.T) {
		wait, _, _ := zoeServerArgs(t, "-config", fileB)
		out, err := wait(time.Minute)
		if err == nil {
			t.Fatalf("B started; output:\n%s", out)
		}
		for _, want := range []string{
			fmt.Sprintf("another Zoe daemon, with a store of its own, runs deployment %q on this back-end", env.dep),
			fmt.Sprintf("store %s has 1 services of it (%s)", storeA, name),
			"Give this daemon another deployment_name, or stop the other daemon",
			fmt.Sprintf("zoe server -config %s -take-over", fileB),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("B's output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "zoe is ready") {
			t.Errorf("B served:\n%s", out)
		}
		// A's container and network are untouched, and A still runs it.
		c, err := env.cli.ContainerInspect(ctx, id, dockerclient.ContainerInspectOptions{})
		if err != nil || !c.Container.State.Running {
			t.Errorf("A's container after B: %v, err %v", c.Container.State, err)
		}
		if nets := env.networks(t, ex.ID); len(nets) != 1 || nets[0] != network {
			t.Errorf("networks after B: %v, want %s", nets, network)
		}
		if got := alice.execution(ex.ID); got.Status != "running" {
			t.Errorf("A's execution is %s after B, want running", got.Status)
		}
	})

	// A stops for good (its services keep running, as when a daemon
	// dies); B takes the deployment over.
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("A did not stop")
	}
	if c := env.containers(t, ex.ID); len(c) != 1 {
		t.Fatalf("A's containers after A stopped: %v, want them running on", c)
	}
	t.Run("B takes over", func(t *testing.T) {
		_, stop, out := zoeServerArgs(t, "-config", fileB, "-take-over")
		defer stop()
		waitUntil(t, "B's API", func() (bool, string) {
			m := readyLine.FindStringSubmatch(out.String())
			if m == nil {
				return false, out.String()
			}
			_, err := httpGet("http://" + m[1] + "/api/v1/health")
			return err == nil, fmt.Sprint(err)
		})
		if c, n := env.containers(t, ex.ID), env.networks(t, ex.ID); len(c) != 0 || len(n) != 0 {
			t.Errorf("after the take-over: containers %v, networks %v, want none", c, n)
		}
	})
}
