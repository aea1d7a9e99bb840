package daemon

// End to end through a real `zoe server` on the real Docker engine, with the
// Docker back-end plugin, the SQLite store, file auth (users with uid/gid)
// and the directory workspaces. The test needs a Docker engine (DOCKER_HOST
// or the unix socket): without one it fails, it does not skip. Everything it
// creates carries the label zoe.deployment=<a deployment of its own> and is
// removed when it ends.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	dockerclient "github.com/moby/moby/client"
	"golang.org/x/crypto/bcrypt"

	zoeclient "github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
)

const dockerConfig = `deployment_name = %q
data_dir        = "data"

auth "file" {
  users_file = "users.csv"
}

workspace "dir" {
  base_path = "ws"
}

backend "docker" {}
`

// The users of the test: name, uid/gid.
var dockerUsers = []struct {
	name string
	uid  int
}{{"alice", 1000}, {"bob", 1001}}

// dockerSetUp builds the test images and the back-end plugin once for
// every Docker test of the package.
var dockerSetUp = sync.OnceValue(func() error {
	cli, err := dockerclient.New(dockerclient.FromEnv)
	if err != nil {
		return fmt.Errorf("Docker client: %w", err)
	}
	defer cli.Close()
	ctx, cancel := contextTimeout(10 * time.Minute)
	defer cancel()
	if err := testimages.Build(ctx, cli); err != nil {
		return fmt.Errorf("these tests need a reachable Docker engine (DOCKER_HOST or /var/run/docker.sock): %w", err)
	}
	if err := testutil.Build(binDir, map[string]string{"zoe-plugin-backend-docker": "plugins/backend-docker"}); err != nil {
		return fmt.Errorf("building the Docker back-end plugin: %w", err)
	}
	return nil
})

// holdCores holds the Docker engine (testutil.DockerLock) until t ends,
// alone or shared with the other Docker tests, of this package or another.
// Alone: TestDaskOnDocker, whose cluster reserves 1.75 cores of the 2 here,
// so that an execution of a test submitting beside it would wait in the
// queue past its bounds; and TestDockerEndToEnd, which checks that two
// users' networks are isolated, which another network's creation breaks
// for a moment (holding it alone for that step only would not do: its
// executions would go on reserving cores while it waits, under a test
// that holds the engine alone for its cores). The others share it (their
// executions reserve a core at most, one at a time). The tests take it
// once their daemon serves, before their first submission: daemons start
// beside each other, and a test's executions are gone when it passes.
func holdCores(t *testing.T, alone bool) {
	testutil.DockerLock(t, alone)
}

// dockerEnv is a deployment of its own on the local engine.
type dockerEnv struct {
	t    *testing.T
	cli  *dockerclient.Client
	dep  string
	file string // the configuration
	addr string // the API's, once started
	ws   string // the workspaces' base path
}

// newDockerEnv builds the test images and the back-end plugin, writes the
// configuration and users file, and removes every container and network of
// the deployment when t ends.
func newDockerEnv(t *testing.T) *dockerEnv {
	t.Helper()
	cli, err := dockerclient.New(dockerclient.FromEnv)
	if err != nil {
		t.Fatalf("Docker client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	if err := dockerSetUp(); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	env := &dockerEnv{t: t, cli: cli, dep: "dt-" + hex.EncodeToString(b)}
	t.Cleanup(env.removeAll)

	dir := t.TempDir()
	writeUsers(t, dir)
	env.file = filepath.Join(dir, "zoe.hcl")
	env.ws = filepath.Join(dir, "ws")
	if err := os.WriteFile(env.file, fmt.Appendf(nil, "listen = %q\n"+dockerConfig, anyPort, env.dep), 0o600); err != nil {
		t.Fatal(err)
	}
	return env
}

// writeUsers writes dir/users.csv with dockerUsers, whose passwords are
// "pw-" and their names.
func writeUsers(t *testing.T, dir string) {
	t.Helper()
	var users bytes.Buffer
	for _, u := range dockerUsers {
		hash, err := bcrypt.GenerateFromPassword([]byte("pw-"+u.name), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&users, "%s,%s,user,%d,%d\n", u.name, hash, u.uid, u.uid)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), users.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// start starts `zoe server` on the deployment's configuration; the users
// made after it ask the new server.
func (env *dockerEnv) start(t *testing.T) *zoeServer {
	t.Helper()
	s := startZoe(t, env.file)
	env.addr = s.addr
	return s
}

// user is a client of the API for t as a user.
func (env *dockerEnv) user(t *testing.T, name string) apiUser {
	return apiUser{apiClient{t: t, base: "http://" + env.addr + "/api/v1", user: name, pass: "pw-" + name}}
}

// apiUser adds what these tests ask of the API to client.
type apiUser struct{ apiClient }

func (c apiUser) terminate(id int64) {
	c.t.Helper()
	if code := c.do("POST", fmt.Sprintf("/executions/%d/terminate", id), nil, &zoeclient.Execution{}); code != http.StatusAccepted {
		c.t.Fatalf("terminate %d: %d", id, code)
	}
}

// removeAll removes every container and network of the deployment.
func (env *dockerEnv) removeAll() {
	ctx, cancel := contextTimeout(time.Minute)
	defer cancel()
	f := env.filter()
	if list, err := env.cli.ContainerList(ctx, dockerclient.ContainerListOptions{All: true, Filters: f}); err == nil {
		for _, c := range list.Items {
			if _, err := env.cli.ContainerRemove(ctx, c.ID, dockerclient.ContainerRemoveOptions{Force: true}); err != nil {
				env.t.Logf("cleanup: remove container %s: %v", c.ID, err)
			}
		}
	}
	if list, err := env.cli.NetworkList(ctx, dockerclient.NetworkListOptions{Filters: f}); err == nil {
		for _, n := range list.Items {
			if _, err := env.cli.NetworkRemove(ctx, n.ID, dockerclient.NetworkRemoveOptions{}); err != nil {
				env.t.Logf("cleanup: remove network %s: %v", n.Name, err)
			}
		}
	}
}

// filter selects the deployment's objects, and those of the execution ids
// given.
func (env *dockerEnv) filter(ids ...int64) dockerclient.Filters {
	f := dockerclient.Filters{}.Add("label", "zoe.deployment="+env.dep)
	for _, id := range ids {
		f = f.Add("label", fmt.Sprintf("zoe.execution=%d", id))
	}
	return f
}

// containers maps the names of the deployment's containers (of execution id
// when given, in every state) to their ids.
func (env *dockerEnv) containers(t *testing.T, ids ...int64) map[string]string {
	t.Helper()
	ctx, cancel := contextTimeout(30 * time.Second)
	defer cancel()
	list, err := env.cli.ContainerList(ctx, dockerclient.ContainerListOptions{All: true, Filters: env.filter(ids...)})
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	out := map[string]string{}
	for _, c := range list.Items {
		for _, n := range c.Names {
			out[strings.TrimPrefix(n, "/")] = c.ID
		}
	}
	return out
}

// networks lists the names of the deployment's networks (of execution id
// when given).
func (env *dockerEnv) networks(t *testing.T, ids ...int64) []string {
	t.Helper()
	ctx, cancel := contextTimeout(30 * time.Second)
	defer cancel()
	list, err := env.cli.NetworkList(ctx, dockerclient.NetworkListOptions{Filters: env.filter(ids...)})
	if err != nil {
		t.Fatalf("docker network ls: %v", err)
	}
	var out []string
	for _, n := range list.Items {
		out = append(out, n.Name)
	}
	return out
}

// container is the name of an instance's container.
func (env *dockerEnv) container(id int64, instance string) string {
	return fmt.Sprintf("%s-%d-%s", instance, id, env.dep)
}

func (env *dockerEnv) kill(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := contextTimeout(30 * time.Second)
	defer cancel()
	if _, err := env.cli.ContainerKill(ctx, name, dockerclient.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatalf("docker kill %s: %v", name, err)
	}
}

// logs returns what a container wrote to stdout and stderr.
func (env *dockerEnv) logs(name string) string {
	ctx, cancel := contextTimeout(30 * time.Second)
	defer cancel()
	rc, err := env.cli.ContainerLogs(ctx, name, dockerclient.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "docker logs: " + err.Error()
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil && err != io.EOF {
		return out.String() + "docker logs: " + err.Error()
	}
	return out.String()
}

// gone waits until an execution has neither containers nor network left.
func (env *dockerEnv) gone(t *testing.T, id int64) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("the containers and network of execution %d removed", id), func() (bool, string) {
		c, n := env.containers(t, id), env.networks(t, id)
		return len(c) == 0 && len(n) == 0, fmt.Sprintf("containers %v, networks %v", c, n)
	})
}

func contextTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// exampleApp reads a ZApp of examples/docker.
func exampleApp(t *testing.T, name string) json.RawMessage {
	t.Helper()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "examples", "docker", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// batchApp is a batch ZApp (will_end) of one service of image with env.
func batchApp(t *testing.T, image string, memory int64, env ...[2]string) json.RawMessage {
	t.Helper()
	if env == nil {
		env = [][2]string{}
	}
	b, err := json.Marshal(map[string]any{"name": "batch", "version": 3, "will_end": true, "size": 64,
		"services": []map[string]any{{
			"name": "job", "image": image, "monitor": true, "startup_order": 0, "essential_count": 1, "total_count": 1,
			"resources": map[string]any{"memory": map[string]any{"min": memory, "max": nil},
				"cores": map[string]any{"min": 0.1, "max": nil}},
			"ports": []any{}, "environment": env, "volumes": []any{}, "command": nil,
		}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func service(ex zoeclient.Execution, name string) (zoeclient.Service, bool) {
	i := slices.IndexFunc(ex.Services, func(s zoeclient.Service) bool { return s.Name == name })
	if i < 0 {
		return zoeclient.Service{}, false
	}
	return ex.Services[i], true
}

func hasEvent(ex zoeclient.Execution, to, reason string) bool {
	return slices.ContainsFunc(ex.Events, func(e zoeclient.Event) bool {
		return e.Service == "" && e.To == to && strings.Contains(e.Reason, reason)
	})
}

// checkEnded checks how a batch execution ended: its status, exit code,
// and for an error the reason in its message and its cleaning_up event.
func checkEnded(t *testing.T, ex zoeclient.Execution, status string, code int, reason string) {
	t.Helper()
	if ex.Status != status || ex.ExitCode == nil || *ex.ExitCode != code || !strings.Contains(ex.ErrorMessage, reason) {
		got := "none"
		if ex.ExitCode != nil {
			got = fmt.Sprint(*ex.ExitCode)
		}
		t.Errorf("%s, exit code %s, error %q; want %s, %d, %q", ex.Status, got, ex.ErrorMessage, status, code, reason)
	}
	if status == "error" && !hasEvent(ex, "cleaning_up", reason) {
		t.Errorf("no cleaning_up event with the reason %q: %+v", reason, ex.Events)
	}
}

func httpGet(url string) (string, error) {
	resp, err := (&http.Client{Timeout: time.Minute}).Get(url) // a hang bound
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}

const mib = 1 << 20

// TestDockerEndToEnd runs real ZApps through one `zoe server` on the Docker
// engine; the subtests share it and run in order.
func TestDockerEndToEnd(t *testing.T) {
	t.Parallel()
	env := newDockerEnv(t)
	srv := env.start(t)
	holdCores(t, true) // "the networks of two users are isolated"
	endToEnd(t, env, srv)
}

// e2eEnv is what endToEnd needs of a deployment on a Docker engine or a
// swarm, besides exampleEnv.
type e2eEnv interface {
	exampleEnv
	start(t *testing.T) *zoeServer
	user(t *testing.T, name string) apiUser
	// units maps what runs the deployment's instances (of execution id
	// when given) to an identity that changes when it is started again:
	// a container's name to its id; a swarm service's name to its id and
	// its running task's container.
	units(t *testing.T, ids ...int64) map[string]string
	networks(t *testing.T, ids ...int64) []string
	// kill kills an instance's container (named as container names it),
	// as a crash would.
	kill(t *testing.T, name string)
	// nodeAddress is where published ports answer, "" when any will do.
	nodeAddress() string
	deployment() string
}

// endToEnd runs real ZApps through srv, env's `zoe server`: the subtests
// share it and run in order.
func endToEnd(t *testing.T, env e2eEnv, srv *zoeServer) {
	alice, bob := env.user(t, "alice"), env.user(t, "bob")
	outer := t
	// Everything that can run at once is submitted first.
	cluster := alice.submit("cluster", exampleApp(t, "cluster.json"))
	hello := bob.submit("hello", exampleApp(t, "hello.json"))
	batches := []struct {
		name   string
		app    json.RawMessage
		status string
		code   int
		reason string // in the execution's error message
		id     int64
	}{
		{name: "job exits 0", app: batchApp(t, testimages.Job, 64*mib, [2]string{"EXIT_CODE", "0"},
			[2]string{"OUTPUT", "/mnt/workspace/job-0.txt"}, [2]string{"CONTENT", "zero"}), status: "terminated"},
		{name: "job exits 3", app: batchApp(t, testimages.Job, 64*mib, [2]string{"EXIT_CODE", "3"},
			[2]string{"OUTPUT", "/mnt/workspace/job-3.txt"}, [2]string{"CONTENT", "three"}), status: "error", code: 3,
			reason: "essential service job0 exited with code 3"},
		{name: "OOM-killed", app: batchApp(t, testimages.OOM, 32*mib), status: "error", code: 137,
			reason: "essential service job0 was OOM-killed"},
	}
	for i := range batches {
		batches[i].id = alice.submit(batches[i].name, batches[i].app).ID
	}

	var run zoeclient.Execution
	ok := t.Run("three services run", func(t *testing.T) {
		alice := env.user(t, "alice")
		awaitLong(t, alice.apiClient, cluster.ID, "running")
		waitUntil(t, "every instance running", func() (bool, string) {
			run = alice.execution(cluster.ID)
			var st []string
			for _, s := range run.Services {
				st = append(st, s.Name+":"+s.Status)
			}
			slices.Sort(st)
			return slices.Equal(st, []string{"master0:running", "notebook0:running", "worker0:running", "worker1:running"}) &&
				run.Status == "running", strings.Join(st, " ") + " " + run.Status
		})
		if got := env.units(t, cluster.ID); len(got) != 4 {
			t.Errorf("containers: %v, want 4", got)
		}
		if got := env.networks(t, cluster.ID); len(got) != 1 || got[0] != fmt.Sprintf("zoe-%s-%d", env.deployment(), cluster.ID) {
			t.Errorf("networks: %v", got)
		}
	})
	if !ok {
		t.FailNow()
	}

	t.Run("workers reach the master by DNS name", func(t *testing.T) {
		want := "answer: hello from " + env.container(cluster.ID, "master0")
		for _, w := range []string{"worker0", "worker1"} {
			name := env.container(cluster.ID, w)
			waitUntil(t, w+" answered by the master", func() (bool, string) {
				l := env.logs(name)
				return strings.Contains(l, want), l
			})
		}
	})

	t.Run("the notebook answers on its published endpoint", func(t *testing.T) {
		i := slices.IndexFunc(run.Endpoints, func(e zoeclient.Endpoint) bool { return e.Service == "notebook0" })
		if i < 0 {
			t.Fatalf("no endpoint for notebook0: %+v", run.Endpoints)
		}
		ep := run.Endpoints[i]
		if ep.ExternalPort == 0 || ep.URL != fmt.Sprintf("http://%s:%d/", ep.ExternalAddress, ep.ExternalPort) ||
			env.nodeAddress() != "" && ep.ExternalAddress != env.nodeAddress() {
			t.Errorf("endpoint %+v (the node's address: %q)", ep, env.nodeAddress())
		}
		// Running is when the container started, not when it listens.
		want := "hello from " + env.container(cluster.ID, "notebook0")
		waitUntil(t, "the notebook answering at "+ep.URL, func() (bool, string) {
			page, err := httpGet(ep.URL)
			return err == nil && strings.TrimSpace(page) == want, fmt.Sprintf("%q %v, want %q", page, err, want)
		})
	})

	t.Run("batch exit codes and OOM", func(t *testing.T) {
		for _, b := range batches {
			t.Run(b.name, func(t *testing.T) {
				c := env.user(t, "alice")
				checkEnded(t, awaitLong(t, c.apiClient, b.id, "terminated", "error"), b.status, b.code, b.reason)
				env.gone(t, b.id)
			})
		}
	})

	t.Run("the workspace belongs to the user", func(t *testing.T) {
		checkWorkspace(t, env.home("alice"))
	})

	t.Run("the networks of two users are isolated", func(t *testing.T) {
		alice := env.user(t, "alice")
		master, _ := service(alice.execution(cluster.ID), "master0")
		if master.IP == "" {
			t.Fatalf("master0 has no IP: %+v", master)
		}
		c := env.user(t, "bob")
		targets := []struct{ name, master string }{
			{"by DNS name", env.container(cluster.ID, "master0") + ":8080"},
			{"by IP", master.IP + ":8080"},
		}
		ids := make([]int64, len(targets))
		for i, tg := range targets {
			ids[i] = c.submit("intruder", batchApp(t, testimages.Worker, 64*mib,
				[2]string{"MASTER", tg.master}, [2]string{"GIVE_UP", "3s"})).ID
		}
		for i, tg := range targets {
			ex := awaitLong(t, c.apiClient, ids[i], "terminated", "error")
			// The worker exits 1 only when the master never answered.
			if ex.Status != "error" || ex.ExitCode == nil || *ex.ExitCode != 1 {
				t.Errorf("bob's worker asking alice's master %s (%s): %s %q, want error with exit code 1",
					tg.name, tg.master, ex.Status, ex.ErrorMessage)
			}
		}
	})

	t.Run("terminate removes every container and the network", func(t *testing.T) {
		c := env.user(t, "bob")
		awaitLong(t, c.apiClient, hello.ID, "running")
		if n, nets := len(env.units(t, hello.ID)), env.networks(t, hello.ID); n != 1 || len(nets) != 1 {
			t.Fatalf("before: %d containers, networks %v", n, nets)
		}
		c.terminate(hello.ID)
		awaitLong(t, c.apiClient, hello.ID, "terminated")
		env.gone(t, hello.ID)
	})

	t.Run("a killed elastic worker is replaced", func(t *testing.T) {
		alice := env.user(t, "alice")
		name := env.container(cluster.ID, "worker1")
		before := env.units(t, cluster.ID)[name]
		env.kill(t, name)
		waitUntil(t, "worker1 replaced", func() (bool, string) {
			ex := alice.execution(cluster.ID)
			s, _ := service(ex, "worker1")
			now := env.units(t, cluster.ID)[name]
			return s.RestartCount == 1 && s.Status == "running" && now != before,
				fmt.Sprintf("%s, worker1 %s %q restarts %d, %s (before %s)", ex.Status, s.Status, s.ErrorMessage, s.RestartCount, now, before)
		})
		if ex := alice.execution(cluster.ID); ex.Status != "running" {
			t.Errorf("the execution is %s after an elastic worker died", ex.Status)
		}
		for _, s := range alice.execution(cluster.ID).Services {
			if s.Name != "worker1" && s.RestartCount != 0 {
				t.Errorf("%s restarted %d times", s.Name, s.RestartCount)
			}
		}
	})

	t.Run("a daemon killed with SIGKILL adopts what runs", func(t *testing.T) {
		before := env.units(t)
		if len(before) != 4 {
			t.Fatalf("before: %v, want the cluster's 4 containers", before)
		}
		srv.kill(t)
		srv = env.start(outer) // stopped when the whole test ends
		alice := env.user(t, "alice")
		awaitLong(t, alice.apiClient, cluster.ID, "running")
		// Several passes of the restarted engine (one a second) change
		// nothing: the same containers, none started again.
		deadline := time.Now().Add(4 * time.Second)
		for time.Now().Before(deadline) {
			if got := env.units(t); !maps.Equal(got, before) {
				t.Fatalf("containers after the restart: %v, before %v", got, before)
			}
			time.Sleep(200 * time.Millisecond)
		}
		ex := alice.execution(cluster.ID)
		for _, s := range ex.Services {
			if want := map[bool]int{true: 1}[s.Name == "worker1"]; s.Status != "running" || s.RestartCount != want {
				t.Errorf("%s after the restart: %s, restarts %d", s.Name, s.Status, s.RestartCount)
			}
		}
	})

	t.Run("an essential service killed ends the execution", func(t *testing.T) {
		alice := env.user(t, "alice")
		env.kill(t, env.container(cluster.ID, "master0"))
		ex := awaitLong(t, alice.apiClient, cluster.ID, "terminated", "error")
		const reason = "essential service master0 exited with code 137"
		if ex.Status != "terminated" || !hasEvent(ex, "cleaning_up", reason) {
			t.Errorf("%s %q, events %+v; want terminated because %q", ex.Status, ex.ErrorMessage, ex.Events, reason)
		}
		env.gone(t, cluster.ID)
	})

	if c, n := env.units(t), env.networks(t); len(c) != 0 || len(n) != 0 {
		t.Errorf("left behind: containers %v, networks %v", c, n)
	}
}

// checkWorkspace checks that dir is alice's, and that the files her jobs
// wrote into it are, with what they wrote.
func checkWorkspace(t *testing.T, dir string) {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1000 || st.Gid != 1000 || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: uid %d gid %d mode %v, want 1000 1000 0700", dir, st.Uid, st.Gid, fi.Mode().Perm())
	}
	for _, f := range []struct{ name, content string }{{"job-0.txt", "zero"}, {"job-3.txt", "three"}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil || strings.TrimSpace(string(b)) != f.content {
			t.Errorf("%s: %q %v, want %q", f.name, b, err, f.content)
			continue
		}
		// Containers run as the owner's uid:gid, known from the users
		// file, so what they write is alice's.
		fi, err := os.Stat(filepath.Join(dir, f.name))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1000 || st.Gid != 1000 {
			t.Errorf("%s written by a job: uid %d gid %d, want alice's 1000 1000", f.name, st.Uid, st.Gid)
		}
	}
}

// home is user's workspace.
func (env *dockerEnv) home(user string) string { return filepath.Join(env.ws, env.dep, user) }

// units: the deployment's containers, in every state.
func (env *dockerEnv) units(t *testing.T, ids ...int64) map[string]string {
	return env.containers(t, ids...)
}

func (env *dockerEnv) nodeAddress() string { return "" }

func (env *dockerEnv) deployment() string { return env.dep }
