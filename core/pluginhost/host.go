// Package pluginhost starts Zoe's plugins as separate processes with
// go-plugin over gRPC, and keeps them running: it notices a plugin that
// crashed or stopped answering, starts it again with back-off, configures it
// again, and reports every plugin's state.
package pluginhost

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zoe-project/zoe/sdk/auth/authrpc"
	"github.com/zoe-project/zoe/sdk/backend/backendrpc"
	"github.com/zoe-project/zoe/sdk/handshake"
	"github.com/zoe-project/zoe/sdk/workspace/workspacerpc"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/workspace"
)

// State of a supervised plugin.
type State string

const (
	StateStarting   State = "starting"
	StateReady      State = "ready"
	StateRestarting State = "restarting"
	// StateFailed: several restarts in a row failed; the host keeps trying,
	// slowly, so that a repaired plugin comes back by itself.
	StateFailed  State = "failed"
	StateStopped State = "stopped"
)

// Spec says which plugin to run and how.
type Spec struct {
	Kind sdk.Kind
	Name string
	// Path is the plugin's binary.
	Path string
	// Checksum is the binary's expected sha256, checked before every start;
	// nil for none.
	Checksum []byte
	// StartTimeout bounds the start: process, handshake, info and Setup.
	StartTimeout time.Duration
	// Dir is the plugin process's working directory.
	Dir string
	// LogLevel is passed to the plugin.
	LogLevel hclog.Level
	// Setup configures the plugin after each start, before it is ready.
	Setup func(ctx context.Context, p sdk.Plugin) error
}

// Timing of supervision; the defaults suit production, tests shorten them.
//
// A plugin is pinged (gRPC health check) every PingInterval and must
// answer within PingTimeout. A busy plugin is not a dead one: a ping left
// unanswered counts as a failure only when the process did no work since
// the previous ping (its CPU time did not grow) or is stopped (SIGSTOP, a
// debugger); the plugin is restarted after PingFailures such failures in a
// row, or when it has answered no ping for BusyTimeout however busy it is.
type Timing struct {
	PingInterval time.Duration
	PingTimeout  time.Duration
	PingFailures int
	BusyTimeout  time.Duration
	BackoffMin   time.Duration
	BackoffMax   time.Duration
	// FailedAfter consecutive failed restarts the state becomes failed.
	FailedAfter int
}

// DefaultTiming gives the values Start uses for the zero fields of a Timing.
func DefaultTiming() Timing {
	return Timing{PingInterval: 5 * time.Second, PingTimeout: 5 * time.Second, PingFailures: 3, BusyTimeout: 2 * time.Minute,
		BackoffMin: 500 * time.Millisecond, BackoffMax: 30 * time.Second, FailedAfter: 5}
}

func (t Timing) withDefaults() Timing {
	d := DefaultTiming()
	if t.PingInterval <= 0 {
		t.PingInterval = d.PingInterval
	}
	if t.PingTimeout <= 0 {
		t.PingTimeout = d.PingTimeout
	}
	if t.PingFailures <= 0 {
		t.PingFailures = d.PingFailures
	}
	if t.BusyTimeout <= 0 {
		t.BusyTimeout = d.BusyTimeout
	}
	if t.BackoffMin <= 0 {
		t.BackoffMin = d.BackoffMin
	}
	if t.BackoffMax < t.BackoffMin {
		t.BackoffMax = max(d.BackoffMax, t.BackoffMin)
	}
	if t.FailedAfter <= 0 {
		t.FailedAfter = d.FailedAfter
	}
	return t
}

// Status is a snapshot of a supervised plugin.
type Status struct {
	Kind      sdk.Kind  `json:"kind"`
	Name      string    `json:"name"`
	Version   string    `json:"version"`
	State     State     `json:"state"`
	Since     time.Time `json:"since"`
	Restarts  int       `json:"restarts"`
	LastError string    `json:"last_error,omitempty"`
	PID       int       `json:"pid,omitempty"`
}

// Plugin is one supervised plugin process.
type Plugin struct {
	spec   Spec
	timing Timing
	log    hclog.Logger

	mu       sync.RWMutex
	state    State
	since    time.Time
	restarts int
	lastErr  error
	client   *plugin.Client
	impl     sdk.Plugin
	info     sdk.Info
	pid      int
	// end ends the current process (see dispense).
	end func(graceful bool)

	// Back-off survives a restart that works, so that a plugin that dies
	// soon after each start still backs off and ends up failed; it resets
	// once a start has stayed up for BackoffMax. Supervisor goroutine only.
	delay    time.Duration
	failures int

	stop    chan struct{}
	stopped chan struct{}
}

// Start starts the plugin, configures it with spec.Setup and supervises it
// until Stop. A plugin that cannot start the first time is an error: the
// core refuses to run half-configured.
func Start(ctx context.Context, log hclog.Logger, spec Spec, timing Timing) (*Plugin, error) {
	timing = timing.withDefaults()
	if spec.StartTimeout <= 0 {
		spec.StartTimeout = 30 * time.Second
	}
	p := &Plugin{
		spec: spec, timing: timing, delay: timing.BackoffMin,
		log:   log.Named("plugin").Named(string(spec.Kind) + "-" + spec.Name),
		state: StateStarting, since: time.Now(),
		stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	if err := p.launch(ctx, false); err != nil {
		close(p.stopped)
		return nil, err
	}
	go p.supervise()
	return p, nil
}

// launch starts the process, dispenses and sets the plugin up, and makes it
// the current instance; restart counts it as a restart.
func (p *Plugin) launch(ctx context.Context, restart bool) error {
	ctx, cancel := context.WithTimeout(ctx, p.spec.StartTimeout)
	defer cancel()
	client, impl, end, err := p.dispense(ctx)
	if err != nil {
		return p.describe(err)
	}
	if p.spec.Setup != nil {
		if err := p.spec.Setup(ctx, impl); err != nil {
			// At once: Setup may have failed because the plugin hangs.
			end(false)
			return err
		}
	}
	p.mu.Lock()
	p.client, p.impl, p.info, p.end = client, impl, impl.Info(), end
	p.state, p.since, p.lastErr = StateReady, time.Now(), nil
	if restart {
		p.restarts++
	}
	if rc := client.ReattachConfig(); rc != nil {
		p.pid = rc.Pid
	}
	p.mu.Unlock()
	p.log.Info("plugin ready", "version", p.info.Version, "pid", p.pid)
	return nil
}

func (p *Plugin) describe(err error) error {
	what := fmt.Sprintf("%s plugin %q (%s)", p.spec.Kind, p.spec.Name, p.spec.Path)
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		return refusal{fmt.Sprintf("%s: the binary's sha256 does not match the checksum in the configuration; refusing to run it", what), sdk.ErrPermissionDenied}
	case errors.Is(err, context.DeadlineExceeded) || err.Error() == "timeout while waiting for plugin to start":
		return refusal{fmt.Sprintf("%s did not start within %s (start_timeout)", what, p.spec.StartTimeout), sdk.ErrDeadlineExceeded}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// dispense starts the process and returns the plugin in it, with end,
// which ends the process: gracefully (go-plugin asks the plugin to exit,
// and kills it if it does not) or at once, even while go-plugin still
// waits for its handshake (when Client.Kill would wait too). A process
// ended so exited because the host wanted it to: its exit is not logged
// as an error.
func (p *Plugin) dispense(ctx context.Context) (*plugin.Client, sdk.Plugin, func(graceful bool), error) {
	// Checked at each start, restarts included: the binary or its
	// directory may have been replaced since the daemon started.
	if _, err := Check(p.spec.Path); err != nil {
		return nil, nil, nil, err
	}
	procCtx, kill := context.WithCancel(context.Background())
	ending := &atomic.Bool{}
	cmd := exec.CommandContext(procCtx, p.spec.Path)
	cmd.Dir = p.spec.Dir
	cmd.Env = append(pluginEnv(), sdk.LogLevelEnv+"="+p.spec.LogLevel.String())
	// The kernel kills the plugin when the core dies, even by SIGKILL; the
	// SDK's parent watchdog covers the rest. In its own process group, the
	// plugin does not get the signals sent to the core's (a terminal's,
	// timeout(1)'s SIGTERM): the core stops its plugins itself, after
	// closing them, and their end is then no crash.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	// go-plugin names the logger of the plugin's stderr after the binary.
	binary := filepath.Base(cmd.Path)
	var secure *plugin.SecureConfig
	if p.spec.Checksum != nil {
		secure = &plugin.SecureConfig{Checksum: p.spec.Checksum, Hash: sha256.New()}
	}
	// Named once, by p.log: not again after the binary.
	stderr := newPluginOutput(p.log, hclog.Debug, p.spec.LogLevel)
	stderr.self = []string{binary, string(p.spec.Kind) + "-" + p.spec.Name, p.spec.Name}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake.Config(),
		VersionedPlugins: map[int]plugin.PluginSet{handshake.ProtocolVersion: pluginSet(p.spec.Kind)},
		Cmd:              cmd,
		SecureConfig:     secure,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     p.spec.StartTimeout,
		// go-plugin's parsing of stderr can panic on a line of the
		// plugin's; pluginOutput's does not (see stderr.go).
		Logger:     goPluginLogger{Logger: p.log, binary: binary, ending: ending},
		Stderr:     stderr,
		SyncStdout: newPluginOutput(p.log, hclog.Info, p.spec.LogLevel),
		SyncStderr: newPluginOutput(p.log, hclog.Info, p.spec.LogLevel),
	})
	end := func(graceful bool) {
		ending.Store(true)
		if graceful {
			client.Kill()
		}
		kill()
		client.Kill()
	}
	type result struct {
		impl sdk.Plugin
		err  error
	}
	done := make(chan result, 1)
	go func() {
		rpc, err := client.Client()
		if err != nil {
			done <- result{err: err}
			return
		}
		raw, err := rpc.Dispense(string(p.spec.Kind))
		if err != nil {
			done <- result{err: err}
			return
		}
		impl, ok := raw.(sdk.Plugin)
		if !ok {
			done <- result{err: fmt.Errorf("dispensed %T, not a plugin", raw)}
			return
		}
		done <- result{impl: impl}
	}()
	select {
	case r := <-done:
		if r.err == nil {
			r.err = p.checkInfo(r.impl.Info())
		}
		if r.err != nil {
			end(false)
			return nil, nil, nil, r.err
		}
		return client, r.impl, end, nil
	case <-ctx.Done():
		// Killing the process ends the handshake wait and the pending calls.
		end(false)
		<-done
		return nil, nil, nil, ctx.Err()
	}
}

// pluginEnv is the part of the core's environment a plugin gets: what
// programs commonly need, never the rest — the core's environment may hold
// secrets its configuration reads with env(), and plugins may be third
// parties'.
func pluginEnv() []string {
	var env []string
	for _, k := range []string{
		"PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR",
		"SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
		"http_proxy", "https_proxy", "no_proxy",
		"DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_API_VERSION", "KUBECONFIG",
	} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func (p *Plugin) checkInfo(info sdk.Info) error {
	if info.Kind != p.spec.Kind {
		return fmt.Errorf("the binary is a %s plugin, not a %s plugin", info.Kind, p.spec.Kind)
	}
	want := APIVersion(p.spec.Kind)
	if !slices.Contains(info.APIVersions, want) {
		return fmt.Errorf("the plugin speaks %s API versions %v; this core speaks %s", info.Kind, info.APIVersions, want)
	}
	if info.Name != p.spec.Name {
		p.log.Warn("the plugin calls itself by another name", "name", info.Name)
	}
	return nil
}

func pluginSet(kind sdk.Kind) plugin.PluginSet {
	switch kind {
	case sdk.KindAuth:
		return plugin.PluginSet{string(kind): &authrpc.Plugin{}}
	case sdk.KindWorkspace:
		return plugin.PluginSet{string(kind): &workspacerpc.Plugin{}}
	case sdk.KindBackend:
		return plugin.PluginSet{string(kind): &backendrpc.Plugin{}}
	}
	return plugin.PluginSet{}
}

// APIVersion is the version of the kind's contract this core speaks.
func APIVersion(kind sdk.Kind) string {
	switch kind {
	case sdk.KindAuth:
		return auth.APIVersion
	case sdk.KindWorkspace:
		return workspace.APIVersion
	case sdk.KindBackend:
		return backend.APIVersion
	}
	return ""
}

// supervise watches the current instance and replaces it when it dies.
func (p *Plugin) supervise() {
	defer close(p.stopped)
	for {
		reason := p.watch()
		if reason == nil {
			return // stopping
		}
		p.mu.Lock()
		end := p.end
		if time.Since(p.since) >= p.timing.BackoffMax {
			p.delay, p.failures = p.timing.BackoffMin, 0
		} else {
			p.failures++ // died soon after its start: a crash loop
		}
		state := StateRestarting
		if p.failures >= p.timing.FailedAfter {
			state = StateFailed
		}
		p.state, p.since, p.lastErr, p.impl, p.pid = state, time.Now(), reason, nil, 0
		p.mu.Unlock()
		p.log.Error("plugin lost; restarting it", "reason", reason)
		end(false)
		if !p.relaunch() {
			return
		}
	}
}

// watch blocks until the current instance dies (returning why) or Stop is
// called (returning nil).
func (p *Plugin) watch() error {
	p.mu.RLock()
	client, impl, pid := p.client, p.impl, p.pid
	p.mu.RUnlock()
	var exited <-chan struct{}
	if e, ok := impl.(interface{ Exited() <-chan struct{} }); ok {
		exited = e.Exited()
	}
	tick := time.NewTicker(p.timing.PingInterval)
	defer tick.Stop()
	h := health{timing: p.timing, answered: time.Now()}
	h.cpu, _, _ = processCPU(pid)
	for {
		select {
		case <-p.stop:
			return nil
		case <-exited:
			return errors.New("the plugin process exited")
		case <-tick.C:
			err := p.ping(client)
			if client.Exited() {
				return errors.New("the plugin process exited")
			}
			cpu, stopped, perr := processCPU(pid)
			verdict, dead := h.judge(time.Now(), err, cpu, stopped, perr)
			switch verdict {
			case verdictBusy:
				p.log.Warn("the plugin is busy: a health check went unanswered, but the process is working; not restarting it",
					"error", err, "unanswered_for", time.Since(h.answered).Round(time.Millisecond))
			case verdictBack:
				p.log.Info("the plugin answers health checks again")
			case verdictFailed:
				if dead == nil {
					p.log.Warn("a health check failed", "failures", h.failures, "restart_after", p.timing.PingFailures, "error", err)
				}
			}
			if dead != nil {
				return fmt.Errorf("health check failed: %w", dead)
			}
		}
	}
}

// health judges a plugin's pings: a busy plugin is not a dead one.
type health struct {
	timing Timing
	// answered is when the plugin last answered; cpu its CPU time at the
	// previous ping; failures the failures in a row; busy whether the last
	// ping went unanswered while the process worked.
	answered time.Time
	cpu      time.Duration
	failures int
	busy     bool
}

type verdict int

const (
	verdictOK verdict = iota
	verdictBack
	verdictBusy
	verdictFailed
)

// judge takes a ping's outcome and the process's CPU time and state
// (perr when they cannot be read: no /proc) and tells what it means, and
// why the plugin is dead if it is.
func (h *health) judge(now time.Time, err error, cpu time.Duration, stopped bool, perr error) (verdict, error) {
	worked := perr == nil && !stopped && cpu > h.cpu
	if perr == nil {
		h.cpu = cpu
	}
	if err == nil {
		v := verdictOK
		if h.busy || h.failures > 0 {
			v = verdictBack
		}
		h.answered, h.failures, h.busy = now, 0, false
		return v, nil
	}
	if silent := now.Sub(h.answered); silent >= h.timing.BusyTimeout {
		return verdictFailed, fmt.Errorf("no health check answered for %s, the longest a busy plugin may go without answering: %w",
			silent.Round(time.Second), err)
	}
	if worked {
		// Not a failure, and not a reason to forgive earlier ones either.
		h.busy = true
		return verdictBusy, nil
	}
	h.busy = false
	h.failures++
	why := "the process did no work meanwhile"
	switch {
	case perr != nil:
		why = "the process's CPU time is unknown: " + perr.Error()
	case stopped:
		why = "the process is stopped"
	}
	if h.failures >= h.timing.PingFailures {
		return verdictFailed, fmt.Errorf("%d in a row, the last: %w (%s)", h.failures, err, why)
	}
	return verdictFailed, nil
}

func (p *Plugin) ping(client *plugin.Client) error {
	if client.Exited() {
		return errors.New("the plugin process exited")
	}
	rpc, err := client.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timing.PingTimeout)
	defer cancel()
	if gc, ok := rpc.(*plugin.GRPCClient); ok {
		// go-plugin's own Ping has no deadline: asked directly, the call
		// ends with its timeout instead of waiting for the process.
		_, err := healthpb.NewHealthClient(gc.Conn).Check(ctx, &healthpb.HealthCheckRequest{Service: plugin.GRPCServiceName})
		if ctx.Err() != nil {
			return fmt.Errorf("no answer within %s", p.timing.PingTimeout)
		}
		return err
	}
	done := make(chan error, 1)
	go func() { done <- rpc.Ping() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer within %s", p.timing.PingTimeout)
	}
}

// relaunch starts the plugin again with exponential back-off until it works
// or Stop is called; false means stopping.
func (p *Plugin) relaunch() bool {
	for {
		// Jitter keeps several plugins that died together from restarting
		// in lockstep.
		wait := p.delay/2 + rand.N(p.delay/2+1)
		select {
		case <-p.stop:
			return false
		case <-time.After(wait):
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-p.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := p.launch(ctx, true)
		cancel()
		p.delay = min(p.delay*2, p.timing.BackoffMax)
		if err == nil {
			return true
		}
		p.failures++
		p.mu.Lock()
		p.lastErr = err
		if p.failures >= p.timing.FailedAfter && p.state != StateFailed {
			p.state, p.since = StateFailed, time.Now()
		}
		p.mu.Unlock()
		p.log.Error("plugin restart failed", "failures", p.failures, "error", err)
	}
}

// closeTimeout bounds a plugin's Close when the host stops it.
const closeTimeout = 5 * time.Second

// Stop stops supervising and ends the plugin process. A back-end plugin
// that implements backend.Closer is closed first, so that it releases its
// clients; its services keep running.
func (p *Plugin) Stop() {
	p.mu.Lock()
	select {
	case <-p.stop:
		p.mu.Unlock()
		<-p.stopped
		return
	default:
		close(p.stop)
	}
	p.mu.Unlock()
	<-p.stopped
	p.mu.Lock()
	end, impl := p.end, p.impl
	p.state, p.since, p.impl = StateStopped, time.Now(), nil
	p.mu.Unlock()
	// No new call reaches the plugin from here on (Impl refuses): Close
	// is its last.
	if c, ok := impl.(backend.Closer); ok {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		if err := c.Close(ctx); err != nil && !errors.Is(err, sdk.ErrUnsupported) {
			p.log.Warn("the plugin did not close cleanly", "error", err)
		}
		cancel()
	}
	if end != nil {
		end(true) // gracefully first: the plugin may have work to finish
	}
}

// Status reports the plugin's state.
func (p *Plugin) Status() Status {
	p.mu.RLock()
	defer p.mu.RUnlock()
	s := Status{Kind: p.spec.Kind, Name: p.spec.Name, Version: p.info.Version, State: p.state,
		Since: p.since, Restarts: p.restarts, PID: p.pid}
	if p.lastErr != nil {
		s.LastError = p.lastErr.Error()
	}
	return s
}

// Impl returns the current instance, or an error wrapping
// sdk.ErrUnavailable while the plugin is not ready.
func (p *Plugin) Impl() (sdk.Plugin, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.state != StateReady || p.impl == nil {
		return nil, fmt.Errorf("%s plugin %q is %s: %w", p.spec.Kind, p.spec.Name, p.state, sdk.ErrUnavailable)
	}
	return p.impl, nil
}
