package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zoe-project/zoe/sdk/backend"
)

// cgroups is what localproc can use of this machine's cgroups to limit a
// service's processes, memory and cores, and to kill all of its processes
// at the end. It writes to the cgroup file systems, so it needs root (or
// a delegated cgroup v2 subtree as cgroup_parent).
type cgroups struct {
	v2           bool
	root, parent string
	usable       []string // of pids, memory, cpu
	why          string   // why not more
}

var controllers = []string{"pids", "memory", "cpu"}

func detectCgroups(root, parent string) cgroups {
	c := cgroups{root: root, parent: parent}
	writable := func(dir string) bool {
		for ; len(dir) > len(root); dir = filepath.Dir(dir) {
			if _, err := os.Stat(dir); err == nil {
				break
			}
		}
		return unix.Access(dir, unix.W_OK) == nil
	}
	if data, err := os.ReadFile(filepath.Join(root, "cgroup.controllers")); err == nil {
		c.v2 = true
		if !writable(filepath.Join(root, parent)) {
			c.why = "cannot write to " + filepath.Join(root, parent)
			return c
		}
		for _, ctrl := range controllers {
			if slices.Contains(strings.Fields(string(data)), ctrl) {
				c.usable = append(c.usable, ctrl)
			}
		}
		return c
	}
	for _, ctrl := range controllers {
		if _, err := os.Stat(filepath.Join(root, ctrl, "cgroup.procs")); err == nil && writable(filepath.Join(root, ctrl, parent)) {
			c.usable = append(c.usable, ctrl)
		}
	}
	if len(c.usable) < len(controllers) {
		c.why = "cgroup v1 controllers under " + root + " missing or not writable"
	}
	return c
}

func (c cgroups) has(ctrl string) bool { return slices.Contains(c.usable, ctrl) }

func (c cgroups) String() string {
	v := "v1"
	if c.v2 {
		v = "v2"
	}
	s := fmt.Sprintf("cgroup %s at %s, usable: %v", v, c.root, c.usable)
	if c.why != "" {
		s += "; " + c.why
	}
	return s
}

// paths returns the cgroups of a service: one per v1 controller it needs
// (pids always when there is one, to kill every process at the end), the
// one directory of v2.
func (c cgroups) paths(deployment, id string, need map[string]bool) ([]string, error) {
	if !safeName.MatchString(deployment) {
		return nil, errors.New("deployment name unusable in a cgroup")
	}
	var out []string
	for _, ctrl := range c.usable {
		if !need[ctrl] && ctrl != "pids" {
			continue
		}
		if c.v2 {
			return []string{filepath.Join(c.root, c.parent, deployment, id)}, nil
		}
		out = append(out, filepath.Join(c.root, ctrl, c.parent, deployment, id))
	}
	return out, nil
}

// create makes a service's cgroups and writes its limits. Each limit asked
// for must land in a file of one of them.
func (c cgroups) create(rec record) error {
	r := rec.Resources
	pids, _ := backend.PidsLimit(r)
	limits := map[string]string{}
	if pids != -1 {
		limits["pids.max"] = strconv.FormatInt(pids, 10)
	}
	if r.MemoryLimit > 0 {
		m := strconv.FormatInt(r.MemoryLimit, 10)
		limits["memory.limit_in_bytes"], limits["memory.max"] = m, m
	}
	if r.CoresLimit > 0 {
		quota := strconv.FormatInt(int64(r.CoresLimit*100000), 10)
		limits["cpu.cfs_period_us"], limits["cpu.cfs_quota_us"], limits["cpu.max"] = "100000", quota, quota+" 100000"
	}
	written := map[string]bool{}
	for _, p := range rec.Cgroups {
		if c.v2 {
			if err := c.enable(p); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		// Order matters for cpu v1: the period before the quota.
		for _, f := range []string{"pids.max", "memory.limit_in_bytes", "memory.max", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.max"} {
			v, ok := limits[f]
			if _, err := os.Stat(filepath.Join(p, f)); !ok || err != nil {
				continue
			}
			if err := os.WriteFile(filepath.Join(p, f), []byte(v), 0o644); err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(p, f), err)
			}
			written[strings.SplitN(f, ".", 2)[0]] = true
		}
	}
	for f := range limits {
		if ctrl := strings.SplitN(f, ".", 2)[0]; !written[ctrl] {
			return fmt.Errorf("no cgroup took the %s limit", ctrl)
		}
	}
	return nil
}

// enable turns on the controllers for the children of each cgroup above p
// (cgroup v2 gives a child only what its parent enabled).
func (c cgroups) enable(p string) error {
	var ctrls []string
	for _, ctrl := range c.usable {
		ctrls = append(ctrls, "+"+ctrl)
	}
	rel, _ := filepath.Rel(c.root, filepath.Dir(p))
	dir := c.root
	for _, part := range append([]string{""}, strings.Split(rel, "/")...) {
		dir = filepath.Join(dir, part)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(ctrls, " ")), 0o644); err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
	}
	return nil
}

// killCgroups kills every process in the cgroups and waits until they are
// empty, for up to a few seconds.
func killCgroups(paths []string) {
	for range 100 {
		alive := false
		for _, p := range paths {
			data, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					alive = true
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if !alive {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// oomKilled tells whether the kernel killed a process of the cgroups for
// memory.
func oomKilled(paths []string) bool {
	for _, p := range paths {
		for _, f := range []string{"memory.oom_control", "memory.events"} {
			data, _ := os.ReadFile(filepath.Join(p, f))
			for line := range strings.Lines(string(data)) {
				if n, ok := strings.CutPrefix(strings.TrimSpace(line), "oom_kill "); ok && n != "0" {
					return true
				}
			}
		}
	}
	return false
}

func removeCgroups(paths []string) {
	for _, p := range paths {
		_ = os.Remove(p)
	}
}
