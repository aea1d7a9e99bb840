// Package sim is Zoe's "sim" back-end: a simulated cluster of nodes, taken
// from the plugin's configuration block, on which services "run" for a
// while and exit, emitting the events and log lines a real back-end would.
//
// # Knobs
//
// What a service does is read from its environment, or else from its labels
// (the environment wins):
//
//	ZOE_SIM_RUN=30s          zoe.sim.run          run for 30s, then exit; "forever" never exits
//	                                              by itself (default: the block's default_run)
//	ZOE_SIM_EXIT=3           zoe.sim.exit         exit code of that exit (default 0)
//	ZOE_SIM_FAIL=start       zoe.sim.fail         Start fails with an error; nothing is created
//	ZOE_SIM_OOM=5s           zoe.sim.oom          OOM-killed after 5s: oom_killed, then exited 137
//	ZOE_SIM_VANISH=5s        zoe.sim.vanish       disappears from the platform after 5s (vanished)
//	ZOE_SIM_LOG="a|b"        zoe.sim.log          lines written to stdout at start, after the
//	                                              default "started <name> on <node>"
//	ZOE_SIM_IGNORE_TERM=1    zoe.sim.ignore_term  ignores SIGTERM: Stop kills it after the grace (137)
//	ZOE_SIM_TERM_TIME=2s     zoe.sim.term_time    takes 2s to exit 0 after SIGTERM (default 0); more
//	                                              than the grace period and it is killed (137)
//	ZOE_SIM_START_DELAY=2s   zoe.sim.start_delay  Start takes 2s, as a slow container start would
//	ZOE_SIM_HTTP=1           zoe.sim.http         on a node whose address is a loopback address,
//	                                              serve a page on each published tcp port while
//	                                              the service runs (default: the block's
//	                                              serve_http; see web.go)
//
// Whichever of run, OOM and vanish comes first happens. A knob with a bad
// value makes Start fail with sdk.ErrInvalidArgument naming it. Besides the
// knobs, Plugin.Kill kills a running service as `docker kill` would and
// Plugin.Vanish removes one behind Zoe's back; since the platform lives in
// the state file, a test may call them on its own instance configured on the
// same state file as the plugin process it drives.
//
// # Persistence
//
// The simulated platform outlives the plugin, as a Docker engine outlives a
// Docker plugin: its whole state (services with their start times and
// planned ends, networks, pulled images and recent events) is a file of JSON
// lines, under an exclusive flock of "<state file>.lock": a snapshot of the
// platform, then one line per change, appended before the call returns.
// Once the changes outweigh the snapshot, the file is replaced atomically
// (temporary file and rename) by a new snapshot, so that a change costs the
// same on average whatever the platform's size. Every instance — several
// plugin processes, or several Plugin values in one process — keeps the
// platform in memory, with indexes, and reads the lines the others append,
// so they all see one platform. Time runs on while no plugin is up: a
// service's end is a wall-clock time, and whoever next loads the state
// carries out every end that has passed, stamped with the time it was due.
//
// # Events
//
// Each event is numbered and written with the change that caused it; every
// instance hands its deployment's events, its own and those it reads from
// the file, to each of its subscribers, so an event caused by one instance
// reaches the subscribers of all of them. Events that arrive while an
// instance has no subscriber, notably the ends carried out when a restarted
// plugin loads the state, are kept (up to maxBacklog) for its next
// subscriber. Each subscriber has its own queue, so a slow one never holds
// up the simulation; one that falls more than maxPending events behind is
// hopelessly so: its stream is closed, with a warning in the log, and the
// core subscribes again and reconciles with List, as after any broken
// stream.
package sim

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

const (
	// Name is the plugin's name in Zoe's configuration.
	Name = "sim"
	// Version is the plugin's version.
	Version = "0.1.0"

	attrStateFile  = "state_file"
	attrDefaultRun = "default_run"
	attrPullImages = "pull_images"
	attrCPUProfile = "cpu_profile"
	attrServeHTTP  = "serve_http"
	blockNode      = "node"
	attrCores      = "cores"
	attrMemory     = "memory"
	attrLabels     = "labels"
	attrImages     = "images"
	attrAddress    = "address"
	attrDisabled   = "disabled"

	// forever is the run time of a service that never exits by itself.
	forever = "forever"
)

var (
	_ backend.Backend = (*Plugin)(nil)
	_ backend.Updater = (*Plugin)(nil)
	_ backend.Closer  = (*Plugin)(nil)
)

// Plugin is the simulated back-end. The zero value is not usable; call New.
// It is safe for concurrent use.
type Plugin struct {
	log    *slog.Logger
	events *feed
	webs   *webServers

	mu sync.Mutex
	// rt is the configured simulation; nil until a successful Configure.
	rt     *runtime
	closed bool
	// profile is the CPU profile being written, nil for none.
	profile *os.File
}

// New returns an unconfigured back-end that logs to log.
func New(log *slog.Logger) *Plugin {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Plugin{log: log, events: newFeed(log)}
	p.webs = newWebServers(log, p.logRequest)
	return p
}

// Info names the plugin.
func (p *Plugin) Info() sdk.Info {
	return sdk.Info{
		Name:    Name,
		Version: Version,
		Description: "A simulated cluster: nodes from the configuration, services that run for a while and " +
			"exit as their ZOE_SIM_* environment says, state kept in a file that outlives the plugin.",
	}
}

// Schema describes the plugin's configuration block.
func (p *Plugin) Schema() sdk.Schema {
	return sdk.Schema{
		Attributes: []sdk.Attribute{
			{
				Name: attrStateFile,
				Type: "string",
				Help: "File holding the simulated platform, which outlives the plugin; relative to the " +
					"configuration file's directory. Default: <data_dir>/backend-sim/<deployment_name>.json.",
			},
			{
				Name: attrDefaultRun, Type: "string", Default: "1h",
				Help: `How long a service runs when its ZOE_SIM_RUN says nothing: a duration such as "90s", or "forever".`,
			},
			{
				Name: attrPullImages, Type: "bool", Default: true,
				Help: "Pull images missing on a node (with image_pull events) rather than refuse the service.",
			},
			{
				Name: attrServeHTTP, Type: "bool", Default: false,
				Help: "Services serve a small page (and a WebSocket echo) on their published tcp ports while they run, " +
					"on nodes whose address is a loopback address, so that Zoe's proxy has something to show; " +
					"ZOE_SIM_HTTP=0 or 1 in a service's environment decides for that service.",
			},
			{
				Name: attrCPUProfile, Type: "string",
				Help: "For benchmarks: write a CPU profile of the plugin process from its first Configure until it " +
					"stops, to this file with the process id before the extension (sim.pprof: sim.1234.pprof, so that " +
					"a restarted plugin keeps its predecessor's), and a heap profile when it stops (sim.1234.heap.pprof); " +
					"relative to the configuration file's directory.",
			},
		},
		Blocks: []sdk.Block{{
			Name:    blockNode,
			Nesting: sdk.NestingMap,
			Help:    `One block per node, labelled with its name: node "node1" { cores = 8 memory = "32GiB" }. At least one.`,
			Schema: sdk.Schema{Attributes: []sdk.Attribute{
				{Name: attrCores, Type: "number", Required: true, Help: "Cores of the node."},
				{Name: attrMemory, Type: "string", Required: true, Help: `Memory of the node, e.g. "32GiB" or "64GB".`},
				{Name: attrLabels, Type: "list(string)", Default: []string{}, Help: "Labels services may ask for, e.g. gpu."},
				{Name: attrImages, Type: "list(string)", Default: []string{}, Help: "Images already on the node."},
				{Name: attrAddress, Type: "string", Default: "127.0.0.1", Help: "Address on which the node publishes ports."},
				{Name: attrDisabled, Type: "bool", Default: false, Help: "A disabled node runs what it has but takes nothing new."},
			}},
		}},
	}
}

// blockConfig is the decoded configuration block.
type blockConfig struct {
	// StateFile is a pointer to tell "absent" from an empty string.
	StateFile  *string               `json:"state_file"`
	DefaultRun string                `json:"default_run"`
	PullImages bool                  `json:"pull_images"`
	CPUProfile string                `json:"cpu_profile"`
	ServeHTTP  bool                  `json:"serve_http"`
	Nodes      map[string]nodeConfig `json:"node"`
}

type nodeConfig struct {
	Cores    float64  `json:"cores"`
	Memory   string   `json:"memory"`
	Labels   []string `json:"labels"`
	Images   []string `json:"images"`
	Address  string   `json:"address"`
	Disabled bool     `json:"disabled"`
}

// node is a configured node.
type node struct {
	name     string
	cores    float64
	memory   int64
	labels   []string
	images   []string
	address  string
	disabled bool
}

// settings is a checked configuration.
type settings struct {
	statePath  string
	deployment string
	// defaultRun is how long a service runs by default; 0 with
	// runForever for services that never exit by themselves.
	defaultRun    time.Duration
	defaultNoExit bool
	pullImages    bool
	// serveHTTP is the default of the HTTP knob.
	serveHTTP bool
	// cpuProfile is the file to write a CPU profile to, "" for none.
	cpuProfile string
	// nodes are in name order, the order in which Start picks one when the
	// spec names none (HCL hands labelled blocks over as a map).
	nodes []node
}

func (s *settings) node(name string) (node, bool) {
	i := slices.IndexFunc(s.nodes, func(n node) bool { return n.name == name })
	if i < 0 {
		return node{}, false
	}
	return s.nodes[i], true
}

// Configure checks the configuration and, unless cfg.ValidateOnly, loads
// (or creates) the platform's state file and starts simulating. It may be
// called again, e.g. after the core restarted the plugin; a failed Configure
// leaves the previous configuration in force.
func (p *Plugin) Configure(ctx context.Context, cfg sdk.Config) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("configure: %v: %w", err, sdk.ErrDeadlineExceeded)
	}
	set, diags := parseConfig(cfg)
	if diags.HasErrors() {
		return diags
	}
	if cfg.ValidateOnly {
		return checkStateFile(set.statePath).Err()
	}
	if err := os.MkdirAll(filepath.Dir(set.statePath), 0o755); err != nil {
		return sdk.Diagnostics{sdk.AttributeError(attrStateFile, "Cannot create the state file's directory", err.Error())}
	}
	rt, err := newRuntime(p.log, set, p.events, p.webs)
	if err != nil {
		return sdk.Diagnostics{sdk.AttributeError(attrStateFile, "Cannot open the simulated platform", err.Error())}
	}
	if err := rt.load(ctx); err != nil {
		rt.file.close()
		var d sdk.Diagnostics
		if errors.As(err, &d) {
			return d
		}
		return sdk.Diagnostics{sdk.AttributeError(attrStateFile, "Cannot load the simulated platform", err.Error())}
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		rt.file.close()
		return fmt.Errorf("configure: the plugin is closed: %w", sdk.ErrUnavailable)
	}
	if set.cpuProfile != "" && p.profile == nil {
		p.profile = p.startProfile(set.cpuProfile)
	}
	old := p.rt
	p.rt = rt
	go rt.drive()
	p.mu.Unlock()
	if old != nil {
		old.close()
	}
	p.log.Info("simulated cluster ready", "state_file", set.statePath, "nodes", len(set.nodes), "deployment", set.deployment)
	return nil
}

// Capabilities: the simulator "pulls" images unless pull_images is off.
func (p *Plugin) Capabilities(context.Context) (backend.Capabilities, error) {
	rt, err := p.runtime()
	if err != nil {
		return backend.Capabilities{}, err
	}
	return backend.Capabilities{PullsImages: rt.set.pullImages}, nil
}

// Close stops the simulation in this process and ends every event and log
// stream. The platform itself lives on in the state file. It may be called
// more than once.
func (p *Plugin) Close(context.Context) error {
	p.mu.Lock()
	rt, prof := p.rt, p.profile
	p.rt, p.closed, p.profile = nil, true, nil
	p.mu.Unlock()
	if rt != nil {
		rt.close()
	}
	p.events.close()
	p.webs.close()
	if prof != nil {
		pprof.StopCPUProfile()
		if err := prof.Close(); err != nil {
			p.log.Error("cannot write the CPU profile", "path", prof.Name(), "error", err)
		}
		p.writeHeapProfile(heapProfilePath(prof.Name()))
	}
	return nil
}

// heapProfilePath names the heap profile beside the CPU profile:
// sim.1234.pprof, sim.1234.heap.pprof.
func heapProfilePath(cpu string) string {
	ext := filepath.Ext(cpu)
	return strings.TrimSuffix(cpu, ext) + ".heap" + ext
}

func (p *Plugin) writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		p.log.Error("cannot create the heap profile", "path", path, "error", err)
		return
	}
	if err := errors.Join(pprof.Lookup("heap").WriteTo(f, 0), f.Close()); err != nil {
		p.log.Error("cannot write the heap profile", "path", path, "error", err)
	}
}

// startProfile starts writing a CPU profile of the process to path; a
// failure is logged, not fatal: the profile is a benchmark's aid.
func (p *Plugin) startProfile(path string) *os.File {
	ext := filepath.Ext(path)
	path = fmt.Sprintf("%s.%d%s", strings.TrimSuffix(path, ext), os.Getpid(), ext)
	f, err := os.Create(path)
	if err != nil {
		p.log.Error("cannot create the CPU profile", "path", path, "error", err)
		return nil
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		p.log.Error("cannot start the CPU profile", "path", path, "error", err)
		_ = f.Close()
		return nil
	}
	return f
}

// runtime returns the configured simulation or an sdk.ErrUnavailable error.
func (p *Plugin) runtime() (*runtime, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rt == nil {
		return nil, fmt.Errorf("the sim back-end is not configured: %w", sdk.ErrUnavailable)
	}
	return p.rt, nil
}

func parseConfig(cfg sdk.Config) (settings, sdk.Diagnostics) {
	var c blockConfig
	if err := cfg.Decode(&c); err != nil {
		return settings{}, sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: "Invalid configuration of the sim back-end", Detail: err.Error()}}
	}
	if c.DefaultRun == "" {
		c.DefaultRun = "1h" // a block handed over without the schema's defaults (tests)
	}
	var diags sdk.Diagnostics
	set := settings{deployment: cfg.Deployment, pullImages: c.PullImages, serveHTTP: c.ServeHTTP, cpuProfile: c.CPUProfile}
	if set.cpuProfile != "" && !filepath.IsAbs(set.cpuProfile) && cfg.ConfigDir != "" {
		set.cpuProfile = filepath.Join(cfg.ConfigDir, set.cpuProfile)
	}
	if set.deployment == "" {
		set.deployment = "default"
	}
	if d, noExit, err := parseRun(c.DefaultRun); err != nil {
		diags = append(diags, sdk.AttributeError(attrDefaultRun, "Invalid default run time", err.Error()))
	} else {
		set.defaultRun, set.defaultNoExit = d, noExit
	}
	if len(c.Nodes) == 0 {
		diags = append(diags, sdk.AttributeError(blockNode, "No nodes",
			`The simulated cluster needs at least one node block, e.g. node "node1" { cores = 8 memory = "32GiB" }.`))
	}
	for _, name := range slices.Sorted(maps.Keys(c.Nodes)) {
		nc := c.Nodes[name]
		at := func(attr string) []string { return []string{blockNode, name, attr} }
		n := node{name: name, cores: nc.Cores, labels: nc.Labels, images: nc.Images, address: nc.Address, disabled: nc.Disabled}
		if n.address == "" {
			n.address = "127.0.0.1"
		}
		if strings.TrimSpace(name) == "" {
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Path: []string{blockNode, name},
				Summary: "Invalid node name", Detail: "A node's name must not be empty."})
		}
		if nc.Cores <= 0 {
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Path: at(attrCores),
				Summary: "Invalid number of cores", Detail: fmt.Sprintf("Node %q: cores must be more than 0, got %v.", name, nc.Cores)})
		}
		mem, err := parseSize(nc.Memory)
		if err == nil && mem <= 0 {
			err = fmt.Errorf("memory must be more than 0 bytes, got %q", nc.Memory)
		}
		if err != nil {
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Path: at(attrMemory),
				Summary: "Invalid node memory", Detail: fmt.Sprintf("Node %q: %v.", name, err)})
		}
		n.memory = mem
		set.nodes = append(set.nodes, n)
	}
	path, d := statePath(c.StateFile, cfg, set.deployment)
	diags = append(diags, d...)
	set.statePath = path
	return set, diags
}

// statePath resolves state_file against the configuration's directory, or
// makes the default <data_dir>/backend-sim/<deployment>.json.
func statePath(set *string, cfg sdk.Config, deployment string) (string, sdk.Diagnostics) {
	var path string
	switch {
	case set != nil && *set == "":
		return "", sdk.Diagnostics{sdk.AttributeError(attrStateFile, "Invalid state file", "state_file must not be empty; leave it out for the default.")}
	case set != nil:
		path = *set
		// The plugin runs in the configuration's directory, so Abs alone
		// would do; ConfigDir also covers a plugin run in-process (tests).
		if !filepath.IsAbs(path) && cfg.ConfigDir != "" {
			path = filepath.Join(cfg.ConfigDir, path)
		}
	case cfg.DataDir == "":
		return "", sdk.Diagnostics{sdk.AttributeError(attrStateFile, "No state file",
			"The core gave no data directory, so state_file must name the file holding the simulated platform.")}
	case strings.ContainsAny(deployment, "/\\\x00") || deployment == "." || deployment == "..":
		return "", sdk.Diagnostics{sdk.AttributeError(attrStateFile, "No state file",
			fmt.Sprintf("The deployment name %q cannot name a file; set state_file.", deployment))}
	default:
		path = filepath.Join(cfg.DataDir, "backend-sim", deployment+".json")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", sdk.Diagnostics{sdk.AttributeError(attrStateFile, "Invalid state file path", err.Error())}
	}
	return abs, nil
}

// checkStateFile is the side-effect-free check of ValidateOnly: an existing
// state file must be readable, else the nearest existing ancestor of its
// directory must be a writable directory.
func checkStateFile(path string) sdk.Diagnostics {
	if _, err := os.Stat(path); err == nil {
		if _, err := readPlatform(path); err != nil {
			return sdk.Diagnostics{sdk.AttributeError(attrStateFile, "Cannot read the state file", err.Error())}
		}
		return nil
	}
	for dir := filepath.Dir(path); ; {
		fi, err := os.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return sdk.Diagnostics{sdk.AttributeError(attrStateFile, "Cannot create the state file", dir+" is not a directory.")}
			}
			if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
				return sdk.Diagnostics{sdk.AttributeError(attrStateFile, "Cannot create the state file",
					fmt.Sprintf("%s is not writable: %v.", dir, err))}
			}
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) {
			return sdk.Diagnostics{sdk.AttributeError(attrStateFile, "Cannot create the state file", err.Error())}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return sdk.Diagnostics{sdk.AttributeError(attrStateFile, "Cannot create the state file", "No ancestor of "+path+" exists.")}
		}
		dir = parent
	}
}

// parseRun parses a run time: a non-negative duration, or "forever".
func parseRun(s string) (time.Duration, bool, error) {
	if strings.EqualFold(strings.TrimSpace(s), forever) {
		return 0, true, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 0 {
		return 0, false, fmt.Errorf(`want a duration such as "90s" or "1h30m", or "forever"; got %q`, s)
	}
	return d, false, nil
}
