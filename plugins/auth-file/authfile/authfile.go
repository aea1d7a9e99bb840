// Package authfile is Zoe's `file` auth plugin: users, passwords and roles
// come from a text file (see package userfile for its format), re-read when
// it changes so that users can be added without restarting Zoe.
package authfile

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/zoe-project/zoe/plugins/auth-file/userfile"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

const (
	// Name is the plugin's name in Zoe's configuration.
	Name = "file"
	// Version is the plugin's version.
	Version = "0.1.0"
	// AttrUsersFile is the configuration attribute naming the users file.
	AttrUsersFile = "users_file"
)

var _ auth.Authenticator = (*Plugin)(nil)

// Plugin authenticates the users of a users file. It is safe for concurrent
// use.
type Plugin struct {
	log *slog.Logger

	mu sync.Mutex
	// path is the absolute path of the users file; "" until Configure.
	path string
	// users are those of the last version of the file that could be read.
	users *userfile.Users
	// seen is the stat of the version of the file last tried, good or not, so
	// that a broken version is tried and logged once; nil when the file could
	// not be stat'ed.
	seen os.FileInfo
	// gen grows at each successful read of the file (Generation).
	gen uint64
}

// New returns an unconfigured plugin that logs to log.
func New(log *slog.Logger) *Plugin {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Plugin{log: log}
}

// Info names the plugin.
func (p *Plugin) Info() sdk.Info {
	return sdk.Info{
		Name:        Name,
		Version:     Version,
		Description: "Users, passwords (bcrypt or plain; '!' first: disabled) and roles from a username,password,role[,uid,gid] text file",
	}
}

// Schema describes the plugin's configuration block.
func (p *Plugin) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{{
		Name:     AttrUsersFile,
		Type:     "string",
		Required: true,
		Help: "Path of the users file, relative to the configuration file's directory: one " +
			"username,password,role[,uid,gid] line per user, role guest, user or admin, password " +
			"a bcrypt hash or plain text; a password starting with '!' marks a disabled user. It must be " +
			"readable by its owner only (chmod 600) and is re-read when it changes; zoe users-file edits it.",
	}}}
}

type config struct {
	UsersFile string `json:"users_file"`
}

// Configure loads the users file the configuration names. With
// cfg.ValidateOnly it only checks it. On failure the previous configuration,
// if any, stays in force.
func (p *Plugin) Configure(_ context.Context, cfg sdk.Config) error {
	var c config
	if err := cfg.Decode(&c); err != nil {
		return sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: "Invalid configuration of the file auth plugin", Detail: err.Error()}}
	}
	if c.UsersFile == "" {
		return sdk.Diagnostics{sdk.AttributeError(AttrUsersFile, "Missing users file",
			"users_file must name the file of users: one username,password,role line per user")}
	}
	path := c.UsersFile
	// The plugin runs in the configuration's directory, so Abs alone would
	// do; ConfigDir also covers a plugin run in-process, e.g. by tests.
	if !filepath.IsAbs(path) && cfg.ConfigDir != "" {
		path = filepath.Join(cfg.ConfigDir, path)
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return sdk.Diagnostics{sdk.AttributeError(AttrUsersFile, "Invalid users file path", err.Error())}
	}

	// Stat before reading: if the file changes in between, the next
	// Authenticate sees a new stat and reads it again.
	fi, statErr := os.Stat(path)
	users, err := userfile.Load(path)
	if err != nil {
		// userfile's errors list every FILE:LINE problem and quote no secret.
		return sdk.Diagnostics{sdk.AttributeError(AttrUsersFile, "Cannot use users file "+path, err.Error())}
	}
	if statErr != nil {
		fi = nil
	}
	if users.Len() == 0 {
		p.log.Warn("users file has no users: nobody can log in", "path", path)
	}
	if cfg.ValidateOnly {
		return nil
	}

	p.mu.Lock()
	p.path, p.users, p.seen = path, users, fi
	p.gen++
	p.mu.Unlock()
	p.log.Info("loaded users file", "path", path, "users", users.Len(), "disabled", disabled(users))
	return nil
}

// Authenticate checks username and password against the users file, first
// re-reading it if it changed.
func (p *Plugin) Authenticate(ctx context.Context, username, password string) (auth.Identity, error) {
	if err := ctx.Err(); err != nil {
		return auth.Identity{}, fmt.Errorf("authenticate: %w", err)
	}
	users, _, err := p.current()
	if err != nil {
		return auth.Identity{}, err
	}
	// Checked again just before bcrypt, which cannot be stopped once
	// started: a caller that gave up while the file was read (or while
	// the call waited in line) costs no hashing.
	if err := ctx.Err(); err != nil {
		return auth.Identity{}, fmt.Errorf("authenticate: %w", err)
	}
	// Outside the lock: bcrypt takes long and Users is immutable.
	e, ok := users.Check(username, password)
	if !ok {
		// One message for a wrong password and an unknown user, on purpose.
		return auth.Identity{}, fmt.Errorf("wrong username or password: %w", sdk.ErrInvalidCredentials)
	}
	return e.Identity(), nil
}

// Lookup returns the identity of username as the users file has it now,
// first re-reading the file if it changed; sdk.ErrNotFound when the file no
// longer has the user or has it disabled (a password field starting with
// '!').
func (p *Plugin) Lookup(ctx context.Context, username string) (auth.Identity, error) {
	if err := ctx.Err(); err != nil {
		return auth.Identity{}, fmt.Errorf("lookup: %w", err)
	}
	users, _, err := p.current()
	if err != nil {
		return auth.Identity{}, err
	}
	e, ok := users.Lookup(username)
	if !ok {
		return auth.Identity{}, fmt.Errorf("user %q is not in the users file: %w", username, sdk.ErrNotFound)
	}
	if e.Disabled {
		// As the contract asks: the core revokes the user's tokens.
		return auth.Identity{}, fmt.Errorf("user %q is disabled in the users file: %w", username, sdk.ErrNotFound)
	}
	return e.Identity(), nil
}

// Generation grows each time the users file is read successfully; asking
// it looks at the file (one stat) and re-reads it if it changed.
func (p *Plugin) Generation(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("generation: %w", err)
	}
	_, gen, err := p.current()
	return gen, err
}

// current returns the users of the file, re-reading it when its stat (inode,
// size, mtime, mode) changed: cheap, and catches both in-place writes and
// atomic renames. When the new version cannot be used, the last good users
// stay and the problem is logged once per version.
// The generation returned is that of the users returned.
func (p *Plugin) current() (*userfile.Users, uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.users == nil {
		return nil, 0, fmt.Errorf("file auth plugin is not configured: %w", sdk.ErrUnavailable)
	}

	fi, err := os.Stat(p.path)
	if err != nil {
		if p.seen != nil {
			p.log.Error("cannot stat users file; keeping the users last read from it",
				"path", p.path, "users", p.users.Len(), "error", err)
		}
		p.seen = nil
		return p.users, p.gen, nil
	}
	if p.seen != nil && sameVersion(p.seen, fi) {
		return p.users, p.gen, nil
	}
	if fi.Size() == 0 && p.users.Len() > 0 {
		// An editor rewriting the file in place truncates it first: read
		// at that instant, every user would be gone and lose their
		// tokens. The users last read stay until the file has content
		// (its next stat differs); to remove every user, leave a comment
		// line.
		if p.seen == nil || p.seen.Size() != 0 {
			p.log.Warn("users file is empty; keeping the users last read from it (being written? to remove every user, leave a comment line)",
				"path", p.path, "users", p.users.Len())
		}
		p.seen = fi
		return p.users, p.gen, nil
	}
	p.seen = fi
	users, err := userfile.Load(p.path)
	if err != nil {
		p.log.Error("cannot re-read changed users file; keeping the users last read from it",
			"path", p.path, "users", p.users.Len(), "error", err)
		return p.users, p.gen, nil
	}
	p.users = users
	p.gen++
	p.log.Info("re-read changed users file", "path", p.path, "users", users.Len(), "disabled", disabled(users))
	return p.users, p.gen, nil
}

// sameVersion tells whether two stats are of the same version of a file.
// Mode counts so that fixing a file's permissions makes it read again.
func sameVersion(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && a.Mode() == b.Mode()
}

// disabled counts the disabled users, for the log: a plain-text password of
// an older file that starts with '!' now disables its user, and this count
// is where that shows.
func disabled(u *userfile.Users) int {
	n := 0
	for _, e := range u.Entries() {
		if e.Disabled {
			n++
		}
	}
	return n
}
