package state

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/zoe-project/zoe/sdk/auth"
)

// Status is the state of an execution (zoe-original.md §4.1, with
// "cleaning up" spelt cleaning_up).
type Status string

// Execution statuses. The first five are active: the execution holds, or is
// about to hold, resources and counts against its owner's quota.
const (
	StatusSubmitted  Status = "submitted"
	StatusQueued     Status = "queued"
	StatusStarting   Status = "starting"
	StatusRunning    Status = "running"
	StatusCleaningUp Status = "cleaning_up"
	StatusTerminated Status = "terminated"
	StatusError      Status = "error"
)

// Statuses returns every execution status, active ones first.
func Statuses() []Status {
	return []Status{StatusSubmitted, StatusQueued, StatusStarting, StatusRunning,
		StatusCleaningUp, StatusTerminated, StatusError}
}

// ActiveStatuses returns the statuses of executions that count against a
// quota.
func ActiveStatuses() []Status { return Statuses()[:5] }

// Valid says whether s is one of Statuses.
func (s Status) Valid() bool { return slices.Contains(Statuses(), s) }

// Active says whether s is one of ActiveStatuses.
func (s Status) Active() bool { return slices.Contains(ActiveStatuses(), s) }

// ServiceStatus is Zoe's view of a service. The original's states map as
// created→created, runnable→created (placement is the scheduler's memory,
// not stored), starting→starting, active→running, terminating→stopping,
// inactive→stopped, error→error.
type ServiceStatus string

// Service statuses.
const (
	// ServiceCreated: inserted with its execution, not placed or spawned yet.
	ServiceCreated ServiceStatus = "created"
	// ServiceStarting: the back-end is spawning it.
	ServiceStarting ServiceStatus = "starting"
	// ServiceRunning: spawned; node, IP and endpoints are known.
	ServiceRunning ServiceStatus = "running"
	// ServiceStopping: termination requested and in progress.
	ServiceStopping ServiceStatus = "stopping"
	// ServiceStopped: not running (exited, terminated or deallocated).
	ServiceStopped ServiceStatus = "stopped"
	// ServiceError: spawning failed; ErrorMessage says why.
	ServiceError ServiceStatus = "error"
)

// ServiceStatuses returns every service status.
func ServiceStatuses() []ServiceStatus {
	return []ServiceStatus{ServiceCreated, ServiceStarting, ServiceRunning,
		ServiceStopping, ServiceStopped, ServiceError}
}

// Valid says whether s is one of ServiceStatuses.
func (s ServiceStatus) Valid() bool { return slices.Contains(ServiceStatuses(), s) }

// User is someone the auth plugin accepted at least once.
type User struct {
	Username string
	// Role is the effective role, the one that decides what the user may do
	// and their default quota: the role an admin set in Zoe (UserUpdate.Role)
	// when there is one, else AuthRole.
	Role auth.Role
	// AuthRole is the role the auth plugin gave at the last login.
	AuthRole auth.Role
	Groups   []string
	// UID and GID are the POSIX ids, nil when the auth source does not know
	// them.
	UID, GID *uint32
	// Email is the effective address: the one an admin set
	// (UserUpdate.Email) when there is one, else AuthEmail.
	Email string
	// AuthEmail is the address the auth plugin gave at the last login.
	AuthEmail string
	Enabled   bool
	// Quota names the user's quota; "" means the default of the effective
	// role (DefaultQuotaName(Role)).
	Quota     string
	CreatedAt time.Time
	LastLogin time.Time
}

// UserUpdate changes the fields that are not nil. They are Zoe's own:
// logins (RecordLogin) leave them alone.
type UserUpdate struct {
	// Role overrides the auth plugin's role (User.AuthRole) until
	// ClearRole.
	Role *auth.Role
	// ClearRole drops the override: the user has the auth plugin's role
	// again. It wins over Role.
	ClearRole bool
	Enabled   *bool
	// Quota "" returns the user to the effective role's default quota.
	Quota *string
	// Email overrides the auth source's address (User.AuthEmail); ""
	// drops the override. It must pass CheckEmail.
	Email *string
}

// Forgotten is what ForgetUser removed of a user.
type Forgotten struct {
	// Tokens is how many tokens were deleted.
	Tokens int64
	// RoleOverride and Quota are the overrides that were cleared, "" for
	// none.
	RoleOverride auth.Role
	Quota        string
	Email        string
}

// Usage is what a user's active executions take of their quota: how
// many there are and what they reserve.
type Usage struct {
	Executions int
	Cores      float64
	Memory     int64 // bytes
}

// Quota bounds what one user may run at a time; 0 means unlimited for every
// field.
type Quota struct {
	Name string
	// ConcurrentExecutions is the number of active executions.
	ConcurrentExecutions int
	// Cores and Memory (bytes) bound the sum of the reservations of the
	// active executions.
	Cores  float64
	Memory int64
	// RuntimeLimit is how long an execution may stay active, counted from its
	// submission; whole seconds. The store keeps it, the daemon enforces it.
	RuntimeLimit time.Duration
}

// DefaultQuotaName is the name of the quota of users of (effective) role r
// who have no quota of their own. The first migration creates one per role: guest (one
// execution at a time), user (five) and admin (unlimited); they can be
// changed but not deleted.
func DefaultQuotaName(r auth.Role) string { return string(r) }

// Execution is one run of a ZApp.
type Execution struct {
	// ID grows monotonically and is never reused: it ends up in DNS names.
	ID    int64
	Owner string
	Name  string
	// Description is the validated ZApp, stored byte for byte.
	Description json.RawMessage
	Status      Status
	Size        int64
	// Cores and Memory (bytes) are the reservations the quota counts.
	Cores        float64
	Memory       int64
	ErrorMessage string
	ExitCode     *int
	SubmittedAt  time.Time
	StartedAt    *time.Time
	EndedAt      *time.Time
	// NetworkID is the back-end's id of the execution's network, "" while
	// it has none (SetNetwork).
	NetworkID string
}

// NewExecution is what CreateExecution inserts.
type NewExecution struct {
	Owner, Name string
	// Description must be valid JSON; empty means {}.
	Description json.RawMessage
	Size        int64
	Cores       float64
	Memory      int64
	Services    []NewService
}

// NewService is one service instance of a new execution.
type NewService struct {
	Name         string // the instance, e.g. spark-worker1; unique in the execution
	Group        string // the ZApp service it is an instance of
	Essential    bool
	StartupOrder int
	// Description is the expanded instance; empty means {}.
	Description json.RawMessage
}

// Handle is a back-end's opaque reference to a running service.
type Handle struct {
	// Version is the back-end's format version of Data.
	Version uint32
	// ID is a human-readable identifier (a container id, a pod name).
	ID   string
	Data []byte
}

// Service is one service instance of an execution.
type Service struct {
	ID            int64
	ExecutionID   int64
	Name          string
	Group         string
	Essential     bool
	Status        ServiceStatus
	BackendStatus string
	Handle        Handle
	Node          string
	IP            string
	ExitCode      *int
	ErrorMessage  string
	RestartCount  int
	StartupOrder  int
	Description   json.RawMessage
}

// Placement is a service of an execution placed on a node (PlaceServices).
type Placement struct {
	ServiceID int64
	Node      string
	// Reason is recorded in the service's event.
	Reason string
}

// Started is what RecordStarted records of a service the back-end runs.
type Started struct {
	Handle        Handle
	Node          string
	IP            string
	BackendStatus string
	// Endpoints replace the service's, checked as SetEndpoints checks them.
	Endpoints []Endpoint
	// Reason is recorded in the event.
	Reason string
}

// StartedService is a service to record started (RecordStartedMany).
type StartedService struct {
	ServiceID int64
	Started
}

// Endpoint is a port of a service and where it can be reached.
type Endpoint struct {
	ServiceID int64
	// ServiceName is filled in by Endpoints; SetEndpoints ignores it.
	ServiceName     string
	Name            string // unique in the service
	Port            int
	Protocol        string // tcp or udp
	ExternalAddress string
	ExternalPort    int
	URL             string
}

// Event is one step of an execution's timeline: a status change of the
// execution (ServiceName "") or of one of its services, and why.
type Event struct {
	// ID is global across executions, grows monotonically in the order the
	// events commit, and is never reused, even after DeleteExecution: a
	// client of the event feed resumes from the last id it saw
	// (EventsAfter).
	ID          int64
	ExecutionID int64
	// Owner is the owner of the execution.
	Owner       string
	ServiceName string
	Time        time.Time
	From, To    string // From is "" for the creation
	Reason      string
}

// Token is an API token. The store never sees the token itself, only its
// hash, computed by the API.
type Token struct {
	ID        int64
	Username  string
	Name      string // unique per user
	Hash      []byte
	CreatedAt time.Time
	ExpiresAt *time.Time // nil: never
	LastUsed  *time.Time // nil: never used
}

// Expired says whether the token is no longer valid at now.
func (t Token) Expired(now time.Time) bool {
	return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)
}

// NewToken is what CreateToken inserts.
type NewToken struct {
	Username, Name string
	Hash           []byte
	ExpiresAt      *time.Time
	// Max, when not 0, bounds the user's unexpired tokens, this one
	// included: at the bound, the oldest tokens whose names start with
	// Evictable (not "") are removed to make room, and without one to
	// remove CreateToken fails with sdk.ErrResourceExhausted.
	Max       int
	Evictable string
}

// Filter selects executions for ListExecutions. Zero fields select all.
type Filter struct {
	Owner    string
	Statuses []Status
	// Name selects executions whose name contains it (case-sensitive).
	Name string
	// Limit is the page size: 0 means DefaultLimit, more than MaxLimit means
	// MaxLimit.
	Limit int
	// Cursor is the next value of the previous page; "" for the first page.
	Cursor string
}

// Page sizes of ListExecutions.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// EventFilter selects events for EventsAfter. Zero fields select all.
type EventFilter struct {
	// Owner selects the events of the user's executions.
	Owner       string
	ExecutionID int64
	// Through, when not 0, is the highest id returned: a reader that took
	// LastEventID first knows every id up to it is settled, and may move
	// its cursor there even when none of those events was its own.
	Through int64
	// Limit is the most events returned: 0 means DefaultEventLimit, more
	// than MaxEventLimit means MaxEventLimit.
	Limit int
}

// Batch sizes of EventsAfter.
const (
	DefaultEventLimit = 500
	MaxEventLimit     = 5000
)

// ExecutionChange is what Transition changes besides the status.
type ExecutionChange struct {
	// Reason is recorded in the event.
	Reason       string
	ErrorMessage *string
	ExitCode     *int
	// Started and Ended set started_at and ended_at to now.
	Started, Ended bool
	// NetworkID, when not empty, records the execution's network id (as
	// SetNetwork) in the same transaction; only with an active to.
	NetworkID string
}

// ServiceChange is what TransitionService changes besides the status.
type ServiceChange struct {
	Reason        string
	ErrorMessage  *string
	ExitCode      *int
	BackendStatus *string
}

// ServiceUpdate changes the non-nil fields of a service, not its status.
type ServiceUpdate struct {
	BackendStatus *string
	Handle        *Handle
	Node          *string
	IP            *string
	ExitCode      *int
	// ClearExitCode removes the exit code (a restarted service); it wins
	// over ExitCode.
	ClearExitCode bool
	ErrorMessage  *string
	RestartCount  *int
}
