package plugintest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/auth/authrpc"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/backend/backendrpc"
	"github.com/zoe-project/zoe/sdk/handshake"
)

// Process is a plugin binary running as a process of its own, started the
// way Zoe's core starts it: go-plugin with Zoe's handshake, gRPC, mutual
// TLS.
type Process struct {
	client *plugin.Client
	pid    int
}

// LaunchBackend starts the back-end plugin binary as its own process,
// configures it with cfg (APIVersion filled in) and returns the core's side
// of it. When t ends the plugin is closed (backend.Closer), as the core
// closes it, and its process stopped; the process's log is shown if t
// failed.
func LaunchBackend(t testing.TB, binary string, cfg sdk.Config) (backend.Backend, *Process) {
	t.Helper()
	raw, proc := launch(t, sdk.KindBackend, &backendrpc.Plugin{}, binary)
	b, ok := raw.(backend.Backend)
	if !ok {
		t.Fatalf("%s: dispensed a %T, not a back-end", binary, raw)
	}
	t.Cleanup(func() {
		if proc.Exited() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if c, ok := b.(backend.Closer); ok {
			if err := c.Close(ctx); err != nil && !errors.Is(err, sdk.ErrUnsupported) {
				t.Errorf("%s: Close: %v", binary, err)
			}
		}
	})
	cfg.APIVersion = backend.APIVersion
	configure(t, b, binary, cfg)
	return b, proc
}

// LaunchAuth starts the auth plugin binary as its own process, configures
// it with cfg (APIVersion filled in) and returns the core's side of it; the
// process is stopped when t ends.
func LaunchAuth(t testing.TB, binary string, cfg sdk.Config) (auth.Authenticator, *Process) {
	t.Helper()
	raw, proc := launch(t, sdk.KindAuth, &authrpc.Plugin{}, binary)
	a, ok := raw.(auth.Authenticator)
	if !ok {
		t.Fatalf("%s: dispensed a %T, not an auth plugin", binary, raw)
	}
	cfg.APIVersion = auth.APIVersion
	configure(t, a, binary, cfg)
	return a, proc
}

// launch starts binary and dispenses its plugin of kind.
func launch(t testing.TB, kind sdk.Kind, p plugin.Plugin, binary string) (any, *Process) {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(), sdk.LogLevelEnv+"=debug")
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake.Config(),
		VersionedPlugins: map[int]plugin.PluginSet{handshake.ProtocolVersion: {string(kind): p}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     time.Minute,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Debug, Output: out}),
	})
	// Registered first, so that it runs last: after the plugin's Close.
	t.Cleanup(func() {
		client.Kill()
		if t.Failed() {
			t.Logf("log of the plugin process %s:\n%s", binary, out)
		}
	})
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start the plugin %s: %v\n%s", binary, err, out)
	}
	raw, err := rpc.Dispense(string(kind))
	if err != nil {
		t.Fatalf("dispense the %s plugin of %s: %v", kind, binary, err)
	}
	proc := &Process{client: client}
	if rc := client.ReattachConfig(); rc != nil {
		proc.pid = rc.Pid
	}
	return raw, proc
}

func configure(t testing.TB, p sdk.Plugin, binary string, cfg sdk.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := p.Configure(ctx, cfg)
	var diags sdk.Diagnostics
	if err != nil && (!errors.As(err, &diags) || diags.HasErrors()) {
		t.Fatalf("configure the plugin %s: %v", binary, err)
	}
}

// Kill ends the plugin process with SIGKILL, as a crash or the kernel's
// OOM killer would, and waits until it is gone: nothing in the plugin runs
// after it.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	proc, err := os.FindProcess(p.pid)
	if p.pid == 0 || err != nil {
		t.Fatalf("no process to kill (pid %d): %v", p.pid, err)
	}
	if err := proc.Kill(); err != nil && !p.Exited() {
		t.Fatalf("kill the plugin process %d: %v", p.pid, err)
	}
	deadline := time.Now().Add(time.Minute)
	for !p.Exited() {
		if time.Now().After(deadline) {
			t.Fatalf("the plugin process %d still runs after SIGKILL", p.pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Exited tells whether the process has ended.
func (p *Process) Exited() bool { return p.client.Exited() }

// syncBuffer collects a plugin's log from go-plugin's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
