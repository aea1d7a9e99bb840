package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// Kind is the kind of a plugin; each binary serves exactly one.
type Kind string

const (
	KindBackend   Kind = "backend"
	KindAuth      Kind = "auth"
	KindWorkspace Kind = "workspace"
)

// Kinds lists the plugin kinds in the order the core starts them.
func Kinds() []Kind { return []Kind{KindAuth, KindWorkspace, KindBackend} }

// Plugin is what every plugin implements, whatever its kind.
type Plugin interface {
	// Info names the plugin. Kind and APIVersions are filled in by the SDK.
	Info() Info
	// Schema describes the configuration block the plugin accepts.
	Schema() Schema
	// Configure receives the decoded configuration block. It may be called
	// again, e.g. after the core restarts the plugin. Problems with the
	// configuration are returned as Diagnostics, so that the core can point at
	// the offending attribute in the user's file.
	Configure(ctx context.Context, cfg Config) error
}

// Info names a plugin.
type Info struct {
	Kind        Kind
	Name        string
	Version     string
	Description string
	// APIVersions are the versions of the kind's API the plugin speaks.
	APIVersions []string
}

// Config is a plugin's configuration block and the environment it runs in.
type Config struct {
	// JSON is the block decoded against the plugin's schema, as a JSON object:
	// attributes by name, defaults filled in, blocks as objects, lists of
	// objects or objects keyed by label.
	JSON []byte
	// Deployment is the name of this Zoe deployment.
	Deployment string
	// DataDir is the core's data directory.
	DataDir string
	// ConfigDir is the directory of the configuration file; the plugin
	// process runs there, so relative paths in the block resolve against it.
	ConfigDir string
	// ValidateOnly asks the plugin to check the configuration without side
	// effects such as creating directories (`zoe config validate`).
	ValidateOnly bool
	// APIVersion is the version of the kind's API the core selected.
	APIVersion string
}

// Decode decodes the block into v (a pointer to a struct with json tags).
// Keys v does not know are an error: the schema and v disagree.
func (c Config) Decode(v any) error {
	if len(c.JSON) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(c.JSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode plugin configuration: %w", err)
	}
	return nil
}
