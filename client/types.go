package client

import (
	"encoding/json"
	"time"
)

// The JSON documents of Zoe's API v1. The server (core/api) encodes these
// very types, so a field added here is added to both sides.

// Info is GET /api/v1/info.
type Info struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	APIVersion     string `json:"api_version"`
	DeploymentName string `json:"deployment_name"`
}

// Error is the body of every error response.
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody says what went wrong. Code is one of the Code* constants.
type ErrorBody struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Details []Detail `json:"details,omitempty"`
}

// Detail is one problem of an invalid request: Path is a JSON path into
// the request's body (for a ZApp description, into the description), ""
// for the whole body.
type Detail struct {
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// Error codes and their HTTP statuses.
const (
	CodeInvalidArgument  = "invalid_argument"   // 400
	CodeUnauthenticated  = "unauthenticated"    // 401
	CodePermissionDenied = "permission_denied"  // 403
	CodeNotFound         = "not_found"          // 404
	CodeMethodNotAllowed = "method_not_allowed" // 405
	CodeConflict         = "conflict"           // 409: the state does not allow it
	CodeQuotaExceeded    = "quota_exceeded"     // 409
	CodeTooLarge         = "too_large"          // 413
	// CodeUnsupportedMediaType: a body that is not sent as JSON.
	CodeUnsupportedMediaType = "unsupported_media_type" // 415
	CodeUnavailable          = "unavailable"            // 503: a plugin or the store does not answer; 504: too late
	// CodeUnsupported: what was asked is valid, but this Zoe's plugins
	// cannot do it.
	CodeUnsupported     = "unsupported"       // 501
	CodeInternal        = "internal"          // 500: a bug, never bad input
	CodeTooManyRequests = "too_many_requests" // 429: failed logins; see Retry-After
)

// Health is GET /api/v1/health. Anonymous callers and non-admins get
// Status only; admins get the details.
type Health struct {
	Status  string         `json:"status"` // ok or degraded
	State   *StoreHealth   `json:"state,omitempty"`
	Plugins []PluginStatus `json:"plugins,omitempty"`
}

// StoreHealth tells whether the state store answers.
type StoreHealth struct {
	Store         string `json:"store"`
	SchemaVersion int    `json:"schema_version,omitempty"`
	Error         string `json:"error,omitempty"`
}

// PluginStatus is the state of one plugin process (GET /api/v1/plugins).
type PluginStatus struct {
	Kind      string    `json:"kind"`
	Name      string    `json:"name"`
	Version   string    `json:"version"`
	State     string    `json:"state"` // starting, ready, restarting, failed, stopped
	Since     time.Time `json:"since"`
	Restarts  int       `json:"restarts"`
	LastError string    `json:"last_error,omitempty"`
	PID       int       `json:"pid,omitempty"`
}

// Login is the body of POST /api/v1/sessions.
type Login struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// TokenName names the token in the list of tokens; default
	// "session-<time>". Unique per user.
	TokenName string `json:"token_name,omitempty"`
	// TTL is the token's lifetime in seconds; 0 means the server's default
	// (24 h); at most 30 days.
	TTL int64 `json:"ttl,omitempty"`
}

// Session is the answer of POST /api/v1/sessions: Token is shown once and
// goes in an "Authorization: Bearer" header.
type Session struct {
	Token     string    `json:"token"`
	TokenInfo TokenInfo `json:"token_info"`
	User      User      `json:"user"`
}

// TokenInfo describes a token without the token itself.
type TokenInfo struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	LastUsed  *time.Time `json:"last_used,omitempty"`
}

// TokenList is GET /api/v1/tokens.
type TokenList struct {
	Tokens []TokenInfo `json:"tokens"`
}

// User is a user of Zoe (GET /api/v1/me, /api/v1/users/{name}).
type User struct {
	Username string `json:"username"`
	Role     string `json:"role"`
	// AuthRole is the role the auth plugin gives; Role differs when an
	// admin changed it.
	AuthRole string   `json:"auth_role,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	UID      *uint32  `json:"uid,omitempty"`
	GID      *uint32  `json:"gid,omitempty"`
	// Email is the address notifications go to: the one an admin set
	// when there is one, else AuthEmail.
	Email string `json:"email,omitempty"`
	// AuthEmail is the address the auth plugin gives.
	AuthEmail string    `json:"auth_email,omitempty"`
	Enabled   bool      `json:"enabled"`
	Quota     string    `json:"quota"` // the quota that applies (the role's default when none is set)
	CreatedAt time.Time `json:"created_at"`
	LastLogin time.Time `json:"last_login"`
}

// UserList is GET /api/v1/users.
type UserList struct {
	Users []User `json:"users"`
}

// UserUpdate is the body of PATCH /api/v1/users/{name}; absent fields are
// left alone. Role "" returns the user to the auth plugin's role, Quota ""
// to the role's default quota, Email "" to the auth plugin's address.
type UserUpdate struct {
	Role    *string `json:"role,omitempty"`
	Enabled *bool   `json:"enabled,omitempty"`
	Quota   *string `json:"quota,omitempty"`
	// Email overrides the auth plugin's address: a bare address such as
	// ada@example.org, at most 254 bytes.
	Email *string `json:"email,omitempty"`
}

// Quota bounds what one user may run at a time; 0 means unlimited.
type Quota struct {
	Name                 string  `json:"name"`
	ConcurrentExecutions int     `json:"concurrent_executions"`
	Cores                float64 `json:"cores"`
	Memory               int64   `json:"memory"`        // bytes
	RuntimeLimit         int64   `json:"runtime_limit"` // seconds
}

// QuotaUse is GET /api/v1/me/quota: the caller's quota and what their
// active executions take of it.
type QuotaUse struct {
	Quota Quota `json:"quota"`
	Used  Usage `json:"used"`
}

// Usage is what active executions take: how many, and the cores and
// memory (bytes) they reserve, counted as the quota check counts them.
type Usage struct {
	Executions int     `json:"executions"`
	Cores      float64 `json:"cores"`
	Memory     int64   `json:"memory"`
}

// QuotaList is GET /api/v1/quotas.
type QuotaList struct {
	Quotas []Quota `json:"quotas"`
}

// StartExecution is the body of POST /api/v1/executions: either a ZApp
// description or a shop entry, with the execution's name (default: the
// ZApp's name).
type StartExecution struct {
	Name        string          `json:"name,omitempty"`
	Description json.RawMessage `json:"description,omitempty"`
	Shop        *ShopStart      `json:"shop,omitempty"`
}

// ShopStart starts a shop entry with values for its parameters, keyed by
// ShopParameter.Key, and the resources of its services, keyed by service
// name and set after the parameters. Guests may not set resources.
type ShopStart struct {
	ID         string                      `json:"id"`
	Parameters map[string]string           `json:"parameters,omitempty"`
	Resources  map[string]ServiceResources `json:"resources,omitempty"`
}

// ServiceResources is what each instance of a service reserves, as the
// ZApp format writes it: Memory in bytes (resources.memory.min), Cores a
// number (resources.cores.min). An absent value keeps the entry's; a limit
// (max) below the new value is raised to it. Values are checked as a ZApp's
// are: problems have the paths shop.resources.<service>.memory and .cores.
type ServiceResources struct {
	Memory *int64   `json:"memory,omitempty"`
	Cores  *float64 `json:"cores,omitempty"`
}

// Execution is one run of a ZApp. List answers leave out Description,
// Services, Endpoints and Events.
type Execution struct {
	ID     int64  `json:"id"`
	Owner  string `json:"owner"`
	Name   string `json:"name"`
	Status string `json:"status"`
	// WaitingReason says why an active execution waits: for room when it
	// is queued, or before trying again a start or a clean-up that failed.
	WaitingReason string          `json:"waiting_reason,omitempty"`
	ErrorMessage  string          `json:"error_message,omitempty"`
	ExitCode      *int            `json:"exit_code,omitempty"`
	Size          int64           `json:"size"`
	Cores         float64         `json:"cores"`
	Memory        int64           `json:"memory"`
	SubmittedAt   time.Time       `json:"submitted_at"`
	StartedAt     *time.Time      `json:"started_at,omitempty"`
	EndedAt       *time.Time      `json:"ended_at,omitempty"`
	Description   json.RawMessage `json:"description,omitempty"`
	Services      []Service       `json:"services,omitempty"`
	Endpoints     []Endpoint      `json:"endpoints,omitempty"`
	Events        []Event         `json:"events,omitempty"`
}

// ExecutionList is GET /api/v1/executions: newest first; NextCursor is ""
// after the last page.
type ExecutionList struct {
	Executions []Execution `json:"executions"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// Service is one service instance of an execution (GET /api/v1/services/{id}).
type Service struct {
	ID            int64  `json:"id"`
	ExecutionID   int64  `json:"execution_id"`
	Name          string `json:"name"`
	Group         string `json:"group"`
	Essential     bool   `json:"essential"`
	Status        string `json:"status"`
	BackendStatus string `json:"backend_status,omitempty"`
	Node          string `json:"node,omitempty"`
	IP            string `json:"ip,omitempty"`
	ExitCode      *int   `json:"exit_code,omitempty"`
	ErrorMessage  string `json:"error_message,omitempty"`
	RestartCount  int    `json:"restart_count"`
	StartupOrder  int    `json:"startup_order"`
}

// Endpoint is where a service's port can be reached.
type Endpoint struct {
	Service         string `json:"service"`
	Name            string `json:"name"`
	Port            int    `json:"port"`
	Protocol        string `json:"protocol"`
	ExternalAddress string `json:"external_address,omitempty"`
	ExternalPort    int    `json:"external_port,omitempty"`
	URL             string `json:"url,omitempty"`
}

// Event is one step of an execution's timeline; in the event stream
// (GET /api/v1/events) it also says whose execution it is.
type Event struct {
	ID          int64     `json:"id"`
	ExecutionID int64     `json:"execution_id"`
	Owner       string    `json:"owner,omitempty"`
	Time        time.Time `json:"time"`
	Service     string    `json:"service,omitempty"` // "" for the execution itself
	From        string    `json:"from,omitempty"`
	To          string    `json:"to"`
	Reason      string    `json:"reason,omitempty"`
}

// ShopEntry is an entry of the ZApp shop (GET /api/v1/shop/{id}; the list
// leaves out DescriptionHTML, Parameters' descriptions and Description).
type ShopEntry struct {
	ID              string          `json:"id"`
	Category        string          `json:"category"`
	Name            string          `json:"name"`
	HasLogo         bool            `json:"has_logo"`
	Labels          []string        `json:"labels,omitempty"`
	DescriptionHTML string          `json:"description_html,omitempty"`
	Parameters      []ShopParameter `json:"parameters,omitempty"`
	// Description is the entry's ZApp description as it runs without
	// parameters.
	Description json.RawMessage `json:"description,omitempty"`
}

// ShopParameter is a value a user may set when starting a shop entry.
type ShopParameter struct {
	Key          string  `json:"key"`
	Kind         string  `json:"kind"` // environment, command or service_count
	Name         string  `json:"name"`
	ReadableName string  `json:"readable_name"`
	Description  string  `json:"description,omitempty"`
	Type         string  `json:"type"` // string or int
	Min          int64   `json:"min,omitempty"`
	Max          int64   `json:"max,omitempty"`
	Step         int64   `json:"step,omitempty"`
	Default      *string `json:"default"`
}

// ShopList is GET /api/v1/shop.
type ShopList struct {
	Entries []ShopEntry `json:"entries"`
}

// Stats is GET /api/v1/stats: every signed-in user sees the queue (the
// owner and name of other users' executions left out); admins also see the
// running executions and the nodes.
type Stats struct {
	Queue   []QueueEntry `json:"queue"`
	Running []Execution  `json:"running,omitempty"`
	Nodes   []Node       `json:"nodes,omitempty"`
}

// QueueEntry is a waiting execution: Position 1 is scheduled next.
type QueueEntry struct {
	Position    int       `json:"position"`
	ExecutionID int64     `json:"execution_id"`
	Owner       string    `json:"owner,omitempty"`
	Name        string    `json:"name,omitempty"`
	Status      string    `json:"status"`
	SubmittedAt time.Time `json:"submitted_at"`
	Reason      string    `json:"reason,omitempty"`
}

// Node is a back-end node with its capacity and what is reserved on it.
type Node struct {
	Name        string   `json:"name"`
	Address     string   `json:"address,omitempty"`
	State       string   `json:"state"` // ready, unreachable, disabled
	StateDetail string   `json:"state_detail,omitempty"`
	Cores       float64  `json:"cores"`
	Memory      int64    `json:"memory"`
	Labels      []string `json:"labels,omitempty"`
	// CoresReserved and MemoryReserved are reserved by whatever runs on the
	// node; ZoeServices counts Zoe's running services placed on it.
	CoresReserved  float64 `json:"cores_reserved"`
	MemoryReserved int64   `json:"memory_reserved"`
	ZoeServices    int     `json:"zoe_services"`
}

// PluginList is GET /api/v1/plugins.
type PluginList struct {
	Plugins []PluginStatus `json:"plugins"`
}
