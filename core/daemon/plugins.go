package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/zoe-project/zoe/core/config"
	"github.com/zoe-project/zoe/core/pluginhost"
	"github.com/zoe-project/zoe/sdk"
)

// Plugins are the plugins a configuration selects, started and configured.
type Plugins struct {
	All       []*pluginhost.Plugin
	Auth      []pluginhost.Auth
	Workspace *pluginhost.Workspace
	Backend   *pluginhost.Plugin
	// Configs are the configurations the plugins accepted, by block.
	Configs map[*config.Plugin][]byte
}

// Stop stops every plugin.
func (p *Plugins) Stop() {
	var wg sync.WaitGroup
	for _, x := range p.All {
		wg.Go(x.Stop)
	}
	wg.Wait()
}

// errConfig tells the plugin host that a configuration was refused; the
// details are in the diagnostics.
var errConfig = errors.New("the plugin refused its configuration")

// StartPlugins starts every plugin block of cfg, decodes its body against
// the schema the plugin publishes and configures it. Every problem, the
// core's or a plugin's own, comes back as a diagnostic at its place in the
// file. With validateOnly, plugins check their configuration without side
// effects.
func StartPlugins(ctx context.Context, log hclog.Logger, cfg *config.Config, exe string, validateOnly bool, timing pluginhost.Timing) (*Plugins, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	pluginDir := cfg.PluginDir
	if pluginDir == "" {
		pluginDir = filepath.Dir(exe)
	}
	out := &Plugins{Configs: map[*config.Plugin][]byte{}}
	evalCtx := cfg.EvalContext()
	for _, pb := range cfg.Plugins {
		path, err := binary(pluginDir, pb)
		if err != nil {
			// A binary that is there but unsafe to run is not unknown:
			// the administrator has its permissions to fix, not its name.
			summary, detail := fmt.Sprintf("Refused %s plugin %q", pb.Kind, pb.Name), err.Error()+"."
			if errors.Is(err, sdk.ErrNotFound) {
				summary, detail = fmt.Sprintf("Unknown %s plugin %q", pb.Kind, pb.Name), detail+available(pluginDir)
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: pb.DefRange.Ptr(),
			})
			continue
		}
		var first = true
		var cfgJSON []byte
		setup := func(ctx context.Context, impl sdk.Plugin) error {
			// Diagnostics are reported for the first start only; a restarted
			// plugin gets the configuration that was accepted then.
			report := first
			first = false
			if cfgJSON == nil {
				js, d := pb.Decode(impl.Schema(), evalCtx)
				diags = append(diags, d...)
				if d.HasErrors() {
					return errConfig
				}
				cfgJSON = js
			}
			err := impl.Configure(ctx, sdk.Config{
				JSON: cfgJSON, Deployment: cfg.DeploymentName, DataDir: cfg.DataDir, ConfigDir: cfg.Dir,
				ValidateOnly: validateOnly, APIVersion: pluginhost.APIVersion(pb.Kind),
			})
			var pd sdk.Diagnostics
			if errors.As(err, &pd) {
				if report {
					diags = append(diags, pb.Diagnostics(pd)...)
				}
				if pd.HasErrors() {
					return fmt.Errorf("%w: %v", errConfig, pd)
				}
				return nil
			}
			return err
		}
		p, err := pluginhost.Start(ctx, log, pluginhost.Spec{
			Kind: pb.Kind, Name: pb.Name, Path: path, Checksum: pb.Checksum,
			StartTimeout: pb.StartTimeout, Dir: cfg.Dir, LogLevel: hclog.LevelFromString(cfg.LogLevel),
			Setup: setup,
		}, timing)
		if err != nil {
			if !errors.Is(err, errConfig) {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("Cannot start %s plugin %q", pb.Kind, pb.Name),
					Detail:   err.Error(),
					Subject:  pb.DefRange.Ptr(),
				})
			}
			continue
		}
		out.All = append(out.All, p)
		out.Configs[pb] = cfgJSON
		switch pb.Kind {
		case sdk.KindAuth:
			out.Auth = append(out.Auth, pluginhost.Auth{Plugin: p})
		case sdk.KindWorkspace:
			out.Workspace = &pluginhost.Workspace{Plugin: p}
		case sdk.KindBackend:
			out.Backend = p
		}
	}
	return out, diags
}

func binary(dir string, pb *config.Plugin) (string, error) {
	if pb.Binary != "" {
		return pluginhost.Check(pb.Binary)
	}
	return pluginhost.Find(dir, pb.Kind, pb.Name)
}

// available lists the plugins found in dir, to help with a misspelt name.
func available(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutPrefix(e.Name(), "zoe-plugin-"); ok {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return fmt.Sprintf(" No plugin binaries (zoe-plugin-<kind>-<name>) are in %s.", dir)
	}
	sort.Strings(names)
	return fmt.Sprintf(" Plugins in %s: %s.", dir, strings.Join(names, ", "))
}
