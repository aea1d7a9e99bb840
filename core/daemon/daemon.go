// Package daemon runs Zoe's core: it loads the configuration, starts the
// plugins and serves the API until it is told to stop.
package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/api"
	"github.com/zoe-project/zoe/core/config"
	"github.com/zoe-project/zoe/core/engine"
	"github.com/zoe-project/zoe/core/httplimit"
	"github.com/zoe-project/zoe/core/logs"
	"github.com/zoe-project/zoe/core/pluginhost"
	"github.com/zoe-project/zoe/core/proxy"
	"github.com/zoe-project/zoe/core/scheduler"
	"github.com/zoe-project/zoe/core/shop"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/web"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

// Options of a daemon run.
type Options struct {
	ConfigFile string
	// Executable is the zoe binary's path; its directory is the default
	// plugin directory.
	Executable string
	Version    string
	// Diagnostics receives configuration problems, rendered with the
	// source lines they point at.
	Diagnostics io.Writer
	// LogOutput receives the daemon's log.
	LogOutput io.Writer
	// Ready, when not nil, is called with the API's address once it serves.
	Ready  func(addr net.Addr)
	Timing pluginhost.Timing
	// API, when not nil, adjusts the API's configuration (tests shorten
	// its timings).
	API func(*api.Config)
	// TakeOver (zoe server -take-over) removes the services of this
	// deployment that other stores created, instead of refusing to start
	// (see claimDeployment).
	TakeOver bool
}

// ErrInvalidConfig means the configuration was refused; the diagnostics
// have been written.
var ErrInvalidConfig = errors.New("invalid configuration")

// Validate checks a configuration file, plugins included, without serving.
func Validate(ctx context.Context, opts Options) error {
	cfg, diags := check(ctx, opts)
	return report(opts, cfg, diags)
}

// check is everything `zoe config validate` checks, and what `zoe server`
// checks before it creates anything: the file, every plugin (started to
// check its configuration, without side effects, and stopped) and the
// rules of a served file. Both report the same diagnostics for the same
// file, and a refused file leaves nothing behind: no data directory, no
// database, no plugin process.
func check(ctx context.Context, opts Options) (*config.Config, hcl.Diagnostics) {
	cfg, diags := config.Load(opts.ConfigFile)
	// Plugins are checked even when core attributes are wrong, so that one
	// run reports every problem of the file; after a syntax error there are
	// none to check.
	level := hclog.LevelFromString(cfg.LogLevel)
	if level < hclog.Warn {
		level = hclog.Warn // the plugins' starts and stops are noise here
	}
	plugins, d := StartPlugins(ctx, newLogger(opts, level.String()), cfg, opts.Executable, true, opts.Timing)
	plugins.Stop()
	diags = append(diags, d...)
	diags = append(diags, checkContainers(cfg, plugins, opts.Executable)...)
	if !diags.HasErrors() || len(cfg.Plugins) > 0 {
		diags = append(diags, checkServing(cfg)...)
	}
	return cfg, diags
}

// Run serves until ctx is done.
func Run(ctx context.Context, opts Options) error {
	// Everything `zoe config validate` checks, before anything is created.
	cfg, checked := check(ctx, opts)
	if err := report(opts, cfg, checked); err != nil {
		return err
	}
	log := newLogger(opts, cfg.LogLevel)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory (data_dir in %s): %w", cfg.File, err)
	}
	store, err := state.Open(ctx, cfg.State, cfg.DeploymentName, log.Named("state"))
	if err != nil {
		return fmt.Errorf("state store (state in %s): %w", cfg.File, err)
	}
	defer store.Close()
	log.Info("state store open", "store", cfg.State.String())
	// The API deletes executions, the engine moves them: both logged.
	store = engine.WithLifeLog(log.Named("engine"), store)
	var zshop *shop.Shop
	if cfg.ShopDir != "" {
		// A broken entry hides only itself and is logged by the shop.
		limits := zapp.Limits{MaxCores: cfg.Limits.MaxServiceCores, MaxMemory: cfg.Limits.MaxServiceMemory}
		if zshop, err = shop.Load(cfg.ShopDir, limits, log.Named("shop")); err != nil {
			log.Error("cannot load the ZApp shop", "error", err)
			zshop = nil
		}
	}
	serviceLogs, err := logs.New(filepath.Join(cfg.DataDir, "logs"), logs.Options{
		MaxFileSize: cfg.ServiceLogs.MaxFileSize, MaxFiles: cfg.ServiceLogs.MaxFiles})
	if err != nil {
		return fmt.Errorf("service logs (under data_dir in %s): %w", cfg.File, err)
	}
	removeOrphanLogs(ctx, log, store, serviceLogs)
	plugins, d := StartPlugins(ctx, log, cfg, opts.Executable, false, opts.Timing)
	defer plugins.Stop()
	// Configured for real, a plugin may still refuse (a directory it
	// cannot create); what check reported already is not repeated.
	d = append(d, checkContainers(cfg, plugins, opts.Executable)...)
	if err := report(opts, cfg, unreported(d, checked)); err != nil {
		return err
	}

	auths := make([]api.Authenticator, len(plugins.Auth))
	for i, a := range plugins.Auth {
		auths[i] = a
	}
	apiCfg := api.Config{
		Info:  client.Info{Name: "zoe", Version: opts.Version, APIVersion: "v1", DeploymentName: cfg.DeploymentName},
		Store: store, StoreName: cfg.State.String(), Plugins: statuses(plugins.All), Auth: auths,
		Logs: serviceLogs,
	}
	if zshop != nil {
		apiCfg.Shop = zshop
	}
	// The engine asks the API for the owners as their source has them
	// now; it is created first, so it reaches the API once it exists.
	idents := &identities{}
	if plugins.Backend != nil && plugins.Workspace != nil {
		eng, err := newEngine(ctx, log, cfg, store, plugins, serviceLogs, opts.Executable, idents)
		if err != nil {
			return err
		}
		if err := claimDeployment(ctx, log, eng, cfg.File, opts.TakeOver); err != nil {
			return err
		}
		engCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
		engDone := make(chan struct{})
		go func() {
			defer close(engDone)
			if err := eng.Run(engCtx); err != nil {
				log.Error("lifecycle engine", "error", err)
			}
		}()
		// Deferred after the plugins' Stop, so run before it: the engine
		// stops first, the services keep running.
		defer func() {
			stopEngine()
			<-engDone
		}()
		apiCfg.Engine = eng
	}
	if cfg.Notifications != nil {
		stopNotify, err := startNotifier(ctx, log.Named("notify"), store, cfg.Notifications)
		if err != nil {
			return fmt.Errorf("notifications (in %s): %w", cfg.File, err)
		}
		defer stopNotify()
	}
	tcp, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (listen in %s): %w", cfg.Listen, cfg.File, err)
	}
	limits := httpLimits(cfg.HTTP)
	ln := httplimit.Listen(tcp, limits)
	ln.OnRefuse = func(addr string, n uint64) {
		log.Warn("connections closed at once: too many open", "last_from", addr, "closed", n,
			"max_connections", limits.MaxConns, "max_connections_per_address", limits.MaxConnsPerAddress)
	}
	apiCfg.Connections, apiCfg.PasswordChecks, apiCfg.TrustedProxies = ln, cfg.HTTP.PasswordChecks, cfg.HTTP.TrustedProxies
	if opts.API != nil {
		opts.API(&apiCfg)
	}
	handler := api.New(log.Named("api"), apiCfg)
	idents.api.Store(handler)
	// The API's background work: auth sources' changes, expired tokens.
	apiCtx, stopAPI := context.WithCancel(context.WithoutCancel(ctx))
	apiDone := make(chan struct{})
	go func() { defer close(apiDone); handler.Run(apiCtx) }()
	defer func() { stopAPI(); <-apiDone }()
	base := cfg.HTTP.Base()
	pages := web.New(log.Named("web"), web.Config{API: handler, BasePath: base, Secure: cfg.TLS != nil,
		TrustedProxies: cfg.HTTP.TrustedProxies})
	services, err := proxy.New(log.Named("proxy"), proxy.Config{
		Prefix: proxyBase(base), Store: store, Caller: proxyCaller(handler),
		LoginURL: strings.TrimSuffix(base, "/") + "/login", Cookies: web.Cookies(),
		TrustedProxies: cfg.HTTP.TrustedProxies,
	})
	if err != nil {
		return fmt.Errorf("the proxy: %w", err)
	}
	// After the server's Shutdown (deferred later, so run earlier): it
	// does not close the WebSockets it handed over.
	defer services.Close()
	srv := httplimit.Server(mount(base, handler, pages, services), limits, log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}))
	srv.RegisterOnShutdown(handler.Shutdown)
	errc := make(chan error, 1)
	go func() {
		if cfg.TLS != nil {
			errc <- srv.ServeTLS(ln, cfg.TLS.CertFile, cfg.TLS.KeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	prefix := strings.TrimSuffix(base, "/")
	log.Info("zoe is ready", "url", fmt.Sprintf("%s://%s%s/", scheme, ln.Addr(), prefix),
		"api", fmt.Sprintf("%s://%s%s/api/v1/", scheme, ln.Addr(), prefix),
		"deployment", cfg.DeploymentName, "plugins", len(plugins.All))
	if opts.Ready != nil {
		opts.Ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("API server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		log.Warn("API shutdown", "error", err)
	}
	return nil
}

// mount serves everything under the base path: <base>/api/ is the API
// (which sees its paths without the base), <base>/proxy/ the services'
// web interfaces, anything else under <base>/ the web pages, which see
// their full paths. It routes by the cleaned path but passes the request
// on as it came: a path not in its plain form is the API's to refuse in
// its JSON shape (front.go), not a mux's to redirect.
func mount(base string, apiH, pages, services http.Handler) http.Handler {
	prefix := strings.TrimSuffix(base, "/")
	apiAt := apiH
	if prefix != "" {
		strip := http.StripPrefix(prefix, apiH)
		apiAt = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, prefix+"/") {
				strip.ServeHTTP(w, r)
			} else {
				apiH.ServeHTTP(w, r) // //zoe/api/...: refused as not plain
			}
		})
	}
	// services, core/proxy, is at <base>/proxy/: the engine's ProxyBase,
	// which the containers get as REVERSE_PROXY_PATH_<port>.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := path.Clean("/" + r.URL.Path)
		switch {
		case prefix != "" && r.URL.Path == prefix:
			http.Redirect(w, r, prefix+"/", http.StatusMovedPermanently)
		case p == prefix+"/api" || strings.HasPrefix(p, prefix+"/api/"):
			apiAt.ServeHTTP(w, r)
		case p == prefix+"/proxy" || strings.HasPrefix(p, prefix+"/proxy/"):
			services.ServeHTTP(w, r)
		case p == prefix || strings.HasPrefix(p, prefix+"/"):
			pages.ServeHTTP(w, r)
		default:
			// Outside the base path (which is not /): nothing.
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(client.Error{Error: client.ErrorBody{Code: client.CodeNotFound,
				Message: "nothing here: Zoe is served under " + prefix + "/"}})
		}
	})
}

// proxyCaller tells the proxy who sends a request, with the API's rules:
// the Authorization header or the web pages' session cookie. With a
// session, an Authorization header that is not a Zoe bearer token is the
// proxied app's own (Jupyter's "token <t>", an app's Basic login): the
// session says who the caller is, and the header, never shown to Zoe's
// auth sources, goes on to the app.
//
// A request may carry several session cookies (one planted for a longer
// path is sent first, and cookies set on another port of the host are
// sent too): the valid ones must all name the same user, or the request
// is refused; the invalid ones are ignored.
func proxyCaller(a *api.Server) func(r *http.Request) (proxy.Caller, error) {
	return func(r *http.Request) (proxy.Caller, error) {
		sessions := web.SessionTokens(r)
		h := r.Header.Get("Authorization")
		if len(sessions) > 0 && h != "" && !zoeBearer(h) {
			r = r.Clone(r.Context())
			r.Header.Del("Authorization")
			h = ""
		}
		if h != "" || len(sessions) <= 1 {
			return identify(a, r, first(sessions))
		}
		// Each is a look-up: a request may not make the daemon do many.
		if len(sessions) > maxSessionCookies {
			return proxy.Caller{}, fmt.Errorf("the request carries %d session cookies; log out and in again: %w",
				len(sessions), proxy.ErrUnauthenticated)
		}
		var who proxy.Caller
		var firstErr error
		for _, s := range sessions {
			c, err := identify(a, r, s)
			switch {
			case errors.Is(err, proxy.ErrUnauthenticated):
				firstErr = cmp.Or(firstErr, err)
			case err != nil:
				return proxy.Caller{}, err
			case who.Username == "":
				who = c
			case who != c:
				return proxy.Caller{}, fmt.Errorf("the request carries the sessions of two users (%s and %s); log out and in again: %w",
					who.Username, c.Username, proxy.ErrUnauthenticated)
			}
		}
		if who.Username == "" {
			return proxy.Caller{}, firstErr
		}
		return who, nil
	}
}

// maxSessionCookies bounds the session cookies of one request the proxy
// checks (a browser has one; a planted one for a longer path makes two).
const maxSessionCookies = 4

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// identify finds who sends r, by its Authorization header or else session.
func identify(a *api.Server, r *http.Request, session string) (proxy.Caller, error) {
	who, err := a.Identify(r, session)
	var refused *api.Refusal
	switch {
	case errors.As(err, &refused) && refused.Status == http.StatusUnauthorized:
		return proxy.Caller{}, fmt.Errorf("%s: %w", refused.Message, proxy.ErrUnauthenticated)
	case errors.As(err, &refused) && refused.Status == http.StatusForbidden:
		return proxy.Caller{}, fmt.Errorf("%s: %w", refused.Message, proxy.ErrForbidden)
	case err != nil:
		return proxy.Caller{}, err
	case who == nil:
		return proxy.Caller{}, proxy.ErrUnauthenticated
	}
	return proxy.Caller{Username: who.Username, Admin: who.Role == auth.RoleAdmin, Authorization: who.Header}, nil
}

// zoeBearer tells whether an Authorization header carries a Zoe API token.
func zoeBearer(h string) bool {
	scheme, tok, ok := strings.Cut(h, " ")
	return ok && strings.EqualFold(scheme, "Bearer") && strings.HasPrefix(strings.TrimSpace(tok), proxy.DefaultTokenPrefix)
}

// proxyBase is the path of the proxy under the base path.
func proxyBase(base string) string { return strings.TrimSuffix(base, "/") + "/proxy" }

// httpLimits are the API server's bounds: the http block's, defaults for
// what it does not set.
func httpLimits(h config.HTTP) httplimit.Limits {
	return httplimit.Limits{MaxConns: h.MaxConnections, MaxConnsPerAddress: h.MaxConnectionsPerAddress,
		MaxHeaderBytes: int(h.MaxHeaderSize), ReadHeaderTimeout: h.ReadHeaderTimeout, BodyTimeout: h.BodyTimeout,
		WriteTimeout: h.WriteTimeout, IdleTimeout: h.IdleTimeout}.WithDefaults()
}

// identities is the engine's way to the API's look-ups of users
// (engine.Identities), set once the API exists; until then a start waits.
type identities struct{ api atomic.Pointer[api.Server] }

func (i *identities) Current(ctx context.Context, username string) (state.User, error) {
	s := i.api.Load()
	if s == nil {
		return state.User{}, fmt.Errorf("the API is not ready to confirm users: %w", sdk.ErrUnavailable)
	}
	return s.Current(ctx, username)
}

func newEngine(ctx context.Context, log hclog.Logger, cfg *config.Config, store state.Store, plugins *Plugins, serviceLogs *logs.Store, exe string, idents engine.Identities) (*engine.Engine, error) {
	policy, err := scheduler.ParsePolicy(cfg.Scheduler.Policy)
	if err != nil {
		return nil, fmt.Errorf("scheduler policy in %s: %w", cfg.File, err)
	}
	placement, err := scheduler.ParsePlacement(cfg.Scheduler.Placement)
	if err != nil {
		return nil, fmt.Errorf("scheduler placement in %s: %w", cfg.File, err)
	}
	be := pluginhost.Backend{Plugin: plugins.Backend}
	// Asked once: the answer follows the plugin's configuration, which
	// stays while the daemon runs.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	caps, err := be.Capabilities(cctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("ask the back-end plugin %q what it can do: %w", plugins.Backend.Status().Name, err)
	}
	log.Info("back-end capabilities", "pulls_images", caps.PullsImages, "updater", caps.Updater, "closer", caps.Closer)
	return engine.New(log.Named("engine"), engine.Config{
		Store: store, Backend: be, Workspace: *plugins.Workspace,
		Deployment: cfg.DeploymentName, ProxyBase: proxyBase(cfg.HTTP.Base()), Policy: policy, Placement: placement, Backfill: cfg.Scheduler.Backfill,
		// A back-end that does not pull gets services only on nodes that
		// have their image.
		CanPull:    caps.PullsImages,
		Limits:     zapp.Limits{MaxCores: cfg.Limits.MaxServiceCores, MaxMemory: cfg.Limits.MaxServiceMemory},
		Containers: containerPolicy(cfg, plugins, exe),
		PidsLimit:  cfg.Containers.PidsLimit,
		Logs:       serviceLogs,
		Identities: idents,
	})
}

// claimDeployment is the check before the engine's first pass that no
// other daemon, with a store of its own, runs the deployment on the
// back-end (see the engine's ownership.go): its services are refused, or
// removed with takeOver. A back-end that cannot be asked now does not keep
// the daemon from starting: the engine leaves other stores' services alone
// anyway, and reports them once it sees them.
func claimDeployment(ctx context.Context, log hclog.Logger, eng *engine.Engine, file string, takeOver bool) error {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	err := eng.CheckOwnership(cctx)
	cancel()
	var owned *engine.OwnershipError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &owned) && takeOver:
		n, err := eng.TakeOver(ctx)
		if err != nil {
			return fmt.Errorf("take over deployment %q: removed %d services of other stores, then: %w",
				owned.Deployment, n, err)
		}
		log.Warn("took the deployment over from other stores", "deployment", owned.Deployment, "removed", n)
		return nil
	case errors.As(err, &owned):
		return fmt.Errorf("refusing to start: %w (zoe server -config %s -take-over)", err, file)
	default:
		log.Warn("cannot check that no other daemon runs this deployment; starting all the same", "error", err)
		return nil
	}
}

// checkServing holds the rules that a file must meet to be served: who
// would log in, and where would their files go.
func checkServing(cfg *config.Config) hcl.Diagnostics {
	var diags hcl.Diagnostics
	var auths, workspaces int
	for _, p := range cfg.Plugins {
		switch p.Kind {
		case "auth":
			auths++
		case "workspace":
			workspaces++
		}
	}
	whole := &hcl.Range{Filename: cfg.File, Start: hcl.InitialPos, End: hcl.InitialPos}
	if auths == 0 {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No auth block",
			Detail: `Zoe needs at least one authentication plugin, e.g. auth "file" { users_file = "users.csv" }.`, Subject: whole})
	}
	if workspaces == 0 {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No workspace block",
			Detail: `Zoe needs a workspace plugin, e.g. workspace "dir" { base_path = "/srv/zoe-workspaces" }.`, Subject: whole})
	}
	return diags
}

// unreported are the diagnostics of diags that are not in done.
func unreported(diags, done hcl.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range diags {
		if !slices.ContainsFunc(done, func(x *hcl.Diagnostic) bool { return sameDiagnostic(d, x) }) {
			out = append(out, d)
		}
	}
	return out
}

func sameDiagnostic(a, b *hcl.Diagnostic) bool {
	if a.Severity != b.Severity || a.Summary != b.Summary || a.Detail != b.Detail || (a.Subject == nil) != (b.Subject == nil) {
		return false
	}
	return a.Subject == nil || *a.Subject == *b.Subject
}

func report(opts Options, cfg *config.Config, diags hcl.Diagnostics) error {
	if len(diags) == 0 {
		return nil
	}
	if opts.Diagnostics != nil {
		var files map[string]*hcl.File
		if cfg != nil {
			files = cfg.Files
		}
		_ = config.WriteDiagnostics(opts.Diagnostics, files, diags)
	}
	if diags.HasErrors() {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, diags.Error())
	}
	return nil
}

func newLogger(opts Options, level string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "zoe", Level: hclog.LevelFromString(level), Output: opts.LogOutput})
}

type statuses []*pluginhost.Plugin

func (s statuses) Statuses() []pluginhost.Status {
	out := make([]pluginhost.Status, 0, len(s))
	for _, p := range s {
		out = append(out, p.Status())
	}
	return out
}

// removeOrphanLogs removes the logs of executions the store does not have:
// records deleted by hand, or by a Zoe that deleted the record before the
// logs (the API now removes the logs first).
func removeOrphanLogs(ctx context.Context, log hclog.Logger, store state.Store, serviceLogs *logs.Store) {
	ids, err := serviceLogs.Executions()
	if err != nil {
		log.Warn("cannot list the service logs", "error", err)
		return
	}
	if len(ids) == 0 {
		return
	}
	// The stored executions, a page at a time: one query per page rather
	// than one per log directory.
	stored := map[int64]bool{}
	f := state.Filter{Limit: state.MaxLimit}
	for {
		page, next, err := store.ListExecutions(ctx, f)
		if err != nil {
			log.Warn("cannot list the executions to find orphaned logs", "error", err)
			return
		}
		for _, ex := range page {
			stored[ex.ID] = true
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	for _, id := range ids {
		// Checked once more: an execution may have been submitted since
		// its page was read.
		if stored[id] {
			continue
		}
		if _, err := store.GetExecution(ctx, id); !errors.Is(err, sdk.ErrNotFound) {
			continue
		}
		if err := serviceLogs.RemoveExecution(id); err != nil {
			log.Warn("cannot remove the logs of a deleted execution", "execution", id, "error", err)
			continue
		}
		log.Info("removed the logs of a deleted execution", "execution", id)
	}
}
