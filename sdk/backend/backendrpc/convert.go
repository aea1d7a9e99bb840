package backendrpc

import (
	"github.com/zoe-project/zoe/sdk/backend"
	"time"

	backendv1 "github.com/zoe-project/zoe/sdk/proto/zoe/plugin/backend/v1"
)

// Conversions between the Go types of this package and their protobuf twins.

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

var nodeStates = map[backend.NodeState]backendv1.NodeState{
	backend.NodeReady:       backendv1.NodeState_NODE_STATE_READY,
	backend.NodeUnreachable: backendv1.NodeState_NODE_STATE_UNREACHABLE,
	backend.NodeDisabled:    backendv1.NodeState_NODE_STATE_DISABLED,
}

var serviceStates = map[backend.ServiceState]backendv1.ServiceState{
	backend.ServiceCreated:  backendv1.ServiceState_SERVICE_STATE_CREATED,
	backend.ServiceRunning:  backendv1.ServiceState_SERVICE_STATE_RUNNING,
	backend.ServiceExited:   backendv1.ServiceState_SERVICE_STATE_EXITED,
	backend.ServiceVanished: backendv1.ServiceState_SERVICE_STATE_VANISHED,
}

var eventKinds = map[backend.EventKind]backendv1.EventKind{
	backend.EventStarted:   backendv1.EventKind_EVENT_KIND_STARTED,
	backend.EventExited:    backendv1.EventKind_EVENT_KIND_EXITED,
	backend.EventOOMKilled: backendv1.EventKind_EVENT_KIND_OOM_KILLED,
	backend.EventVanished:  backendv1.EventKind_EVENT_KIND_VANISHED,
	backend.EventImagePull: backendv1.EventKind_EVENT_KIND_IMAGE_PULL,
}

var streams = map[backend.Stream]backendv1.Stream{
	backend.Stdout: backendv1.Stream_STREAM_STDOUT,
	backend.Stderr: backendv1.Stream_STREAM_STDERR,
}

// reverse looks a protobuf enum value up in one of the maps above.
func reverse[K comparable, V comparable](m map[K]V, v V) K {
	for k, x := range m {
		if x == v {
			return k
		}
	}
	var zero K
	return zero
}

func nodeToProto(n backend.Node) *backendv1.Node {
	return &backendv1.Node{
		Name: n.Name, Address: n.Address, Cores: n.Cores, MemoryBytes: n.MemoryBytes,
		Labels: n.Labels, Images: n.Images, State: nodeStates[n.State], StateDetail: n.StateDetail,
		CoresReserved: n.CoresReserved, MemoryReserved: n.MemoryReserved,
	}
}

func nodeFromProto(n *backendv1.Node) backend.Node {
	return backend.Node{
		Name: n.GetName(), Address: n.GetAddress(), Cores: n.GetCores(), MemoryBytes: n.GetMemoryBytes(),
		Labels: n.GetLabels(), Images: n.GetImages(), State: reverse(nodeStates, n.GetState()), StateDetail: n.GetStateDetail(),
		CoresReserved: n.GetCoresReserved(), MemoryReserved: n.GetMemoryReserved(),
	}
}

func resourcesToProto(r backend.Resources) *backendv1.Resources {
	return &backendv1.Resources{MemoryReservation: r.MemoryReservation, MemoryLimit: r.MemoryLimit, Cores: r.Cores, ShmSize: r.ShmSize,
		PidsLimit: r.PidsLimit, CoresLimit: r.CoresLimit}
}

func resourcesFromProto(r *backendv1.Resources) backend.Resources {
	return backend.Resources{MemoryReservation: r.GetMemoryReservation(), MemoryLimit: r.GetMemoryLimit(), Cores: r.GetCores(), ShmSize: r.GetShmSize(),
		PidsLimit: r.GetPidsLimit(), CoresLimit: r.GetCoresLimit()}
}

func specToProto(s backend.ServiceSpec) *backendv1.ServiceSpec {
	out := &backendv1.ServiceSpec{
		Name: s.Name, Hostname: s.Hostname, Image: s.Image, Command: s.Command, WorkDir: s.WorkDir,
		Environment: s.Environment, Labels: s.Labels, Resources: resourcesToProto(s.Resources),
		Network: s.Network, Node: s.Node, ExecutionId: s.ExecutionID, User: s.User,
		Security: &backendv1.Security{AllowRoot: s.Security.AllowRoot, AllowPrivilegeEscalation: s.Security.AllowPrivilegeEscalation,
			KeepCapabilities: s.Security.KeepCapabilities},
	}
	for _, v := range s.Volumes {
		out.Volumes = append(out.Volumes, &backendv1.Volume{HostPath: v.HostPath, VolumeName: v.VolumeName, MountPoint: v.MountPoint, ReadOnly: v.ReadOnly})
	}
	for _, p := range s.Ports {
		out.Ports = append(out.Ports, &backendv1.Port{Port: uint32(p.Port), Protocol: p.Protocol, Name: p.Name})
	}
	return out
}

func specFromProto(s *backendv1.ServiceSpec) backend.ServiceSpec {
	out := backend.ServiceSpec{
		Name: s.GetName(), Hostname: s.GetHostname(), Image: s.GetImage(), Command: s.GetCommand(), WorkDir: s.GetWorkDir(),
		Environment: s.GetEnvironment(), Labels: s.GetLabels(), Resources: resourcesFromProto(s.GetResources()),
		Network: s.GetNetwork(), Node: s.GetNode(), ExecutionID: s.GetExecutionId(), User: s.GetUser(),
		// An absent message reads as the zero value: the strictest policy.
		Security: backend.Security{AllowRoot: s.GetSecurity().GetAllowRoot(), AllowPrivilegeEscalation: s.GetSecurity().GetAllowPrivilegeEscalation(),
			KeepCapabilities: s.GetSecurity().GetKeepCapabilities()},
	}
	for _, v := range s.GetVolumes() {
		out.Volumes = append(out.Volumes, backend.Volume{HostPath: v.GetHostPath(), VolumeName: v.GetVolumeName(), MountPoint: v.GetMountPoint(), ReadOnly: v.GetReadOnly()})
	}
	for _, p := range s.GetPorts() {
		out.Ports = append(out.Ports, backend.Port{Port: uint16(p.GetPort()), Protocol: p.GetProtocol(), Name: p.GetName()})
	}
	return out
}

func handleToProto(h backend.Handle) *backendv1.Handle {
	return &backendv1.Handle{Id: h.ID, Version: h.Version, State: h.State}
}

func handleFromProto(h *backendv1.Handle) backend.Handle {
	return backend.Handle{ID: h.GetId(), Version: h.GetVersion(), State: h.GetState()}
}

func statusToProto(s backend.ServiceStatus) *backendv1.ServiceStatus {
	out := &backendv1.ServiceStatus{
		Handle: handleToProto(s.Handle), Name: s.Name, State: serviceStates[s.State], ExitCode: int32(s.ExitCode),
		OomKilled: s.OOMKilled, Node: s.Node, Ip: s.IP, StartedAtUnixNano: unixNano(s.StartedAt),
		FinishedAtUnixNano: unixNano(s.FinishedAt), Message: s.Message, Labels: s.Labels,
	}
	for _, p := range s.Ports {
		out.Ports = append(out.Ports, &backendv1.PublishedPort{Port: uint32(p.Port), Protocol: p.Protocol, HostAddress: p.HostAddress, HostPort: uint32(p.HostPort)})
	}
	return out
}

func statusFromProto(s *backendv1.ServiceStatus) backend.ServiceStatus {
	out := backend.ServiceStatus{
		Handle: handleFromProto(s.GetHandle()), Name: s.GetName(), State: reverse(serviceStates, s.GetState()), ExitCode: int(s.GetExitCode()),
		OOMKilled: s.GetOomKilled(), Node: s.GetNode(), IP: s.GetIp(), StartedAt: fromUnixNano(s.GetStartedAtUnixNano()),
		FinishedAt: fromUnixNano(s.GetFinishedAtUnixNano()), Message: s.GetMessage(), Labels: s.GetLabels(),
	}
	for _, p := range s.GetPorts() {
		out.Ports = append(out.Ports, backend.PublishedPort{Port: uint16(p.GetPort()), Protocol: p.GetProtocol(), HostAddress: p.GetHostAddress(), HostPort: uint16(p.GetHostPort())})
	}
	return out
}

func eventToProto(e backend.Event) *backendv1.Event {
	return &backendv1.Event{Kind: eventKinds[e.Kind], ServiceName: e.ServiceName, HandleId: e.HandleID, ExitCode: int32(e.ExitCode), TimeUnixNano: unixNano(e.Time), Message: e.Message}
}

func eventFromProto(e *backendv1.Event) backend.Event {
	return backend.Event{Kind: reverse(eventKinds, e.GetKind()), ServiceName: e.GetServiceName(), HandleID: e.GetHandleId(), ExitCode: int(e.GetExitCode()), Time: fromUnixNano(e.GetTimeUnixNano()), Message: e.GetMessage()}
}

func logToProto(l backend.LogEntry) *backendv1.LogEntry {
	return &backendv1.LogEntry{TimeUnixNano: unixNano(l.Time), Stream: streams[l.Stream], Line: l.Line}
}

func logFromProto(l *backendv1.LogEntry) backend.LogEntry {
	return backend.LogEntry{Time: fromUnixNano(l.GetTimeUnixNano()), Stream: reverse(streams, l.GetStream()), Line: l.GetLine()}
}
