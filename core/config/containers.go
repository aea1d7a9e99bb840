package config

import (
	"fmt"
	"math"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/zoe-project/zoe/core/policy"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/backend"
)

// Containers is the containers block: the container policy.
type Containers struct {
	// RunAs is who the containers of owners the auth source gives no ids
	// for run as; default 65534:65534, or the daemon's own ids when it does
	// not run as root.
	RunAs                    policy.IDs
	AllowRoot                bool
	AllowPrivilegeEscalation bool
	KeepCapabilities         bool
	// Images are path.Match patterns; empty allows every image.
	Images []string
	// HostPaths are the host directories ZApps may mount, in file order.
	HostPaths []HostPath
	// PidsLimit is the most processes and threads each container may have
	// (pids_limit): default backend.DefaultPidsLimit, -1 for none.
	PidsLimit int64
}

// HostPath is one host_path block.
type HostPath struct {
	Path     string // absolute and clean
	ReadOnly bool
	Roles    []auth.Role // nil: every role
	// Range is the block's label, where problems found later (against a
	// plugin's directories) are reported.
	Range hcl.Range
}

// Policy is the container policy of the block; reserved are host paths of
// the daemon no ZApp may mount (see Reserved).
func (c Containers) Policy(reserved ...string) policy.Policy {
	p := policy.Policy{RunAs: &c.RunAs, AllowRoot: c.AllowRoot, AllowPrivilegeEscalation: c.AllowPrivilegeEscalation,
		KeepCapabilities: c.KeepCapabilities, Images: slices.Clone(c.Images), Reserved: reserved}
	for _, h := range c.HostPaths {
		p.HostPaths = append(p.HostPaths, policy.HostPath{Path: h.Path, ReadOnly: h.ReadOnly, Roles: h.Roles})
	}
	return p
}

// Reserved are the paths of the core that no ZApp may mount, nor a
// directory holding them: the data directory, the state database, the
// configuration file, the TLS files, the plugin and shop directories.
func (c *Config) Reserved() []policy.ReservedPath {
	out := []policy.ReservedPath{
		{Path: c.DataDir, Why: "Zoe's data directory (data_dir)"},
		{Path: c.File, Why: "Zoe's configuration file"},
	}
	if c.State.SQLite != "" {
		out = append(out, policy.ReservedPath{Path: c.State.SQLite, Why: "Zoe's state database"})
	}
	if c.TLS != nil {
		out = append(out, policy.ReservedPath{Path: c.TLS.CertFile, Why: "the API's TLS certificate"},
			policy.ReservedPath{Path: c.TLS.KeyFile, Why: "the API's TLS key"})
	}
	if c.PluginDir != "" {
		out = append(out, policy.ReservedPath{Path: c.PluginDir, Why: "Zoe's plugin directory (plugin_dir)"})
	}
	if c.ShopDir != "" {
		out = append(out, policy.ReservedPath{Path: c.ShopDir, Why: "the ZApp shop (shop_dir)"})
	}
	return out
}

// ReservedPaths are the paths of Reserved.
func (c *Config) ReservedPaths() []string {
	var out []string
	for _, r := range c.Reserved() {
		out = append(out, r.Path)
	}
	return out
}

// defaultContainers is the policy without a containers block. Owners the
// auth source gives no ids for run as nobody (65534:65534) when Zoe runs
// as root; a daemon run by an ordinary user cannot give their workspaces to
// nobody, so they run as that user.
func defaultContainers() Containers {
	return Containers{RunAs: defaultRunAs(os.Geteuid(), os.Getegid()), PidsLimit: backend.DefaultPidsLimit}
}

func defaultRunAs(euid, egid int) policy.IDs {
	if euid <= 0 || egid < 0 {
		return policy.IDs{UID: policy.Nobody, GID: policy.Nobody}
	}
	return policy.IDs{UID: uint32(euid), GID: uint32(egid)}
}

func (d *decoder) containers(b *hcl.Block) {
	content, diags := b.Body.Content(&hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "run_as"}, {Name: "allow_root"}, {Name: "allow_privilege_escalation"},
			{Name: "keep_capabilities"}, {Name: "images"}, {Name: "pids_limit"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "host_path", LabelNames: []string{"path"}}},
	})
	d.add(diags)
	a, c := content.Attributes, &d.cfg.Containers
	var runAsRange *hcl.Range
	if v, r, ok := d.str(a, "run_as"); ok {
		if ids, err := parseIDs(v); err != nil {
			d.errorf(r, "Invalid run_as", "%v.", err)
		} else {
			c.RunAs, runAsRange = ids, r.Ptr()
		}
	}
	for name, f := range map[string]*bool{"allow_root": &c.AllowRoot,
		"allow_privilege_escalation": &c.AllowPrivilegeEscalation, "keep_capabilities": &c.KeepCapabilities} {
		if v, _, ok := d.value(a, name, cty.Bool); ok {
			*f = v.True()
		}
	}
	if runAsRange != nil && c.RunAs.UID == 0 && !c.AllowRoot {
		d.errorf(*runAsRange, "Invalid run_as",
			"run_as names uid 0, root, but allow_root is false: containers never run as root unless allow_root = true.")
	} else if runAsRange != nil && c.RunAs.GID == 0 && !c.AllowRoot {
		d.errorf(*runAsRange, "Invalid run_as",
			"run_as names gid 0, root's group, but allow_root is false: containers never run in the root group unless allow_root = true.")
	}
	if v, r, ok := d.value(a, "pids_limit", cty.Number); ok {
		// 0 is refused rather than read as the default: Docker reads it
		// as no limit, and an administrator writing it may mean either.
		n, acc := v.AsBigFloat().Int64()
		if acc != big.Exact || (n < 1 && n != -1) {
			d.errorf(r, "Invalid pids_limit",
				"pids_limit must be a whole number of processes of at least 1 (default %d), or -1 for no limit.", backend.DefaultPidsLimit)
		} else {
			c.PidsLimit = n
		}
	}
	if v, r, ok := d.value(a, "images", cty.List(cty.String)); ok {
		for _, e := range v.AsValueSlice() {
			if e.IsNull() {
				d.errorf(r, "Invalid image pattern", "images must not hold null.")
				continue
			}
			pat := e.AsString()
			if _, err := path.Match(pat, ""); err != nil || pat == "" || strings.TrimSpace(pat) != pat {
				d.errorf(r, "Invalid image pattern",
					"%q is not an image pattern: write the image as ZApps name it, with * (any characters but /), ? and [a-z] classes, e.g. \"zoe/*\" or \"registry.example.org/lab/*\".", pat)
				continue
			}
			c.Images = append(c.Images, pat)
		}
	}
	seen := map[string]hcl.Range{}
	for _, hb := range content.Blocks {
		if h, ok := d.hostPath(hb); ok {
			if first, dup := seen[h.Path]; dup {
				d.errorf(h.Range, "Duplicate host_path block", "%s is already allowed at %s.", h.Path, first)
				continue
			}
			seen[h.Path] = h.Range
			if msg := writableOverlap(h, c.HostPaths); msg != "" {
				d.errorf(h.Range, "Overlapping host paths", "%s", msg)
				continue
			}
			c.HostPaths = append(c.HostPaths, h)
		}
	}
}

func (d *decoder) hostPath(b *hcl.Block) (HostPath, bool) {
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "read_only"}, {Name: "roles"},
	}})
	d.add(diags)
	if len(b.Labels) != 1 {
		return HostPath{}, false // reported by Content
	}
	h := HostPath{Path: b.Labels[0], ReadOnly: true, Range: b.LabelRanges[0]}
	ok := true
	switch {
	case !filepath.IsAbs(h.Path):
		d.errorf(h.Range, "Invalid host path", "host_path %q must be an absolute path.", h.Path)
		ok = false
	case policy.HasDotDot(h.Path):
		d.errorf(h.Range, "Invalid host path", "host_path %q has \"..\" elements; name the directory without them.", h.Path)
		ok = false
	default:
		h.Path = filepath.Clean(h.Path)
	}
	a := content.Attributes
	if v, _, vok := d.value(a, "read_only", cty.Bool); vok {
		h.ReadOnly = v.True()
	}
	if v, r, vok := d.value(a, "roles", cty.List(cty.String)); vok {
		h.Roles = []auth.Role{}
		for _, e := range v.AsValueSlice() {
			role, err := auth.ParseRole(stringOr(e))
			if err != nil {
				d.errorf(r, "Invalid role", "%s is not a role; use \"guest\", \"user\" or \"admin\".", strconv.Quote(stringOr(e)))
				ok = false
				continue
			}
			h.Roles = append(h.Roles, role)
		}
		if len(h.Roles) == 0 {
			d.errorf(r, "Invalid roles", "roles must name at least one role; remove the host_path block to allow it to nobody.")
			ok = false
		}
	}
	return h, ok
}

// writableOverlap says why h cannot be allowed beside the host paths
// before it: containers write in a read-write one, so no other may lie
// inside it (a container could replace it with a symbolic link) nor hold
// it; "" when h can be.
func writableOverlap(h HostPath, before []HostPath) string {
	for _, o := range before {
		if !policy.Overlaps(h.Path, o.Path) || h.ReadOnly && o.ReadOnly {
			continue
		}
		rw := o
		if !h.ReadOnly {
			rw = h
		}
		return fmt.Sprintf("%s overlaps host_path %q, allowed at %s; %s is read-write, so containers can write there "+
			"and could replace the other with a symbolic link. Allow directories apart from each other.", h.Path, o.Path,
			o.Range, rw.Path)
	}
	return ""
}

// checkHostPaths refuses host paths that overlap a reserved path; it runs
// once the whole file is decoded, as the data directory and the other
// files may be set after the containers block.
func (d *decoder) checkHostPaths() {
	reserved := slices.Concat(policy.Reserved(), d.cfg.Reserved())
	for _, h := range d.cfg.Containers.HostPaths {
		for _, r := range reserved {
			if msg := OverlapMessage(h.Path, r); msg != "" {
				d.errorf(h.Range, "Forbidden host path", "%s", msg)
				break
			}
		}
	}
}

// OverlapMessage says why host path p cannot be allowed because of r; ""
// when they do not overlap.
func OverlapMessage(p string, r policy.ReservedPath) string {
	switch {
	case p == r.Path:
		return fmt.Sprintf("%s is %s, which no ZApp may mount.", p, r.Why)
	case policy.Within(p, r.Path):
		return fmt.Sprintf("%s lies under %s, %s, which no ZApp may mount.", p, r.Path, r.Why)
	case policy.Within(r.Path, p):
		return fmt.Sprintf("%s holds %s, %s, which no ZApp may mount.", p, r.Path, r.Why)
	}
	return ""
}

func stringOr(v cty.Value) string {
	if v.IsNull() {
		return "null"
	}
	return v.AsString()
}

// parseIDs parses "uid:gid", two decimal numbers.
func parseIDs(s string) (policy.IDs, error) {
	u, g, ok := strings.Cut(s, ":")
	uid, uerr := strconv.ParseUint(u, 10, 32)
	gid, gerr := strconv.ParseUint(g, 10, 32)
	if !ok || uerr != nil || gerr != nil || uid == math.MaxUint32 || gid == math.MaxUint32 {
		return policy.IDs{}, fmt.Errorf("%q is not uid:gid, two numbers from 0 to %d such as \"65534:65534\"", s, uint32(math.MaxUint32-1))
	}
	return policy.IDs{UID: uint32(uid), GID: uint32(gid)}, nil
}
