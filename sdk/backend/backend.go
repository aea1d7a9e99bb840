// Package backend is the contract of container back-end plugins: run Zoe's
// service instances on a platform (a Docker engine, a Swarm, Kubernetes, a
// simulator) and report what happens to them.
//
// The interfaces below say what each method must do; sdk/README.md is the
// guide for writing a back-end, and sdk/plugintest's RunBackendConformance
// checks every rule written here that the core relies on.
//
// # How the core calls a back-end
//
// The core reaches the plugin over gRPC, one plugin process per core. Its
// lifecycle engine is level-based: about once a second, and at once after
// each event, it lists the deployment's services (List), compares them with
// its store, recovers what it does not see (Recover), adopts what it
// started but never recorded (by name, after sdk.ErrAlreadyExists), removes
// what its store does not know, and starts what is placed (Start). Every
// call may come concurrently with any other, for the same service too (a
// Logs stream follows a service while Stop runs): an implementation is safe
// for concurrent use. The context of a call carries the core's cancellation
// and, where it has one, its deadline; return soon after it ends. Start has
// no deadline (an image pull may take minutes) but is cancelled when its
// execution is terminated.
//
// The plugin process may be killed at any time, SIGKILL included, and
// started again; the core's data directory and its store outlive it, and so
// must the services: whatever a plugin needs to find a service again is in
// its Handle, which the core stores, or on the platform itself.
package backend

import (
	"context"
	"fmt"
	"path"
	"time"

	"github.com/zoe-project/zoe/sdk"
)

// APIVersion is the version of this contract. It changes only when a
// plugin and a core that speak different versions would misunderstand each
// other on the wire. Additions that an older party ignores safely keep it:
// Capabilities and Close (an older plugin answers neither: see
// Capabilities), List's labels (an older plugin lists the whole deployment;
// the core checks the labels it asked for itself).
const APIVersion = "v1"

// Backend is implemented by back-end plugins. Every call that names a service
// takes the Handle that Start, List or Recover returned: the core stores
// handles, so a plugin keeps no state that a restart could lose. A handle's
// ID decides which service it names: a call on a handle whose ID names no
// service of this deployment is sdk.ErrNotFound, whatever Version and State
// hold, a handle with only an ID included (see DecodeHandle).
//
// The optional interfaces Updater and Closer add methods a back-end may
// have; Capabilities says what it can do beyond this interface.
type Backend interface {
	sdk.Plugin
	// Capabilities says what the back-end can do beyond the required
	// methods. The core asks once, after Configure, and plans with the
	// answer (a back-end that does not pull images gets services only on
	// nodes that list the image). It is called after Configure, so the
	// answer may depend on the configuration; it must not change while the
	// configuration does not.
	Capabilities(ctx context.Context) (Capabilities, error)
	// Nodes lists the platform's nodes, every one of them: a node that
	// cannot be reached is NodeUnreachable, not an error. The core calls it
	// whenever it places services, so it should be cheap.
	Nodes(ctx context.Context) ([]Node, error)
	// CreateNetwork creates one execution's private network, named
	// spec.Name and carrying spec.Labels, and returns its id, which the core
	// stores and gives back in ServiceSpec.Network and RemoveNetwork. A
	// network of that name in this deployment already: sdk.ErrAlreadyExists,
	// and the existing one is left as it is (the core then creates one of
	// another name).
	CreateNetwork(ctx context.Context, spec NetworkSpec) (string, error)
	// RemoveNetwork removes a network CreateNetwork made: sdk.ErrNotFound
	// when it is gone; sdk.ErrConflict, keeping it, while a running service
	// uses it. The core removes an execution's services before its network.
	RemoveNetwork(ctx context.Context, id string) error
	// Start creates and starts one service instance and returns its status
	// (with its Handle) once it runs; it is the only method that creates a
	// service.
	//
	// Names are unique in the deployment: when a service named spec.Name
	// exists already, in any state, Start returns sdk.ErrAlreadyExists and
	// leaves that service untouched. The core relies on it: after a start
	// whose answer it lost, it starts again, gets sdk.ErrAlreadyExists and
	// adopts the service it finds by name in List.
	//
	// The spec is checked whole before anything is created on the
	// platform; a spec the back-end cannot honour is refused with
	// sdk.ErrInvalidArgument. When Start fails it leaves nothing behind.
	// A back-end may always be stricter than the spec (refuse root even
	// with Security.AllowRoot, say), never looser: what it cannot enforce
	// of the user, Security, Resources.MemoryLimit, Resources.PidsLimit or
	// a read-only volume, it refuses. What only makes a service work less
	// well (no DNS name for Hostname, no /dev/shm of ShmSize) it may leave
	// undone, and says so in its documentation.
	// Errors the core retries later: sdk.ErrUnavailable,
	// sdk.ErrResourceExhausted and sdk.ErrDeadlineExceeded; with any other
	// the service is in error, and its execution too when it is essential.
	//
	// The service runs under the container policy that spec.User and
	// spec.Security carry. As CheckUser says, a User that is not numeric
	// ("uid" or "uid:gid") is refused, and so is, unless Security.AllowRoot,
	// a User that is empty (the image's user may be root), names uid 0 or
	// gid 0 (the root group), or gives no gid (the platform would pick the
	// group, Docker the root group for a uid the image does not know). The
	// service's processes are limited to Resources.PidsLimit (see
	// PidsLimit); a back-end that cannot limit them refuses the spec.
	// Whatever the spec says, the back-end never runs a service privileged,
	// never adds capabilities, and never puts it in the host's network, PID
	// or IPC namespace. A back-end that cannot give services namespaces of
	// their own (processes on the host, say) isolates nothing: it refuses
	// its configuration unless the administrator opts in with an attribute
	// of its own that has no default (e.g. allow_shared_host = true), and
	// says so in Info.Description.
	//
	// Volumes are checked as CheckVolumes says (absolute paths, exactly one
	// source). The first volume is always the owner's workspace, at
	// /mnt/workspace. A volume marked ReadOnly is mounted read-only. A host
	// path is mounted exactly as given (the core checked it against the
	// administrator's policy): never created when missing, which is an
	// error, and never changed.
	Start(ctx context.Context, spec ServiceSpec) (ServiceStatus, error)
	// Stop asks a service to stop (SIGTERM or the platform's equivalent),
	// kills it when grace is over, and returns once it has exited: Inspect
	// and List report it exited from then on. It returns within about grace
	// plus the platform's own delay; when ctx ends first it returns
	// ctx's error and the service still ends as asked. Stopping a service
	// that is not running does nothing; an unknown one is sdk.ErrNotFound.
	// Stop does not remove the service: its status and output stay until
	// Remove.
	Stop(ctx context.Context, h Handle, grace time.Duration) error
	// Remove deletes a service, its status and its output. A running
	// service is killed first with force, and refused with sdk.ErrConflict
	// (and left running) without. An unknown service is sdk.ErrNotFound.
	// After Remove, Inspect, Recover and Logs say sdk.ErrNotFound and List
	// no longer shows it. The core calls Stop, reads the output to its end,
	// then calls Remove with force.
	Remove(ctx context.Context, h Handle, force bool) error
	// Inspect reports a service's status; sdk.ErrNotFound when the platform
	// no longer knows it. The core does not call it (it lists, and
	// recovers); tools and the conformance suite do.
	Inspect(ctx context.Context, h Handle) (ServiceStatus, error)
	// Recover takes back a service from a stored handle, in a plugin process
	// that may be new, and reports its status: running services must still
	// run after their plugin process was killed and started again. It is
	// idempotent. A handle whose ID names no service of this deployment is
	// sdk.ErrNotFound, whatever its State (the core then counts the service
	// vanished); one whose ID names a service but whose State this plugin
	// cannot read is sdk.ErrUnsupported when a newer version of the plugin
	// wrote it, sdk.ErrInvalidArgument otherwise (see DecodeHandle); the
	// core leaves the service alone on both. The core calls it for every
	// service it holds running after each new event subscription (the
	// plugin or the core restarted), and for one that List no longer
	// shows.
	Recover(ctx context.Context, h Handle) (ServiceStatus, error)
	// List reports the services of this deployment (sdk.Config.Deployment)
	// on the platform, in every state until they are removed, each with its
	// Name, Handle, State and the Labels its spec gave; with opts.Labels,
	// only those that carry every one of them. It must never report the
	// services of another deployment or anything Zoe did not start: the core
	// removes, as an orphan, every service it lists that its store does not
	// know. A platform that cannot be asked whole is an error, never a
	// partial list: a service missing from the list is recovered, and counted
	// vanished when Recover does not find it either.
	List(ctx context.Context, opts ListOptions) ([]ServiceStatus, error)
	// Events streams what happens to this deployment's services until ctx
	// ends; the channel is closed then, or when the stream breaks, and the
	// core subscribes again. Required: EventStarted when a service starts,
	// EventExited with its ExitCode whenever a running service ends (by
	// itself, by Stop, killed, OOM), and EventVanished when the platform
	// loses one without Remove, as far as the platform can tell.
	// EventOOMKilled and EventImagePull are welcome. The core takes events
	// as hints: on each it compares List with its store at once, so an event
	// lost costs a delay, not a wrong state. Events that happen while nobody
	// is subscribed need not be kept: after subscribing the core lists. A
	// subscriber that reads too slowly may have its stream closed rather
	// than hold up the platform.
	Events(ctx context.Context) (<-chan Event, error)
	// Logs streams one service's output, running or exited, as LogOptions
	// selects; sdk.ErrNotFound for an unknown service. Without Follow the
	// channel is closed at the end of what is there; with Follow, new lines
	// are sent as they are written, and the channel is closed once the
	// service has exited and all of its output was sent, or when ctx ends.
	Logs(ctx context.Context, h Handle, opts LogOptions) (<-chan LogEntry, error)
}

// Capabilities is what a back-end can do beyond the required methods.
type Capabilities struct {
	// PullsImages: Start pulls an image the chosen node lacks (reporting
	// progress as EventImagePull). Without it the core places a service only
	// on a node whose Node.Images lists its image, so a back-end that does
	// not pull must list every image each node has.
	PullsImages bool
	// Updater and Closer say whether the back-end implements the optional
	// interfaces of these names. The SDK fills them in from the plugin's
	// type when it serves it: a plugin need not set them.
	Updater bool
	Closer  bool
}

// Updater is implemented by a back-end that can change a running
// service's resources in place. The core does not call it yet; a back-end
// without it answers sdk.ErrUnsupported over the wire.
type Updater interface {
	// Update changes a running service's resources, or fails changing
	// nothing: sdk.ErrNotFound for an unknown service, sdk.ErrConflict for
	// one that is not running, sdk.ErrResourceExhausted when its node has no
	// room, sdk.ErrInvalidArgument for resources the back-end cannot apply.
	Update(ctx context.Context, h Handle, r Resources) error
}

// Closer is implemented by a back-end that holds something to release:
// clients, connections, goroutines, files.
type Closer interface {
	// Close releases what the back-end holds. The core calls it once, when
	// it stops the plugin (the daemon shuts down), after its last call and
	// before it ends the process; a plugin that is killed or crashes is not
	// closed, so nothing may depend on Close for correctness. Close must
	// not stop, remove or change any service or network: they outlive the
	// plugin and the core, which takes them back when it starts again. It
	// returns within ctx (a few seconds).
	Close(ctx context.Context) error
}

// ListOptions select what List reports.
type ListOptions struct {
	// Labels keeps only the services carrying every one of these labels
	// with these values; nil or empty for all of the deployment's. The
	// core's clean-up of an execution lists {zoe.execution: <id>}.
	Labels map[string]string
}

// Matches tells whether labels carry every label of o.
func (o ListOptions) Matches(labels map[string]string) bool {
	for k, v := range o.Labels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// CheckVolumes applies the contract's rules on volumes, for back-ends to
// call in Start before they create anything: every volume has exactly one
// of HostPath and VolumeName, an absolute MountPoint, and a HostPath, when
// given, is absolute: a relative path would resolve against whatever
// directory the platform runs in. Anything else is sdk.ErrInvalidArgument,
// naming the volume.
func CheckVolumes(vols []Volume) error {
	for i, v := range vols {
		switch {
		case (v.HostPath == "") == (v.VolumeName == ""):
			return fmt.Errorf("volume %d (%+v): want exactly one of a host path and a volume name: %w", i, v, sdk.ErrInvalidArgument)
		case !path.IsAbs(v.MountPoint):
			return fmt.Errorf("volume %d: mount point %q: want an absolute path: %w", i, v.MountPoint, sdk.ErrInvalidArgument)
		case v.HostPath != "" && !path.IsAbs(v.HostPath):
			return fmt.Errorf("volume %d: host path %q: want an absolute path: %w", i, v.HostPath, sdk.ErrInvalidArgument)
		}
	}
	return nil
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
	// CoresReserved and MemoryReserved are what everything running on the
	// node reserves, Zoe's services or not, this deployment's included:
	// the scheduler does not add the services it placed again. A Zoe
	// service reserves Resources.Cores and Resources.MemoryReservation.
	CoresReserved  float64
	MemoryReserved int64
}

// NetworkSpec describes an execution's network.
type NetworkSpec struct {
	// Name is unique in the deployment: zoe-<deployment>-<execution id>.
	Name string
	// Labels are the core's (zoe.deployment, zoe.execution, zoe.owner), to
	// be kept on the network where the platform has labels.
	Labels map[string]string
}

// Resources of one service instance. The limits (MemoryLimit, PidsLimit)
// are enforced, or the spec refused; the rest the back-end honours as its
// platform can.
type Resources struct {
	// MemoryReservation is what the scheduler counted for the service
	// (the ZApp's memory.min; 0 when it gives none): a soft guarantee
	// where the platform has one (Docker's soft limit), else only counted
	// in Node.MemoryReserved.
	MemoryReservation int64
	// MemoryLimit is a hard limit in bytes, swap included: the service is
	// killed (OOM) beyond it. 0 is none. The core sets the ZApp's
	// memory.max, else its memory.min, else the administrative limit
	// (max_service_memory), else 0. A back-end that cannot enforce a
	// limit refuses a spec with one.
	MemoryLimit int64
	// Cores is what the scheduler counted for the service (the ZApp's
	// cores.min; 0.1 when it gives none), always more than 0: the
	// service's share of the node, a reservation and never a cap (that is
	// CoresLimit). A back-end weighs the service by it where it can
	// (Docker: CPU shares) and counts it in Node.CoresReserved; it never
	// refuses a spec for it.
	Cores float64
	// CoresLimit is the most cores the service may use (the ZApp's
	// cores.max); 0 is no cap. A back-end enforces it where it can
	// (Docker: NanoCPUs) and otherwise leaves the service uncapped.
	CoresLimit float64
	// ShmSize is the size in bytes of the service's own /dev/shm; 0 is the
	// platform's default (64 MiB on Docker). A back-end whose services
	// have no /dev/shm of their own leaves it undone.
	ShmSize int64
	// PidsLimit is the most processes and threads the service may have
	// at once, so that a fork bomb exhausts its own share and not the
	// host's. The zero value is safe: 0 is DefaultPidsLimit; -1 is no
	// limit, which the core asks for only when the administrator wrote it
	// (containers.pids_limit = -1). Other negative values are refused
	// (see PidsLimit). The core always sets it (1024 unless the
	// administrator chose otherwise). A limit on the service's processes
	// as a whole (a pids cgroup) is one; a per-user RLIMIT_NPROC is not,
	// as it counts the user's processes everywhere.
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

// Volume is mounted into a service: a host path or a named volume, exactly
// one of them (see CheckVolumes).
type Volume struct {
	// HostPath is an absolute path on the node, mounted as it is.
	HostPath string
	// VolumeName is a volume the platform manages, created when missing.
	VolumeName string
	// MountPoint is the absolute path inside the service.
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
	// Name is unique in the deployment: the container's name,
	// <service>-<execution id>-<deployment>. Start refuses a name in use
	// with sdk.ErrAlreadyExists.
	Name string
	// Hostname is the DNS name the execution's other services reach this
	// one by, on the execution's network; also the service's host name.
	Hostname string
	Image    string
	// Command replaces the image's command when not empty (Docker's CMD:
	// the image's ENTRYPOINT, if any, stays and gets it as arguments);
	// each element is one argument, passed as it is (no shell).
	Command     []string
	WorkDir     string
	Environment map[string]string
	// Labels are kept on the service and reported by List, Inspect and
	// Recover: the core finds its services by them. It sets
	// zoe.deployment, zoe.execution (the execution id), zoe.service and
	// zoe.owner; a ZApp adds its own.
	Labels    map[string]string
	Resources Resources
	// Volumes to mount: the first is always the owner's workspace, at
	// /mnt/workspace; the ZApp's follow, at /mnt/<name>.
	Volumes []Volume
	// Ports to publish on the node, each on a port the platform picks,
	// reported in ServiceStatus.Ports.
	Ports []Port
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
	// KeepCapabilities keeps the platform's default Linux capabilities,
	// never more than Docker's default set: CHOWN, DAC_OVERRIDE, FOWNER,
	// FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW,
	// SYS_CHROOT, MKNOD, AUDIT_WRITE and SETFCAP. A platform without
	// defaults of its own keeps these or fewer. When false every
	// capability is dropped.
	KeepCapabilities bool
}

// Handle is a back-end's own record of a service, opaque to the core, which
// stores it durably and hands it back, in a plugin process that may be new
// and a plugin that may be newer. It holds what the plugin needs to find the
// service again, nothing it could lose.
type Handle struct {
	// ID names the service on the platform and never changes: the core
	// matches List's services to its own by it.
	ID string
	// Version is the format of State, from 1; 0 with no State is a handle
	// of an ID alone. A plugin reads every version it ever wrote; a newer
	// one is sdk.ErrUnsupported (see DecodeHandle).
	Version uint32
	// State is the plugin's own bytes (JSON, say); small, a few hundred
	// bytes.
	State []byte
}

// ServiceState is where a service is in its life on the platform.
type ServiceState string

const (
	// ServiceCreated: the service exists but its program has not started
	// yet (Docker's state between create and start). The core counts it
	// as running; Start returns only once the service runs.
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
	Handle Handle
	// Name is the spec's.
	Name  string
	State ServiceState
	// ExitCode and OOMKilled tell how an exited service ended: the
	// program's exit status, 128+n when signal n killed it (137 for
	// SIGKILL, as Docker reports it), -1 when the platform cannot tell.
	ExitCode  int
	OOMKilled bool
	// Node is the node it runs on; IP its address on the execution's
	// network.
	Node string
	IP   string
	// Ports are where the spec's ports were published.
	Ports      []PublishedPort
	StartedAt  time.Time
	FinishedAt time.Time
	Message    string
	// Labels are at least the spec's; a back-end may add its own.
	Labels map[string]string
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
	Kind EventKind
	// ServiceName is the spec's Name; HandleID the service's Handle.ID
	// (empty for an image pull before the service exists).
	ServiceName string
	HandleID    string
	// ExitCode of an EventExited.
	ExitCode int
	Time     time.Time
	Message  string
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
