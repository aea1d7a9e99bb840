// Package serve is the one call a plugin's main makes:
//
//	func main() {
//		serve.Serve(func(log *slog.Logger) sdk.Plugin { return myplugin.New(log) })
//	}
//
// The value the factory returns must implement exactly one of
// backend.Backend, auth.Authenticator and workspace.Provider.
//
// Started by the core, the binary serves the plugin. Run by hand, it runs a
// command instead: "describe" prints the plugin's info and configuration
// schema as JSON, "help" lists the commands, and a plugin may add its own
// (see Command).
//
// Serve tells the two apart by the environment and the arguments: the core
// sets ZOE_PLUGIN_MAGIC_COOKIE (go-plugin's handshake cookie) and passes no
// arguments. With the variable and no arguments the binary serves; with
// arguments, or without the variable, it runs the command the first
// argument names. So a plugin that runs its own binary again (a supervisor
// of its services, a helper) gives it a Command's name and arguments: the
// copy runs that command even with the core's environment. Run without
// arguments and with that environment, a copy would try to serve a plugin.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"syscall"
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

// Factory builds the plugin with the logger it must use. What the plugin
// logs reaches the core's log under the plugin's name, with its level,
// message and attributes; the level the core asked for is already applied.
// When a person runs the binary (describe), the logger writes text to stderr.
//
// The logger is the standard library's, not go-hclog (which go-plugin and
// the core use): a plugin's API should not tie its author to a logging
// library, and log/slog is what the rest of their code can already use.
type Factory func(log *slog.Logger) sdk.Plugin

// An Option changes what Serve does. Command is one.
type Option interface{ apply(*options) }

type options struct{ commands []Command }

// Command is a command of the plugin binary that a person runs by hand,
// e.g. "zoe-plugin-auth-mine adduser alice admin", or that the plugin runs
// itself (a supervisor, say). Commands run whenever the binary has
// arguments; the core never passes any.
type Command struct {
	// Name is the first argument that selects it: lower-case letters,
	// digits and dashes, not "describe" or "help".
	Name string
	// Usage is what follows the name, e.g. "FILE USER ROLE".
	Usage string
	// Help says in one line what the command does; "help" lists it.
	Help string
	// Run gets the arguments after the name and a context cancelled on
	// SIGINT or SIGTERM. An error ends the binary with status 1, or with
	// status 2 and the command's usage if it wraps ErrUsage.
	Run func(ctx context.Context, args []string) error
}

func (c Command) apply(o *options) { o.commands = append(o.commands, c) }

// ErrUsage is what a Command's Run wraps when its arguments are wrong.
var ErrUsage = errors.New("wrong arguments")

var commandName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

func (o options) check() error {
	seen := map[string]bool{"describe": true, "help": true}
	for _, c := range o.commands {
		switch {
		case !commandName.MatchString(c.Name):
			return fmt.Errorf("command name %q: use lower-case letters, digits and dashes", c.Name)
		case seen[c.Name]:
			return fmt.Errorf("command %q is defined twice or is built in", c.Name)
		case c.Run == nil:
			return fmt.Errorf("command %q has no Run function", c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

// Serve serves the plugin until the core tells it to stop or goes away, or,
// when the binary has arguments or the core did not start it, runs the
// command they name.
func Serve(f Factory, opts ...Option) {
	var o options
	for _, opt := range opts {
		opt.apply(&o)
	}
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "zoe plugin:", err)
		os.Exit(2)
	}
	hs := handshake.Config()
	level := parseLevel(os.Getenv(sdk.LogLevelEnv))
	if os.Getenv(hs.MagicCookieKey) == "" || len(os.Args) > 1 {
		// Not started by the core, which passes no arguments: a person,
		// or the plugin's own program, reads stderr.
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		// The first signal cancels ctx; the next one kills, as usual, a
		// command that does not heed ctx.
		go func() { <-ctx.Done(); stop() }()
		code := byHand{
			name: filepath.Base(os.Args[0]), stdout: os.Stdout, stderr: os.Stderr, commands: o.commands,
			describe: func(w io.Writer) error { return describe(w, f(log)) },
		}.run(ctx, os.Args[1:])
		stop()
		os.Exit(code)
	}

	// Both loggers write the real stderr, which go-plugin's host reads, and
	// keep it: go-plugin points os.Stderr elsewhere once it serves.
	stderr := &lineWriter{w: os.Stderr}
	log := slog.New(newHandler(stderr, level))
	p := f(log)
	_, set, err := Set(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
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
		// go-plugin's own messages, in the same format.
		Logger: hclog.New(&hclog.LoggerOptions{
			Level:      hclog.LevelFromString(os.Getenv(sdk.LogLevelEnv)),
			Output:     stderr,
			JSONFormat: true,
		}),
	})
}

// byHand is the binary run by a person.
type byHand struct {
	name           string
	stdout, stderr io.Writer
	commands       []Command
	describe       func(io.Writer) error
}

// run runs the command args name and returns the exit status: 0, 1 when the
// command failed, 2 when it was misused.
func (b byHand) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		b.usage(b.stderr)
		return 2
	}
	name, args := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		b.usage(b.stdout)
		return 0
	case "describe":
		if len(args) > 0 {
			fmt.Fprintf(b.stderr, "%s describe takes no arguments\n", b.name)
			return 2
		}
		if err := b.describe(b.stdout); err != nil {
			fmt.Fprintf(b.stderr, "%s describe: %v\n", b.name, err)
			return 1
		}
		return 0
	}
	for _, c := range b.commands {
		if c.Name != name {
			continue
		}
		err := c.Run(ctx, args)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, ErrUsage):
			fmt.Fprintf(b.stderr, "%s %s: %v\nusage: %s %s %s\n", b.name, c.Name, err, b.name, c.Name, c.Usage)
			return 2
		}
		fmt.Fprintf(b.stderr, "%s %s: %v\n", b.name, c.Name, err)
		return 1
	}
	fmt.Fprintf(b.stderr, "%s: unknown command %q\n\n", b.name, name)
	b.usage(b.stderr)
	return 2
}

func (b byHand) usage(w io.Writer) {
	fmt.Fprintf(w, "%s is a Zoe plugin: the Zoe core starts it. Run by hand, it knows these commands:\n\n", b.name)
	cmds := append([]Command{{Name: "describe", Help: "print the plugin's info and configuration schema as JSON"}}, b.commands...)
	cmds = append(cmds, Command{Name: "help", Help: "print this"})
	for _, c := range cmds {
		line := b.name + " " + c.Name
		if c.Usage != "" {
			line += " " + c.Usage
		}
		fmt.Fprintf(w, "  %s\n", line)
		if c.Help != "" {
			fmt.Fprintf(w, "        %s\n", c.Help)
		}
	}
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

// describe writes p's info and schema as JSON.
func describe(w io.Writer, p sdk.Plugin) error {
	kind, _, err := Set(p)
	if err != nil {
		return err
	}
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
	_, err = fmt.Fprintln(w, string(out))
	return err
}

// watchParent ends the plugin when the core that started it is gone, even if
// the core was killed and could not stop it: no orphans. The core also asks
// the kernel to kill its plugins when it dies (Pdeathsig); this covers what
// that cannot, e.g. a plugin started from a thread that has since exited.
func watchParent(log *slog.Logger, parent int) {
	for range time.Tick(time.Second) {
		if os.Getppid() != parent {
			log.Error("the zoe core that started this plugin is gone; exiting", "parent_pid", parent)
			os.Exit(1)
		}
	}
}

func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
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

func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
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
