package daemon

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/zoe-project/zoe/core/config"
	"github.com/zoe-project/zoe/core/policy"
	"github.com/zoe-project/zoe/sdk"
)

// pluginPaths are the host paths of plugins that no ZApp may mount: the
// directory of the plugin binaries when plugin_dir is not set (exe's), the
// Docker sockets the back-end uses (DOCKER_HOST, the address of a Docker
// host block), the workspaces' base_path and the auth plugins'
// users_file, the attributes of the bundled plugins. The core cannot know
// another plugin's files; the administrator keeps them out of the
// host_path blocks.
func pluginPaths(cfg *config.Config, plugins *Plugins, exe string) []policy.ReservedPath {
	var out []policy.ReservedPath
	if cfg.PluginDir == "" && filepath.IsAbs(exe) {
		out = append(out, policy.ReservedPath{Path: filepath.Dir(filepath.Clean(exe)),
			Why: "the directory of Zoe's binary and plugins"})
	}
	socket := func(addr, why string) {
		if p, ok := strings.CutPrefix(addr, "unix://"); ok && filepath.IsAbs(p) {
			out = append(out, policy.ReservedPath{Path: filepath.Clean(p), Why: why})
		}
	}
	socket(os.Getenv("DOCKER_HOST"), "the Docker socket (DOCKER_HOST): whoever can use it owns the host")
	for _, pb := range cfg.Plugins {
		var attrs map[string]any
		if js := plugins.Configs[pb]; js == nil || json.Unmarshal(js, &attrs) != nil {
			continue
		}
		if hosts, ok := attrs["host"].(map[string]any); ok && pb.Kind == sdk.KindBackend {
			for _, name := range slices.Sorted(maps.Keys(hosts)) {
				if h, ok := hosts[name].(map[string]any); ok {
					addr, _ := h["address"].(string)
					socket(addr, fmt.Sprintf("the Docker socket of host %q of backend %q: whoever can use it owns the host", name, pb.Name))
				}
			}
		}
		attr := map[sdk.Kind]string{sdk.KindWorkspace: "base_path", sdk.KindAuth: "users_file"}[pb.Kind]
		p, ok := attrs[attr].(string)
		if attr == "" || !ok || p == "" {
			continue
		}
		if !filepath.IsAbs(p) {
			// Plugins run in the configuration file's directory.
			p = filepath.Join(cfg.Dir, p)
		}
		what := map[sdk.Kind]string{sdk.KindWorkspace: "the users' workspaces", sdk.KindAuth: "the users file"}[pb.Kind]
		out = append(out, policy.ReservedPath{Path: filepath.Clean(p),
			Why: fmt.Sprintf("%s (%s of %s %q)", what, attr, pb.Kind, pb.Name)})
	}
	return out
}

// reservedPaths are the paths of the core and its plugins that no ZApp may
// mount, each also where its symbolic links lead.
func reservedPaths(cfg *config.Config, plugins *Plugins, exe string) []policy.ReservedPath {
	var out []policy.ReservedPath
	for _, r := range slices.Concat(cfg.Reserved(), pluginPaths(cfg, plugins, exe)) {
		out = append(out, r)
		if real, err := policy.Resolve(r.Path); err == nil && real != r.Path {
			out = append(out, policy.ReservedPath{Path: real, Why: r.Why})
		}
	}
	return out
}

// containerPolicy is the container policy of cfg.
func containerPolicy(cfg *config.Config, plugins *Plugins, exe string) policy.Policy {
	var paths []string
	for _, r := range reservedPaths(cfg, plugins, exe) {
		paths = append(paths, r.Path)
	}
	return cfg.Containers.Policy(paths...)
}

// checkContainers refuses the host_path blocks that the configuration
// alone could not: those holding or under a plugin's directories, and those
// that are symbolic links to a reserved path.
func checkContainers(cfg *config.Config, plugins *Plugins, exe string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	plugin := pluginPaths(cfg, plugins, exe)
	all := slices.Concat(policy.Reserved(), reservedPaths(cfg, plugins, exe))
	for _, h := range cfg.Containers.HostPaths {
		msg := ""
		for _, r := range plugin {
			if msg = config.OverlapMessage(h.Path, r); msg != "" {
				break
			}
		}
		real, err := policy.Resolve(h.Path)
		if msg == "" && err != nil {
			msg = fmt.Sprintf("%s cannot be checked on this host: %v.", h.Path, err)
		}
		if msg == "" && real != h.Path {
			for _, r := range all {
				if m := config.OverlapMessage(real, r); m != "" {
					msg = fmt.Sprintf("%s leads to %s through a symbolic link: %s", h.Path, real, m)
					break
				}
			}
		}
		if msg != "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Forbidden host path",
				Detail: msg, Subject: h.Range.Ptr()})
		}
	}
	return diags
}
