package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// The state directory holds, per deployment:
//
//	services/<name>/spec.json    the record Start writes (record)
//	services/<name>/status.json  what the supervisor writes (status)
//	services/<name>/output.log   the output, one timed line per line
//	services/<name>/stop         the grace period Stop asks for
//	networks/<name>.json         a network (a label: all share the host's)
//	volumes/<name>/              a named volume
//
// Files are replaced by rename, so that a reader sees a whole one.
const (
	specFile   = "spec.json"
	statusFile = "status.json"
	logFile    = "output.log"
	stopFile   = "stop"
)

// record is what the supervisor needs to run a service and what the
// plugin reports of it.
type record struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Labels  map[string]string `json:"labels"`
	Path    string            `json:"path"`
	Args    []string          `json:"args"`
	Env     []string          `json:"env"`
	WorkDir string            `json:"work_dir"`
	// SetUser: the plugin runs as root and the service as UID:GID, with
	// no supplementary group.
	SetUser    bool `json:"set_user"`
	UID        int  `json:"uid"`
	GID        int  `json:"gid"`
	NoNewPrivs bool `json:"no_new_privs"`
	// SetCaps: the plugin runs as root and the bounding set is cut down
	// to KeepCaps (none when the spec drops them all).
	SetCaps   bool                    `json:"set_caps"`
	KeepCaps  []int                   `json:"keep_caps"`
	Cgroups   []string                `json:"cgroups"`
	Network   string                  `json:"network"`
	Node      string                  `json:"node"`
	IP        string                  `json:"ip"`
	Ports     []backend.PublishedPort `json:"ports"`
	Resources backend.Resources       `json:"resources"`
	MaxLog    int64                   `json:"max_log_bytes"`
	Created   time.Time               `json:"created"`
}

// status is what a supervisor says of its service.
type status struct {
	SupervisorPID   int       `json:"supervisor_pid"`
	SupervisorStart uint64    `json:"supervisor_start"`
	PID             int       `json:"pid"`
	PIDStart        uint64    `json:"pid_start"`
	StartedAt       time.Time `json:"started_at"`
	Exited          bool      `json:"exited"`
	ExitCode        int       `json:"exit_code"`
	OOMKilled       bool      `json:"oom_killed"`
	FinishedAt      time.Time `json:"finished_at"`
	Message         string    `json:"message"`
}

// service is a service as the files and /proc show it now.
type service struct {
	dir    string
	rec    record
	st     status
	status backend.ServiceStatus
	// lost: the supervisor ended without recording the exit.
	lost bool
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// procStart returns the start time of process pid (in clock ticks since
// boot, which tells a process from a later one that reuses its pid) and
// whether it is alive (a zombie is not).
func procStart(pid int) (uint64, bool) {
	if pid <= 0 {
		return 0, false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command's name, in parentheses, may hold spaces: count from
	// after the last ')'. Fields from there: state (3rd), ... starttime (22nd).
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	return start, err == nil
}

// supervisorAlive tells whether the supervisor st names still runs.
func (st status) supervisorAlive() bool {
	start, ok := procStart(st.SupervisorPID)
	return ok && start == st.SupervisorStart
}

// observe reads the service in dir; sdk.ErrNotFound when there is none.
func observe(dir string) (*service, error) {
	sv := &service{dir: dir}
	if err := readJSON(filepath.Join(dir, specFile), &sv.rec); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("service %s: %w", filepath.Base(dir), sdk.ErrNotFound)
		}
		return nil, err
	}
	h, err := encodeHandle(sv.rec)
	if err != nil {
		return nil, err
	}
	sv.status = backend.ServiceStatus{Handle: h, Name: sv.rec.Name, State: backend.ServiceCreated,
		Node: sv.rec.Node, IP: sv.rec.IP, Ports: sv.rec.Ports, Labels: maps.Clone(sv.rec.Labels)}
	readStatus := func() error {
		err := readJSON(filepath.Join(dir, statusFile), &sv.st)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := readStatus(); err != nil {
		return nil, err
	}
	if sv.st.SupervisorPID == 0 {
		return sv, nil // Start is launching it
	}
	if !sv.st.Exited && !sv.st.supervisorAlive() {
		// It may have written its last word between the two reads.
		if err := readStatus(); err != nil {
			return nil, err
		}
		if !sv.st.Exited {
			sv.lost, sv.st.Exited, sv.st.ExitCode = true, true, -1
			sv.st.Message = "the supervisor ended without recording the exit (killed, or the machine restarted)"
		}
	}
	sv.status.StartedAt, sv.status.Message = sv.st.StartedAt, sv.st.Message
	sv.status.State = backend.ServiceRunning
	if sv.st.Exited {
		sv.status.State = backend.ServiceExited
		sv.status.ExitCode, sv.status.OOMKilled, sv.status.FinishedAt = sv.st.ExitCode, sv.st.OOMKilled, sv.st.FinishedAt
	}
	return sv, nil
}

// handleState is a handle's State, version 1.
type handleState struct {
	Name string `json:"name"`
}

const handleVersion = 1

func encodeHandle(r record) (backend.Handle, error) {
	return backend.EncodeHandle(r.ID, handleVersion, handleState{Name: r.Name})
}

// lookup finds the service of a handle by its ID, in the directory its
// State names when it can be read, else among all of the deployment's:
// sdk.ErrNotFound when none has the ID (gone, or another service now has
// the name), whatever the State; a State it cannot read is an error only
// for an ID that names a service.
func (s *setup) lookup(h backend.Handle) (*service, error) {
	var hs handleState
	v, decodeErr := backend.DecodeHandle(h, handleVersion, &hs)
	if decodeErr == nil && v > 0 && !safeName.MatchString(hs.Name) {
		decodeErr = fmt.Errorf("names service %q: %w", hs.Name, sdk.ErrInvalidArgument)
	}
	if decodeErr == nil && v > 0 {
		sv, err := observe(s.serviceDir(hs.Name))
		if err != nil {
			return nil, err
		}
		if sv.rec.ID != h.ID {
			return nil, fmt.Errorf("service %q of handle %q: %w", hs.Name, h.ID, sdk.ErrNotFound)
		}
		return sv, nil
	}
	svcs, err := listServices(s.dir)
	if err != nil {
		return nil, err
	}
	for _, sv := range svcs {
		if sv.rec.ID == h.ID {
			if decodeErr != nil {
				return nil, fmt.Errorf("localproc handle %q: %w", h.ID, decodeErr)
			}
			return sv, nil
		}
	}
	return nil, fmt.Errorf("service of handle %q: %w", h.ID, sdk.ErrNotFound)
}

func (s *setup) serviceDir(name string) string { return filepath.Join(s.dir, "services", name) }

// listServices reads every service of one deployment's directory. Any
// error fails the whole: a partial list would make the core count the
// missing ones vanished.
func listServices(deploymentDir string) ([]*service, error) {
	dir := filepath.Join(deploymentDir, "services")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("localproc: listing %s: %w", dir, err)
	}
	var out []*service
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue // a service Start is still writing
		}
		sv, err := observe(filepath.Join(dir, e.Name()))
		if errors.Is(err, sdk.ErrNotFound) {
			continue // being removed
		}
		if err != nil {
			return nil, fmt.Errorf("localproc: reading service %s: %w", e.Name(), err)
		}
		out = append(out, sv)
	}
	return out, nil
}
