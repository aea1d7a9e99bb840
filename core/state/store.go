// Package state is where the Zoe core keeps everything it must not lose:
// users, quotas, executions, their services, endpoints and events, and API
// tokens. One Store interface has two implementations that behave the same:
// an embedded SQLite file (the default: nothing to install) and PostgreSQL
// (production; each deployment in its own schema, zoe_<deployment>, so that
// several deployments can share a database).
//
// A write returns once it is committed, and committed as durably as the
// database allows (SQLite: synchronous=FULL). Writes that arrive while
// another commits share the next transaction and its commit (group commit,
// each in a savepoint of its own), so that a busy daemon pays one wait for
// the disk per batch rather than per write.
//
// Errors wrap the sdk categories: sdk.ErrNotFound, ErrAlreadyExists,
// ErrInvalidArgument, ErrConflict (a lost compare-and-set, deleting an
// active execution), ErrResourceExhausted (a quota refusal) and
// ErrUnavailable (the database cannot be reached or is busy).
package state

import (
	"context"

	"github.com/zoe-project/zoe/sdk/auth"
)

// Store is the core's state. All methods are safe for concurrent use, also
// by several processes sharing one database.
type Store interface {
	// RecordLogin creates the user on first login (enabled, with the role's
	// default quota) or updates the auth role (User.AuthRole), groups, uid,
	// gid, email (User.AuthEmail: an admin's address stays) and last login. The auth plugin is the source of those
	// fields; enabled and quota are Zoe's own and left alone. The role an
	// admin set (UserUpdate.Role) stays until the source's role changes:
	// the latest change wins, so a new auth role drops the override. The
	// returned User.Role is the effective role.
	RecordLogin(ctx context.Context, id auth.Identity) (User, error)
	// SyncIdentity is RecordLogin for a user the auth plugin looked up
	// without a login: the same fields change, the last login stays, and
	// an unknown user is sdk.ErrNotFound rather than created.
	SyncIdentity(ctx context.Context, id auth.Identity) (User, error)
	GetUser(ctx context.Context, username string) (User, error)
	// ListUsers returns every user ordered by username.
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser changes Zoe's own fields of the user: the role override,
	// enabled, quota and the e-mail override (User.Email). Disabling a user deletes their tokens in the same
	// transaction.
	UpdateUser(ctx context.Context, username string, u UserUpdate) (User, error)
	// ForgetUser is for a user the auth source no longer knows: in one
	// transaction it deletes their tokens and clears Zoe's overrides of
	// them (the role override, the quota and the e-mail), so that a new account of the
	// same name inherits none of it. Enabled stays: a name an admin
	// disabled stays disabled (fail closed) until an admin enables it. An
	// unknown user is sdk.ErrNotFound.
	ForgetUser(ctx context.Context, username string) (Forgotten, error)

	CreateQuota(ctx context.Context, q Quota) (Quota, error)
	GetQuota(ctx context.Context, name string) (Quota, error)
	// ListQuotas returns every quota ordered by name.
	ListQuotas(ctx context.Context) ([]Quota, error)
	// UpdateQuota replaces the limits of the quota named q.Name.
	UpdateQuota(ctx context.Context, q Quota) (Quota, error)
	// DeleteQuota deletes a quota; its users fall back to their role's
	// default. The role defaults cannot be deleted (ErrInvalidArgument).
	DeleteQuota(ctx context.Context, name string) error
	// EffectiveQuota is the quota that applies to the user: their own, else
	// the default of their effective role (User.Role).
	EffectiveQuota(ctx context.Context, username string) (Quota, error)
	// Usage is what the user's active executions take: counted as
	// CreateExecution counts them against the quota. A user without
	// executions, known or not, uses nothing.
	Usage(ctx context.Context, username string) (Usage, error)

	// CreateExecution checks the owner's quota and inserts the execution
	// (submitted), its services (created) and a "submitted" event, all in
	// one transaction: concurrent submissions cannot exceed a quota. The
	// owner must exist and be enabled. A refusal wraps
	// sdk.ErrResourceExhausted and says which limit.
	CreateExecution(ctx context.Context, e NewExecution) (Execution, error)
	GetExecution(ctx context.Context, id int64) (Execution, error)
	// ListExecutions returns one page of executions, newest first, and the
	// cursor of the next page ("" after the last). Their Description is
	// left out (nil): GetExecution has it.
	ListExecutions(ctx context.Context, f Filter) ([]Execution, string, error)
	// ActiveExecutions returns the active executions of every user, oldest
	// first.
	ActiveExecutions(ctx context.Context) ([]Execution, error)
	// Transition moves the execution to status to if its status is one of
	// from (compare-and-set) and records an event, in one transaction. When
	// the status is another, the error wraps sdk.ErrConflict and names it.
	// A change with a NetworkID records it too (an active to only, else
	// sdk.ErrInvalidArgument): the engine records the network it created
	// with the move to starting, in one transaction; a refusal records
	// neither.
	Transition(ctx context.Context, id int64, from []Status, to Status, c ExecutionChange) (Execution, error)
	// SetNetwork records the back-end's id of the execution's network ("" to
	// forget it) in any active status, without an event: it is not a status
	// change and leaves Transition's compare-and-set alone. An inactive
	// execution is refused with sdk.ErrConflict (checked in the same
	// statement as the write): its clean-up is over, so whoever created the
	// network must remove it.
	SetNetwork(ctx context.Context, id int64, networkID string) error
	// DeleteExecution deletes an inactive execution with its services,
	// endpoints and events; an active one is refused with sdk.ErrConflict.
	DeleteExecution(ctx context.Context, id int64) error
	// Events returns the execution's timeline, oldest first.
	Events(ctx context.Context, executionID int64) ([]Event, error)
	// EventsAfter is the event feed: the events with an ID above afterID
	// that f selects, by ascending ID, at most f.Limit of them. Ids become
	// visible in order (Event.ID), so a client that asks again after the
	// last id it got misses nothing.
	EventsAfter(ctx context.Context, afterID int64, f EventFilter) ([]Event, error)
	// LastEventID is the largest event id, 0 when there is none: a feed
	// that starts now asks for the events after it.
	LastEventID(ctx context.Context) (int64, error)
	// FeedCursor is how far the feed's consumer name has read (the last
	// event id it is done with), as SetFeedCursor last recorded it; ok is
	// false when it never did.
	FeedCursor(ctx context.Context, name string) (id int64, ok bool, err error)
	// SetFeedCursor records that name is done with the events up to id.
	// A cursor only moves forward: an id below the recorded one changes
	// nothing, so that writers racing each other cannot move it back.
	SetFeedCursor(ctx context.Context, name string, id int64) error

	// Services returns the execution's services in start-up order (empty for
	// an unknown execution).
	Services(ctx context.Context, executionID int64) ([]Service, error)
	// ActiveServices returns the services of every active execution by
	// execution id, each execution's in the order Services gives, in one
	// query: the engine reads them on every pass. An active execution
	// without services has no entry.
	ActiveServices(ctx context.Context) (map[int64][]Service, error)
	GetService(ctx context.Context, id int64) (Service, error)
	// TransitionService is Transition for a service; the event goes to its
	// execution's timeline.
	TransitionService(ctx context.Context, id int64, from []ServiceStatus, to ServiceStatus, c ServiceChange) (Service, error)
	// PlaceServices places services of the execution, in one transaction:
	// each gets its node and moves from created to starting, with an
	// event (Placement.Reason) in the execution's timeline. It is all or
	// nothing: a service that is not created refuses the whole call with
	// sdk.ErrConflict (compare-and-set, as TransitionService), one that
	// does not exist or belongs to another execution with
	// sdk.ErrNotFound, and nothing changes. It returns the services as
	// placed, in the order of ps. An empty ps does nothing.
	PlaceServices(ctx context.Context, executionID int64, ps []Placement) ([]Service, error)
	// RecordStarted records a service the back-end started, in one
	// transaction: its handle, node, IP and back-end status, no exit code,
	// its endpoints (replaced), and the move from starting to running with
	// an event (Started.Reason). A service that is not starting is
	// sdk.ErrConflict and nothing changes (compare-and-set, as
	// TransitionService); bad endpoints are sdk.ErrInvalidArgument.
	RecordStarted(ctx context.Context, id int64, s Started) (Service, error)
	// RecordStartedMany is RecordStarted for several services, in one
	// transaction: each is recorded as RecordStarted records it, and each
	// is its own compare-and-set. One that RecordStarted would refuse
	// (sdk.ErrConflict, sdk.ErrNotFound, sdk.ErrInvalidArgument) has that
	// error at its index in errs, changes nothing and leaves the others to
	// be recorded; out holds the recorded services at theirs, in the order
	// of ss. err is the store failing: then nothing changed and out and
	// errs are nil.
	RecordStartedMany(ctx context.Context, ss []StartedService) (out []Service, errs []error, err error)
	// UpdateService changes the service's other fields.
	UpdateService(ctx context.Context, id int64, u ServiceUpdate) (Service, error)
	// SetEndpoints replaces the service's endpoints.
	SetEndpoints(ctx context.Context, serviceID int64, eps []Endpoint) error
	// Endpoints returns the endpoints of the execution's services.
	Endpoints(ctx context.Context, executionID int64) ([]Endpoint, error)

	// CreateToken stores a token's hash; the user must exist.
	CreateToken(ctx context.Context, t NewToken) (Token, error)
	// TokenByHash finds a token, expired or not (see Token.Expired).
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	ListTokens(ctx context.Context, username string) ([]Token, error)
	// DeleteToken deletes one of the user's tokens.
	DeleteToken(ctx context.Context, username string, id int64) error
	// DeleteTokens deletes every token of the user and says how many there
	// were.
	DeleteTokens(ctx context.Context, username string) (int64, error)
	// PurgeExpiredTokens deletes the expired tokens of every user and says
	// how many. CreateToken also frees a name an expired token holds.
	PurgeExpiredTokens(ctx context.Context) (int64, error)
	// TokenHolders lists the users who hold a token, expired or not,
	// ordered by username.
	TokenHolders(ctx context.Context) ([]string, error)
	// TouchToken sets the token's last use to now.
	TouchToken(ctx context.Context, id int64) error

	// Identity is the store's own identity: 32 hex digits, random, given
	// once when the store's schema is first created (or brought to
	// version 4) and kept for good. Every process sharing the database
	// reads the same; another database, even of the same deployment name,
	// has another. The engine labels what it creates on the back-end with
	// it (zoe.store).
	Identity(ctx context.Context) (string, error)

	// SchemaVersion is the version of the database's schema.
	SchemaVersion(ctx context.Context) (int, error)

	// Version identifies what the store holds: it grows whenever a write
	// commits, by this store or another sharing its database, so an answer
	// read at one version may be served again while the version stays. It
	// may grow without a change (PostgreSQL: with any write on the
	// server). ok is false when it cannot be read; answers are then not to
	// be cached.
	Version(ctx context.Context) (v uint64, ok bool)

	Close() error
}
