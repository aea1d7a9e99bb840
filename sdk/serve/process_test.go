package serve

// The test binary is also a plugin: run with asPluginEnv set, TestMain calls
// Serve, so these tests see what the core and a person see of a real process.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/auth/authrpc"
	"github.com/zoe-project/zoe/sdk/handshake"
)

const asPluginEnv = "ZOE_SERVE_TEST_AS_PLUGIN"

func TestMain(m *testing.M) {
	if os.Getenv(asPluginEnv) != "" {
		Serve(func(log *slog.Logger) sdk.Plugin { return &logPlugin{log: log} }, Command{
			Name: "echo", Usage: "WORDS...", Help: "print the words",
			Run: func(_ context.Context, args []string) error {
				if len(args) == 0 {
					return fmt.Errorf("nothing to echo: %w", ErrUsage)
				}
				_, err := fmt.Println(strings.Join(args, " "))
				return err
			},
		})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// logPlugin logs when it is configured.
type logPlugin struct{ log *slog.Logger }

func (p *logPlugin) Info() sdk.Info     { return sdk.Info{Name: "logger", Version: "0.0.1"} }
func (p *logPlugin) Schema() sdk.Schema { return sdk.Schema{} }
func (p *logPlugin) Configure(_ context.Context, cfg sdk.Config) error {
	p.log.Debug("configuring")
	p.log.With("deployment", cfg.Deployment).WithGroup("cfg").Warn("configured",
		"dir", cfg.ConfigDir, "err", errors.New("nothing wrong"), "n", 3)
	p.log.Log(context.Background(), slog.LevelDebug-4, "trace is below debug")
	return nil
}
func (p *logPlugin) Authenticate(context.Context, string, string) (auth.Identity, error) {
	return auth.Identity{}, sdk.ErrInvalidCredentials
}
func (p *logPlugin) Lookup(context.Context, string) (auth.Identity, error) {
	return auth.Identity{}, sdk.ErrNotFound
}
func (p *logPlugin) Generation(context.Context) (uint64, error) { return 0, nil }

// syncBuffer is the host's log output, written by go-plugin's goroutines.
type syncBuffer struct {
	lw  lineWriter
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer {
	b := &syncBuffer{}
	b.lw.w = &b.buf
	return b
}

func (b *syncBuffer) Write(p []byte) (int, error) { return b.lw.Write(p) }
func (b *syncBuffer) String() string {
	b.lw.mu.Lock()
	defer b.lw.mu.Unlock()
	return b.buf.String()
}

// The host (go-plugin's client, as in core/pluginhost) logs the plugin's lines
// with their own level, message and attributes.
func TestPluginLogsReachTheHostsLog(t *testing.T) {
	out := newSyncBuffer()
	host := hclog.New(&hclog.LoggerOptions{Name: "core", Level: hclog.Trace, Output: out, JSONFormat: true})
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), asPluginEnv+"=1", sdk.LogLevelEnv+"=debug")
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake.Config(),
		VersionedPlugins: map[int]plugin.PluginSet{handshake.ProtocolVersion: {string(sdk.KindAuth): &authrpc.Plugin{}}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           host,
		StartTimeout:     time.Minute,
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rpc.Dispense(string(sdk.KindAuth))
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.(auth.Authenticator).Configure(t.Context(), sdk.Config{Deployment: "prod", ConfigDir: "/etc/zoe"}); err != nil {
		t.Fatal(err)
	}
	// Kill returns once the host has read all of the plugin's stderr.
	client.Kill()

	var configured, configuring map[string]any
	for line := range strings.SplitSeq(out.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch m["@message"] {
		case "configured":
			configured = m
		case "configuring":
			configuring = m
		case "trace is below debug":
			t.Errorf("a trace line passed the plugin's debug level: %s", line)
		}
	}
	if configuring == nil || configuring["@level"] != "debug" {
		t.Errorf("the debug line is %v, want it at debug level; host log:\n%s", configuring, out)
	}
	if configured == nil {
		t.Fatalf("the plugin's warning is not in the host's log:\n%s", out)
	}
	want := map[string]any{"@level": "warn", "deployment": "prod", "cfg.dir": "/etc/zoe", "cfg.err": "nothing wrong", "cfg.n": 3.0}
	for k, v := range want {
		if configured[k] != v {
			t.Errorf("%s = %v, want %v; line %v", k, configured[k], v, configured)
		}
	}
	if ts, _ := configured["timestamp"].(string); strings.HasPrefix(ts, "0001") || ts == "" {
		t.Errorf("the host read no time stamp: %q", ts)
	}
}

func TestRunByHand(t *testing.T) {
	cookie := handshake.Config()
	tests := []struct {
		args           []string
		env            []string
		code           int
		stdout, stderr string
	}{
		{args: []string{"echo", "a", "b"}, code: 0, stdout: "a b\n"},
		{args: []string{"echo"}, code: 2, stderr: "usage: serve.test echo WORDS..."},
		{args: []string{"help"}, code: 0, stdout: "serve.test echo WORDS...\n        print the words"},
		{args: []string{"nope"}, code: 2, stderr: `unknown command "nope"`},
		{args: nil, code: 2, stderr: "is a Zoe plugin: the Zoe core starts it"},
		{args: []string{"describe"}, code: 0, stdout: `"Kind": "auth"`},
		// A plugin that runs its own binary with a command gets the
		// command, even with the environment the core gave it.
		{args: []string{"echo", "under", "the", "core"}, env: []string{cookie.MagicCookieKey + "=" + cookie.MagicCookieValue},
			code: 0, stdout: "under the core\n"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			// A binary that serves instead would wait for a core: killed.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], tc.args...)
			cmd.Env = append(append(os.Environ(), asPluginEnv+"=1"), tc.env...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}
