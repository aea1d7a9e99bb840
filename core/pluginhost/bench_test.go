package pluginhost

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/zoe-project/zoe/sdk/handshake"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/zoe-project/zoe/internal/testplugins/benchbare/bare"
	"github.com/zoe-project/zoe/plugins/auth-file/authfile"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	authv1 "github.com/zoe-project/zoe/sdk/proto/zoe/plugin/auth/v1"
)

// BenchmarkAuthenticate measures one authenticate call three ways with the
// same payload: through Zoe's plugin path (host wrapper, SDK adapters, a
// real plugin process), through bare go-plugin gRPC to a process that
// serves the generated code alone (the floor of this architecture), and
// in-process. The users file holds a plain-text password so that the call
// measures the path, not bcrypt.
func BenchmarkAuthenticate(b *testing.B) {
	users := filepath.Join(b.TempDir(), "users.csv")
	if err := os.WriteFile(users, []byte("alice,wonderland,user\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	quiet := hclog.NewNullLogger()

	b.Run("zoe-plugin", func(b *testing.B) {
		p, err := Start(ctx, quiet, authSpec(b, users), DefaultTiming())
		if err != nil {
			b.Fatal(err)
		}
		defer p.Stop()
		a := Auth{p}
		for b.Loop() {
			if _, err := a.Authenticate(ctx, "alice", "wonderland"); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("bare-go-plugin", func(b *testing.B) {
		client := plugin.NewClient(&plugin.ClientConfig{
			HandshakeConfig:  handshake.Config(),
			VersionedPlugins: map[int]plugin.PluginSet{handshake.ProtocolVersion: {bare.Name: &bare.Plugin{}}},
			Cmd:              exec.Command(filepath.Join(binDir, "zoe-plugin-auth-benchbare")),
			AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
			AutoMTLS:         true,
			Logger:           quiet,
		})
		defer client.Kill()
		rpc, err := client.Client()
		if err != nil {
			b.Fatal(err)
		}
		raw, err := rpc.Dispense(bare.Name)
		if err != nil {
			b.Fatal(err)
		}
		c := raw.(authv1.AuthClient)
		for b.Loop() {
			if _, err := c.Authenticate(ctx, &authv1.AuthenticateRequest{Username: "alice", Password: "wonderland"}); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("in-process", func(b *testing.B) {
		p := authfile.New(slog.New(slog.DiscardHandler))
		if err := p.Configure(ctx, sdk.Config{JSON: fmt.Appendf(nil, `{"users_file":%q}`, users), APIVersion: auth.APIVersion}); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := p.Authenticate(ctx, "alice", "wonderland"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
