package engine

import (
	"strings"
	"testing"
)

// TestCheckWorkspacePath: a workspace the plugin puts where no user's
// files belong is refused before any container mounts it.
func TestCheckWorkspacePath(t *testing.T) {
	for _, c := range []struct {
		path string
		want string // part of the error; "" for none
	}{
		{"", ""},
		{"/srv/zoe/workspaces/dev/alice", ""},
		{"/", "not a clean absolute path"},
		{"relative/alice", "not a clean absolute path"},
		{"/srv/zoe/../alice", "not a clean absolute path"},
		{"/srv/zoe/alice/", "not a clean absolute path"},
		{"/etc", "holds or lies in /etc"},
		{"/etc/zoe/alice", "holds or lies in /etc"},
		{"/var/run/docker.sock", "the Docker socket"},
		{"/var/run", "holds or lies in /var/run/docker.sock"},
		{"/proc/1/root", "holds or lies in /proc"},
		{"/root", "holds or lies in /root"},
		{"/root/zoe/.zoe/workspaces/dev/alice", ""},
	} {
		err := checkWorkspacePath(c.path)
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("checkWorkspacePath(%q) = %v, want an error with %q", c.path, err, c.want)
		}
	}
}
