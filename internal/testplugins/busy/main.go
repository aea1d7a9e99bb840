// Command busy is an auth plugin for tests that is alive but busy: told to
// (Authenticate as "busy" with a duration as the password), it answers
// every health check only after burning a core for that long, as a plugin
// whose answers queue behind its work would. Authenticate as "checks"
// returns, as the username, how many health checks it has received.
// Anyone else is refused.
package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/zoe-project/zoe/sdk/auth/authrpc"
	"github.com/zoe-project/zoe/sdk/handshake"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

type busy struct {
	mu     sync.Mutex
	delay  time.Duration
	checks int
}

func (b *busy) Info() sdk.Info { return sdk.Info{Name: "busy", Version: "1.0.0"} }

func (b *busy) Schema() sdk.Schema { return sdk.Schema{} }

func (b *busy) Configure(context.Context, sdk.Config) error { return nil }

func (b *busy) Authenticate(_ context.Context, username, password string) (auth.Identity, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch username {
	case "busy":
		d, err := time.ParseDuration(password)
		if err != nil {
			return auth.Identity{}, fmt.Errorf("busy: %v: %w", err, sdk.ErrInvalidArgument)
		}
		b.delay = d
		return auth.Identity{Username: username, Role: auth.RoleUser}, nil
	case "checks":
		return auth.Identity{Username: strconv.Itoa(b.checks), Role: auth.RoleUser}, nil
	}
	return auth.Identity{}, sdk.ErrInvalidCredentials
}

func (b *busy) Lookup(context.Context, string) (auth.Identity, error) {
	return auth.Identity{}, sdk.ErrNotFound
}

func (b *busy) Generation(context.Context) (uint64, error) { return 1, nil }

// health burns a core before each health check answer while busy.
func (b *busy) health(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if info.FullMethod == "/grpc.health.v1.Health/Check" {
		b.mu.Lock()
		b.checks++
		d := b.delay
		b.mu.Unlock()
		for start := time.Now(); time.Since(start) < d; {
		}
	}
	return handler(ctx, req)
}

func main() {
	b := &busy{}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  handshake.Config(),
		VersionedPlugins: map[int]plugin.PluginSet{handshake.ProtocolVersion: {string(sdk.KindAuth): &authrpc.Plugin{Impl: b}}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpc.ChainUnaryInterceptor(b.health))...)
		},
	})
}
