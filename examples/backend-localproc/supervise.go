package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// supervise runs one service and outlives the plugin process that started
// it: it starts the program (through exec-service), says "ok" or why not on
// fd 3, writes the output with a time per line, forwards Stop's signals,
// and records the exit code. It runs as the plugin's user, in a session of
// its own; the program runs in a process group of its own.
func supervise(dir string) error {
	syscall.CloseOnExec(3)
	ready := os.NewFile(3, "ready")
	fail := func(err error) error {
		_, _ = io.WriteString(ready, err.Error())
		_ = ready.Close()
		return err
	}
	var rec record
	if err := readJSON(filepath.Join(dir, specFile), &rec); err != nil {
		return fail(err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, logFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fail(err)
	}
	out := &logWriter{f: logf, max: rec.MaxLog}
	outR, outW, err1 := os.Pipe()
	errR, errW, err2 := os.Pipe()
	execR, execW, err3 := os.Pipe()
	self, err4 := os.Executable()
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return fail(err)
	}
	// Caught before the program starts, so that none kills the supervisor;
	// caught, not ignored, so that the program gets the default actions.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGHUP, syscall.SIGINT)

	cmd := exec.Command(self, "exec-service", dir)
	cmd.Env = []string{"PATH=" + defaultPath}
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.ExtraFiles = []*os.File{execW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	_, _, _ = outW.Close(), errW.Close(), execW.Close()
	if err != nil {
		return fail(err)
	}
	// exec-service closes its end when the program runs (close-on-exec),
	// or writes why it could not.
	if word, _ := io.ReadAll(execR); len(word) > 0 {
		_ = cmd.Wait()
		killCgroups(rec.Cgroups)
		removeCgroups(rec.Cgroups)
		return fail(fmt.Errorf("%s", word))
	}
	pid := cmd.Process.Pid
	me, _ := procStart(os.Getpid())
	child, _ := procStart(pid)
	st := status{SupervisorPID: os.Getpid(), SupervisorStart: me, PID: pid, PIDStart: child, StartedAt: time.Now()}
	if err := writeJSON(filepath.Join(dir, statusFile), st); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		killCgroups(rec.Cgroups)
		return fail(err)
	}
	_, _ = io.WriteString(ready, "ok")
	_ = ready.Close()

	var copiers sync.WaitGroup
	copiers.Go(func() { copyLines(outR, 'o', out) })
	copiers.Go(func() { copyLines(errR, 'e', out) })
	done := make(chan struct{})
	go func() {
		var deadline time.Time
		var timer *time.Timer
		kill := func() { _ = syscall.Kill(-pid, syscall.SIGKILL); killCgroups(rec.Cgroups) }
		for {
			select {
			case <-done:
				if timer != nil {
					timer.Stop()
				}
				return
			case sig := <-sigs:
				switch sig {
				case syscall.SIGTERM: // Stop: SIGTERM, then SIGKILL after the grace period
					_ = syscall.Kill(-pid, syscall.SIGTERM)
					if d := time.Now().Add(stopGrace(dir)); deadline.IsZero() || d.Before(deadline) {
						deadline = d
						if timer != nil {
							timer.Stop()
						}
						timer = time.AfterFunc(time.Until(d), kill)
					}
				case syscall.SIGUSR1: // Remove with force
					kill()
				}
			}
		}
	}()

	_ = cmd.Wait()
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	st.ExitCode = ws.ExitStatus()
	if ws.Signaled() {
		st.ExitCode = 128 + int(ws.Signal())
	}
	// The service ends with its program, as a container ends with its first
	// process: whatever else runs in its group or cgroup is killed.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	killCgroups(rec.Cgroups)
	close(done)
	copied := make(chan struct{})
	go func() { copiers.Wait(); close(copied) }()
	select {
	case <-copied:
	case <-time.After(2 * time.Second): // an escaped process holds the pipes
		_, _ = outR.Close(), errR.Close()
		<-copied
	}
	_ = logf.Sync()
	_ = logf.Close()
	st.OOMKilled = oomKilled(rec.Cgroups)
	removeCgroups(rec.Cgroups)
	st.Exited, st.FinishedAt = true, time.Now()
	return writeJSON(filepath.Join(dir, statusFile), st)
}

// stopGrace reads the grace period Stop wrote; 10 s when there is none.
func stopGrace(dir string) time.Duration {
	data, err := os.ReadFile(filepath.Join(dir, stopFile))
	ms, err2 := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || err2 != nil || ms < 0 {
		return 10 * time.Second
	}
	return time.Duration(ms) * time.Millisecond
}

// execService becomes the service's program: in its cgroups, with its
// capabilities cut down, no_new_privs, its user, its directory. It returns
// only on failure, having written why on fd 3, which closes by itself when
// the exec succeeds.
func execService(dir string) error {
	syscall.CloseOnExec(3)
	report := os.NewFile(3, "report")
	err := becomeService(dir)
	if err == nil {
		err = errors.New("exec returned")
	}
	_, _ = io.WriteString(report, err.Error())
	return err
}

func becomeService(dir string) error {
	var rec record
	if err := readJSON(filepath.Join(dir, specFile), &rec); err != nil {
		return err
	}
	// no_new_privs and the capability sets belong to a thread: the one
	// that calls exec below.
	runtime.LockOSThread()
	for _, cg := range rec.Cgroups {
		if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("joining cgroup %s: %w", cg, err)
		}
	}
	if rec.SetCaps {
		data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
		if err != nil {
			return err
		}
		last, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		for c := 0; c <= last; c++ {
			if !slices.Contains(rec.KeepCaps, c) {
				if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
					return fmt.Errorf("dropping capability %d: %w", c, err)
				}
			}
		}
		// The inheritable set would survive exec and, for root, give back
		// what the bounding set no longer has.
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var caps [2]unix.CapUserData
		if err := unix.Capget(&hdr, &caps[0]); err != nil {
			return fmt.Errorf("capget: %w", err)
		}
		caps[0].Inheritable, caps[1].Inheritable = 0, 0
		if err := unix.Capset(&hdr, &caps[0]); err != nil {
			return fmt.Errorf("capset: %w", err)
		}
	}
	if rec.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	if rec.SetUser {
		// For every thread of the process: leaving uid 0 clears the
		// permitted and effective capabilities.
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		if err := syscall.Setgid(rec.GID); err != nil {
			return fmt.Errorf("setgid %d: %w", rec.GID, err)
		}
		if err := syscall.Setuid(rec.UID); err != nil {
			return fmt.Errorf("setuid %d: %w", rec.UID, err)
		}
	}
	if err := os.Chdir(rec.WorkDir); err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	if err := syscall.Exec(rec.Path, rec.Args, rec.Env); err != nil {
		return fmt.Errorf("exec %s as %d:%d: %w", rec.Path, rec.UID, rec.GID, err)
	}
	return nil
}
