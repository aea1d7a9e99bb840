package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

var (
	_ backend.Backend = (*Backend)(nil)
	_ backend.Closer  = (*Backend)(nil)
)

// Backend runs services as local processes. It is safe for concurrent use
// and keeps nothing in memory but its configuration: the services' state is
// in files under the state directory, written by their supervisors.
type Backend struct {
	log *slog.Logger
	// exe is the binary Start runs as a service's supervisor: this one.
	exe string

	mu     sync.RWMutex
	s      *setup
	closed chan struct{}
	once   sync.Once
}

// setup is a configuration in force.
type setup struct {
	deployment string
	root       string // state_dir, shared by deployments
	dir        string // root/<deployment>
	volumes    string // volumes_dir/<deployment>, or empty
	images     map[string]string
	address    string
	node       string
	cgroups    cgroups
	maxLog     int64
	uid, gid   int    // the plugin's own
	exe        string // the binary that supervises services
}

// New returns an unconfigured back-end; exe is the binary to supervise
// services with, this program when empty.
func New(log *slog.Logger, exe string) *Backend {
	return &Backend{log: log, exe: exe, closed: make(chan struct{})}
}

func (b *Backend) Info() sdk.Info {
	return sdk.Info{Name: "localproc", Version: "0.1.0",
		Description: "runs services as process groups on this machine, without containers (development only)"}
}

func (b *Backend) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "allow_shared_host", Type: "bool", Required: true,
			Help: "must be true: services run as plain processes in this machine's network, PID, IPC and mount " +
				"namespaces and see its whole file system, against Zoe's container policy (development only)"},
		{Name: "images", Type: "map(string)", Required: true,
			Help: "the images services may name, each mapped to the absolute path of an executable on this machine"},
		{Name: "state_dir", Type: "string", Default: "",
			Help: "where services' records and output are kept; empty for <data_dir>/backend-localproc"},
		{Name: "volumes_dir", Type: "string", Default: "",
			Help: "where named volumes are made, a directory each; every directory above it must be open to the " +
				"services' users; empty: named volumes are refused"},
		{Name: "address", Type: "string", Default: "127.0.0.1", Help: "the address users reach published ports at"},
		{Name: "node_name", Type: "string", Default: "", Help: "the node's name; empty for the host name"},
		{Name: "cgroup_root", Type: "string", Default: "/sys/fs/cgroup",
			Help: "where the cgroup file systems are mounted (v2, or v1 with one directory per controller)"},
		{Name: "cgroup_parent", Type: "string", Default: "zoe-localproc",
			Help: "the cgroup, under cgroup_root, services' cgroups are made in"},
		{Name: "max_log_bytes", Type: "number", Default: 100 << 20,
			Help: "the most output kept per service; what follows is dropped"},
	}}
}

type config struct {
	AllowSharedHost bool              `json:"allow_shared_host"`
	Images          map[string]string `json:"images"`
	StateDir        string            `json:"state_dir"`
	VolumesDir      string            `json:"volumes_dir"`
	Address         string            `json:"address"`
	NodeName        string            `json:"node_name"`
	CgroupRoot      string            `json:"cgroup_root"`
	CgroupParent    string            `json:"cgroup_parent"`
	MaxLogBytes     int64             `json:"max_log_bytes"`
}

// safeName is what may name a file of the state directory: deployments,
// services, networks and volumes.
var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

func (b *Backend) Configure(_ context.Context, cfg sdk.Config) error {
	var c config
	if err := cfg.Decode(&c); err != nil {
		return fmt.Errorf("localproc configuration: %w: %w", err, sdk.ErrInvalidArgument)
	}
	var diags sdk.Diagnostics
	if !c.AllowSharedHost {
		diags = append(diags, sdk.AttributeError("allow_shared_host", "Isolation not acknowledged",
			"localproc runs services without containers, in this machine's namespaces; set allow_shared_host = true to accept it."))
	}
	for image, path := range c.Images {
		if err := checkExecutable(path); err != nil {
			diags = append(diags, sdk.AttributeError("images", "Invalid executable", fmt.Sprintf("image %q: %v", image, err)))
		}
	}
	if !safeName.MatchString(cfg.Deployment) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "Invalid deployment name",
			Detail: fmt.Sprintf("localproc names directories after the deployment: %q must be letters, digits, '.', '_' and '-'", cfg.Deployment)})
	}
	if c.MaxLogBytes <= 0 {
		diags = append(diags, sdk.AttributeError("max_log_bytes", "Invalid size", "max_log_bytes must be positive."))
	}
	if c.CgroupParent == "" || strings.Contains(c.CgroupParent, "..") {
		diags = append(diags, sdk.AttributeError("cgroup_parent", "Invalid cgroup", "cgroup_parent must be a relative path without '..'."))
	}
	root := c.StateDir
	if root == "" {
		root = filepath.Join(cfg.DataDir, "backend-localproc") // <kind>-<name>, as the SDK asks
	}
	if !filepath.IsAbs(root) {
		root = filepath.Join(cfg.ConfigDir, root)
	}
	if !filepath.IsAbs(root) {
		diags = append(diags, sdk.AttributeError("state_dir", "Relative state directory",
			"state_dir resolves to "+root+": give an absolute path."))
	}
	volumes := c.VolumesDir
	if volumes != "" && !filepath.IsAbs(volumes) {
		volumes = filepath.Join(cfg.ConfigDir, volumes)
	}
	if volumes != "" && !filepath.IsAbs(volumes) {
		diags = append(diags, sdk.AttributeError("volumes_dir", "Relative volumes directory",
			"volumes_dir resolves to "+volumes+": give an absolute path."))
	}
	node := c.NodeName
	if node == "" {
		h, err := os.Hostname()
		if err != nil {
			h = "localhost"
		}
		node = h
	}
	if err := diags.Err(); err != nil {
		return err
	}
	if cfg.ValidateOnly {
		return nil
	}
	s := &setup{deployment: cfg.Deployment, root: root, dir: filepath.Join(root, cfg.Deployment),
		images: c.Images, address: c.Address, node: node, maxLog: c.MaxLogBytes,
		cgroups: detectCgroups(c.CgroupRoot, c.CgroupParent), uid: os.Geteuid(), gid: os.Getegid()}
	for _, d := range []string{"services", "networks"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o700); err != nil {
			return sdk.Diagnostics{sdk.AttributeError("state_dir", "Cannot create the state directory", err.Error())}
		}
	}
	if volumes != "" {
		// Open to pass through, not to list: each volume is its user's.
		s.volumes = filepath.Join(volumes, cfg.Deployment)
		err := os.MkdirAll(s.volumes, 0o711)
		if err == nil {
			err = os.Chmod(s.volumes, 0o711)
		}
		if err != nil {
			return sdk.Diagnostics{sdk.AttributeError("volumes_dir", "Cannot create the volumes directory", err.Error())}
		}
	}
	if s.exe = b.exe; s.exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("localproc: finding its own binary: %w", err)
		}
		s.exe = exe
	}
	b.mu.Lock()
	b.s = s
	b.mu.Unlock()
	b.log.Info("configured", "state_dir", root, "deployment", s.deployment, "cgroups", s.cgroups.String())
	return nil
}

func checkExecutable(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%q is not an absolute path", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// setup returns the configuration in force; sdk.ErrUnavailable before
// Configure.
func (b *Backend) setup() (*setup, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.s == nil {
		return nil, fmt.Errorf("localproc is not configured: %w", sdk.ErrUnavailable)
	}
	return b.s, nil
}

// Capabilities: localproc does not pull; its node lists the images of the
// configuration.
func (b *Backend) Capabilities(context.Context) (backend.Capabilities, error) {
	if _, err := b.setup(); err != nil {
		return backend.Capabilities{}, err
	}
	return backend.Capabilities{PullsImages: false}, nil
}

// Nodes reports this machine. What is reserved is what the running services
// of every deployment in the state directory reserved.
func (b *Backend) Nodes(context.Context) ([]backend.Node, error) {
	s, err := b.setup()
	if err != nil {
		return nil, err
	}
	mem, err := memTotal()
	if err != nil {
		return nil, fmt.Errorf("localproc: reading /proc/meminfo: %w", err)
	}
	n := backend.Node{Name: s.node, Address: s.address, Cores: float64(runtime.NumCPU()), MemoryBytes: mem,
		State: backend.NodeReady}
	for image := range s.images {
		n.Images = append(n.Images, image)
	}
	slices.Sort(n.Images)
	deployments, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("localproc: reading %s: %w", s.root, err)
	}
	for _, d := range deployments {
		if !d.IsDir() {
			continue
		}
		svcs, err := listServices(filepath.Join(s.root, d.Name()))
		if err != nil {
			return nil, err
		}
		for _, sv := range svcs {
			if sv.status.State == backend.ServiceRunning {
				n.CoresReserved += sv.rec.Resources.Cores
				r := sv.rec.Resources
				n.MemoryReserved += cmp.Or(r.MemoryReservation, r.MemoryLimit)
			}
		}
	}
	return []backend.Node{n}, nil
}

func memTotal() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no MemTotal: %w", sc.Err())
}

// Close ends the back-end's goroutines (event and log streams). Services
// keep running: their supervisors are processes of their own.
func (b *Backend) Close(context.Context) error {
	b.once.Do(func() { close(b.closed) })
	return nil
}
