package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"

	"github.com/zoe-project/zoe/sdk"
	basev1 "github.com/zoe-project/zoe/sdk/proto/zoe/plugin/base/v1"
)

// BaseServer serves the base service of a plugin of the given kind.
type BaseServer struct {
	basev1.UnimplementedBaseServer
	Impl        sdk.Plugin
	Kind        sdk.Kind
	APIVersions []string
}

// RegisterBase registers the base service of impl on s.
func RegisterBase(s *grpc.Server, impl sdk.Plugin, kind sdk.Kind, apiVersions ...string) {
	basev1.RegisterBaseServer(s, &BaseServer{Impl: impl, Kind: kind, APIVersions: apiVersions})
}

func (s *BaseServer) Info(context.Context, *basev1.InfoRequest) (*basev1.InfoResponse, error) {
	i := s.Impl.Info()
	return &basev1.InfoResponse{
		Kind:        string(s.Kind),
		Name:        i.Name,
		Version:     i.Version,
		ApiVersions: s.APIVersions,
		Description: i.Description,
	}, nil
}

func (s *BaseServer) Schema(context.Context, *basev1.SchemaRequest) (*basev1.SchemaResponse, error) {
	sc, err := schemaToProto(s.Impl.Schema())
	if err != nil {
		return nil, ToStatus(fmt.Errorf("plugin schema: %w", err))
	}
	return &basev1.SchemaResponse{Schema: sc}, nil
}

func (s *BaseServer) Configure(ctx context.Context, req *basev1.ConfigureRequest) (*basev1.ConfigureResponse, error) {
	env := req.GetEnvironment()
	err := s.Impl.Configure(ctx, sdk.Config{
		JSON:         req.GetConfigJson(),
		Deployment:   env.GetDeployment(),
		DataDir:      env.GetDataDir(),
		ConfigDir:    env.GetConfigDir(),
		ValidateOnly: req.GetValidateOnly(),
		APIVersion:   req.GetApiVersion(),
	})
	var diags sdk.Diagnostics
	switch {
	case err == nil:
		return &basev1.ConfigureResponse{}, nil
	case asDiagnostics(err, &diags):
		return &basev1.ConfigureResponse{Diagnostics: diagnosticsToProto(diags)}, nil
	default:
		return nil, ToStatus(err)
	}
}

func asDiagnostics(err error, d *sdk.Diagnostics) bool {
	return errors.As(err, d)
}

// BaseClient is the core's side of the base service. Info and Schema are
// fetched once, when the plugin is dispensed, so that they cannot fail later.
type BaseClient struct {
	client basev1.BaseClient
	info   sdk.Info
	schema sdk.Schema
	done   <-chan struct{}
}

// NewBaseClient fetches the plugin's info and schema. done is closed when the
// plugin process exits (go-plugin's context passed to GRPCClient).
func NewBaseClient(done context.Context, conn grpc.ClientConnInterface) (*BaseClient, error) {
	ctx, cancel := context.WithTimeout(done, 30*time.Second)
	defer cancel()
	c := basev1.NewBaseClient(conn)
	info, err := c.Info(ctx, &basev1.InfoRequest{})
	if err != nil {
		return nil, fmt.Errorf("plugin info: %w", FromStatus(err))
	}
	sc, err := c.Schema(ctx, &basev1.SchemaRequest{})
	if err != nil {
		return nil, fmt.Errorf("plugin schema: %w", FromStatus(err))
	}
	schema, err := schemaFromProto(sc.GetSchema())
	if err != nil {
		return nil, fmt.Errorf("plugin schema: %w", err)
	}
	return &BaseClient{
		client: c,
		info: sdk.Info{
			Kind:        sdk.Kind(info.GetKind()),
			Name:        info.GetName(),
			Version:     info.GetVersion(),
			Description: info.GetDescription(),
			APIVersions: info.GetApiVersions(),
		},
		schema: schema,
		done:   done.Done(),
	}, nil
}

func (c *BaseClient) Info() sdk.Info     { return c.info }
func (c *BaseClient) Schema() sdk.Schema { return c.schema }

// Exited is closed when the plugin process has exited.
func (c *BaseClient) Exited() <-chan struct{} { return c.done }

func (c *BaseClient) Configure(ctx context.Context, cfg sdk.Config) error {
	resp, err := c.client.Configure(ctx, &basev1.ConfigureRequest{
		ApiVersion:   cfg.APIVersion,
		ConfigJson:   cfg.JSON,
		ValidateOnly: cfg.ValidateOnly,
		Environment: &basev1.Environment{
			Deployment: cfg.Deployment,
			DataDir:    cfg.DataDir,
			ConfigDir:  cfg.ConfigDir,
		},
	})
	if err != nil {
		return FromStatus(err)
	}
	if len(resp.GetDiagnostics()) == 0 {
		return nil
	}
	// Warnings alone still travel back, as a Diagnostics value without errors.
	return diagnosticsFromProto(resp.GetDiagnostics())
}

func schemaToProto(s sdk.Schema) (*basev1.Schema, error) {
	out := &basev1.Schema{}
	for _, a := range s.Attributes {
		var def string
		if a.Default != nil {
			b, err := json.Marshal(a.Default)
			if err != nil {
				return nil, fmt.Errorf("default of %q: %w", a.Name, err)
			}
			def = string(b)
		}
		out.Attributes = append(out.Attributes, &basev1.Attribute{
			Name: a.Name, Type: a.Type, Required: a.Required, DefaultJson: def, Help: a.Help, Sensitive: a.Sensitive,
		})
	}
	for _, b := range s.Blocks {
		nested, err := schemaToProto(b.Schema)
		if err != nil {
			return nil, fmt.Errorf("block %q: %w", b.Name, err)
		}
		out.Blocks = append(out.Blocks, &basev1.Block{
			Name: b.Name, Nesting: basev1.Nesting(b.Nesting), Schema: nested, Help: b.Help,
			MinItems: int32(b.MinItems), MaxItems: int32(b.MaxItems),
		})
	}
	return out, nil
}

func schemaFromProto(s *basev1.Schema) (sdk.Schema, error) {
	var out sdk.Schema
	for _, a := range s.GetAttributes() {
		var def any
		if a.GetDefaultJson() != "" {
			if err := json.Unmarshal([]byte(a.GetDefaultJson()), &def); err != nil {
				return out, fmt.Errorf("default of %q: %w", a.GetName(), err)
			}
		}
		out.Attributes = append(out.Attributes, sdk.Attribute{
			Name: a.GetName(), Type: a.GetType(), Required: a.GetRequired(), Default: def, Help: a.GetHelp(), Sensitive: a.GetSensitive(),
		})
	}
	for _, b := range s.GetBlocks() {
		nested, err := schemaFromProto(b.GetSchema())
		if err != nil {
			return out, fmt.Errorf("block %q: %w", b.GetName(), err)
		}
		out.Blocks = append(out.Blocks, sdk.Block{
			Name: b.GetName(), Nesting: sdk.Nesting(b.GetNesting()), Schema: nested, Help: b.GetHelp(),
			MinItems: int(b.GetMinItems()), MaxItems: int(b.GetMaxItems()),
		})
	}
	return out, nil
}

func diagnosticsToProto(d sdk.Diagnostics) []*basev1.Diagnostic {
	out := make([]*basev1.Diagnostic, 0, len(d))
	for _, x := range d {
		sev := basev1.Severity_SEVERITY_ERROR
		if x.Severity == sdk.SeverityWarning {
			sev = basev1.Severity_SEVERITY_WARNING
		}
		out = append(out, &basev1.Diagnostic{Severity: sev, Summary: x.Summary, Detail: x.Detail, AttributePath: x.Path})
	}
	return out
}

func diagnosticsFromProto(d []*basev1.Diagnostic) sdk.Diagnostics {
	out := make(sdk.Diagnostics, 0, len(d))
	for _, x := range d {
		sev := sdk.SeverityError
		if x.GetSeverity() == basev1.Severity_SEVERITY_WARNING {
			sev = sdk.SeverityWarning
		}
		out = append(out, sdk.Diagnostic{Severity: sev, Summary: x.GetSummary(), Detail: x.GetDetail(), Path: x.GetAttributePath()})
	}
	return out
}
