package config

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/zoe-project/zoe/sdk"
)

// decoder fills a Config and collects every diagnostic on the way.
type decoder struct {
	cfg   *Config
	ctx   *hcl.EvalContext
	diags hcl.Diagnostics
}

func rootSchema() *hcl.BodySchema {
	s := &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "listen"}, {Name: "deployment_name"}, {Name: "data_dir"},
			{Name: "plugin_dir"}, {Name: "log_level"}, {Name: "shop_dir"},
		},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "tls"}, {Type: "state"}, {Type: "scheduler"}, {Type: "limits"}, {Type: "service_logs"},
			{Type: "containers"},
			{Type: "http"}, {Type: "notifications"},
		},
	}
	for _, k := range sdk.Kinds() {
		s.Blocks = append(s.Blocks, hcl.BlockHeaderSchema{Type: string(k), LabelNames: []string{"name"}})
	}
	return s
}

func pluginSchema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "checksum"}, {Name: "start_timeout"}, {Name: "binary"},
	}}
}

func (d *decoder) add(diags hcl.Diagnostics) { d.diags = append(d.diags, diags...) }

func (d *decoder) errorf(r hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  r.Ptr(),
	})
}

func (d *decoder) root(body hcl.Body) {
	content, diags := body.Content(rootSchema())
	d.add(diags)
	c, a := d.cfg, content.Attributes

	if v, r, ok := d.str(a, "listen"); ok {
		if err := checkListen(v); err != nil {
			d.errorf(r, "Invalid listen address", "%v.", err)
		} else {
			c.Listen = v
		}
	}
	if v, r, ok := d.str(a, "deployment_name"); ok {
		if !validName(v, 32) {
			d.errorf(r, "Invalid deployment name",
				"%q: the name ends up in DNS names, so it must be at most 32 lower-case letters, digits and '-', start with a letter and not end with '-'.", v)
		} else {
			c.DeploymentName = v
		}
	}
	if v, r, ok := d.str(a, "data_dir"); ok {
		if v == "" {
			d.errorf(r, "Invalid data directory", "data_dir must not be empty.")
		} else {
			c.DataDir = c.resolve(v)
		}
	}
	if v, _, ok := d.str(a, "plugin_dir"); ok && v != "" {
		c.PluginDir = c.resolve(v)
	}
	if v, r, ok := d.str(a, "log_level"); ok && d.oneOf(r, "log level", v, "trace", "debug", "info", "warn", "error") {
		c.LogLevel = v
	}
	if v, _, ok := d.str(a, "shop_dir"); ok && v != "" {
		c.ShopDir = c.resolve(v)
	}

	// The sqlite default depends on data_dir, decoded above.
	c.State.SQLite = filepath.Join(c.DataDir, DefaultSQLiteFile)
	seen := map[string]*hcl.Block{}
	names := map[sdk.Kind]map[string]*hcl.Block{}
	for _, b := range content.Blocks {
		kind := sdk.Kind(b.Type)
		if slices.Contains(sdk.Kinds(), kind) {
			d.plugin(b, seen, names)
			continue
		}
		if first := seen[b.Type]; first != nil {
			d.errorf(b.DefRange, fmt.Sprintf("Duplicate %s block", b.Type),
				"Only one %s block is allowed; the first one is at %s.", b.Type, first.DefRange)
			continue
		}
		seen[b.Type] = b
		switch b.Type {
		case "tls":
			d.tls(b)
		case "state":
			d.state(b)
		case "scheduler":
			d.scheduler(b)
		case "limits":
			d.limits(b)
		case "service_logs":
			d.serviceLogs(b)
		case "containers":
			d.containers(b)
		case "http":
			d.http(b)
		case "notifications":
			d.notifications(b)
		}
	}
	d.checkHostPaths()
}

func (d *decoder) tls(b *hcl.Block) {
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "cert_file", Required: true}, {Name: "key_file", Required: true},
	}})
	d.add(diags)
	t := &TLS{}
	t.CertFile, _ = d.path(content.Attributes, "cert_file")
	t.KeyFile, _ = d.path(content.Attributes, "key_file")
	d.cfg.TLS = t
}

func (d *decoder) state(b *hcl.Block) {
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "sqlite"}, {Name: "postgres"},
	}})
	d.add(diags)
	a := content.Attributes
	// Evaluate both before judging, so errors inside either are reported too.
	sqlite, sqliteRange, sqliteOK := d.str(a, "sqlite")
	pg, pgRange, pgOK := d.str(a, "postgres")
	switch {
	case a["sqlite"] != nil && a["postgres"] != nil:
		second := a["postgres"]
		if second.Range.Start.Byte < a["sqlite"].Range.Start.Byte {
			second = a["sqlite"]
		}
		d.errorf(second.NameRange, "Conflicting state stores",
			"The state block sets both sqlite and postgres; set exactly one of them.")
	case a["sqlite"] == nil && a["postgres"] == nil:
		d.errorf(b.DefRange, "Missing state store",
			"The state block must set either sqlite (a database file) or postgres (a DSN).")
	case sqliteOK && sqlite == "":
		d.errorf(sqliteRange, "Invalid state store", "sqlite must name a file.")
	case sqliteOK:
		if !filepath.IsAbs(sqlite) {
			sqlite = filepath.Join(d.cfg.DataDir, sqlite)
		}
		d.cfg.State = State{SQLite: filepath.Clean(sqlite)}
	case pgOK && pg == "":
		d.errorf(pgRange, "Invalid state store", "postgres must be a DSN.")
	case pgOK:
		d.cfg.State = State{Postgres: pg}
	}
}

func (d *decoder) scheduler(b *hcl.Block) {
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "policy"}, {Name: "placement"}, {Name: "backfill"},
	}})
	d.add(diags)
	a, s := content.Attributes, &d.cfg.Scheduler
	if v, r, ok := d.str(a, "policy"); ok && d.oneOf(r, "scheduler policy", v, "FIFO", "SIZE", "DYNSIZE") {
		s.Policy = v
	}
	if v, r, ok := d.str(a, "placement"); ok && d.oneOf(r, "placement", v, "average", "waterfill", "random") {
		s.Placement = v
	}
	if v, _, ok := d.value(a, "backfill", cty.Bool); ok {
		s.Backfill = v.True()
	}
}

func (d *decoder) limits(b *hcl.Block) {
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "max_service_cores"}, {Name: "max_service_memory"},
	}})
	d.add(diags)
	a, l := content.Attributes, &d.cfg.Limits
	if v, r, ok := d.value(a, "max_service_cores", cty.Number); ok {
		f, _ := v.AsBigFloat().Float64()
		if f <= 0 || math.IsInf(f, 0) {
			d.errorf(r, "Invalid core limit", "max_service_cores must be a number greater than 0.")
		} else {
			l.MaxServiceCores = f
		}
	}
	if n, ok := d.size(a, "max_service_memory"); ok {
		l.MaxServiceMemory = n
	}
}

func (d *decoder) serviceLogs(b *hcl.Block) {
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "max_file_size"}, {Name: "max_files"},
	}})
	d.add(diags)
	a, l := content.Attributes, &d.cfg.ServiceLogs
	if n, ok := d.size(a, "max_file_size"); ok {
		if n < 4096 {
			d.errorf(a["max_file_size"].Expr.Range(), "Invalid log file size", "max_file_size must be at least 4 KiB.")
		} else {
			l.MaxFileSize = n
		}
	}
	if v, r, ok := d.value(a, "max_files", cty.Number); ok {
		n, acc := v.AsBigFloat().Int64()
		if acc != big.Exact || n < 0 || n > 1000 {
			d.errorf(r, "Invalid number of log files", "max_files must be a whole number from 0 to 1000.")
		} else {
			l.MaxFiles = int(n)
		}
	}
}

// size decodes a size given as a string with a unit or as a number of bytes.
func (d *decoder) size(a hcl.Attributes, name string) (int64, bool) {
	v, r, ok := d.value(a, name, cty.DynamicPseudoType)
	if !ok {
		return 0, false
	}
	var n int64
	var err error
	if v.Type() == cty.Number {
		bf := v.AsBigFloat()
		i, acc := bf.Int64()
		if !bf.IsInt() || acc != 0 {
			err = fmt.Errorf("%s bytes is not a whole number of bytes that fits in 64 bits", bf.Text('g', -1))
		}
		n = i
	} else if s, cerr := convert.Convert(v, cty.String); cerr != nil {
		err = fmt.Errorf("a size must be a string such as \"64GiB\" or a number of bytes")
	} else {
		n, err = ParseSize(s.AsString())
	}
	if err == nil && n <= 0 {
		err = fmt.Errorf("%s must be greater than 0", name)
	}
	if err != nil {
		d.errorf(r, "Invalid size", "%v.", err)
		return 0, false
	}
	return n, true
}

func (d *decoder) plugin(b *hcl.Block, seen map[string]*hcl.Block, names map[sdk.Kind]map[string]*hcl.Block) {
	if len(b.Labels) != 1 {
		return // already reported by Content
	}
	kind, name := sdk.Kind(b.Type), b.Labels[0]
	if !validName(name, 64) {
		d.errorf(b.LabelRanges[0], "Invalid plugin name",
			"%q: a plugin name is at most 64 lower-case letters, digits and '-', starting with a letter and not ending with '-'.", name)
	}
	switch first := seen[b.Type]; {
	case kind != sdk.KindAuth && first != nil:
		d.errorf(b.DefRange, fmt.Sprintf("Duplicate %s block", b.Type),
			"Only one %s block is allowed; the first one is at %s.", b.Type, first.DefRange)
	case names[kind][name] != nil:
		d.errorf(b.LabelRanges[0], "Duplicate plugin name",
			"There is already a %s block named %q at %s.", b.Type, name, names[kind][name].DefRange)
	default:
		if first == nil {
			seen[b.Type] = b
		}
		if names[kind] == nil {
			names[kind] = map[string]*hcl.Block{}
		}
		names[kind][name] = b
	}

	content, remain, diags := b.Body.PartialContent(pluginSchema())
	d.add(diags)
	p := &Plugin{Kind: kind, Name: name, StartTimeout: DefaultStartTimeout, Body: remain, DefRange: b.DefRange}
	a := content.Attributes
	if v, r, ok := d.str(a, "checksum"); ok {
		sum, err := parseChecksum(v)
		if err != nil {
			d.errorf(r, "Invalid checksum", "%v.", err)
		}
		p.Checksum = sum
	}
	if v, r, ok := d.str(a, "start_timeout"); ok {
		t, err := time.ParseDuration(v)
		switch {
		case err != nil:
			d.errorf(r, "Invalid duration", "start_timeout %q is not a duration such as \"30s\" or \"1m30s\".", v)
		case t <= 0:
			d.errorf(r, "Invalid duration", "start_timeout must be greater than 0.")
		default:
			p.StartTimeout = t
		}
	}
	if v, ok := d.path(a, "binary"); ok {
		p.Binary = v
	}
	d.cfg.Plugins = append(d.cfg.Plugins, p)
}

func parseChecksum(s string) ([]byte, error) {
	hexSum, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return nil, fmt.Errorf("%q does not start with \"sha256:\"; the format is sha256:<64 hex digits>", s)
	}
	sum, err := hex.DecodeString(hexSum)
	if err != nil || len(sum) != 32 {
		return nil, fmt.Errorf("%q is not 64 hex digits after \"sha256:\"", s)
	}
	return sum, nil
}

// value evaluates attribute name, if present and not null, converted to ty.
// It returns the range of the value for follow-up diagnostics.
func (d *decoder) value(a hcl.Attributes, name string, ty cty.Type) (cty.Value, hcl.Range, bool) {
	attr := a[name]
	if attr == nil {
		return cty.NilVal, hcl.Range{}, false
	}
	r := attr.Expr.Range()
	v, diags := attr.Expr.Value(d.ctx)
	d.add(diags)
	if diags.HasErrors() || v.IsNull() {
		return cty.NilVal, r, false
	}
	v, err := convert.Convert(v, ty)
	if err != nil {
		d.diags = append(d.diags, &hcl.Diagnostic{
			Severity:    hcl.DiagError,
			Summary:     "Incorrect attribute value type",
			Detail:      fmt.Sprintf("Inappropriate value for attribute %q: %v.", name, err),
			Subject:     r.Ptr(),
			Expression:  attr.Expr,
			EvalContext: d.ctx,
		})
		return cty.NilVal, r, false
	}
	return v, r, true
}

func (d *decoder) str(a hcl.Attributes, name string) (string, hcl.Range, bool) {
	v, r, ok := d.value(a, name, cty.String)
	if !ok {
		return "", r, false
	}
	return v.AsString(), r, true
}

// path decodes a non-empty file path, resolved against the file's directory.
func (d *decoder) path(a hcl.Attributes, name string) (string, bool) {
	v, r, ok := d.str(a, name)
	if ok && v == "" {
		d.errorf(r, "Invalid path", "%s must not be empty.", name)
		return "", false
	}
	if !ok {
		return "", false
	}
	return d.cfg.resolve(v), true
}

// oneOf reports v at r unless it is one of allowed; case is significant, but
// a value differing only in case gets a suggestion.
func (d *decoder) oneOf(r hcl.Range, what, v string, allowed ...string) bool {
	if slices.Contains(allowed, v) {
		return true
	}
	quoted := make([]string, len(allowed))
	for i, x := range allowed {
		quoted[i] = strconv.Quote(x)
	}
	detail := fmt.Sprintf("%q is not a valid %s; use one of %s.", v, what, strings.Join(quoted, ", "))
	for _, x := range allowed {
		if strings.EqualFold(x, v) {
			detail += fmt.Sprintf(" Did you mean %q?", x)
		}
	}
	d.errorf(r, "Invalid "+what, "%s", detail)
	return false
}

func (c *Config) resolve(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(c.Dir, p)
}

func checkListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", s, err)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("%q: invalid host %q", s, host)
	}
	// Port 0: the system picks a free port, which the daemon's "zoe is
	// ready" line gives (tests run daemons so, without a race for ports).
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be a number from 1 to 65535 (or 0 for one the system picks)", s)
	}
	return nil
}

// validName tells whether s can be a DNS label
// of at most maxLen characters that starts with a letter.
func validName(s string, maxLen int) bool {
	if len(s) == 0 || len(s) > maxLen || s[0] < 'a' || s[0] > 'z' || strings.HasSuffix(s, "-") {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}
