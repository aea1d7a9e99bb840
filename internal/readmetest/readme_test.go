package readmetest

// TestREADMEWalkthrough follows the README as a new user would: on a fresh
// clone, it runs the README's marked shell blocks (walkthrough.go says how
// they are marked) in order, with bash, and checks each one's outcome.
//
// The clone is `git clone` of this repository checked out at HEAD: the
// test's own commit, which in CI is a clean clone anyway; changes not
// committed are not in it, README included. Each command runs in a bash of
// its own in the clone, which starts from the exported variables and the
// directory the previous command left, as the reader's terminal would.
// Standard input is empty: commands that ask for the admin's password find it
// in ZOE_PASSWORD, as the README says they may, once a command has printed it
// (`zoe users init`, run by `make run`).
//
// So that the test harms nothing of a developer's own `make run` or sim
// daemon, which may be running on the same machine (and runs under `make
// test` and in CI beside them):
//   - in the clone, the `listen` address of examples/zoe.hcl and
//     examples/sim.hcl becomes a free port, and every mention of the old
//     addresses in the commands the new one;
//   - in the clone, their `deployment_name` becomes a name of the test's
//     own, since the Docker back-end removes the containers of its
//     deployment it does not know, and names containers and networks after
//     it;
//   - ZOE_ADDR is the new address of examples/zoe.hcl, because the README's
//     commands rely on zoe's default address, 127.0.0.1:5001 (a block that
//     talks to another daemon exports ZOE_ADDR itself, as the sim's does);
//   - XDG_CONFIG_HOME points into the test's directory, where `zoe login`
//     stores its token instead of ~/.config/zoe (GOENV keeps the Go
//     settings of ~/.config/go/env).
//
// State and logs stay under the clone's .zoe. `make build` uses the normal Go
// caches and `make test-images` builds its images in the engine, shared (and
// not rebuilt when present). The test needs a Docker engine (examples/zoe.hcl
// runs ZApps as containers on the local engine): without one it fails, it
// does not skip. Every container and network of its deployments is removed
// when it ends.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dockerclient "github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testutil"
)

// The configurations the README's daemons serve, whose listen address and
// deployment name the test replaces.
var configs = []string{"examples/zoe.hcl", "examples/sim.hcl"}

// The password `zoe users init` prints (cmd/zoe/users.go).
var passwordLine = regexp.MustCompile(`its password, shown only now:\s+(\S+)`)

func TestREADMEWalkthrough(t *testing.T) {
	// The commands' context: cancelled (which kills what still runs) by
	// the first cleanup registered, so the last to run, after the daemons
	// were stopped with Ctrl-C; and a minute before go test's own timeout,
	// so that a command that hangs is reported and the daemons still stop.
	ctx, cancel := context.WithCancel(context.Background())
	if dl, ok := t.Deadline(); ok {
		ctx, cancel = context.WithDeadline(context.Background(), dl.Add(-time.Minute))
	}
	t.Cleanup(cancel)

	docker := dockerEngine(t)
	// The engine's lock (below) is released last, after the daemons
	// stopped and the deployments were removed.
	lock, locked := testutil.DockerLockLater(t), false
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	clone := cloneDir(t)
	head := strings.TrimSpace(run(t, root, "git", "rev-parse", "HEAD"))
	run(t, root, "git", "clone", "--quiet", "--no-checkout", root, clone)
	run(t, clone, "git", "checkout", "--quiet", "--detach", head)
	t.Logf("fresh clone of %s at %s in %s", root, head, clone)
	if st := run(t, root, "git", "status", "--porcelain", "--untracked-files=no"); st != "" {
		t.Logf("changes not committed are not in the clone, and not tested:\n%s", st)
	}

	readme, err := os.ReadFile(filepath.Join(clone, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := Parse(string(readme))
	if err != nil {
		t.Fatalf("the README's walkthrough markers: %v", err)
	}
	if len(blocks) == 0 {
		t.Fatal("the README marks no walkthrough block")
	}

	w, err := newWalk(clone, filepath.Join(work, "shell"))
	if err != nil {
		t.Fatal(err)
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	for _, cfg := range configs {
		dep, err := w.rewrite(filepath.Join(clone, cfg), "rt-"+hex.EncodeToString(suffix))
		if err != nil {
			t.Fatal(err)
		}
		// LIFO: runs after the daemons are stopped (below).
		t.Cleanup(func() { removeDeployment(t, docker, dep) })
	}
	t.Cleanup(w.stopDaemons(t))

	goenv := strings.TrimSpace(run(t, root, "go", "env", "GOENV"))
	w.env = append(w.env,
		"XDG_CONFIG_HOME="+filepath.Join(work, "config"),
		"GOENV="+goenv,
		"ZOE_ADDR="+w.addrs[w.defaultAddr],
	)

	for _, b := range blocks {
		// The README's ZApps reserve cores of the engine, which the other
		// packages' Docker tests count on (testutil.DockerLock): shared
		// with them, never beside one that needs the engine alone. Taken
		// before the first block that starts no daemon: those before it
		// build everything and start the README's daemons (make run), and
		// reserve nothing, and the tests that need the engine alone wait
		// for the walkthrough to end (minutes, under make test's load)
		// rather than for them as well.
		if !locked && b.Expect.Daemon == "" {
			lock(false)
			locked = true
		}
		ok := t.Run(b.Name, func(t *testing.T) {
			if err := w.block(ctx, t.Logf, b); err != nil {
				t.Fatal(err)
			}
		})
		if !ok {
			t.Fatalf("walkthrough %q (README.md:%d) failed: the next blocks build on it", b.Name, b.Line)
		}
	}
}

// walk is the state of one walkthrough.
type walk struct {
	dir         string            // the clone
	state       string            // where each command's shell leaves its variables and directory
	env         []string          // the commands' environment
	addrs       map[string]string // the README's addresses to the test's
	defaultAddr string            // examples/zoe.hcl's address in the README

	mu       sync.Mutex
	password string
	daemons  []*proc
}

// newWalk prepares a walkthrough in dir, its shells keeping their state in
// the directory state. The commands' environment is the test's, but for the
// developer's own ZOE_ADDR, ZOE_TOKEN, ZOE_USER or ZOE_PASSWORD, which would
// take them elsewhere, and the variables of the make that may run the test
// (make test), which a reader's terminal does not have.
func newWalk(dir, state string) (*walk, error) {
	w := &walk{dir: dir, state: state, addrs: map[string]string{}}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "ZOE_"):
		case name == "MAKEFLAGS" || name == "MFLAGS" || name == "MAKELEVEL" || name == "MAKEOVERRIDES":
		default:
			w.env = append(w.env, kv)
		}
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return nil, err
	}
	return w, os.WriteFile(filepath.Join(state, "pwd"), []byte(dir+"\n"), 0o600)
}

var (
	listenAttr     = regexp.MustCompile(`(?m)^(\s*listen\s*=\s*)"([^"]+)"`)
	deploymentAttr = regexp.MustCompile(`(?m)^(\s*deployment_name\s*=\s*)"([^"]+)"`)
)

// rewrite gives the configuration file a free port and a deployment name of
// its own, returning that name.
func (w *walk) rewrite(file, prefix string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	listen := listenAttr.FindSubmatch(b)
	dep := deploymentAttr.FindSubmatch(b)
	if listen == nil || dep == nil {
		return "", fmt.Errorf("%s: no listen or deployment_name line for the test to replace", file)
	}
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	name := prefix + "-" + string(dep[2])
	b = listenAttr.ReplaceAll(b, fmt.Appendf(nil, "${1}%q", addr))
	b = deploymentAttr.ReplaceAll(b, fmt.Appendf(nil, "${1}%q", name))
	if err := os.WriteFile(file, b, 0o644); err != nil {
		return "", err
	}
	w.addrs[string(listen[2])] = addr
	if filepath.Base(file) == "zoe.hcl" {
		w.defaultAddr = string(listen[2])
	}
	return name, nil
}

// freeAddr is a free port of 127.0.0.1 below the kernel's ephemeral range,
// where no listener on port 0 nor outgoing connection is given one: the
// README's commands need the address before `make run` binds it, half a
// minute later, and a port of the ephemeral range could be another test's
// daemon's by then (a walkthrough once found another Zoe healthy there).
func freeAddr() (string, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				low = n
			}
		}
	}
	var last error
	for range 100 {
		port := 10000 + mrand.IntN(low-10000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			last = err
			continue
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		return addr, nil
	}
	return "", fmt.Errorf("no free port below the ephemeral range: %w", last)
}

// block runs one walkthrough block and checks its outcome, logging each
// command and its output with logf.
func (w *walk) block(ctx context.Context, logf func(string, ...any), b Block) error {
	logf("walkthrough %q, README.md:%d", b.Name, b.Line)
	var stdout bytes.Buffer
	cmds := b.Run()
	for i, c := range cmds {
		text, err := w.substitute(b, c.Text)
		if err != nil {
			return err
		}
		logf("README.md:%d $ %s", c.Line, text)
		if b.Expect.Daemon != "" && i == len(cmds)-1 {
			return w.daemon(ctx, logf, b, text)
		}
		began := time.Now()
		p, err := w.start(ctx, text)
		if err != nil {
			return err
		}
		after, interrupt := b.InterruptAfter(c)
		if interrupt {
			if !p.waitOutput(ctx, after) {
				p.wait()
				return fmt.Errorf("README.md:%d: ended without printing %q\nstdout:\n%s\nstderr:\n%s", c.Line, after, p.stdout.String(), p.stderr.String())
			}
			p.signal(syscall.SIGINT)
		}
		code := p.wait()
		out := p.stdout.String()
		logf("exit %d after %s\nstdout:\n%s\nstderr:\n%s", code, time.Since(began).Round(time.Millisecond), out, p.stderr.String())
		stdout.WriteString(out)
		w.learnPassword(out)
		want := 0
		if i == len(cmds)-1 {
			want = b.Expect.Exit
		}
		if code != want && !(interrupt && code == 130) {
			return fmt.Errorf("README.md:%d: exit code %d, want %d", c.Line, code, want)
		}
	}
	return b.checkStdout(stdout.String(), "")
}

// checkStdout checks the stdout clauses of b against out.
func (b Block) checkStdout(out, whose string) error {
	var errs []error
	for _, s := range b.Expect.Stdout {
		if !strings.Contains(out, s) {
			errs = append(errs, fmt.Errorf("walkthrough %q: the%s standard output does not contain %q", b.Name, whose, s))
		}
	}
	return errors.Join(errs...)
}

// substitute applies the test's addresses and the password to a command.
func (w *walk) substitute(b Block, text string) (string, error) {
	for from, to := range w.addrs {
		text = strings.ReplaceAll(text, from, to)
	}
	if word := b.passwordWord(); word != nil && word.MatchString(text) {
		w.mu.Lock()
		pw := w.password
		w.mu.Unlock()
		if pw == "" {
			return "", fmt.Errorf("walkthrough %q needs the admin's password, and no command printed it yet", b.Name)
		}
		text = word.ReplaceAllLiteralString(text, pw)
	}
	return text, nil
}

// learnPassword keeps the password `zoe users init` printed, for the
// commands that follow (ZOE_PASSWORD, and the password clause).
func (w *walk) learnPassword(out string) {
	m := passwordLine.FindStringSubmatch(out)
	if m == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.password = m[1]
	w.env = append(w.env, "ZOE_PASSWORD="+m[1])
}

// daemon starts the block's daemon in the background and waits for its
// health; it runs until the walkthrough ends.
func (w *walk) daemon(ctx context.Context, logf func(string, ...any), b Block, text string) error {
	addr, ok := w.addrs[b.Expect.Daemon]
	if !ok {
		return fmt.Errorf("daemon %s: not the listen address of %s", b.Expect.Daemon, strings.Join(configs, " or "))
	}
	p, err := w.start(ctx, text)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.daemons = append(w.daemons, p)
	w.mu.Unlock()
	url := "http://" + addr + "/api/v1/health"
	hc := &http.Client{Timeout: 5 * time.Second}
	last := "no answer"
	for {
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("the daemon ended (exit %d) before it was healthy; last health: %s\nstdout:\n%s\nstderr:\n%s",
				p.code, last, p.stdout.String(), p.stderr.String())
		case <-ctx.Done():
			return fmt.Errorf("the daemon was not healthy at %s before the test's deadline; last: %s\nstdout:\n%s\nstderr:\n%s",
				url, last, p.stdout.String(), p.stderr.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	out := p.stdout.String()
	logf("healthy at %s (README's %s)\nstdout so far:\n%s", addr, b.Expect.Daemon, out)
	w.learnPassword(out)
	return b.checkStdout(out, " daemon's")
}

// stopDaemons stops the walkthrough's daemons as their reader would, with
// Ctrl-C in their terminal: SIGINT to the process group, which zoe handles
// as SIGTERM and its plugins ignore (zoe stops them itself, the way it
// does on SIGTERM: a SIGTERM to the whole group would kill the plugins under
// it). It checks that they stop, cleanly.
func (w *walk) stopDaemons(t *testing.T) func() {
	return func() {
		w.mu.Lock()
		daemons := w.daemons
		w.mu.Unlock()
		for _, p := range daemons {
			p.signal(syscall.SIGINT)
		}
		for _, p := range daemons {
			select {
			case <-p.done:
				// The exit code is bash's, killed by the signal too; zoe
				// says when it stops cleanly.
				stderr := p.stderr.String()
				t.Logf("daemon %q stopped (exit %d); its stderr:\n%s", p.text, p.code, tail(stderr, 4000))
				if !strings.Contains(stderr, "shutting down") || strings.Contains(stderr, "did not close cleanly") {
					t.Errorf("daemon %q did not shut down cleanly (\"shutting down\") on Ctrl-C", p.text)
				}
			case <-time.After(time.Minute):
				p.signal(syscall.SIGKILL)
				<-p.done
				t.Errorf("daemon %q did not stop within a minute of Ctrl-C", p.text)
			}
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// proc is a command running in a bash of its own, in a process group of its
// own so that signals reach what it started (make, then zoe).
type proc struct {
	text           string
	cmd            *exec.Cmd
	stdout, stderr *watched
	done           chan struct{}
	code           int
}

// start runs text in bash in the clone, after the variables and directory
// the previous command left, and saves them again after it.
func (w *walk) start(ctx context.Context, text string) (*proc, error) {
	env := filepath.Join(w.state, "env")
	pwd := filepath.Join(w.state, "pwd")
	script := fmt.Sprintf("set -o pipefail\n"+
		"cd \"$(cat %[1]q)\" || exit\n"+
		"if [ -f %[2]q ]; then . %[2]q; fi\n"+
		"%[3]s\n"+
		"__walkthrough_rc=$?\n"+
		"export -p | grep -Ev '^declare -[-a-zA-Z]* (BASHOPTS|SHELLOPTS|BASH_[A-Z_]*|PWD|OLDPWD|SHLVL|_)(=|$)' > %[2]q\n"+
		"pwd > %[1]q\n"+
		"exit $__walkthrough_rc\n", pwd, env, text)
	p := &proc{text: text, stdout: newWatched(), stderr: newWatched(), done: make(chan struct{})}
	p.cmd = exec.Command("bash", "-c", script)
	p.cmd.Dir = w.dir
	w.mu.Lock()
	p.cmd.Env = append([]string(nil), w.env...)
	w.mu.Unlock()
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bash: %w", err)
	}
	go func() {
		err := p.cmd.Wait()
		var exit *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exit):
			p.code = exit.ExitCode()
			if status, ok := exit.Sys().(syscall.WaitStatus); ok && status.Signaled() {
				p.code = 128 + int(status.Signal())
			}
		default:
			p.code = -1
		}
		close(p.done)
	}()
	// A command still running at the test's deadline is killed, so that
	// its failure is reported rather than go test's timeout.
	go func() {
		select {
		case <-p.done:
		case <-ctx.Done():
			p.signal(syscall.SIGKILL)
		}
	}()
	return p, nil
}

func (p *proc) signal(sig syscall.Signal) {
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

func (p *proc) wait() int {
	<-p.done
	return p.code
}

// waitOutput waits until the command's output (standard output or error)
// holds s; false if it ended first.
func (p *proc) waitOutput(ctx context.Context, s string) bool {
	for {
		if strings.Contains(p.stdout.String(), s) || strings.Contains(p.stderr.String(), s) {
			return true
		}
		select {
		case <-p.done:
			return strings.Contains(p.stdout.String(), s) || strings.Contains(p.stderr.String(), s)
		case <-ctx.Done():
			return false
		case <-p.stdout.changed():
		case <-p.stderr.changed():
		}
	}
}

// watched is an output buffer that tells when it grows.
type watched struct {
	mu  sync.Mutex
	buf bytes.Buffer
	ch  chan struct{} // closed at the next write
}

func newWatched() *watched { return &watched{ch: make(chan struct{})} }

func (w *watched) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(b)
	close(w.ch)
	w.ch = make(chan struct{})
	return n, err
}

func (w *watched) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *watched) changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

// run runs a set-up command, failing t when it fails.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// dockerEngine fails the test when no Docker engine answers, as the other
// Docker tests do (core/daemon/docker_test.go).
func dockerEngine(t *testing.T) *dockerclient.Client {
	t.Helper()
	cli, err := dockerclient.New(dockerclient.FromEnv)
	if err != nil {
		t.Fatalf("Docker client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, dockerclient.PingOptions{}); err != nil {
		t.Fatalf("the README's walkthrough needs a reachable Docker engine (DOCKER_HOST or /var/run/docker.sock): %v", err)
	}
	return cli
}

// removeDeployment removes what the walkthrough left in the engine: the
// containers and networks labelled with its deployment.
func removeDeployment(t *testing.T, cli *dockerclient.Client, dep string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := dockerclient.Filters{}.Add("label", "zoe.deployment="+dep)
	if list, err := cli.ContainerList(ctx, dockerclient.ContainerListOptions{All: true, Filters: f}); err == nil {
		for _, c := range list.Items {
			if _, err := cli.ContainerRemove(ctx, c.ID, dockerclient.ContainerRemoveOptions{Force: true}); err != nil {
				t.Errorf("cleanup: remove container %s: %v", c.ID, err)
			}
		}
	} else {
		t.Errorf("cleanup: list the containers of %s: %v", dep, err)
	}
	if list, err := cli.NetworkList(ctx, dockerclient.NetworkListOptions{Filters: f}); err == nil {
		for _, n := range list.Items {
			if _, err := cli.NetworkRemove(ctx, n.ID, dockerclient.NetworkRemoveOptions{}); err != nil {
				t.Errorf("cleanup: remove network %s: %v", n.Name, err)
			}
		}
	} else {
		t.Errorf("cleanup: list the networks of %s: %v", dep, err)
	}
}

// cloneDir is where the fresh clone goes: the same directory at every run
// (emptied before and after), held by a file lock against other runs on
// the machine. Go's build cache knows packages by their directory too, so
// a clone in a new temporary directory compiled every package of the
// module again at each run (a minute and a half of CPU here); at the same
// path, make build finds what the last run compiled.
func cloneDir(t *testing.T) string {
	t.Helper()
	base := filepath.Join(os.TempDir(), fmt.Sprintf("zoe-readmetest-%d", os.Getuid()))
	if err := os.MkdirAll(base, 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(base+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		t.Fatalf("the README test's lock: %v", err)
	}
	clone := filepath.Join(base, "zoe")
	if err := os.RemoveAll(clone); err != nil {
		t.Fatalf("the last run's clone: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(clone); err != nil {
			t.Errorf("removing the clone: %v", err)
		}
		lock.Close() // releases the lock
	})
	return clone
}
