package plugintest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/workspace"
)

// memWorkspace is a workspace double: it names a directory under base per
// user and creates none.
type memWorkspace struct {
	base string
	mu   sync.Mutex
	made map[string]bool
}

func (*memWorkspace) Info() sdk.Info                              { return sdk.Info{Name: "mem", Version: "0.0.1"} }
func (*memWorkspace) Schema() sdk.Schema                          { return sdk.Schema{} }
func (*memWorkspace) Configure(context.Context, sdk.Config) error { return nil }

func (w *memWorkspace) dir(u workspace.User) (string, error) {
	if n := u.Username; n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\\\x00") {
		return "", fmt.Errorf("username %q: %w", n, sdk.ErrInvalidArgument)
	}
	return filepath.Join(w.base, u.Username), nil
}

func (w *memWorkspace) Prepare(_ context.Context, u workspace.User) (workspace.Mount, error) {
	dir, err := w.dir(u)
	if err != nil {
		return workspace.Mount{}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.made == nil {
		w.made = map[string]bool{}
	}
	w.made[u.Username] = true
	return workspace.Mount{HostPath: dir, MountPoint: workspace.MountPoint}, nil
}

func (w *memWorkspace) Exists(_ context.Context, u workspace.User) (bool, error) {
	if _, err := w.dir(u); err != nil {
		return false, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.made[u.Username], nil
}

func (w *memWorkspace) Size(context.Context, workspace.User) (int64, error) {
	return 0, fmt.Errorf("no sizes here: %w", sdk.ErrUnsupported)
}

func TestWorkspaceConformanceOfMemoryPlugin(t *testing.T) {
	RunWorkspaceConformance(t, WorkspaceSuite{New: func(t *testing.T) workspace.Provider {
		return &memWorkspace{base: t.TempDir()}
	}})
}
