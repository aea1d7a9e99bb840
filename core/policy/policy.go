// Package policy is the container policy: which host paths a ZApp may
// mount, which images it may run, and as whom and with which rights its
// containers run. The administrator writes it in the configuration's
// containers block; the core applies it at submission and again just before
// every start, so that a back-end only ever gets what the policy allows.
//
// The configuration file is the one place of trust: an admin's own ZApps
// and the shop's entries get nothing beyond what the file grants (a
// host_path's roles is how the file grants more to admins), so that a
// stolen admin token cannot take the host.
package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/backend"
)

// Nobody is the uid and gid containers run as by default when the auth
// source gives none for their owner.
const Nobody = 65534

// IDs are a POSIX uid and gid.
type IDs struct{ UID, GID uint32 }

func (i IDs) String() string { return fmt.Sprintf("%d:%d", i.UID, i.GID) }

// HostPath is a host directory ZApps may mount, and what is under it.
type HostPath struct {
	Path     string // absolute and clean
	ReadOnly bool
	// Roles may mount it; nil means every role.
	Roles []auth.Role
}

func (h HostPath) mode() string {
	if h.ReadOnly {
		return "read-only"
	}
	return "read-write"
}

func (h HostPath) allows(r auth.Role) bool { return h.Roles == nil || slices.Contains(h.Roles, r) }

// mounts says whether h lets a ZApp mount the clean path p, read-only or
// not. A read-only host path lends anything under it, read-only. A
// read-write one is lent whole and nothing under it: containers write
// there, and one could plant a symbolic link (to /, to another user's
// workspace) that a later mount of a path under it would follow, as root,
// on the host.
func (h HostPath) mounts(p string, readOnly bool) bool {
	if h.ReadOnly {
		return readOnly && Within(p, h.Path)
	}
	return p == h.Path
}

// Policy is the container policy. Its zero value is the strictest: no host
// path, any image, containers of owners without ids run as Nobody, never as
// root, without privilege escalation or capabilities.
type Policy struct {
	// RunAs is who the containers of owners without ids run as; nil means
	// Nobody:Nobody.
	RunAs *IDs
	// AllowRoot lets containers of owners without ids keep the image's
	// user, and any container run as uid 0.
	AllowRoot                bool
	AllowPrivilegeEscalation bool
	KeepCapabilities         bool
	// Images are path.Match patterns matched against a service's image as
	// the ZApp writes it; empty allows every image.
	Images    []string
	HostPaths []HostPath
	// Reserved are host paths no volume may equal, lie under or contain,
	// whatever HostPaths say: see Reserved.
	Reserved []string
}

// ReservedPath is a host path no ZApp may mount, nor anything under it or
// a directory holding it, and why.
type ReservedPath struct{ Path, Why string }

// Reserved are the host paths no ZApp may ever mount: the Docker socket
// (whose user owns the host), the kernel's and devices' file systems, the
// host's configuration, root's home and the boot files. The daemon adds its
// own files to them: the data directory, the workspaces' base, ...
func Reserved() []ReservedPath {
	const sock = "the Docker socket: whoever can use it owns the host"
	return []ReservedPath{
		{"/var/run/docker.sock", sock}, {"/run/docker.sock", sock},
		{"/proc", "the kernel's process file system"}, {"/sys", "the kernel's file system"},
		{"/dev", "the host's devices"}, {"/etc", "the host's configuration"},
		{"/root", "root's home directory"}, {"/boot", "the host's boot files"},
	}
}

// Within tells whether the clean absolute path p is dir or lies under it.
func Within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// Overlaps tells whether one of the clean absolute paths a and b is the
// other or lies under it.
func Overlaps(a, b string) bool { return Within(a, b) || Within(b, a) }

// HasDotDot tells whether p has a ".." element.
func HasDotDot(p string) bool {
	return slices.Contains(strings.Split(p, "/"), "..")
}

// Check returns what the policy refuses in app for a submitter of role,
// with the paths of zapp.Problems; nil when it refuses nothing. also are
// reserved paths of this check only (the owner's workspace). Host paths
// are looked at on this machine: one that exists is resolved, symbolic
// links included, and must still lie under an allowed directory.
func (p *Policy) Check(app *zapp.App, role auth.Role, also ...string) zapp.Problems {
	var probs zapp.Problems
	for i, s := range app.Services {
		if msg := p.checkImage(s.Image); msg != "" {
			probs = append(probs, zapp.Problem{Path: fmt.Sprintf("services[%d].image", i), Message: msg})
		}
		for j, v := range s.Volumes {
			if msg := p.checkVolume(v, role, also); msg != "" {
				probs = append(probs, zapp.Problem{Path: fmt.Sprintf("services[%d].volumes[%d].path", i, j), Message: msg})
			}
		}
	}
	return probs
}

func (p *Policy) checkImage(image string) string {
	if len(p.Images) == 0 {
		return ""
	}
	for _, pat := range p.Images {
		if ok, _ := path.Match(pat, image); ok {
			return ""
		}
	}
	return fmt.Sprintf("%s is not an image the administrator allows (allowed: %s)", strconv.Quote(image), strings.Join(p.Images, ", "))
}

func (p *Policy) checkVolume(v zapp.Volume, role auth.Role, also []string) string {
	hp := v.Path
	switch {
	case !path.IsAbs(hp):
		return fmt.Sprintf("must be an absolute host path, got %q", hp)
	case HasDotDot(hp):
		return fmt.Sprintf("%q has \"..\" elements; name the directory without them", hp)
	case path.Clean(hp) != hp:
		return fmt.Sprintf("%q is not written clean; write %q", hp, path.Clean(hp))
	}
	var under, forRole, usable []HostPath // hp is under them
	for _, h := range p.HostPaths {
		if !Within(hp, h.Path) {
			continue
		}
		under = append(under, h)
		if !h.allows(role) {
			continue
		}
		forRole = append(forRole, h)
		if h.mounts(hp, v.ReadOnly) {
			usable = append(usable, h)
		}
	}
	switch {
	case len(under) == 0:
		return fmt.Sprintf("%s is not under a host path the administrator allows (%s)", hp, p.allowed(role))
	case len(forRole) == 0:
		return fmt.Sprintf("%s is under %s, which the administrator allows only for the roles %s", hp, under[0].Path,
			roleList(under[0].Roles))
	}
	if r := p.reserved(hp, also); r != "" {
		return fmt.Sprintf("%s overlaps %s, which no ZApp may mount", hp, r)
	}
	switch {
	case len(usable) == 0 && !v.ReadOnly && forRole[0].ReadOnly:
		return fmt.Sprintf("%s is under %s, which the administrator allows read-only; set read_only to true", hp,
			forRole[0].Path)
	case len(usable) == 0:
		return fmt.Sprintf("%s lies inside %s, which containers can write to: a read-write host path is mounted whole "+
			"(a container could plant a symbolic link under it); mount %s", hp, forRole[0].Path, forRole[0].Path)
	}
	real, err := Resolve(hp)
	if err != nil {
		return fmt.Sprintf("%s cannot be checked on the host: %v", hp, err)
	}
	// Where the path leads may not lie inside a read-write host path,
	// whatever allows it: containers write there. And it must be allowed
	// too, for the role and the mode; an allowed directory may itself be
	// a symbolic link.
	ok := false
	for _, h := range p.HostPaths {
		dir, err := Resolve(h.Path)
		if err != nil {
			continue
		}
		if !h.ReadOnly && real != dir && Within(real, dir) {
			return fmt.Sprintf("%s leads to %s through a symbolic link, inside %s, which containers can write to", hp, real, h.Path)
		}
		if h.allows(role) && (HostPath{Path: dir, ReadOnly: h.ReadOnly}).mounts(real, v.ReadOnly) {
			ok = true
		}
	}
	if !ok {
		return fmt.Sprintf("%s leads to %s through a symbolic link, which is not under a host path the administrator allows (%s)",
			hp, real, p.allowed(role))
	}
	if r := p.reserved(real, also); r != "" {
		return fmt.Sprintf("%s leads to %s through a symbolic link, which overlaps %s, which no ZApp may mount", hp, real, r)
	}
	return ""
}

// reserved returns the reserved path hp overlaps, "" for none.
func (p *Policy) reserved(hp string, also []string) string {
	for _, r := range Reserved() {
		if Overlaps(hp, r.Path) {
			return r.Path
		}
	}
	for _, r := range slices.Concat(p.Reserved, also) {
		if r != "" && Overlaps(hp, r) {
			return r
		}
	}
	return ""
}

// allowed lists the host paths role may mount, for a message.
func (p *Policy) allowed(role auth.Role) string {
	var list []string
	for _, h := range p.HostPaths {
		if h.allows(role) {
			list = append(list, h.Path+" "+h.mode())
		}
	}
	if len(list) == 0 {
		return "no host path is allowed"
	}
	return "allowed: " + strings.Join(list, ", ")
}

func roleList(roles []auth.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// Resolve follows the symbolic links of the clean absolute path p on this
// machine. Of a path that does not exist, the longest part that exists is
// resolved and the rest kept: a missing directory under a link to / would
// be created under /. A link that leads nowhere is an error, as a back-end
// could create its target.
func Resolve(p string) (string, error) {
	q, rest := p, ""
	for {
		r, err := filepath.EvalSymlinks(q)
		if err == nil {
			return filepath.Join(r, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if _, lerr := os.Lstat(q); lerr == nil {
			return "", fmt.Errorf("%s is a symbolic link to a path that does not exist", q)
		}
		if q == "/" {
			return "", err
		}
		rest = filepath.Join(filepath.Base(q), rest)
		q = filepath.Dir(q)
	}
}

// refused is an error of the sdk.ErrPermissionDenied category whose
// message is shown as it is, without the category's words.
type refused string

func (e refused) Error() string { return string(e) }
func (e refused) Unwrap() error { return sdk.ErrPermissionDenied }

// errRoot is why an owner whose uid is 0 cannot run containers when root
// is not allowed.
const errRoot = refused("the owner's uid is 0 (root) and the administrator does not allow containers to run as root (containers.allow_root)")

// errRootGroup is why an owner whose gid is 0 cannot run containers when
// root is not allowed: the root group owns much of a host's files.
const errRootGroup = refused("the owner's gid is 0 (the root group) and the administrator does not allow containers to run as root (containers.allow_root)")

// IDs is who an owner's containers run as, with uid and gid the owner's
// ids (nil when the auth source gives none): uid:gid (the run_as gid when
// the gid is unknown), so that what they write in their workspace is
// theirs; RunAs for owners without ids; nil, the image's user, for them
// when AllowRoot.
func (p *Policy) IDs(uid, gid *uint32) *IDs {
	runAs := IDs{Nobody, Nobody}
	if p.RunAs != nil {
		runAs = *p.RunAs
	}
	switch {
	case uid != nil:
		ids := IDs{*uid, runAs.GID}
		if gid != nil {
			ids.GID = *gid
		}
		return &ids
	case p.AllowRoot:
		return nil
	}
	return &runAs
}

// Run is the user an owner's containers run as ("uid:gid", or "" for the
// image's user), as IDs says, and the rights they run with. An owner whose
// uid or gid is 0 is refused unless AllowRoot.
func (p *Policy) Run(uid, gid *uint32) (string, backend.Security, error) {
	sec := backend.Security{AllowPrivilegeEscalation: p.AllowPrivilegeEscalation, KeepCapabilities: p.KeepCapabilities}
	ids := p.IDs(uid, gid)
	switch {
	case ids == nil:
		sec.AllowRoot = true
		return "", sec, nil
	case ids.UID == 0 && !p.AllowRoot:
		return "", backend.Security{}, errRoot
	case ids.GID == 0 && !p.AllowRoot:
		return "", backend.Security{}, errRootGroup
	case ids.UID == 0, ids.GID == 0:
		sec.AllowRoot = true
	}
	return ids.String(), sec, nil
}
