package testutil

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testimages"
)

// SwarmEngine is a Docker engine of its own, in swarm mode, for the swarm
// back-end's tests. It runs in a network namespace of its own, reached over
// a veth pair at Address, so that it shares nothing with the machine's
// engine: not its swarm ports (7946 is fixed), not its iptables chains, not
// its state. The machine's engine is left as it is.
//
// Each test process that asks for one gets one of swarmSlots engines, each
// with its own namespace, addresses, data root and lock, so that the swarm
// plugin's tests, the daemon's and a benchmark run beside each other
// instead of queueing for one engine. AddWorker takes another slot for a
// second node.
//
// Why not the machine's engine in swarm mode: Docker 20.10 (API 1.41) has
// no per-service no-new-privileges (Privileges.NoNewPrivileges came with
// API 1.46), so the back-end enforces the contract's no_new_privs only on
// engines started with --no-new-privileges, as this one is.
//
// It needs root, ip (iproute2), nsenter (util-linux) and dockerd; a worker
// needs iptables too.
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
	// A worker's manager (nil for a manager), the iptables rules it added
	// and whether it turned the host's forwarding on.
	manager    *SwarmEngine
	rules      [][]string
	forwardSet bool
}

// swarmSlots is how many engines can run at once.
const swarmSlots = 4

// swarmSubnet holds every slot's /30: the namespaces route it through the
// host, so that a worker's and its manager's nodes reach each other.
const swarmSubnet = "10.213.7.0/24"

// slot fills in the names and addresses of engine n: a /30 of swarmSubnet
// each, the host's side first.
func (e *SwarmEngine) slot(n int) {
	e.dir = filepath.Join(os.TempDir(), fmt.Sprintf("zoe-test-swarm-%d", n))
	e.Host = "unix://" + filepath.Join(e.dir, "docker.sock")
	e.netns = fmt.Sprintf("zoe-test-swarm-%d", n)
	e.vethHost, e.vethNs = fmt.Sprintf("zoeswt%da", n), fmt.Sprintf("zoeswt%db", n)
	e.hostIP, e.Address = fmt.Sprintf("10.213.7.%d", 4*n+1), fmt.Sprintf("10.213.7.%d", 4*n+2)
}

// takeSlot locks the first free slot, waiting for one until ctx ends when
// all are taken. A slot this process holds is not free: flock locks belong
// to the open file, so a second open of the same lock file is refused.
func (e *SwarmEngine) takeSlot(ctx context.Context) error {
	for {
		for n := range swarmSlots {
			f, err := os.OpenFile(filepath.Join(os.TempDir(), fmt.Sprintf("zoe-test-swarm-%d.lock", n)), os.O_CREATE|os.O_RDWR, 0o600)
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
		select {
		case <-ctx.Done():
			return fmt.Errorf("all %d slots are taken by other test processes: %w", swarmSlots, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// StartSwarm starts an engine, or fails saying why. The engine's data
// root is kept between runs (the test images stay built); its swarm is
// new.
func StartSwarm(ctx context.Context) (*SwarmEngine, error) {
	e, err := newEngine(ctx)
	if err != nil {
		return nil, err
	}
	cli, err := e.Client()
	if err == nil {
		defer cli.Close()
		_, err = cli.SwarmInit(ctx, client.SwarmInitOptions{ListenAddr: e.Address + ":2377", AdvertiseAddr: e.Address,
			Spec: swarm.Spec{Orchestration: swarm.OrchestrationConfig{TaskHistoryRetentionLimit: ptrTo[int64](5)}}})
	}
	if err == nil {
		err = e.readNodeID(ctx, cli)
	}
	if err != nil {
		_ = e.Close()
		return nil, fmt.Errorf("swarm test engine: swarm init: %w", err)
	}
	return e, nil
}

// AddWorker starts an engine in another slot and joins it to e's swarm as
// a worker, with the test images built in it (its node cannot reach a
// registry either). The two namespaces reach each other through the host:
// it forwards between the slots' veths (the machine's Docker sets the
// FORWARD policy to DROP; the worker's ACCEPT rules, in DOCKER-USER, are
// removed by its Close). Close the worker before e: its Close also removes
// its node from e's swarm.
func (e *SwarmEngine) AddWorker(ctx context.Context) (*SwarmEngine, error) {
	mcli, err := e.Client()
	if err != nil {
		return nil, err
	}
	defer mcli.Close()
	sw, err := mcli.SwarmInspect(ctx, client.SwarmInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("swarm test engine: the manager's join token: %w", err)
	}
	w, err := newEngine(ctx, "iptables")
	if err != nil {
		return nil, err
	}
	w.manager = e
	if err := w.addWorker(ctx, mcli, sw.Swarm.JoinTokens.Worker); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("swarm test worker (log %s): %w", w.logPath(), err)
	}
	return w, nil
}

func (e *SwarmEngine) addWorker(ctx context.Context, mcli *client.Client, token string) error {
	if err := e.forward(); err != nil {
		return err
	}
	cli, err := e.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.SwarmJoin(ctx, client.SwarmJoinOptions{ListenAddr: e.Address + ":2377", AdvertiseAddr: e.Address,
		RemoteAddrs: []string{e.manager.Address + ":2377"}, JoinToken: token}); err != nil {
		return fmt.Errorf("swarm join: %w", err)
	}
	if err := e.readNodeID(ctx, cli); err != nil {
		return err
	}
	for {
		res, err := mcli.NodeInspect(ctx, e.NodeID, client.NodeInspectOptions{})
		if err == nil && res.Node.Status.State == swarm.NodeStateReady {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the manager does not see the worker's node %s ready (%+v, %v): %w", e.NodeID, res.Node.Status, err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	return testimages.Build(ctx, cli)
}

// forward lets the host forward between the worker's veth and the other
// slots'.
func (e *SwarmEngine) forward() error {
	const sysctl = "/proc/sys/net/ipv4/ip_forward"
	b, err := os.ReadFile(sysctl)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(b)) != "1" {
		if err := os.WriteFile(sysctl, []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("turn on the host's forwarding: %w", err)
		}
		e.forwardSet = true
	}
	chain := "DOCKER-USER"
	if exec.Command("iptables", "-n", "-L", chain).Run() != nil {
		chain = "FORWARD" // no Docker on the host
	}
	e.rules = [][]string{
		{chain, "-i", e.vethHost, "-d", swarmSubnet, "-j", "ACCEPT"},
		{chain, "-o", e.vethHost, "-s", swarmSubnet, "-j", "ACCEPT"},
	}
	e.dropRules() // a killed test process's
	for _, r := range e.rules {
		if out, err := exec.Command("iptables", append([]string{"-I"}, r...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("iptables -I %s: %v: %s", strings.Join(r, " "), err, out)
		}
	}
	return nil
}

// dropRules removes every copy of the worker's iptables rules.
func (e *SwarmEngine) dropRules() {
	for _, r := range e.rules {
		for {
			if exec.Command("iptables", append([]string{"-D"}, r...)...).Run() != nil {
				break
			}
		}
	}
}

// newEngine takes a slot and starts its dockerd, out of any swarm, with
// no containers.
func newEngine(ctx context.Context, bins ...string) (*SwarmEngine, error) {
	for _, bin := range append([]string{"ip", "nsenter", "dockerd"}, bins...) {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("swarm test engine: %s not found: %w", bin, err)
		}
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("swarm test engine: needs root (a network namespace and a dockerd)")
	}
	e := &SwarmEngine{}
	if err := e.takeSlot(ctx); err != nil {
		return nil, fmt.Errorf("swarm test engine: %w", err)
	}
	if err := e.prepare(ctx); err != nil {
		_ = e.Close()
		return nil, err
	}
	return e, nil
}

func (e *SwarmEngine) prepare(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(e.dir, "exec"), 0o700); err != nil {
		return err
	}
	e.stopLeftover()
	if err := e.network(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(e.dir, "daemon.json"), []byte("{}\n"), 0o600); err != nil {
		return err
	}
	if err := os.Remove(e.logPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := e.StartDaemon(ctx); err != nil {
		return err
	}
	// A swarm of its own, every time: a data root kept from an earlier
	// run may hold its swarm and its services.
	cli, err := e.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	e.reset(ctx, cli)
	return nil
}

func (e *SwarmEngine) logPath() string { return filepath.Join(e.dir, "dockerd.log") }

// reset leaves the swarm and removes every container.
func (e *SwarmEngine) reset(ctx context.Context, cli *client.Client) {
	_, _ = cli.SwarmLeave(ctx, client.SwarmLeaveOptions{Force: true})
	if list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true}); err == nil {
		for _, c := range list.Items {
			_, _ = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
		}
	}
}

func (e *SwarmEngine) readNodeID(ctx context.Context, cli *client.Client) error {
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return err
	}
	e.NodeID = info.Info.Swarm.NodeID
	return nil
}

// StartDaemon starts the engine's dockerd, with its data root as it is,
// and returns once it answers; a node of a swarm, once it is back in it
// (a manager: once it manages and its node is ready).
func (e *SwarmEngine) StartDaemon(ctx context.Context) error {
	if e.cmd != nil {
		return errors.New("swarm test engine: dockerd runs already")
	}
	logf, err := os.OpenFile(e.logPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("nsenter", "--net=/var/run/netns/"+e.netns, "dockerd",
		"--config-file", filepath.Join(e.dir, "daemon.json"),
		"--data-root", filepath.Join(e.dir, "data"),
		"--exec-root", filepath.Join(e.dir, "exec"),
		"--pidfile", filepath.Join(e.dir, "exec", "docker.pid"),
		"--host", e.Host,
		"--no-new-privileges",
		"--storage-driver", "overlay2",
		"--cgroup-parent", e.netns)
	// The node cannot reach a registry: without this, swarm tries to pull
	// every image before it starts a task, and waits for the failure.
	cmd.Env = append(os.Environ(), "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("swarm test engine: start dockerd: %w", err)
	}
	e.cmd = cmd
	cli, err := e.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	for {
		err := e.back(ctx, cli)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("swarm test engine: dockerd is not back (log %s): %w", e.logPath(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// back tells (nil) whether the engine answers and, when it is a swarm
// node, whether it is in its swarm again.
func (e *SwarmEngine) back(ctx context.Context, cli *client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := cli.Info(ctx, client.InfoOptions{})
	switch {
	case err != nil:
		return err
	case e.NodeID == "":
		return nil
	case info.Info.Swarm.LocalNodeState != swarm.LocalNodeStateActive:
		return fmt.Errorf("swarm state %q", info.Info.Swarm.LocalNodeState)
	case e.manager != nil:
		return nil // a worker
	case !info.Info.Swarm.ControlAvailable:
		return errors.New("not managing the swarm yet")
	}
	res, err := cli.NodeInspect(ctx, e.NodeID, client.NodeInspectOptions{})
	if err == nil && res.Node.Status.State != swarm.NodeStateReady {
		err = fmt.Errorf("node %s", res.Node.Status.State)
	}
	return err
}

// StopDaemon stops the engine's dockerd as a service manager would
// (SIGTERM), keeping its data root for StartDaemon. Its containers stop
// with it (no live-restore).
func (e *SwarmEngine) StopDaemon() error {
	if e.cmd == nil {
		return errors.New("swarm test engine: dockerd is not running")
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = e.cmd.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = e.cmd.Process.Kill()
		<-done
		err = fmt.Errorf("swarm test engine: dockerd did not stop within a minute of SIGTERM; killed (log %s)", e.logPath())
	}
	e.cmd = nil
	return err
}

func ptrTo[T any](v T) *T { return &v }

// Client returns a client of the engine.
func (e *SwarmEngine) Client() (*client.Client, error) {
	return client.New(client.WithHost(e.Host))
}

// network makes the namespace and its veth pair again. The namespace has
// no default route: the registry is unreachable at once rather than
// after a DNS timeout. It routes the other slots' addresses through the
// host, which forwards only for a worker (see AddWorker).
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
		{"-n", e.netns, "route", "add", swarmSubnet, "via", e.hostIP},
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

// Close leaves the swarm, stops the engine and removes its network; a
// worker's node is removed from its manager's swarm, and its forwarding
// rules from the host.
func (e *SwarmEngine) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if e.cmd != nil {
		if cli, err := e.Client(); err == nil {
			e.reset(ctx, cli)
			_ = cli.Close()
		}
		_ = e.StopDaemon()
	}
	if e.manager != nil && e.NodeID != "" {
		if cli, err := e.manager.Client(); err == nil {
			_, _ = cli.NodeRemove(ctx, e.NodeID, client.NodeRemoveOptions{Force: true})
			_ = cli.Close()
		}
	}
	e.dropRules()
	if e.forwardSet {
		_ = os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0\n"), 0o644)
	}
	_ = exec.Command("ip", "netns", "del", e.netns).Run()
	_ = exec.Command("ip", "link", "del", e.vethHost).Run()
	if e.lock != nil {
		return e.lock.Close()
	}
	return nil
}

// LogSize is how long the engine's log is now: what ErrorsSince reads
// from.
func (e *SwarmEngine) LogSize() int64 {
	fi, err := os.Stat(e.logPath())
	if err != nil {
		return 0
	}
	return fi.Size()
}

// ErrorsSince returns the engine's warnings and errors logged after the
// log was off bytes long, the last max of them: what a failed test shows
// of the swarm's side (its allocator and scheduler report only there).
func (e *SwarmEngine) ErrorsSince(off int64, max int) string {
	f, err := os.Open(e.logPath())
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err.Error()
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, "level=error") || strings.Contains(l, "level=warning") {
			lines = append(lines, l)
		}
	}
	if len(lines) > max {
		lines = append([]string{fmt.Sprintf("(%d earlier lines left out)", len(lines)-max)}, lines[len(lines)-max:]...)
	}
	return fmt.Sprintf("the swarm engine's warnings and errors (log %s):\n%s", e.logPath(), strings.Join(lines, "\n"))
}
