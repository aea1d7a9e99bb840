package testutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// SwarmEngine is a Docker engine of its own, in swarm mode (one node), for
// the swarm back-end's tests. It runs in a network namespace of its own,
// reached over a veth pair at Address, so that it shares nothing with
// the machine's engine: not its swarm ports (7946 is fixed), not its
// iptables chains, not its state. The machine's engine is left as it is.
//
// Each test process that asks for one gets one of swarmSlots engines, each
// with its own namespace, addresses, data root and lock, so that the swarm
// plugin's tests, the daemon's and a benchmark run beside each other
// instead of queueing for one engine.
//
// Why not the machine's engine in swarm mode: Docker 20.10 (API 1.41) has
// no per-service no-new-privileges (Privileges.NoNewPrivileges came with
// API 1.46), so the back-end enforces the contract's no_new_privs only on
// engines started with --no-new-privileges, as this one is.
//
// It needs root, ip (iproute2), nsenter (util-linux) and dockerd.
type SwarmEngine struct {
	// Host is the engine's address for client.WithHost.
	Host string
	// Address is the swarm node's address, where its host-mode published
	// ports answer.
	Address string
	// NodeID is the swarm node's id.
	NodeID string
	dir    string
	cmd    *exec.Cmd
	lock   *os.File
	// The engine's namespace and its veth pair (host side, engine side),
	// and the host side's address.
	netns, vethHost, vethNs, hostIP string
}

// swarmSlots is how many engines can run at once, one per test process.
const swarmSlots = 4

// slot fills in the names and addresses of engine n: a /30 of
// 10.213.7.0/24 each, the host's side first.
func (e *SwarmEngine) slot(n int) {
	e.dir = filepath.Join(os.TempDir(), fmt.Sprintf("zoe-test-swarm-%d", n))
	e.Host = "unix://" + filepath.Join(e.dir, "docker.sock")
	e.netns = fmt.Sprintf("zoe-test-swarm-%d", n)
	e.vethHost, e.vethNs = fmt.Sprintf("zoeswt%da", n), fmt.Sprintf("zoeswt%db", n)
	e.hostIP, e.Address = fmt.Sprintf("10.213.7.%d", 4*n+1), fmt.Sprintf("10.213.7.%d", 4*n+2)
}

// takeSlot locks the first free slot, or waits for one (this process's
// pid picks which) when all are taken.
func (e *SwarmEngine) takeSlot() error {
	open := func(n int) (*os.File, error) {
		return os.OpenFile(filepath.Join(os.TempDir(), fmt.Sprintf("zoe-test-swarm-%d.lock", n)), os.O_CREATE|os.O_RDWR, 0o600)
	}
	for n := range swarmSlots {
		f, err := open(n)
		if err != nil {
			return err
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			e.lock = f
			e.slot(n)
			return nil
		}
		f.Close()
	}
	n := os.Getpid() % swarmSlots
	f, err := open(n)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return err
	}
	e.lock = f
	e.slot(n)
	return nil
}

// StartSwarm starts an engine, or fails saying why. The engine's data
// root is kept between runs (the test images stay built); its swarm is
// new. Only one test process holds an engine at a time (a file lock).
func StartSwarm(ctx context.Context) (*SwarmEngine, error) {
	for _, bin := range []string{"ip", "nsenter", "dockerd"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("swarm test engine: %s not found: %w", bin, err)
		}
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("swarm test engine: needs root (a network namespace and a dockerd)")
	}
	e := &SwarmEngine{}
	if err := e.takeSlot(); err != nil {
		return nil, fmt.Errorf("swarm test engine: %w", err)
	}
	dir := e.dir
	if err := os.MkdirAll(filepath.Join(dir, "exec"), 0o700); err != nil {
		e.lock.Close()
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = e.Close()
		}
	}()
	e.stopLeftover()
	if err := e.network(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	e.cmd = exec.Command("nsenter", "--net=/var/run/netns/"+e.netns, "dockerd",
		"--config-file", filepath.Join(dir, "daemon.json"),
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "exec", "docker.pid"),
		"--host", e.Host,
		"--no-new-privileges",
		"--storage-driver", "overlay2",
		"--cgroup-parent", e.netns)
	// The node cannot reach a registry: without this, swarm tries to pull
	// every image before it starts a task, and waits for the failure.
	e.cmd.Env = append(os.Environ(), "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1")
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("swarm test engine: start dockerd: %w", err)
	}
	cli, err := e.Client()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := cli.Ping(pctx, client.PingOptions{})
		cancel()
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("swarm test engine: dockerd does not answer (log %s): %w", filepath.Join(dir, "dockerd.log"), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	// A swarm of its own, every time: a data root kept from an earlier
	// run may hold its swarm and its services.
	_, _ = cli.SwarmLeave(ctx, client.SwarmLeaveOptions{Force: true})
	if list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true}); err == nil {
		for _, c := range list.Items {
			_, _ = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
		}
	}
	if _, err := cli.SwarmInit(ctx, client.SwarmInitOptions{ListenAddr: e.Address + ":2377", AdvertiseAddr: e.Address,
		Spec: swarm.Spec{Orchestration: swarm.OrchestrationConfig{TaskHistoryRetentionLimit: ptrTo[int64](5)}}}); err != nil {
		return nil, fmt.Errorf("swarm test engine: swarm init: %w", err)
	}
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, err
	}
	e.NodeID = info.Info.Swarm.NodeID
	ok = true
	return e, nil
}

func ptrTo[T any](v T) *T { return &v }

// Client returns a client of the engine.
func (e *SwarmEngine) Client() (*client.Client, error) {
	return client.New(client.WithHost(e.Host))
}

// network makes the namespace and its veth pair again. The namespace has
// no default route: the registry is unreachable at once rather than
// after a DNS timeout.
func (e *SwarmEngine) network() error {
	_ = exec.Command("ip", "netns", "del", e.netns).Run()
	_ = exec.Command("ip", "link", "del", e.vethHost).Run()
	for _, args := range [][]string{
		{"netns", "add", e.netns},
		{"link", "add", e.vethHost, "type", "veth", "peer", "name", e.vethNs},
		{"link", "set", e.vethNs, "netns", e.netns},
		{"addr", "add", e.hostIP + "/30", "dev", e.vethHost},
		{"link", "set", e.vethHost, "up"},
		{"-n", e.netns, "addr", "add", e.Address + "/30", "dev", e.vethNs},
		{"-n", e.netns, "link", "set", e.vethNs, "up"},
		{"-n", e.netns, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("swarm test engine: ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// stopLeftover stops the dockerd an earlier run of this helper left (its
// test process killed before Close): its pid file names it.
func (e *SwarmEngine) stopLeftover() {
	b, err := os.ReadFile(filepath.Join(e.dir, "exec", "docker.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), e.dir) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 300; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// Close leaves the swarm, stops the engine and removes its network.
func (e *SwarmEngine) Close() error {
	if e.cmd != nil && e.cmd.Process != nil {
		if cli, err := e.Client(); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, _ = cli.SwarmLeave(ctx, client.SwarmLeaveOptions{Force: true})
			if list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true}); err == nil {
				for _, c := range list.Items {
					_, _ = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
				}
			}
			cancel()
			_ = cli.Close()
		}
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = e.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = e.cmd.Process.Kill()
			<-done
		}
	}
	_ = exec.Command("ip", "netns", "del", e.netns).Run()
	_ = exec.Command("ip", "link", "del", e.vethHost).Run()
	if e.lock != nil {
		return e.lock.Close()
	}
	return nil
}
