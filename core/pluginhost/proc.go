package pluginhost

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// processCPU returns the CPU time a process has used so far, user and
// system, and whether it is stopped (by SIGSTOP or a debugger), from
// /proc/<pid>/stat. It tells a busy plugin from a hung one.
func processCPU(pid int) (cpu time.Duration, stopped bool, err error) {
	if pid <= 0 {
		return 0, false, errors.New("no process id")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false, err
	}
	return parseStat(b)
}

// parseStat reads the state and the CPU time of a /proc/<pid>/stat line.
func parseStat(b []byte) (time.Duration, bool, error) {
	// The command, in parentheses, may hold spaces and parentheses: the
	// fields that matter come after its last ")": state, then 10 more,
	// then utime and stime in clock ticks.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("unreadable /proc stat %q", b)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, false, fmt.Errorf("unreadable /proc stat %q", b)
	}
	utime, uerr := strconv.ParseInt(string(f[11]), 10, 64)
	stime, serr := strconv.ParseInt(string(f[12]), 10, 64)
	if uerr != nil || serr != nil {
		return 0, false, fmt.Errorf("unreadable /proc stat %q", b)
	}
	state := f[0]
	stopped := bytes.Equal(state, []byte("T")) || bytes.Equal(state, []byte("t"))
	// USER_HZ is 100 on every Linux Go supports.
	return time.Duration(utime+stime) * (time.Second / 100), stopped, nil
}
