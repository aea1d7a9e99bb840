// Command probe is the program of the back-end conformance suite's probe
// image (plugintest.BackendSuite.ProbeImage): run in a service, it prints
// who it runs as and what it may do, one "key: value" line each, then
// exits 0. Build it into an image of your platform:
//
//	CGO_ENABLED=0 go build -o prog github.com/zoe-project/zoe/sdk/plugintest/probe
//
// and make it the image's entrypoint anywhere but under /probe, where the
// suite mounts its volumes (Zoe's zoe-test/probe:1 is FROM scratch with
// /prog). The suite passes the directories to try as arguments (Command).
// Its output:
//
//	uid: 12345
//	gid: 23456
//	groups: 23456          (the supplementary groups, space-separated)
//	pid: 1
//	ns net: net:[4026532000] (and ns pid, ns ipc: the /proc/self/ns links)
//	NoNewPrivs:	1          (these six lines as /proc/self/status has them)
//	CapInh: / CapPrm: / CapEff: / CapBnd: / CapAmb:
//	pids.max: 1024         (its cgroup's process limit, v2 or v1; "max" for
//	                       none, "unreadable: ..." without a cgroup file)
//	memory.max: 67108864   (its cgroup's memory limit in bytes, v2 or v1;
//	                       "max" or a huge number for none)
//	write /probe/rw: ok    (one line per argument: a file created and
//	write /probe/ro: read-only file system   removed there, or the error)
//
// It exits 1 only when it cannot read /proc/self/status. It imports the
// standard library only.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	fmt.Printf("uid: %d\n", os.Getuid())
	fmt.Printf("gid: %d\n", os.Getgid())
	groups, _ := os.Getgroups()
	g := make([]string, len(groups))
	for i, x := range groups {
		g[i] = strconv.Itoa(x)
	}
	fmt.Printf("groups: %s\n", strings.Join(g, " "))
	fmt.Printf("pid: %d\n", os.Getpid())
	for _, ns := range []string{"net", "pid", "ipc"} {
		link, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			link = "unreadable: " + err.Error()
		}
		fmt.Printf("ns %s: %s\n", ns, link)
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "NoNewPrivs:") || strings.HasPrefix(line, "Cap") {
			fmt.Println(line)
		}
	}
	f.Close()
	fmt.Printf("pids.max: %s\n", cgroupValue("/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max"))
	fmt.Printf("memory.max: %s\n", cgroupValue("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"))
	for _, dir := range os.Args[1:] {
		fmt.Printf("write %s: %s\n", dir, write(dir))
	}
}

// cgroupValue reads the first of the files that exists: cgroup v2 mounts
// the container's own cgroup at /sys/fs/cgroup, v1 each controller under
// it.
func cgroupValue(files ...string) string {
	var errs []string
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err == nil {
			return strings.TrimSpace(string(b))
		}
		errs = append(errs, err.Error())
	}
	return "unreadable: " + strings.Join(errs, "; ")
}

// write creates a file in dir and removes it: "ok", or why not.
func write(dir string) string {
	path := filepath.Join(dir, fmt.Sprintf(".zoe-probe-%d", os.Getpid()))
	err := os.WriteFile(path, []byte("probe\n"), 0o600)
	if err == nil {
		_ = os.Remove(path)
		return "ok"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
