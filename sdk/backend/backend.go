// Package backend is the contract of container back-end plugins: run Zoe's
// service instances on a platform (a Docker engine, a Swarm, Kubernetes, a
// simulator) and report what happens to them.
package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/zoe-project/zoe/sdk"
)

// APIVersion is the version of this contract.
const APIVersion = "v1"

// Backend is implemented by back-end plugins. Every call that names a service
// takes the Handle that Start or List returned: the core stores handles, so a
// plugin keeps no state that a restart could lose.
type Backend interface {
	sdk.Plugin
	// Nodes lists the platform's nodes.
	Nodes(ctx context.Context) ([]Node, error)
	// CreateNetwork creates one execution's private network and returns its id.
	CreateNetwork(ctx context.Context, spec NetworkSpec) (string, error)
	// RemoveNetwork removes a network; sdk.ErrNotFound when it is gone.
	RemoveNetwork(ctx context.Context, id string) error
	// Start starts one service instance under the container policy that
	// spec.User and spec.Security carry. A spec the back-end cannot honour
	// is refused with sdk.ErrInvalidArgument before anything is created on
	// the platform; so is, as CheckUser says, a User that is not numeric
	// ("uid" or "uid:gid") and, unless Security.AllowRoot, a User that is
	// empty (the image's user may be root), names uid 0 or gid 0 (the
	// root group), or gives no gid (the platform would pick the group,
	// Docker the root group for a uid the image does not know). The
	// service's processes are limited to Resources.PidsLimit (see
	// PidsLimit); a back-end that cannot limit them refuses the spec.
	// Whatever the
	// spec says, the back-end never runs a service privileged, never adds
	// capabilities, and never puts it in the host's network, PID or IPC
	// namespace. A volume marked ReadOnly is mounted read-only. A host path
	// is mounted exactly as given (the core checked it against the
	// administrator's policy): never created when missing, which is an
	// error, and never changed.
	Start(ctx context.Context, spec ServiceSpec) (ServiceStatus, error)
	// Stop stops a service, killing it when the grace period is over.
	Stop(ctx context.Context, h Handle, grace time.Duration) error
	// Remove deletes a service; force removes a running one.
	Remove(ctx context.Context, h Handle, force bool) error
	// Inspect reports a service's status; sdk.ErrNotFound when the platform
	// no longer knows it.
	Inspect(ctx context.Context, h Handle) (ServiceStatus, error)
	// Recover takes back a service from a stored handle after a restart of
	// the plugin or the core; it is idempotent.
	Recover(ctx context.Context, h Handle) (ServiceStatus, error)
	// List reports every service of this deployment on the platform.
	List(ctx context.Context) ([]ServiceStatus, error)
	// Update changes a running service's resources.
	Update(ctx context.Context, h Handle, r Resources) error
	// Events streams what happens to this deployment's services until ctx
	// ends; the channel is closed then, or when the stream breaks.
	Events(ctx context.Context) (<-chan Event, error)
	// Logs streams one service's output; without Follow the channel is closed
	// at the end of what is there.
	Logs(ctx context.Context, h Handle, opts LogOptions) (<-chan LogEntry, error)
}

// NodeState tells whether a node takes new services.
type NodeState string

const (
	NodeReady       NodeState = "ready"
	NodeUnreachable NodeState = "unreachable"
	// NodeDisabled is disabled or draining: nothing new is placed there.
	NodeDisabled NodeState = "disabled"
)

// Node is one machine of the platform.
type Node struct {
	Name string
	// Address is where users reach ports published on this node.
	Address     string
	Cores       float64
	MemoryBytes int64
	Labels      []string
	Images      []string
	State       NodeState
	StateDetail string
	// Reserved by whatever the platform runs, Zoe's services or not.
	CoresReserved  float64
	MemoryReserved int64
}

// NetworkSpec describes an execution's network.
type NetworkSpec struct {
	Name   string
	Labels map[string]string
}

// Resources of one service instance.
type Resources struct {
	MemoryReservation int64
	MemoryLimit       int64
	Cores             float64
	ShmSize           int64
	// PidsLimit is the most processes and threads the service may have
	// at once, so that a fork bomb exhausts its own share and not the
	// host's. The zero value is safe: 0 is DefaultPidsLimit; -1 is no
	// limit, which the core asks for only when the administrator wrote it
	// (containers.pids_limit = -1). Other negative values are refused
	// (see PidsLimit).
	PidsLimit int64
}

// DefaultPidsLimit is the process limit of a service whose
// Resources.PidsLimit is 0.
const DefaultPidsLimit = 1024

// PidsLimit is the process limit a back-end applies for r: r.PidsLimit,
// DefaultPidsLimit for 0, -1 for no limit; sdk.ErrInvalidArgument for a
// negative value other than -1.
func PidsLimit(r Resources) (int64, error) {
	switch {
	case r.PidsLimit == 0:
		return DefaultPidsLimit, nil
	case r.PidsLimit < -1:
		return 0, fmt.Errorf("pids limit %d: want a positive number, 0 for the default or -1 for none: %w", r.PidsLimit, sdk.ErrInvalidArgument)
	}
	return r.PidsLimit, nil
}

// Volume is mounted into a service: a host path or a named volume.
type Volume struct {
	HostPath   string
	VolumeName string
	MountPoint string
	ReadOnly   bool
}

// Port is a port a service listens on, to be published.
type Port struct {
	Port     uint16
	Protocol string // tcp or udp
	Name     string
}

// ServiceSpec is one service instance to start.
type ServiceSpec struct {
	// Name is unique in the deployment: the container's name.
	Name string
	// Hostname is the DNS name the execution's other services use.
	Hostname    string
	Image       string
	Command     []string
	WorkDir     string
	Environment map[string]string
	Labels      map[string]string
	Resources   Resources
	Volumes     []Volume
	Ports       []Port
	// Network is an id returned by CreateNetwork.
	Network string
	// Node is where the scheduler placed the service; empty lets the
	// back-end choose.
	Node        string
	ExecutionID string
	// User is who the processes run as: numeric "uid:gid" (or "uid", only
	// with Security.AllowRoot). The
	// core sets the owner's ids when the auth source knows them, so that
	// files written in the workspace belong to the owner, else the ids the
	// administrator configured. Empty keeps the image's user, which the core
	// asks for only when Security.AllowRoot is set.
	User string
	// Security is the container policy the core decided for this service.
	// Its zero value is the strictest: a back-end that cannot honour a field
	// refuses the spec with sdk.ErrInvalidArgument rather than start a
	// service with more rights than asked.
	Security Security
}

// Security is what a service's processes may do beyond an ordinary user's.
// Every field is false unless the administrator allowed more. Whatever it
// says, a back-end never runs a service privileged, with added
// capabilities, or in the host's network, PID or IPC namespace.
type Security struct {
	// AllowRoot lets the processes run as uid 0 or gid 0 (User "0",
	// "0:gid", "uid:0", "uid" with the platform's choice of group, or
	// empty with an image that runs as root). When false, a back-end
	// refuses a spec whose User is empty, has no gid, or names uid or
	// gid 0.
	AllowRoot bool
	// AllowPrivilegeEscalation lets setuid binaries and file capabilities
	// raise privileges. When false the processes run with Linux's
	// no_new_privs flag (Docker's no-new-privileges, Kubernetes'
	// allowPrivilegeEscalation: false).
	AllowPrivilegeEscalation bool
	// KeepCapabilities keeps the platform's default Linux capabilities.
	// When false every capability is dropped.
	KeepCapabilities bool
}

// Handle is a back-end's own record of a service, opaque to the core, which
// stores it and hands it back. Version lets a newer plugin read the state an
// older one wrote.
type Handle struct {
	ID      string
	Version uint32
	State   []byte
}

// ServiceState is where a service is in its life on the platform.
type ServiceState string

const (
	ServiceCreated ServiceState = "created"
	ServiceRunning ServiceState = "running"
	ServiceExited  ServiceState = "exited"
	// ServiceVanished: the platform no longer knows the service.
	ServiceVanished ServiceState = "vanished"
)

// PublishedPort is where a service's port can be reached from outside.
type PublishedPort struct {
	Port        uint16
	Protocol    string
	HostAddress string
	HostPort    uint16
}

// ServiceStatus is what the platform says of one service.
type ServiceStatus struct {
	Handle     Handle
	Name       string
	State      ServiceState
	ExitCode   int
	OOMKilled  bool
	Node       string
	IP         string
	Ports      []PublishedPort
	StartedAt  time.Time
	FinishedAt time.Time
	Message    string
	Labels     map[string]string
}

// EventKind is what happened to a service.
type EventKind string

const (
	EventStarted   EventKind = "started"
	EventExited    EventKind = "exited"
	EventOOMKilled EventKind = "oom_killed"
	EventVanished  EventKind = "vanished"
	// EventImagePull reports the progress of an image pull in Message.
	EventImagePull EventKind = "image_pull"
)

// Event is one thing that happened to a service.
type Event struct {
	Kind        EventKind
	ServiceName string
	HandleID    string
	ExitCode    int
	Time        time.Time
	Message     string
}

// LogOptions select what Logs streams.
type LogOptions struct {
	Follow bool
	// Tail is the number of last lines to start with; 0 for all.
	Tail int
	// Since keeps only the lines written at or after this time (inclusive,
	// so that a reader resuming at the time of the last line it has loses
	// nothing); zero for all. With Tail, the last Tail lines of those.
	Since time.Time
}

// Stream is stdout or stderr.
type Stream string

const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// LogEntry is one line of a service's output.
type LogEntry struct {
	// Time is when the line was written, as the platform recorded it. Zoe
	// resumes a broken stream from the time of the last line it stored
	// (LogOptions.Since), so a back-end should give every line its time;
	// lines without one cannot be told apart when a stream is read again
	// and may then be stored twice.
	Time   time.Time
	Stream Stream
	Line   []byte
}
