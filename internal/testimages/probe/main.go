// Command probe is a test image for the back-end conformance suite
// (sdk/plugintest): it prints who it runs as and what it may do, one
// "key: value" line each, then exits 0:
//
//	uid: 12345
//	gid: 23456
//	groups: 23456          (the supplementary groups, space-separated)
//	pid: 1
//	ns net: net:[4026532000] (and ns pid, ns ipc: /proc/self/ns links)
//	NoNewPrivs:	1          (these five lines as /proc/self/status has them)
//	CapInh: / CapPrm: / CapEff: / CapBnd: / CapAmb:
//	pids.max: 1024         (its cgroup's process limit, v2 or v1; "max" for
//	                       none, "unreadable: ..." without a cgroup file)
//	write /probe/rw: ok    (one line per argument: a file created and
//	write /probe/ro: read-only file system   removed there, or the error)
//
// It exits 1 only when it cannot read /proc/self/status.
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
	fmt.Printf("pids.max: %s\n", pidsMax())
	for _, dir := range os.Args[1:] {
		fmt.Printf("write %s: %s\n", dir, write(dir))
	}
}

// pidsMax is the limit of the probe's pids cgroup: cgroup v2 mounts the
// container's own cgroup at /sys/fs/cgroup, v1 its pids controller under it.
func pidsMax() string {
	var errs []string
	for _, p := range []string{"/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max"} {
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
