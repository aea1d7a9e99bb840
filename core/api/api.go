// Package api serves Zoe's HTTP API v1 (the routes and documents of package
// client). Every route is declared once in routes(), with who may call it;
// authentication and authorization happen in one place (serve, in
// authz.go) before a handler runs, and the OpenAPI document is generated
// from the same table.
package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/engine"
	"github.com/zoe-project/zoe/core/httplimit"
	"github.com/zoe-project/zoe/core/logs"
	"github.com/zoe-project/zoe/core/pluginhost"
	"github.com/zoe-project/zoe/core/shop"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk/auth"
)

// Store is the part of the state store the API uses (state.Store).
type Store interface {
	RecordLogin(ctx context.Context, id auth.Identity) (state.User, error)
	SyncIdentity(ctx context.Context, id auth.Identity) (state.User, error)
	GetUser(ctx context.Context, username string) (state.User, error)
	ListUsers(ctx context.Context) ([]state.User, error)
	UpdateUser(ctx context.Context, username string, u state.UserUpdate) (state.User, error)
	ForgetUser(ctx context.Context, username string) (state.Forgotten, error)

	CreateQuota(ctx context.Context, q state.Quota) (state.Quota, error)
	GetQuota(ctx context.Context, name string) (state.Quota, error)
	ListQuotas(ctx context.Context) ([]state.Quota, error)
	UpdateQuota(ctx context.Context, q state.Quota) (state.Quota, error)
	DeleteQuota(ctx context.Context, name string) error
	EffectiveQuota(ctx context.Context, username string) (state.Quota, error)
	Usage(ctx context.Context, username string) (state.Usage, error)

	GetExecution(ctx context.Context, id int64) (state.Execution, error)
	ListExecutions(ctx context.Context, f state.Filter) ([]state.Execution, string, error)
	DeleteExecution(ctx context.Context, id int64) error
	ActiveExecutions(ctx context.Context) ([]state.Execution, error)
	Events(ctx context.Context, executionID int64) ([]state.Event, error)
	EventsAfter(ctx context.Context, afterID int64, f state.EventFilter) ([]state.Event, error)
	LastEventID(ctx context.Context) (int64, error)
	Services(ctx context.Context, executionID int64) ([]state.Service, error)
	GetService(ctx context.Context, id int64) (state.Service, error)
	Endpoints(ctx context.Context, executionID int64) ([]state.Endpoint, error)

	CreateToken(ctx context.Context, t state.NewToken) (state.Token, error)
	TokenByHash(ctx context.Context, hash []byte) (state.Token, error)
	ListTokens(ctx context.Context, username string) ([]state.Token, error)
	DeleteToken(ctx context.Context, username string, id int64) error
	TouchToken(ctx context.Context, id int64) error
	DeleteTokens(ctx context.Context, username string) (int64, error)
	PurgeExpiredTokens(ctx context.Context) (int64, error)
	TokenHolders(ctx context.Context) ([]string, error)

	SchemaVersion(ctx context.Context) (int, error)
	Version(ctx context.Context) (uint64, bool)
}

// Engine is the lifecycle engine (core/engine).
type Engine interface {
	Submit(ctx context.Context, owner, name string, description []byte) (state.Execution, error)
	Terminate(ctx context.Context, id int64, reason string) (state.Execution, error)
	// EndOwner ends every active execution of a user, in error with reason.
	EndOwner(ctx context.Context, owner, reason string) (int, error)
	// Recheck ends the active executions of a user that the container
	// policy no longer allows for their role.
	Recheck(ctx context.Context, owner string, role auth.Role) (int, error)
	WaitingReason(id int64) string
	WaitingVersion() uint64
	Queue(ctx context.Context) ([]engine.QueueEntry, error)
	Nodes(ctx context.Context) ([]engine.NodeUsage, error)
}

// Logs reads the services' stored output (core/logs).
type Logs interface {
	Read(ctx context.Context, executionID int64, service string, opts logs.ReadOptions, fn func(logs.Entry) error) error
	RemoveExecution(executionID int64) error
}

// Shop is the ZApp shop (core/shop).
type Shop interface {
	Entries(role string) []*shop.Entry
	Entry(id, role string) (*shop.Entry, bool)
	Dir() string
}

// Authenticator checks a username and password and looks users up (an
// auth plugin; see auth.Authenticator for what each method answers).
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) (auth.Identity, error)
	Lookup(ctx context.Context, username string) (auth.Identity, error)
	Generation(ctx context.Context) (uint64, error)
}

// PluginStatuses reports the state of every plugin.
type PluginStatuses interface {
	Statuses() []pluginhost.Status
}

// Config is what the API serves.
type Config struct {
	Info  client.Info
	Store Store
	// StoreName describes the store without secrets, e.g. "sqlite /var/lib/zoe/zoe.db".
	StoreName string
	Plugins   PluginStatuses
	// Auth are tried in order; the first that accepts the credentials wins.
	Auth []Authenticator
	// Engine is nil when no back-end is configured: the routes that need
	// it answer 503.
	Engine Engine
	// Logs and Shop may be nil: no logs are kept, the shop is empty.
	Logs Logs
	Shop Shop
	// EventPoll is how often an event stream looks for new events;
	// default 500 ms.
	EventPoll time.Duration
	// StreamRecheck is how often an open stream (events, a followed log)
	// checks its caller's credentials again, so that a revoked or expired
	// token, a disabled user or a demoted one loses it; default 5 s.
	StreamRecheck time.Duration
	// MaxStreamsPerUser bounds the streams (events, followed logs) one
	// user has open at once; default 16.
	MaxStreamsPerUser int
	// EventStreamLife bounds how long an event stream lasts (the client
	// resumes it with Last-Event-ID); default 1 hour.
	EventStreamLife time.Duration
	// IdentityTTL bounds how long the identity behind a token is trusted
	// without the auth plugins confirming it (Lookup): it is asked again
	// after half of it, and the user's requests are refused once it is
	// over without an answer; default DefaultIdentityTTL (1 minute).
	IdentityTTL time.Duration
	// GenerationPoll is how often Run asks the auth plugins whether their
	// users changed; default DefaultGenerationPoll (5 s).
	GenerationPoll time.Duration
	// TokenPurge is how often Run deletes expired tokens; default
	// DefaultTokenPurge (1 hour).
	TokenPurge time.Duration
	// IdentitySweep is how often Run looks up the users who hold tokens,
	// overrides or active executions, for the sources whose generation
	// says nothing (it also sweeps at its start and when a generation
	// changes); default DefaultIdentitySweep (10 minutes).
	IdentitySweep time.Duration
	// PasswordChecks bounds the password checks that run at once;
	// default the number of cores.
	PasswordChecks int
	// Throttle is the throttling of failed logins; zero: DefaultThrottle().
	Throttle Throttle
	// Connections, when not nil, counts the server's connections (shown
	// to admins).
	Connections interface{ Stats() httplimit.Stats }
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed: the client's address is then the last one it names that
	// is not a trusted proxy. Otherwise it is the TCP peer.
	TrustedProxies []netip.Prefix
}

// Server is the HTTP API.
type Server struct {
	cfg    Config
	log    hclog.Logger
	mux    *http.ServeMux
	routes []route
	creds  *credentialCache
	// idents remembers when each user's identity was last confirmed.
	idents identities
	checks sharedChecks // password checks in progress
	// passwords bounds the password checks, throttle counts the failed
	// ones (throttle.go).
	passwords *passwordQueue
	throttle  *throttle
	// openAPIBody is the encoded OpenAPI document.
	openAPIBody func() ([]byte, error)
	// touches keeps the writes of tokens' last use to one per token.
	touches touches
	// buffers holds *bytes.Buffer for encoding answers.
	buffers sync.Pool
	// csrf refuses state-changing requests a browser sends from another
	// site (a page elsewhere posting to Zoe with the user's cached
	// credentials).
	csrf *http.CrossOriginProtection
	// closing ends the streams (events, followed logs) when the HTTP
	// server shuts down: it waits for open requests, and a stream would
	// never end by itself.
	closing     chan struct{}
	closingOnce sync.Once
	// streams counts the open streams of each user (streams.go).
	streams streamCounts
	// reads keeps what most requests read, the caller's token and user
	// and pages of executions (encoded), while the store's version stays:
	// asked again and again by scripts and the web UI, they are then
	// served without reading the store or encoding again.
	reads struct {
		tokens keptCache[tokenRead]
		users  keptCache[state.User]
		pages  keptCache[[]byte]
	}
}

// New returns the API's handler.
func New(log hclog.Logger, cfg Config) *Server {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.EventPoll <= 0 {
		cfg.EventPoll = 500 * time.Millisecond
	}
	if cfg.StreamRecheck <= 0 {
		cfg.StreamRecheck = 5 * time.Second
	}
	if cfg.IdentityTTL <= 0 {
		cfg.IdentityTTL = DefaultIdentityTTL
	}
	if cfg.MaxStreamsPerUser <= 0 {
		cfg.MaxStreamsPerUser = 16
	}
	if cfg.EventStreamLife <= 0 {
		cfg.EventStreamLife = time.Hour
	}
	if cfg.GenerationPoll <= 0 {
		cfg.GenerationPoll = DefaultGenerationPoll
	}
	if cfg.TokenPurge <= 0 {
		cfg.TokenPurge = DefaultTokenPurge
	}
	if cfg.IdentitySweep <= 0 {
		cfg.IdentitySweep = DefaultIdentitySweep
	}
	s := &Server{cfg: cfg, log: log, mux: http.NewServeMux(), creds: newCredentialCache(), closing: make(chan struct{}),
		csrf:    http.NewCrossOriginProtection(),
		buffers: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
	s.passwords = newPasswordQueue(cmp.Or(max(cfg.PasswordChecks, 0), runtime.NumCPU()), maxWaitingChecks)
	s.throttle = newThrottle(cfg.Throttle, log)
	s.routes = s.table()
	s.openAPIBody = sync.OnceValues(func() ([]byte, error) {
		var buf bytes.Buffer
		err := s.encode(&buf, s.OpenAPI())
		return buf.Bytes(), err
	})
	methods := map[string][]string{}
	for _, rt := range s.routes {
		s.mux.Handle(rt.Method+" "+prefix+rt.Path, s.serve(rt))
		methods[rt.Path] = append(methods[rt.Path], rt.Method)
	}
	// Without these, a route asked with the wrong method would fall through
	// to the catch-all as "not found".
	for path, ms := range methods {
		s.mux.Handle(prefix+path, s.wrongMethod(ms))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.error(w, http.StatusNotFound, client.CodeNotFound, "no such API route: "+r.Method+" "+r.URL.Path)
	})
	return s
}

const prefix = "/api/v1"

// Shutdown ends the open streams; http.Server.RegisterOnShutdown calls it.
func (s *Server) Shutdown() { s.closingOnce.Do(func() { close(s.closing) }) }

// streamContext is the request's context, also ended by Shutdown and once
// the request's credentials, checked again every StreamRecheck, no longer
// give access a or no longer satisfy still (the caller as checked again
// may still see what the stream shows).
func (s *Server) streamContext(r *http.Request, a Access, webGuests bool, still func(now *caller) bool) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	go func() {
		t := time.NewTicker(s.cfg.StreamRecheck)
		defer t.Stop()
		for {
			select {
			case <-s.closing:
				cancel()
				return
			case <-ctx.Done():
				return
			case <-t.C:
				c, fail := s.authenticate(r.WithContext(ctx))
				if ctx.Err() != nil {
					return
				}
				if fail != nil && fail.status == http.StatusServiceUnavailable && fail.message != identityUnconfirmed {
					continue // the store or an auth plugin hiccups: not a refusal
				}
				if fail != nil || refused(a, webGuests, c) || !still(c) {
					s.log.Info("stream ended: its credentials no longer give access", "path", r.URL.Path)
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// scriptOnZoesOrigin tells whether a browser sent r for a script of a
// page of Zoe's origin (Fetch Metadata: same-origin, not a navigation).
// Zoe's pages never call the API from their scripts (they call it in
// process); the services' pages, proxied on the same origin, would, with
// whatever credentials the browser holds for it.
func scriptOnZoesOrigin(r *http.Request) bool {
	mode := r.Header.Get("Sec-Fetch-Mode")
	return r.Header.Get("Sec-Fetch-Site") == "same-origin" && mode != "" && mode != "navigate"
}

func refused(a Access, webGuests bool, c *caller) bool {
	status, _, _ := allowed(a, webGuests, c)
	return status != 0
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.csrf.Check(r); err != nil {
		drain(r)
		s.error(w, http.StatusForbidden, client.CodePermissionDenied,
			"cross-origin request refused: "+r.Method+" "+r.URL.Path+" may only be sent from Zoe's own pages or by a program")
		return
	}
	if scriptOnZoesOrigin(r) && !viaWebPages(r.Context()) {
		drain(r)
		s.error(w, http.StatusForbidden, client.CodePermissionDenied,
			"the API does not answer scripts of pages on Zoe's own origin (a proxied service's page would act as you): call it from a program, with a token")
		return
	}
	if !s.front(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) wrongMethod(allow []string) http.Handler {
	list := ""
	for i, m := range allow {
		if i > 0 {
			list += ", "
		}
		list += m
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", list)
		s.error(w, http.StatusMethodNotAllowed, client.CodeMethodNotAllowed,
			r.Method+" is not allowed on "+r.URL.Path+"; use "+list)
	})
}

// write sends v as JSON. It is encoded whole first: with its length
// known, the answer goes out in one write rather than in chunks.
func (s *Server) write(w http.ResponseWriter, code int, v any) {
	buf := s.buffers.Get().(*bytes.Buffer)
	defer s.putBuffer(buf)
	if err := s.encode(buf, v); err != nil {
		code, buf = http.StatusInternalServerError, bytes.NewBufferString(`{"error":{"code":"internal","message":"internal error"}}`+"\n")
	}
	s.writeBody(w, code, buf.Bytes())
}

// encode writes v's JSON into buf.
func (s *Server) encode(buf *bytes.Buffer, v any) error {
	err := json.NewEncoder(buf).Encode(v)
	if err != nil {
		// The API's own documents always encode; this is a bug.
		s.log.Error("encoding a response failed", "error", err)
	}
	return err
}

func (s *Server) putBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBuffer {
		buf.Reset()
		s.buffers.Put(buf)
	}
}

// writeBody sends an encoded JSON answer.
func (s *Server) writeBody(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	if _, err := w.Write(body); err != nil {
		s.log.Debug("writing a response failed", "error", err)
	}
}

// maxPooledBuffer: larger response buffers are left to the collector.
const maxPooledBuffer = 1 << 20

func (s *Server) error(w http.ResponseWriter, status int, code, message string, details ...client.Detail) {
	if status == http.StatusUnauthorized {
		// Bearer only: a Basic challenge made browsers ask for the Zoe
		// password in their own prompt on Zoe's origin, where a proxied
		// service's page could trigger it and then call the API with the
		// credentials the browser keeps. Programs send Basic unasked.
		w.Header().Set("WWW-Authenticate", `Bearer realm="zoe"`)
	}
	s.write(w, status, client.Error{Error: client.ErrorBody{Code: code, Message: message, Details: details}})
}

// drain lets the connection be reused when a handler did not read the body.
func drain(r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
}
