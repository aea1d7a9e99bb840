// Package serve is the one call a plugin's main makes:
//
//	func main() {
//		serve.Serve(func(log hclog.Logger) sdk.Plugin { return myplugin.New(log) })
//	}
//
// The value the factory returns must implement exactly one of
// backend.Backend, auth.Authenticator and workspace.Provider.
package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/zoe-project/zoe/sdk/auth/authrpc"
	"github.com/zoe-project/zoe/sdk/backend/backendrpc"
	"github.com/zoe-project/zoe/sdk/handshake"
	"github.com/zoe-project/zoe/sdk/workspace/workspacerpc"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/workspace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Factory builds the plugin with the logger it must use. Anything the plugin
// logs reaches the core's log under the plugin's name.
type Factory func(log hclog.Logger) sdk.Plugin

// Serve serves the plugin until the core tells it to stop or goes away. Run
// by hand with the argument "describe", the binary prints its info and
// configuration schema as JSON instead.
func Serve(f Factory) {
	log := hclog.New(&hclog.LoggerOptions{
		Level:      hclog.LevelFromString(os.Getenv(sdk.LogLevelEnv)),
		Output:     os.Stderr,
		JSONFormat: true,
		// The core stamps each line as it forwards it.
		DisableTime: true,
	})
	p := f(log)
	kind, set, err := Set(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	hs := handshake.Config()
	if len(os.Args) == 2 && os.Args[1] == "describe" && os.Getenv(hs.MagicCookieKey) == "" {
		if err := describe(p, kind); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	go watchParent(log, os.Getppid())
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]plugin.PluginSet{handshake.ProtocolVersion: set},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts,
				grpc.ChainUnaryInterceptor(recoverUnary(log)),
				grpc.ChainStreamInterceptor(recoverStream(log)))
			return grpc.NewServer(opts...)
		},
		Logger: log,
	})
}

// Set returns the kind of p and the go-plugin set that serves it.
func Set(p sdk.Plugin) (sdk.Kind, plugin.PluginSet, error) {
	var kinds []sdk.Kind
	set := plugin.PluginSet{}
	if b, ok := p.(backend.Backend); ok {
		kinds = append(kinds, sdk.KindBackend)
		set[string(sdk.KindBackend)] = &backendrpc.Plugin{Impl: b}
	}
	if a, ok := p.(auth.Authenticator); ok {
		kinds = append(kinds, sdk.KindAuth)
		set[string(sdk.KindAuth)] = &authrpc.Plugin{Impl: a}
	}
	if w, ok := p.(workspace.Provider); ok {
		kinds = append(kinds, sdk.KindWorkspace)
		set[string(sdk.KindWorkspace)] = &workspacerpc.Plugin{Impl: w}
	}
	if len(kinds) != 1 {
		return "", nil, fmt.Errorf("zoe plugin %T implements %d plugin kinds %v; it must implement exactly one of backend.Backend, auth.Authenticator, workspace.Provider", p, len(kinds), kinds)
	}
	return kinds[0], set, nil
}

func describe(p sdk.Plugin, kind sdk.Kind) error {
	info := p.Info()
	info.Kind = kind
	info.APIVersions = []string{map[sdk.Kind]string{
		sdk.KindBackend: backend.APIVersion, sdk.KindAuth: auth.APIVersion, sdk.KindWorkspace: workspace.APIVersion,
	}[kind]}
	out, err := json.MarshalIndent(struct {
		Info   sdk.Info
		Schema sdk.Schema
	}{info, p.Schema()}, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(out))
	return err
}

// watchParent ends the plugin when the core that started it is gone, even if
// the core was killed and could not stop it: no orphans. The core also asks
// the kernel to kill its plugins when it dies (Pdeathsig); this covers what
// that cannot, e.g. a plugin started from a thread that has since exited.
func watchParent(log hclog.Logger, parent int) {
	for range time.Tick(time.Second) {
		if os.Getppid() != parent {
			log.Error("the zoe core that started this plugin is gone; exiting", "parent_pid", parent)
			os.Exit(1)
		}
	}
}

func recoverUnary(log hclog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("plugin panicked", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "plugin panicked in %s: %v", info.FullMethod, r)
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(log hclog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("plugin panicked", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "plugin panicked in %s: %v", info.FullMethod, r)
			}
		}()
		return handler(srv, ss)
	}
}
