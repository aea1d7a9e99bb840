package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// defaultPath is the PATH of a service whose environment has none, as
// Docker's images usually set it.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// dockerCaps is the bounding set a service keeps with
// Security.KeepCapabilities: Docker's default capabilities, the usual
// "platform's default". Never more.
var dockerCaps = []int{unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FOWNER, unix.CAP_FSETID, unix.CAP_KILL,
	unix.CAP_SETGID, unix.CAP_SETUID, unix.CAP_SETPCAP, unix.CAP_NET_BIND_SERVICE, unix.CAP_NET_RAW,
	unix.CAP_SYS_CHROOT, unix.CAP_MKNOD, unix.CAP_AUDIT_WRITE, unix.CAP_SETFCAP}

func invalid(format string, a ...any) error {
	return fmt.Errorf(format+": %w", append(a, sdk.ErrInvalidArgument)...)
}

// Start checks the whole spec, records it, and runs the supervisor, which
// starts the program and says whether it could; it returns once the
// program runs.
func (b *Backend) Start(ctx context.Context, spec backend.ServiceSpec) (backend.ServiceStatus, error) {
	s, err := b.setup()
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	rec, volumes, err := s.plan(spec)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	if err := s.checkPorts(rec); err != nil {
		return backend.ServiceStatus{}, err
	}
	if err := ctx.Err(); err != nil {
		return backend.ServiceStatus{}, err
	}
	dir := s.serviceDir(spec.Name)
	if err := s.create(dir, rec); err != nil {
		return backend.ServiceStatus{}, err
	}
	if err := s.launch(dir, rec, volumes); err != nil {
		cleanup(dir, rec)
		return backend.ServiceStatus{}, err
	}
	sv, err := observe(dir)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	return sv.status, nil
}

// create writes the record under the service's name, atomically: a name in
// use is sdk.ErrAlreadyExists and that service is left as it is.
func (s *setup) create(dir string, rec record) error {
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("service %q: %w", rec.Name, sdk.ErrAlreadyExists)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".start-")
	if err != nil {
		return fmt.Errorf("localproc: %w", err)
	}
	err = os.WriteFile(filepath.Join(tmp, logFile), nil, 0o600)
	if err == nil {
		err = writeJSON(filepath.Join(tmp, specFile), rec)
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("localproc: writing the record of %q: %w", rec.Name, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("service %q: %w", rec.Name, sdk.ErrAlreadyExists)
		}
		return fmt.Errorf("localproc: %w", err)
	}
	return nil
}

// launch makes the named volumes and cgroups, starts the supervisor and
// waits for its word.
func (s *setup) launch(dir string, rec record, volumes []string) error {
	for _, v := range volumes {
		if err := os.Mkdir(v, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("localproc: named volume %s: %w", v, err)
		} else if err == nil && rec.SetUser {
			if err := os.Chown(v, rec.UID, rec.GID); err != nil {
				return fmt.Errorf("localproc: named volume %s: %w", v, err)
			}
		}
	}
	if err := s.cgroups.create(rec); err != nil {
		return fmt.Errorf("localproc: cgroup of %q: %w", rec.Name, err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "supervisor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("localproc: %w", err)
	}
	defer func() { _ = logf.Close() }()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("localproc: %w", err)
	}
	defer func() { _ = r.Close() }()
	cmd := exec.Command(s.exe, "supervise", dir)
	// Not the plugin's environment: with go-plugin's cookie in it the
	// binary would serve a plugin instead of running the command.
	cmd.Env = []string{"PATH=" + defaultPath}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	// A session of its own: the supervisor and its service outlive this
	// process and no signal meant for its group reaches them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	_ = w.Close()
	if err != nil {
		return fmt.Errorf("localproc: starting the supervisor of %q: %w", rec.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // reap it while this process lives
	word, _ := io.ReadAll(r)                      // "ok", an error, or nothing if it died
	if string(word) == "ok" {
		return nil
	}
	<-exited
	if len(word) == 0 {
		word = []byte("the supervisor ended without a word; see " + filepath.Join(dir, "supervisor.log"))
	}
	return invalid("service %q: %s", rec.Name, word)
}

// cleanup removes what a failed Start made.
func cleanup(dir string, rec record) {
	removeCgroups(rec.Cgroups)
	_ = os.RemoveAll(dir)
}

// plan checks the spec as the contract says and turns it into a record; it
// also returns the named volumes' directories, to be made. It changes
// nothing.
func (s *setup) plan(spec backend.ServiceSpec) (record, []string, error) {
	if !safeName.MatchString(spec.Name) {
		return record{}, nil, invalid("service name %q: letters, digits, '.', '_' and '-' only", spec.Name)
	}
	if err := backend.CheckUser(spec); err != nil {
		return record{}, nil, err
	}
	if err := backend.CheckVolumes(spec.Volumes); err != nil {
		return record{}, nil, err
	}
	pids, err := backend.PidsLimit(spec.Resources)
	if err != nil {
		return record{}, nil, err
	}
	path, ok := s.images[spec.Image]
	if !ok {
		return record{}, nil, fmt.Errorf("image %q is not in localproc's images: %w", spec.Image, sdk.ErrNotFound)
	}
	if err := checkExecutable(path); err != nil {
		return record{}, nil, fmt.Errorf("image %q: %v: %w", spec.Image, err, sdk.ErrNotFound)
	}
	if spec.Node != "" && spec.Node != s.node {
		return record{}, nil, invalid("node %q: localproc has only %q", spec.Node, s.node)
	}
	if spec.Network != "" {
		if !s.networkExists(spec.Network) {
			return record{}, nil, invalid("network %q does not exist", spec.Network)
		}
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	rec := record{ID: hex.EncodeToString(id), Name: spec.Name, Labels: maps.Clone(spec.Labels), Path: path,
		Network: spec.Network, Node: s.node, IP: s.address, Resources: spec.Resources, MaxLog: s.maxLog,
		Created: time.Now()}

	// Who it runs as: never root, which would be this machine's root.
	uid, gid := s.uid, s.gid
	if spec.User != "" {
		u, g, ok := strings.Cut(spec.User, ":")
		if !ok {
			return record{}, nil, invalid("user %q: localproc needs uid:gid", spec.User)
		}
		uid, _ = strconv.Atoi(u)
		gid, _ = strconv.Atoi(g)
	}
	if uid == 0 || gid == 0 {
		return record{}, nil, invalid("user %d:%d: localproc runs no service as root or in the root group, "+
			"which would be this machine's: there is no container", uid, gid)
	}
	root := s.uid == 0
	if !root && (uid != s.uid || gid != s.gid) {
		return record{}, nil, invalid("user %d:%d: localproc runs as %d:%d, not root, and can run services only as itself",
			uid, gid, s.uid, s.gid)
	}
	rec.SetUser, rec.UID, rec.GID = root, uid, gid

	// What it may do. A process of a uid other than 0 has no capability
	// once it execs; the bounding set decides what setuid binaries may gain.
	rec.NoNewPrivs = !spec.Security.AllowPrivilegeEscalation
	switch {
	case root:
		rec.SetCaps = true
		if spec.Security.KeepCapabilities {
			rec.KeepCaps = dockerCaps
		}
	case !spec.Security.KeepCapabilities && !rec.NoNewPrivs:
		return record{}, nil, invalid("localproc, not running as root, cannot drop the bounding capabilities " +
			"that privilege escalation would give back")
	}

	// Limits need cgroups.
	need := map[string]bool{"pids": pids != -1, "memory": spec.Resources.MemoryLimit > 0, "cpu": spec.Resources.CoresLimit > 0}
	for _, c := range []string{"pids", "memory", "cpu"} {
		if need[c] && !s.cgroups.has(c) {
			return record{}, nil, invalid("localproc cannot apply the %s limit: no usable %s cgroup (%s)", c, c, s.cgroups)
		}
	}
	if rec.Cgroups, err = s.cgroups.paths(s.deployment, rec.ID, need); err != nil {
		return record{}, nil, invalid("cgroups: %v", err)
	}

	// Volumes: an environment variable each, naming the host directory.
	env := map[string]string{"PATH": defaultPath, "HOSTNAME": spec.Hostname}
	for k, v := range spec.Environment {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return record{}, nil, invalid("environment variable %q: not a name, or NUL in its value", k)
		}
		env[k] = v
	}
	type mount struct{ point, host string }
	var mounts []mount
	var named []string
	vars := map[string]bool{}
	for i, v := range spec.Volumes {
		if v.ReadOnly {
			return record{}, nil, invalid("volume %d (%s): localproc cannot make a path read-only, "+
				"its services see this machine's file system", i, v.MountPoint)
		}
		host := v.HostPath
		if v.VolumeName != "" {
			if !safeName.MatchString(v.VolumeName) {
				return record{}, nil, invalid("volume %d: name %q: letters, digits, '.', '_' and '-' only", i, v.VolumeName)
			}
			if s.volumes == "" {
				return record{}, nil, invalid("volume %d: named volume %q: localproc has no volumes_dir", i, v.VolumeName)
			}
			host = filepath.Join(s.volumes, v.VolumeName)
			named = append(named, host)
		} else if fi, err := os.Stat(host); err != nil || !fi.IsDir() {
			return record{}, nil, invalid("volume %d (%s): host path %s is not a directory here (localproc creates none)",
				i, v.MountPoint, host)
		}
		name := volumeEnv(v.MountPoint)
		if vars[name] {
			return record{}, nil, invalid("volume %d (%s): another mount point gives the same variable %s", i, v.MountPoint, name)
		}
		vars[name], env[name] = true, host
		mounts = append(mounts, mount{filepath.Clean(v.MountPoint), host})
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		rec.Env = append(rec.Env, k+"="+env[k])
	}
	rec.Args = append([]string{path}, spec.Command...)
	for _, a := range spec.Command {
		if strings.ContainsRune(a, 0) {
			return record{}, nil, invalid("command: an argument holds NUL")
		}
	}

	// The working directory: a path under a mount point is translated to
	// the host's; else as given if it exists here; else the workspace.
	switch wd := filepath.Clean(spec.WorkDir); {
	case spec.WorkDir != "" && !filepath.IsAbs(spec.WorkDir):
		return record{}, nil, invalid("working directory %q is not absolute", spec.WorkDir)
	case spec.WorkDir != "":
		for _, m := range mounts {
			if rest, ok := strings.CutPrefix(wd, m.point); ok && (rest == "" || rest[0] == '/') {
				rec.WorkDir = filepath.Join(m.host, rest)
			}
		}
		if fi, err := os.Stat(wd); rec.WorkDir == "" && err == nil && fi.IsDir() {
			rec.WorkDir = wd
		}
	}
	if rec.WorkDir == "" && len(mounts) > 0 {
		rec.WorkDir = mounts[0].host
	}
	if rec.WorkDir == "" {
		rec.WorkDir = "/"
	}

	// Ports: published at the same port of this machine.
	for _, p := range spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		if p.Port == 0 || (proto != "tcp" && proto != "udp") {
			return record{}, nil, invalid("port %d/%s: a port number and tcp or udp", p.Port, p.Protocol)
		}
		rec.Ports = append(rec.Ports, backend.PublishedPort{Port: p.Port, Protocol: proto, HostAddress: s.address, HostPort: p.Port})
	}
	return rec, named, nil
}

// volumeEnv is the variable that names a volume's host directory:
// ZOE_VOLUME_ and the mount point's last element, upper case, e.g.
// ZOE_VOLUME_WORKSPACE for /mnt/workspace.
func volumeEnv(mountPoint string) string {
	return "ZOE_VOLUME_" + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, filepath.Base(mountPoint))
}

// checkPorts refuses a port another running service of this machine
// published: it may be free later (sdk.ErrResourceExhausted).
func (s *setup) checkPorts(rec record) error {
	if len(rec.Ports) == 0 {
		return nil
	}
	deployments, err := os.ReadDir(s.root)
	if err != nil {
		return fmt.Errorf("localproc: %w", err)
	}
	for _, d := range deployments {
		if !d.IsDir() {
			continue
		}
		svcs, err := listServices(filepath.Join(s.root, d.Name()))
		if err != nil {
			return err
		}
		for _, sv := range svcs {
			for _, p := range sv.rec.Ports {
				if sv.status.State != backend.ServiceExited && slices.ContainsFunc(rec.Ports, func(q backend.PublishedPort) bool {
					return q.HostPort == p.HostPort && q.Protocol == p.Protocol
				}) {
					return fmt.Errorf("port %d/%s is published by %s: %w", p.HostPort, p.Protocol, sv.rec.Name, sdk.ErrResourceExhausted)
				}
			}
		}
	}
	return nil
}
