// Package config loads the Zoe daemon's configuration file, one HCL native
// syntax file. Every problem in the file is reported at once, as hcl
// diagnostics with file, line and column. Plugin blocks are only partly
// decoded here: the core reads the reserved attributes and keeps the rest of
// the block to decode it against the plugin's schema once the plugin runs.
package config

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/hclschema"
)

// Defaults of the configuration file.
const (
	DefaultListen         = "127.0.0.1:5001"
	DefaultDeploymentName = "prod"
	DefaultDataDir        = "/var/lib/zoe"
	DefaultLogLevel       = "info"
	DefaultPolicy         = "FIFO"
	DefaultPlacement      = "average"
	DefaultMaxCores       = 16
	DefaultMaxMemory      = 64 << 30
	DefaultStartTimeout   = 30 * time.Second
	// DefaultSQLiteFile is the state database, relative to the data directory.
	DefaultSQLiteFile = "zoe.db"
)

// Config is the decoded configuration file.
type Config struct {
	// File is the absolute path of the configuration file, Dir its directory;
	// relative paths of the core's attributes are resolved against Dir.
	File, Dir string

	Listen         string // host:port of the HTTP API
	DeploymentName string
	DataDir        string // absolute
	PluginDir      string // absolute, or "" for the directory of the executable
	LogLevel       string // trace, debug, info, warn or error
	ShopDir        string // absolute, or "" for none

	TLS       *TLS // nil when the API serves plain HTTP
	State     State
	Scheduler Scheduler
	Limits    Limits
	// ServiceLogs bounds the files the services' output is kept in.
	ServiceLogs ServiceLogs
	// Containers is the container policy.
	Containers Containers
	// HTTP bounds the API server's connections and deadlines.
	HTTP HTTP
	// Notifications is the e-mail notifier's; nil: no mail is sent.
	Notifications *Notifications

	// Plugins are the auth, workspace and backend blocks in file order.
	Plugins []*Plugin

	// Files holds the parsed sources by name, to render diagnostics.
	Files map[string]*hcl.File
}

// TLS is the certificate the HTTP API serves; both paths are absolute.
type TLS struct {
	CertFile, KeyFile string
}

// State says where the core keeps its state: exactly one field is set.
type State struct {
	SQLite   string // absolute path of the database file
	Postgres string // DSN; sensitive
}

// String describes the store without the Postgres DSN, which may hold a
// password, so that a State can be logged.
func (s State) String() string {
	if s.Postgres != "" {
		return "postgres (DSN redacted)"
	}
	return "sqlite " + s.SQLite
}

// Scheduler configures the scheduler.
type Scheduler struct {
	Policy    string // FIFO, SIZE or DYNSIZE
	Placement string // average, waterfill or random
	// Backfill lets smaller executions start ahead of a larger one that does
	// not fit yet, instead of keeping strict order.
	Backfill bool
}

// Limits bound what one service may request.
type Limits struct {
	MaxServiceCores  float64
	MaxServiceMemory int64 // bytes
}

// ServiceLogs is how the services' output is kept under
// <data_dir>/logs: one file per service, rotated when it reaches
// MaxFileSize, with MaxFiles rotated files kept.
type ServiceLogs struct {
	MaxFileSize int64
	MaxFiles    int
}

// Defaults of the service_logs block.
const (
	DefaultLogFileSize = 10 << 20
	DefaultLogFiles    = 3
)

// Plugin is one auth, workspace or backend block.
type Plugin struct {
	Kind sdk.Kind
	Name string // the block's label
	// Checksum is the expected SHA-256 of the plugin binary; nil for none.
	Checksum     []byte
	StartTimeout time.Duration
	// Binary overrides the plugin binary's path (absolute); "" for the
	// default found in the plugin directory.
	Binary string
	// Body is the rest of the block: the plugin's own configuration.
	Body     hcl.Body
	DefRange hcl.Range
}

// Load reads and decodes the configuration file at path. The Config is never
// nil, so that its Files can render the diagnostics; when they hold errors
// the Config is best-effort. After a syntax error nothing is decoded (a
// partial body only yields misleading follow-on errors), so Plugins is empty.
func Load(path string) (*Config, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		cfg := newConfig(path)
		return cfg, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Failed to read configuration file",
			Detail:   fmt.Sprintf("Cannot read %s: %v.", path, err),
		}}
	}
	return Parse(path, src)
}

// Parse decodes src as the configuration file filename; filename names the
// file in diagnostics, and relative paths resolve against its directory.
func Parse(filename string, src []byte) (*Config, hcl.Diagnostics) {
	cfg := newConfig(filename)
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, filename)
	cfg.Files = p.Files()
	if diags.HasErrors() || f == nil {
		return cfg, diags
	}
	d := &decoder{cfg: cfg, ctx: cfg.EvalContext(), diags: diags}
	d.root(f.Body)
	sortDiagnostics(d.diags)
	return cfg, d.diags
}

// sortDiagnostics puts diags in file order: they are collected in decoding
// order, which is not the order a user reads the file in.
func sortDiagnostics(diags hcl.Diagnostics) {
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		switch {
		case a.Subject == nil || b.Subject == nil:
			return cmp.Compare(boolInt(a.Subject != nil), boolInt(b.Subject != nil))
		case a.Subject.Filename != b.Subject.Filename:
			return strings.Compare(a.Subject.Filename, b.Subject.Filename)
		}
		return cmp.Compare(a.Subject.Start.Byte, b.Subject.Start.Byte)
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func newConfig(filename string) *Config {
	abs, err := filepath.Abs(filename)
	if err != nil {
		// Only when the working directory is gone; keep the name as given.
		abs = filepath.Clean(filename)
	}
	return &Config{
		File:           abs,
		Dir:            filepath.Dir(abs),
		Listen:         DefaultListen,
		DeploymentName: DefaultDeploymentName,
		DataDir:        DefaultDataDir,
		LogLevel:       DefaultLogLevel,
		State:          State{SQLite: filepath.Join(DefaultDataDir, DefaultSQLiteFile)},
		Scheduler:      Scheduler{Policy: DefaultPolicy, Placement: DefaultPlacement},
		Limits:         Limits{MaxServiceCores: DefaultMaxCores, MaxServiceMemory: DefaultMaxMemory},
		ServiceLogs:    ServiceLogs{MaxFileSize: DefaultLogFileSize, MaxFiles: DefaultLogFiles},
		Containers:     defaultContainers(),
		Files:          map[string]*hcl.File{},
	}
}

// Decode decodes the plugin's own configuration against its schema, as the
// JSON object handed to the plugin's Configure.
func (p *Plugin) Decode(s sdk.Schema, ctx *hcl.EvalContext) ([]byte, hcl.Diagnostics) {
	return hclschema.Decode(p.Body, s, ctx)
}

// Diagnostics places the plugin's own diagnostics at the attributes they are
// about, or at the block's header.
func (p *Plugin) Diagnostics(d sdk.Diagnostics) hcl.Diagnostics {
	return hclschema.Diagnostics(p.Body, p.DefRange, d)
}

// WriteDiagnostics renders diags with source snippets from files, without
// colour, wrapped at 100 columns.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) error {
	if err := hcl.NewDiagnosticTextWriter(w, files, 100, false).WriteDiagnostics(diags); err != nil {
		return fmt.Errorf("write diagnostics: %w", err)
	}
	return nil
}
