// Command stderr is an auth plugin for tests that writes hostile lines to
// its stderr, which the core reads as its log: JSON lines with fields of
// the wrong types, a 1 MiB line, invalid UTF-8, terminal escape sequences.
// It writes them when it starts and again when asked to authenticate
// "again"; it then serves as usual: alice, password "wonderland", is a user.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/go-plugin"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/auth/authrpc"
	"github.com/zoe-project/zoe/sdk/handshake"
)

// hostile is what the plugin writes; the last line says it is done.
func hostile() string {
	return strings.Join([]string{
		`{"@message":1}`,
		`{"@level":{}}`,
		`{"@level":[]}`,
		`{"@timestamp":"x"}`,
		`{"@timestamp":5}`,
		`{"@level":"info","@message":["m"],"@timestamp":5,"@module":7,"@caller":{},"n":1.5,"b":true,"z":null}`,
		`{"@level":"off","@message":"level off"}`,
		`{"@level":"error","@message":"` + strings.Repeat("a", 1<<20) + `"}`,
		"{\"@level\":\"info\",\"@message\":\"bad utf8 \xff\xfe\",\"k\xff\":\"v\xc3\"}",
		"plain bad utf8 \xff",
		`{"@level":"warn","@message":"esc \u001b[31mred\u001b[0m \u009b2J","k\u001b]0;t\u0007":"v\u001b[2J","@message2":"x"}`,
		"plain esc \x1b[2J\x1b]0;title\x07 \r",
		`{"@level":"info","@message":"hostile lines written"}`,
	}, "\n") + "\n"
}

type stderrPlugin struct{ stderr *os.File }

func (*stderrPlugin) Info() sdk.Info { return sdk.Info{Name: "stderr", Version: "1.0.0"} }

func (*stderrPlugin) Schema() sdk.Schema { return sdk.Schema{} }

func (*stderrPlugin) Configure(context.Context, sdk.Config) error { return nil }

func (p *stderrPlugin) Authenticate(_ context.Context, username, password string) (auth.Identity, error) {
	switch {
	case username == "again":
		// Both the real stderr and os.Stderr, which go-plugin forwards
		// over gRPC once it serves.
		fmt.Fprint(p.stderr, hostile())
		fmt.Fprint(os.Stderr, hostile())
		return auth.Identity{Username: username, Role: auth.RoleUser}, nil
	case username == "alice" && password == "wonderland":
		return auth.Identity{Username: username, Role: auth.RoleUser}, nil
	}
	return auth.Identity{}, sdk.ErrInvalidCredentials
}

func (*stderrPlugin) Lookup(context.Context, string) (auth.Identity, error) {
	return auth.Identity{}, sdk.ErrNotFound
}

func (*stderrPlugin) Generation(context.Context) (uint64, error) { return 1, nil }

func main() {
	fmt.Fprint(os.Stderr, hostile())
	p := &stderrPlugin{stderr: os.Stderr}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  handshake.Config(),
		VersionedPlugins: map[int]plugin.PluginSet{handshake.ProtocolVersion: {string(sdk.KindAuth): &authrpc.Plugin{Impl: p}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
