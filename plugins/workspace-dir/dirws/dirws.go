// Package dirws is Zoe's "dir" workspace provider: each user's workspace is
// the host directory <base_path>/<deployment_path>/<username>, bind-mounted
// into their containers. Unlike the original Zoe, which left creation to
// Docker (and so got root-owned directories), it creates each workspace with
// mode 0700 and gives it to the user's uid/gid.
package dirws

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/workspace"
)

// Version is the version of this plugin.
const Version = "0.1.0"

const (
	// baseMode is for the base and deployment directories: every user must be
	// able to traverse them to reach their own workspace.
	baseMode fs.FileMode = 0o755
	// userMode keeps a workspace private to its owner.
	userMode fs.FileMode = 0o700
	// maxUsernameLen bounds usernames to what account systems accept.
	maxUsernameLen = 64

	attrBasePath       = "base_path"
	attrDeploymentPath = "deployment_path"
)

// Plugin is the "dir" workspace provider. The zero value is not usable; call
// New. It is safe for concurrent use.
type Plugin struct {
	log *slog.Logger

	mu sync.RWMutex
	// dir is <base_path>/<deployment_path>, absolute; empty until a
	// successful Configure.
	dir string
}

var _ workspace.Provider = (*Plugin)(nil)

// New returns an unconfigured provider that logs to log.
func New(log *slog.Logger) *Plugin {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Plugin{log: log}
}

// Info names the plugin.
func (p *Plugin) Info() sdk.Info {
	return sdk.Info{
		Name:        "dir",
		Version:     Version,
		Description: "Per-user workspace directories under <base_path>/<deployment_path>/<username> on the host.",
	}
}

// Schema describes the plugin's configuration block.
func (p *Plugin) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{
			Name:     attrBasePath,
			Type:     "string",
			Required: true,
			Help:     "Directory under which workspaces are created; relative paths resolve against the configuration file's directory. Created with mode 0755 when missing.",
		},
		{
			Name: attrDeploymentPath,
			Type: "string",
			// No Default: it is the deployment name, known only in Configure.
			Help: "Subdirectory of base_path for this deployment (a single path element); defaults to the deployment name.",
		},
	}}
}

// config is the decoded configuration block.
type config struct {
	BasePath string `json:"base_path"`
	// DeploymentPath is a pointer to tell "absent" (use the deployment name)
	// from an explicit empty string (an error).
	DeploymentPath *string `json:"deployment_path"`
}

// Configure checks the configuration and, unless cfg.ValidateOnly, creates
// <base_path>/<deployment_path>. A failed Configure leaves a previous
// configuration in place.
func (p *Plugin) Configure(ctx context.Context, cfg sdk.Config) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	var c config
	if err := cfg.Decode(&c); err != nil {
		return sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: "Invalid configuration block", Detail: err.Error()}}
	}
	base, diags := resolveBasePath(c.BasePath, cfg.ConfigDir)
	elem, d := resolveDeploymentPath(c.DeploymentPath, cfg.Deployment)
	diags = append(diags, d...)
	if diags.HasErrors() {
		return diags
	}
	dir := filepath.Join(base, elem)
	if cfg.ValidateOnly {
		return checkCreatable(dir).Err()
	}
	if d := ensureDirs(base, dir); d.HasErrors() {
		return d
	}
	p.mu.Lock()
	p.dir = dir
	p.mu.Unlock()
	p.log.Info("workspace directory ready", "path", dir)
	return nil
}

// resolveBasePath makes base_path absolute against the configuration file's
// directory. The core runs the plugin there, so Abs alone would do; joining
// ConfigDir also covers a plugin run in-process, e.g. by tests.
func resolveBasePath(s, configDir string) (string, sdk.Diagnostics) {
	if s == "" {
		return "", sdk.Diagnostics{sdk.AttributeError(attrBasePath, "Missing workspace base path",
			"base_path must name the directory under which user workspaces are created.")}
	}
	if strings.ContainsRune(s, 0) {
		return "", sdk.Diagnostics{sdk.AttributeError(attrBasePath, "Invalid workspace base path",
			fmt.Sprintf("base_path %q contains a NUL byte.", s))}
	}
	if !filepath.IsAbs(s) && configDir != "" {
		s = filepath.Join(configDir, s)
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		return "", sdk.Diagnostics{sdk.AttributeError(attrBasePath, "Cannot resolve workspace base path",
			fmt.Sprintf("Making %q absolute: %v.", s, err))}
	}
	return abs, nil
}

// resolveDeploymentPath returns the deployment's subdirectory name, which
// must be one path element so that deployments cannot escape base_path or
// share a directory by accident.
func resolveDeploymentPath(set *string, deployment string) (string, sdk.Diagnostics) {
	elem, what := deployment, fmt.Sprintf("deployment_path is not set, so it defaults to the deployment name %q", deployment)
	if set != nil {
		elem, what = *set, fmt.Sprintf("deployment_path %q", *set)
	}
	var problem string
	switch {
	case elem == "" && set == nil:
		problem = "the deployment has no name; set deployment_path"
	case elem == "":
		problem = "it must not be empty"
	case elem == "." || elem == "..":
		problem = "it must be a directory name, not . or .."
	case strings.ContainsAny(elem, "/\\\x00"):
		problem = "it must be a single directory name, without '/', '\\' or NUL"
	default:
		return elem, nil
	}
	return "", sdk.Diagnostics{sdk.AttributeError(attrDeploymentPath, "Invalid deployment path", what+", but "+problem+".")}
}

// ensureDirs creates base and dir (its child) and checks that workspaces can
// be created in dir.
func ensureDirs(base, dir string) sdk.Diagnostics {
	if err := os.MkdirAll(base, baseMode); err != nil {
		return sdk.Diagnostics{sdk.AttributeError(attrBasePath, "Cannot create workspace base directory",
			fmt.Sprintf("Creating %s: %v.", base, err))}
	}
	if err := os.Mkdir(dir, baseMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return sdk.Diagnostics{sdk.AttributeError(attrDeploymentPath, "Cannot create deployment workspace directory",
			fmt.Sprintf("Creating %s: %v.", dir, err))}
	}
	if d := checkNotShared(attrBasePath, base); d != nil {
		return d
	}
	if d := checkNotShared(attrDeploymentPath, dir); d != nil {
		return d
	}
	return checkWritableDir(attrDeploymentPath, dir)
}

// checkNotShared refuses a directory others may write, or that belongs to
// someone else than root or the plugin's user (who may chmod it): another
// user could create a victim's workspace there in advance (which Prepare
// would then hand to the victim, files and all) or move one away.
func checkNotShared(attr, path string) sdk.Diagnostics {
	fi, err := os.Stat(path)
	if err != nil {
		return nil // a missing directory is checkWritableDir's to report
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return sdk.Diagnostics{sdk.AttributeError(attr, "Workspace directory belongs to another user",
			fmt.Sprintf("%s belongs to uid %d, neither root nor the user the plugin runs as (uid %d): its owner could plant or move workspaces in it; chown it to one of them.",
				path, st.Uid, os.Geteuid()))}
	}
	if fi.Mode().Perm()&0o022 == 0 {
		return nil
	}
	return sdk.Diagnostics{sdk.AttributeError(attr, "Workspace directory is writable by others",
		fmt.Sprintf("%s has mode %04o: other users could plant or move workspaces in it; run chmod go-w %s.", path, fi.Mode().Perm(), path))}
}

// checkWritableDir reports when path is not a directory in which this
// process can create entries.
func checkWritableDir(attr, path string) sdk.Diagnostics {
	fi, err := os.Stat(path)
	if err != nil {
		return sdk.Diagnostics{sdk.AttributeError(attr, "Cannot access workspace directory",
			fmt.Sprintf("Inspecting %s: %v.", path, err))}
	}
	if !fi.IsDir() {
		return sdk.Diagnostics{sdk.AttributeError(attr, "Workspace path is not a directory",
			fmt.Sprintf("%s exists but is not a directory.", path))}
	}
	if err := unix.Access(path, unix.W_OK|unix.X_OK); err != nil {
		return sdk.Diagnostics{sdk.AttributeError(attr, "Workspace directory is not writable",
			fmt.Sprintf("This plugin cannot create workspaces in %s: %v.", path, err))}
	}
	return nil
}

// checkCreatable is the side-effect-free check of ValidateOnly: dir, or the
// nearest existing ancestor it would be created in, must be a writable
// directory.
func checkCreatable(dir string) sdk.Diagnostics {
	attr := attrDeploymentPath
	for p := dir; ; {
		_, err := os.Stat(p)
		if err == nil {
			return checkWritableDir(attr, p)
		}
		// ENOTDIR: an ancestor is a file; walk up to report it as such.
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return sdk.Diagnostics{sdk.AttributeError(attr, "Cannot access workspace directory",
				fmt.Sprintf("Inspecting %s: %v.", p, err))}
		}
		parent := filepath.Dir(p)
		if parent == p {
			return sdk.Diagnostics{sdk.AttributeError(attrBasePath, "Cannot access workspace directory",
				fmt.Sprintf("No ancestor of %s exists.", dir))}
		}
		p, attr = parent, attrBasePath
	}
}

// Prepare creates the user's workspace when missing, gives it to the user's
// uid/gid when they are given, and says how to mount it.
func (p *Plugin) Prepare(ctx context.Context, user workspace.User) (workspace.Mount, error) {
	if err := ctx.Err(); err != nil {
		return workspace.Mount{}, fmt.Errorf("prepare workspace: %w", err)
	}
	path, err := p.workspacePath(user.Username)
	if err != nil {
		return workspace.Mount{}, err
	}
	created, err := p.create(path)
	if err != nil {
		return workspace.Mount{}, err
	}
	if err := p.secure(path, user, created); err != nil {
		if created {
			// Do not leave a directory with the wrong owner behind: the next
			// Prepare creates it afresh.
			if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				p.log.Warn("cannot remove workspace after failed preparation", "path", path, "error", rerr)
			}
		}
		return workspace.Mount{}, err
	}
	return workspace.Mount{HostPath: path, MountPoint: workspace.MountPoint}, nil
}

// create makes the workspace directory and tells whether this call made it.
// Mkdir, not MkdirAll: a missing deployment directory is a fault, not
// something to paper over.
func (p *Plugin) create(path string) (bool, error) {
	err := os.Mkdir(path, userMode)
	switch {
	case err == nil:
		p.log.Info("created workspace", "path", path)
		return true, nil
	case errors.Is(err, fs.ErrExist):
		// Existing, or created concurrently; secure checks what it is.
		return false, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("create workspace %s: the deployment directory %s is missing: %w",
			path, filepath.Dir(path), sdk.ErrUnavailable)
	case errors.Is(err, fs.ErrPermission):
		return false, fmt.Errorf("create workspace: %w: %w", err, sdk.ErrPermissionDenied)
	default:
		return false, fmt.Errorf("create workspace: %w", err)
	}
}

// secure checks that path is a real directory and sets its owner. It works
// on a descriptor opened with O_NOFOLLOW so that a symlink swapped in after
// the check is never followed.
func (p *Plugin) secure(path string, user workspace.User, created bool) error {
	if err := checkRealDir(path); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	switch {
	case errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("workspace %s was replaced while being prepared: %w", path, sdk.ErrConflict)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("open workspace: %w: %w", err, sdk.ErrPermissionDenied)
	case err != nil:
		return fmt.Errorf("open workspace: %w", err)
	}
	defer f.Close()

	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("inspect workspace: %w", err)
	}
	// Mkdir's mode is filtered by the umask; an older workspace (one Docker
	// made for the original Zoe, say) may be open to others. Make it 0700.
	if created || fi.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(userMode); err != nil {
			return fmt.Errorf("set mode of workspace %s: %w", path, err)
		}
		if !created {
			p.log.Warn("workspace was open to others; its mode is now 0700", "path", path, "old_mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
		}
	}
	if user.UID == nil && user.GID == nil {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("inspect workspace %s: no owner information: %w", path, sdk.ErrUnsupported)
	}
	uid, gid := -1, -1 // -1 leaves that id unchanged
	if user.UID != nil && *user.UID != st.Uid {
		uid = int(*user.UID)
	}
	if user.GID != nil && *user.GID != st.Gid {
		gid = int(*user.GID)
	}
	if uid == -1 && gid == -1 {
		return nil
	}
	if err := f.Chown(uid, gid); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("give workspace %s to uid %s gid %s: %w: the plugin must run as root or as that uid to give workspaces their owners: %w",
				path, idString(user.UID), idString(user.GID), err, sdk.ErrPermissionDenied)
		}
		return fmt.Errorf("give workspace %s to its owner: %w", path, err)
	}
	p.log.Info("set workspace owner", "path", path, "uid", idString(user.UID), "gid", idString(user.GID))
	return nil
}

// checkRealDir refuses anything at path but a directory, symlinks above all:
// following one would hand a user's containers an arbitrary host directory.
func checkRealDir(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("inspect workspace: %w", err)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("workspace %s is a symbolic link; refusing to use it: %w", path, sdk.ErrConflict)
	case !fi.IsDir():
		return fmt.Errorf("workspace %s exists but is not a directory (%s): %w", path, fi.Mode().Type(), sdk.ErrConflict)
	}
	return nil
}

func idString(id *uint32) string {
	if id == nil {
		return "(unchanged)"
	}
	return fmt.Sprint(*id)
}

// Exists tells whether the user's workspace exists as a real directory.
func (p *Plugin) Exists(ctx context.Context, user workspace.User) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("check workspace: %w", err)
	}
	path, err := p.workspacePath(user.Username)
	if err != nil {
		return false, err
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("check workspace: %w", err)
	case !fi.IsDir():
		p.log.Warn("workspace path is not a directory", "path", path, "type", fi.Mode().Type().String())
		return false, nil
	}
	return true, nil
}

// Size sums the sizes of the regular files in the user's workspace. Symlinks
// are not followed, so a user cannot have other data counted (or read).
func (p *Plugin) Size(ctx context.Context, user workspace.User) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("measure workspace: %w", err)
	}
	root, err := p.workspacePath(user.Username)
	if err != nil {
		return 0, err
	}
	fi, err := os.Lstat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0, fmt.Errorf("workspace of %q does not exist: %w", user.Username, sdk.ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("measure workspace: %w", err)
	case !fi.IsDir():
		return 0, fmt.Errorf("workspace %s is not a directory: %w", root, sdk.ErrNotFound)
	}
	var total int64
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			// Entries the user removes while we walk are simply gone.
			if errors.Is(err, fs.ErrNotExist) && path != root {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		total += info.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measure workspace %s: %w", root, err)
	}
	return total, nil
}

// workspacePath returns the absolute path of username's workspace.
func (p *Plugin) workspacePath(username string) (string, error) {
	p.mu.RLock()
	dir := p.dir
	p.mu.RUnlock()
	if dir == "" {
		return "", fmt.Errorf("dir workspace provider is not configured: %w", sdk.ErrUnavailable)
	}
	if err := validateUsername(username); err != nil {
		return "", err
	}
	return filepath.Join(dir, username), nil
}

// validateUsername accepts only plausible account names, since the name
// becomes a path element under the deployment directory.
func validateUsername(name string) error {
	if problem := usernameProblem(name); problem != "" {
		return fmt.Errorf("username %q %s: %w", name, problem, sdk.ErrInvalidArgument)
	}
	return nil
}

func usernameProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case name == "." || name == "..":
		return "is a relative path element"
	case strings.ContainsAny(name, "/\\"):
		return "contains a path separator"
	case strings.ContainsRune(name, 0):
		return "contains a NUL byte"
	case len(name) > maxUsernameLen:
		return fmt.Sprintf("is longer than %d bytes", maxUsernameLen)
	case name[0] == '.' || name[0] == '-':
		return "starts with '.' or '-'"
	}
	for _, r := range name {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case r == '.', r == '_', r == '-', r == '@':
		default:
			return fmt.Sprintf("contains %q; only ASCII letters, digits, '.', '_', '-' and '@' are allowed", r)
		}
	}
	return ""
}
