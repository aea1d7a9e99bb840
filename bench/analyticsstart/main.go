// Command analyticsstart times, through a real Zoe on the local Docker
// engine and the analytics images (make images), how long a user waits for
// the shop's analytics ZApps:
//
//	make build && go run ./bench/analyticsstart [-reps 5] [-cases notebook,dask] [-cold=true] [-cores C] [-log FILE]
//
// as root (a cold start drops the kernel's page cache). It runs a Zoe
// daemon in its own process (bench/internal/benchd: the real plugins, the
// Docker back-end, a deployment of its own) on the shop of -shop, and a
// user, with a bearer token, starts:
//
//   - notebook: the shop's notebook-0, timed from the POST to
//     /api/v1/executions until Jupyter answers 200 with its version on
//     GET /proxy/<id>/notebook0/8888/api, through Zoe's proxy;
//   - dask: the shop's dask-0 (a scheduler, worker0 essential, worker1-3
//     elastic, a notebook: 1.75 cores reserved), timed until a kernel
//     started in that notebook through the proxy (Jupyter's REST API and
//     its WebSocket) has seen 4 workers and computed a sum on them; the
//     steps between (the cell starts, Dask imported, 4 workers) are
//     printed too. A notebook that asks for its own token (an image that
//     always wants one, on a Zoe whose proxy does not present it yet) gets
//     the one it printed in its log, read through Zoe's API as its user
//     would, in ?token=.
//
// Zoe counts the reservations of every Zoe container on the engine, other
// deployments' too: each start waits, untimed, until the engine has room
// for all of the ZApp's services, elastic ones included; -cores makes
// every service reserve that many cores instead (a reservation is a CPU
// weight, not a cap), for when another deployment's containers hold the
// cores.
//
// Each is started once untimed (warm-up: the images are used once), then
// -reps times cold and warm in turn: cold is the first start after `sync;
// echo 3 > /proc/sys/vm/drop_caches`, so that the images' layers (and
// Python's modules, Docker's and the plugins' binaries, everything on disk)
// are read from disk again; warm is the start right after, with all of that
// in the page cache. Neither pulls anything (pull_images = false). Each
// execution is terminated and waited for until terminated (its containers
// and network removed) before the next. Zoe's own part, from the
// execution's events, is printed beside the totals: until the execution
// is running (its essential services) and until every service runs.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	moby "github.com/moby/moby/client"

	"github.com/zoe-project/zoe/bench/internal/benchd"
	"github.com/zoe-project/zoe/bench/internal/startbench"
	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/internal/jupyter"
	"github.com/zoe-project/zoe/internal/testutil"
)

const (
	// wait bounds each wait of a round: for room, for Jupyter, for the
	// computation.
	wait = 5 * time.Minute
	// poll is how often Jupyter is asked through the proxy.
	poll = 50 * time.Millisecond

	user, adminUser = "bench", "admin"

	// target is the issue's, for a notebook, warm.
	target = 10 * time.Second

	// daskCode is what a user's first cell does: connect to the
	// scheduler (DASK_SCHEDULER_ADDRESS), wait for the 4 workers, compute.
	daskCode = `import time
from distributed import Client
import dask.array as da
imported = time.time()
c = Client(timeout=60)
c.wait_for_workers(4, timeout=300)
print("times", imported, time.time())
print(da.ones((1000, 1000), chunks=250).sum().compute(), len(c.scheduler_info()["workers"]))
`
	daskWant = "1000000.0 4"
)

// tokenRE finds Jupyter's token in its log ("...?token=<hex>").
var tokenRE = regexp.MustCompile(`[?&]token=([0-9a-f]+)`)

// A zappCase is a shop entry to time.
type zappCase struct {
	name, shopID string
	// code, when set, runs in a kernel of the notebook once Jupyter
	// answers; its output must contain want.
	code, want string
}

// allCases are the ZApps the benchmark knows.
func allCases() []zappCase {
	return []zappCase{
		{name: "notebook", shopID: "notebook-0"},
		{name: "dask", shopID: "dask-0", code: daskCode, want: daskWant},
	}
}

func main() {
	zoe := flag.String("zoe", "bin/zoe", "the zoe binary (its plugins next to it: make build)")
	shop := flag.String("shop", "", "the shop directory (default: the module's examples/shop)")
	reps := flag.Int("reps", 5, "cold and warm starts of each ZApp")
	cases := flag.String("cases", "notebook,dask", "ZApps to time, comma-separated: notebook, dask")
	cold := flag.Bool("cold", true, "time cold starts too (drops the page cache: as root)")
	logFile := flag.String("log", "", "write the daemon's log (level info) to this file")
	cores := flag.Float64("cores", 0, "when above 0, every service reserves this many cores instead of the shop's (when other deployments' containers hold the engine's cores)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Minute)
	defer cancel()
	if err := run(ctx, *zoe, *shop, *cases, *reps, *cold, *logFile, *cores); err != nil {
		fmt.Fprintln(os.Stderr, "analyticsstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, zoeBin, shop, caseList string, reps int, cold bool, logFile string, cores float64) (err error) {
	if reps < 1 {
		return errors.New("-reps must be 1 or more")
	}
	var cases []zappCase
	known := allCases()
	for name := range strings.SplitSeq(caseList, ",") {
		i := slices.IndexFunc(known, func(c zappCase) bool { return c.name == strings.TrimSpace(name) })
		if i < 0 {
			return fmt.Errorf("unknown case %q (notebook, dask)", name)
		}
		cases = append(cases, known[i])
	}
	if cold && os.Geteuid() != 0 {
		return errors.New("cold starts drop the page cache, which takes root: run as root, or with -cold=false")
	}
	if shop == "" {
		root, err := testutil.ModuleRoot()
		if err != nil {
			return err
		}
		shop = filepath.Join(root, "examples", "shop")
	}
	if shop, err = filepath.Abs(shop); err != nil {
		return err
	}
	docker, err := moby.New(moby.FromEnv)
	if err != nil {
		return err
	}
	defer docker.Close()
	version, err := docker.ServerVersion(ctx, moby.ServerVersionOptions{})
	if err != nil {
		return fmt.Errorf("the local Docker engine: %w", err)
	}
	fmt.Printf("load average before: %s\n", startbench.LoadAvg())

	b, stopDaemon, err := start(ctx, zoeBin, shop, docker)
	if err != nil {
		return err
	}
	b.cores = cores
	defer func() {
		err = errors.Join(err, stopDaemon())
		if logFile != "" {
			err = errors.Join(err, os.WriteFile(logFile, []byte(b.log.String()), 0o644))
		}
		b.removeAll()
	}()
	for _, c := range cases {
		if err := b.check(ctx, c); err != nil {
			return err
		}
	}

	colds := 0
	if cold {
		colds = reps
	}
	fmt.Printf("Docker engine %s, %g cores; %d cold and %d warm starts of each ZApp after an untimed one; shop %s\n",
		version.Version, b.nodeCores(ctx), colds, reps, shop)
	if cold {
		fmt.Println("cold: the first start after `sync; echo 3 > /proc/sys/vm/drop_caches` (the whole page cache dropped:")
		fmt.Println("      the images' layers, Python's modules, the binaries are read from disk again); nothing is pulled")
	}
	fmt.Println("warm: the start right after another start of the same ZApp (everything in the page cache)")
	if cores > 0 {
		fmt.Printf("every service reserves %g cores, not the shop's (a reservation is a CPU weight, not a cap)\n", cores)
	}
	var rows []row
	for _, c := range cases {
		fmt.Printf("%s: warm-up ", c.name)
		r, err := b.round(ctx, c, false)
		if err != nil {
			return fmt.Errorf("%s, warm-up: %w", c.name, err)
		}
		fmt.Println(r)
		modes := []string{"warm"}
		if cold {
			modes = []string{"cold", "warm"}
		}
		got := map[string][]result{}
		for i := range reps {
			for _, m := range modes {
				fmt.Printf("%s: %s %d/%d ", c.name, m, i+1, reps)
				r, err := b.round(ctx, c, m == "cold")
				if err != nil {
					return fmt.Errorf("%s, %s start %d: %w", c.name, m, i+1, err)
				}
				fmt.Println(r)
				got[m] = append(got[m], r)
			}
		}
		for _, m := range modes {
			rows = append(rows, row{c.name, m, got[m]})
		}
	}
	printTable(rows)
	fmt.Printf("target: a notebook answering within %s warm on this 2-core machine (issue 19); JupyterHub's\n", target)
	fmt.Println("DockerSpawner typically reaches a notebook of an image already pulled within a few seconds")
	fmt.Printf("load average after: %s\n", startbench.LoadAvg())
	return nil
}

// bench is a daemon of its own, with a user and an admin.
type bench struct {
	root   string // http://host:port
	dep    string // the deployment's name
	token  string // the user's bearer token
	user   *client.Client
	admin  *client.Client
	docker *moby.Client
	log    *testutil.SyncBuffer
	// cores, when above 0, is every service's reservation.
	cores float64
}

// start runs the daemon in a temporary directory (removed when it stops)
// on the shop, and logs the user in.
func start(ctx context.Context, zoeBin, shop string, docker *moby.Client) (*bench, func() error, error) {
	zoeBin, err := filepath.Abs(zoeBin)
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "zoe-analyticsstart-")
	if err != nil {
		return nil, nil, err
	}
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	b := &bench{dep: "bench-" + hex.EncodeToString(id), docker: docker, log: &testutil.SyncBuffer{}}
	password := rand.Text()
	// Plain-text passwords: no bcrypt on each check. The user has a uid
	// and gid, which its containers run as.
	users := fmt.Sprintf("%s,%s,user,1100,1100\n%s,%s,admin\n", user, password, adminUser, password)
	cfg := fmt.Sprintf(`listen = "127.0.0.1:0"
deployment_name = %q
data_dir = "data"
shop_dir = %q
log_level = "info"
auth "file" {
  users_file = "users.csv"
}
workspace "dir" {
  base_path = "ws"
}
backend "docker" {
  pull_images = false
}
`, b.dep, shop)
	file := filepath.Join(dir, "zoe.hcl")
	if err := errors.Join(os.WriteFile(file, []byte(cfg), 0o600),
		os.WriteFile(filepath.Join(dir, "users.csv"), []byte(users), 0o600)); err != nil {
		return nil, nil, errors.Join(err, os.RemoveAll(dir))
	}
	base, stopDaemon, err := benchd.Start(ctx, file, zoeBin, "analyticsstart", b.log)
	if err != nil {
		return nil, nil, errors.Join(err, os.RemoveAll(dir))
	}
	stop := func() error { return errors.Join(stopDaemon(), os.RemoveAll(dir)) }
	b.root = strings.TrimSuffix(base, "/api/v1")
	hc := &http.Client{Timeout: 30 * time.Second}
	anon, err := client.New(b.root, client.WithHTTPClient(hc))
	if err == nil {
		var s *client.Session
		if s, err = anon.Login(ctx, client.Login{Username: user, Password: password}); err == nil {
			b.token = s.Token
		}
	}
	if err == nil {
		b.user, err = client.New(b.root, client.WithToken(b.token), client.WithHTTPClient(hc))
	}
	if err == nil {
		b.admin, err = client.New(b.root, client.WithBasicAuth(adminUser, password), client.WithHTTPClient(hc))
	}
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("log in: %w", err), stop())
	}
	return b, stop, nil
}

// check says, before anything runs, when the shop lacks c or the engine
// one of its images.
func (b *bench) check(ctx context.Context, c zappCase) error {
	d, err := b.describe(ctx, c)
	if err != nil {
		return err
	}
	for _, s := range d.Services {
		if _, err := b.docker.ImageInspect(ctx, s.Image); err != nil {
			return fmt.Errorf("%s needs %s (make images): %w", c.shopID, s.Image, err)
		}
	}
	return nil
}

// describe is c's ZApp, as the shop has it.
func (b *bench) describe(ctx context.Context, c zappCase) (*zapp.App, error) {
	e, err := b.user.ShopEntry(ctx, c.shopID)
	if err != nil {
		return nil, fmt.Errorf("the shop's %s: %w", c.shopID, err)
	}
	a, err := zapp.Decode(e.Description)
	if err != nil {
		return nil, fmt.Errorf("the shop's %s: %w", c.shopID, err)
	}
	return a, nil
}

// nodeCores is the back-end's cores, for the header.
func (b *bench) nodeCores(ctx context.Context) float64 {
	st, err := b.admin.Stats(ctx)
	if err != nil {
		return 0
	}
	var n float64
	for _, nd := range st.Nodes {
		n += nd.Cores
	}
	return n
}

// awaitRoom waits until the engine has room for every service of c, its
// elastic ones too: other deployments' Zoe containers (a test suite's) on
// the same engine count in its reservations, and a worker left waiting
// for room would be timed.
func (b *bench) awaitRoom(ctx context.Context, c zappCase) error {
	d, err := b.describe(ctx, c)
	if err != nil {
		return err
	}
	var cores float64
	var memory int64
	for _, s := range d.Services {
		// A null cores.min reserves 0.1 core.
		c := 0.1
		if b.cores > 0 {
			c = b.cores
		} else if s.Resources.Cores.Min != nil {
			c = *s.Resources.Cores.Min
		}
		cores += float64(s.TotalCount) * c
		if s.Resources.Memory.Min != nil {
			memory += int64(s.TotalCount) * *s.Resources.Memory.Min
		}
	}
	t0 := time.Now()
	for {
		st, err := b.admin.Stats(ctx)
		if err != nil {
			return fmt.Errorf("the nodes: %w", err)
		}
		var free float64
		var freeMem int64
		for _, n := range st.Nodes {
			if n.State == "ready" {
				free += n.Cores - n.CoresReserved
				freeMem += n.Memory - n.MemoryReserved
			}
		}
		// Cores are counted in millicores.
		if free+0.0005 >= cores && freeMem >= memory {
			if w := time.Since(t0); w > time.Second {
				fmt.Printf("(waited %s for %.2f cores) ", w.Round(time.Second), cores)
			}
			return nil
		}
		if time.Since(t0) > wait {
			return fmt.Errorf("%s needs %.2f cores and %d MiB: %.2f and %d MiB free after %s", c.shopID,
				cores, memory>>20, free, freeMem>>20, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// A result is one start: the times from the submission until each of its
// steps, in order.
type result []step

type step struct {
	what string
	d    time.Duration
}

func (r result) String() string {
	parts := make([]string, len(r))
	for i, s := range r {
		parts[i] = s.what + " " + secs(s.d)
	}
	return strings.Join(parts, ", ")
}

// round starts c once and times it; the execution is terminated and waited
// for whatever happens.
func (b *bench) round(ctx context.Context, c zappCase, cold bool) (r result, err error) {
	ctx, cancel := context.WithTimeout(ctx, 3*wait)
	defer cancel()
	if err := b.awaitRoom(ctx, c); err != nil {
		return r, err
	}
	if cold {
		syscall.Sync()
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
			return r, fmt.Errorf("drop the page cache: %w", err)
		}
	}
	start := &client.ShopStart{ID: c.shopID}
	if b.cores > 0 {
		d, err := b.describe(ctx, c)
		if err != nil {
			return r, err
		}
		start.Resources = map[string]client.ServiceResources{}
		for _, s := range d.Services {
			start.Resources[s.Name] = client.ServiceResources{Cores: &b.cores}
		}
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return r, err
	}
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	header := http.Header{"Authorization": {"Bearer " + b.token}}
	t0 := time.Now()
	ex, err := b.user.StartExecution(ctx, client.StartExecution{Name: "bench-" + c.name, Shop: start})
	if err != nil {
		return r, fmt.Errorf("submit %s: %w", c.shopID, err)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\nthe daemon's log:\n%s\nthe notebook's log:\n%s", err, tail(b.log.String(), 20),
				b.notebookLog(context.WithoutCancel(ctx)))
		}
		err = errors.Join(err, b.terminate(context.WithoutCancel(ctx), ex.ID))
	}()
	prefix := fmt.Sprintf("%s/proxy/%d/notebook0/8888", b.root, ex.ID)
	answered, err := b.awaitJupyter(ctx, hc, header, prefix, ex.ID, t0)
	if err != nil {
		return nil, err
	}
	var later result
	if c.code != "" {
		x, err := runCode(ctx, hc, header, prefix, c.code, func(ctx context.Context) (string, error) {
			return b.jupyterToken(ctx, ex.ID)
		})
		if err != nil {
			return nil, fmt.Errorf("the computation: %w\n%s", err, x.Output())
		}
		done := time.Since(t0)
		if later, err = cellSteps(x, t0, c.want); err != nil {
			return nil, err
		}
		later = append(later, step{"computed", done})
	}
	full, err := b.user.GetExecution(ctx, ex.ID)
	if err != nil {
		return nil, fmt.Errorf("execution %d: %w", ex.ID, err)
	}
	running, services := zoeTimes(full, t0)
	return append(result{{"it runs", running}, {"every service runs", services}, {"Jupyter answers", answered}}, later...), nil
}

// cellSteps are the steps of daskCode's run, since t0: the kernel began
// it, the imports were done, 4 workers were there (the cell prints
// the times of the last two, on the host's clock, which containers share).
func cellSteps(x *jupyter.Execution, t0 time.Time, want string) (result, error) {
	out := x.Output()
	var imported, workers float64
	if _, err := fmt.Sscanf(out, "times %f %f\n", &imported, &workers); err != nil || !strings.Contains(out, want) {
		return nil, fmt.Errorf("the computation printed %q, not the times and %q (%v)", out, want, err)
	}
	at := func(unix float64) time.Duration { return time.Unix(0, int64(unix*1e9)).Sub(t0) }
	return result{{"the cell starts", x.Started.Sub(t0)}, {"imported", at(imported)}, {"4 workers", at(workers)}}, nil
}

// awaitJupyter asks Jupyter's /api through the proxy every poll until it
// answers its version, and returns the time since t0 then; the execution
// ending meanwhile is an error.
func (b *bench) awaitJupyter(ctx context.Context, hc *http.Client, header http.Header, prefix string, id int64, t0 time.Time) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var last error
	next := time.Now()
	for {
		body, _, err := getBody(ctx, hc, header, prefix+"/api")
		if err == nil {
			var v struct {
				Version string `json:"version"`
			}
			if json.Unmarshal(body, &v) == nil && v.Version != "" {
				return time.Since(t0), nil
			}
			err = fmt.Errorf("not Jupyter's version: %.200s", body)
		}
		last = err
		// Twice a second, not at each poll: the proxy is what is timed.
		if time.Now().After(next) {
			ex, err := b.user.GetExecution(ctx, id)
			if err != nil {
				return 0, fmt.Errorf("execution %d: %w", id, err)
			}
			if ex.Status == "error" || ex.Status == "terminated" {
				return 0, fmt.Errorf("execution %d ended %s: %s", id, ex.Status, ex.ErrorMessage)
			}
			next = time.Now().Add(500 * time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("no answer from Jupyter through the proxy: %w (last: %v)", ctx.Err(), last)
		case <-time.After(poll):
		}
	}
}

// zoeTimes are, from ex's events, the times since t0 until ex ran and
// until its last service ran (0 when one never did).
func zoeTimes(ex *client.Execution, t0 time.Time) (running, services time.Duration) {
	first := map[string]time.Time{}
	for _, e := range ex.Events {
		if _, ok := first[e.Service]; !ok && e.To == "running" {
			first[e.Service] = e.Time
		}
	}
	if t, ok := first[""]; ok {
		running = t.Sub(t0)
	}
	for _, s := range ex.Services {
		t, ok := first[s.Name]
		if !ok {
			return running, 0
		}
		services = max(services, t.Sub(t0))
	}
	return running, services
}

// terminate terminates execution id and waits until it is terminated:
// its containers and network removed.
func (b *bench) terminate(ctx context.Context, id int64) error {
	if _, err := b.user.Terminate(ctx, id); err != nil {
		return fmt.Errorf("terminate execution %d: %w", id, err)
	}
	if err := startbench.Await(ctx, b.user, id, "terminated"); err != nil {
		return err
	}
	left, err := b.docker.ContainerList(ctx, moby.ContainerListOptions{All: true,
		Filters: moby.Filters{}.Add("label", "zoe.deployment="+b.dep)})
	if err != nil {
		return fmt.Errorf("the deployment's containers: %w", err)
	}
	if len(left.Items) > 0 {
		return fmt.Errorf("execution %d is terminated, but %d of its containers are left", id, len(left.Items))
	}
	return nil
}

// jupyterToken is the token the notebook of execution id printed in its
// log, read through Zoe's API as its user would: a Zoe that gives Jupyter
// no token of its own (ZOE_PROXY_TOKEN, which the proxy presents), leaves
// the image to make one.
func (b *bench) jupyterToken(ctx context.Context, id int64) (string, error) {
	ex, err := b.user.GetExecution(ctx, id)
	if err != nil {
		return "", fmt.Errorf("execution %d: %w", id, err)
	}
	i := slices.IndexFunc(ex.Services, func(s client.Service) bool { return s.Name == "notebook0" })
	if i < 0 {
		return "", fmt.Errorf("execution %d has no notebook0", id)
	}
	logs, err := b.user.Logs(ctx, ex.Services[i].ID, client.LogOptions{})
	if err != nil {
		return "", fmt.Errorf("the notebook's log: %w", err)
	}
	defer logs.Close()
	text, err := io.ReadAll(logs)
	if err != nil {
		return "", fmt.Errorf("the notebook's log: %w", err)
	}
	m := tokenRE.FindSubmatch(text)
	if m == nil {
		return "", errors.New("the notebook asks for a token and its log has none")
	}
	return string(m[1]), nil
}

// notebookLog is the end of the log of the deployment's notebook, for an
// error.
func (b *bench) notebookLog(ctx context.Context) string {
	list, err := b.docker.ContainerList(ctx, moby.ContainerListOptions{All: true,
		Filters: moby.Filters{}.Add("label", "zoe.deployment="+b.dep).Add("name", "notebook0")})
	if err != nil || len(list.Items) == 0 {
		return fmt.Sprintf("no notebook container (%v)", err)
	}
	out, err := exec.CommandContext(ctx, "docker", "logs", "--tail", "30", list.Items[0].ID).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("docker logs: %v: %s", err, out)
	}
	return string(out)
}

// removeAll removes whatever the deployment left after an error.
func (b *bench) removeAll() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := moby.Filters{}.Add("label", "zoe.deployment="+b.dep)
	if list, err := b.docker.ContainerList(ctx, moby.ContainerListOptions{All: true, Filters: f}); err == nil {
		for _, c := range list.Items {
			_, _ = b.docker.ContainerRemove(ctx, c.ID, moby.ContainerRemoveOptions{Force: true})
		}
	}
	if list, err := b.docker.NetworkList(ctx, moby.NetworkListOptions{Filters: f}); err == nil {
		for _, n := range list.Items {
			_, _ = b.docker.NetworkRemove(ctx, n.ID, moby.NetworkRemoveOptions{})
		}
	}
}

// row is a ZApp's starts of one kind.
type row struct {
	name, mode string
	results    []result
}

// printTable prints, for each ZApp and step, the medians and ranges of
// each kind of start (rows of one ZApp follow each other: cold, warm).
func printTable(rows []row) {
	fmt.Printf("\nmedians (min–max) of the times from the POST of the execution until:\n")
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].name == rows[i].name {
			j++
		}
		fmt.Printf("%-30s", rows[i].name)
		for _, r := range rows[i:j] {
			fmt.Printf("  %-24s", r.mode)
		}
		fmt.Println()
		for k, s := range rows[i].results[0] {
			fmt.Printf("  %-28s", s.what)
			for _, r := range rows[i:j] {
				ds := make([]time.Duration, len(r.results))
				for n, res := range r.results {
					ds[n] = res[k].d
				}
				fmt.Printf("  %-24s", spread(ds))
			}
			fmt.Println()
		}
		i = j
	}
	fmt.Println()
}

// spread is the median of ds and their range, "-" when any is missing.
func spread(ds []time.Duration) string {
	if len(ds) == 0 || slices.Contains(ds, 0) {
		return "-"
	}
	return fmt.Sprintf("%s (%s–%s)", secs(startbench.Median(ds)), secs(slices.Min(ds)), secs(slices.Max(ds)))
}

func secs(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
