package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// poll is how often a waiting call looks at a service's state again.
const poll = 20 * time.Millisecond

// Stop asks the supervisor to stop the service: it sends SIGTERM to the
// program's process group and SIGKILL after grace, even if this call or
// this process ends first. Stop returns once the exit is recorded.
func (b *Backend) Stop(ctx context.Context, h backend.Handle, grace time.Duration) error {
	s, err := b.setup()
	if err != nil {
		return err
	}
	sv, err := s.lookup(h)
	if err != nil || sv.status.State != backend.ServiceRunning {
		if sv != nil {
			sv.killLost()
		}
		return err
	}
	if err := os.WriteFile(filepath.Join(sv.dir, stopFile), []byte(strconv.FormatInt(grace.Milliseconds(), 10)), 0o600); err != nil {
		return fmt.Errorf("localproc: stopping %q: %w", sv.rec.Name, err)
	}
	return s.signalAndWait(ctx, h, sv, syscall.SIGTERM)
}

// signalAndWait signals the supervisor and waits until the exit is
// recorded (or the supervisor is gone).
func (s *setup) signalAndWait(ctx context.Context, h backend.Handle, sv *service, sig syscall.Signal) error {
	if sv.st.supervisorAlive() {
		if err := syscall.Kill(sv.st.SupervisorPID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("localproc: signalling the supervisor of %q: %w", sv.rec.Name, err)
		}
	}
	for {
		now, err := s.lookup(h)
		if err != nil || now.status.State == backend.ServiceExited {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// killLost kills the program of a service whose supervisor ended without
// a word: it is reported exited, so it must not run on.
func (sv *service) killLost() {
	if !sv.lost {
		return
	}
	if start, ok := procStart(sv.st.PID); ok && start == sv.st.PIDStart {
		_ = syscall.Kill(-sv.st.PID, syscall.SIGKILL)
	}
	killCgroups(sv.rec.Cgroups)
}

// Remove deletes the service's directory, killing it first with force.
func (b *Backend) Remove(ctx context.Context, h backend.Handle, force bool) error {
	s, err := b.setup()
	if err != nil {
		return err
	}
	sv, err := s.lookup(h)
	if err != nil {
		return err
	}
	if sv.status.State == backend.ServiceRunning {
		if !force {
			return fmt.Errorf("service %q is running: %w", sv.rec.Name, sdk.ErrConflict)
		}
		if err := s.signalAndWait(ctx, h, sv, syscall.SIGUSR1); err != nil {
			return err
		}
	}
	sv.killLost()
	removeCgroups(sv.rec.Cgroups)
	// Out of sight at once, then deleted.
	gone := filepath.Join(filepath.Dir(sv.dir), ".removed-"+sv.rec.ID)
	if err := os.Rename(sv.dir, gone); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("service %q: %w", sv.rec.Name, sdk.ErrNotFound)
		}
		return fmt.Errorf("localproc: removing %q: %w", sv.rec.Name, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("localproc: removing %q: %w", sv.rec.Name, err)
	}
	return nil
}

func (b *Backend) Inspect(_ context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	s, err := b.setup()
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	sv, err := s.lookup(h)
	if err != nil {
		return backend.ServiceStatus{}, err
	}
	return sv.status, nil
}

// Recover needs nothing re-attached: the supervisor runs on, and the
// state is in files.
func (b *Backend) Recover(ctx context.Context, h backend.Handle) (backend.ServiceStatus, error) {
	return b.Inspect(ctx, h)
}

func (b *Backend) List(_ context.Context, opts backend.ListOptions) ([]backend.ServiceStatus, error) {
	s, err := b.setup()
	if err != nil {
		return nil, err
	}
	svcs, err := listServices(s.dir)
	if err != nil {
		return nil, err
	}
	var out []backend.ServiceStatus
	for _, sv := range svcs {
		if opts.Matches(sv.status.Labels) {
			out = append(out, sv.status)
		}
	}
	return out, nil
}

// Events polls the state directory and sends what changed since the last
// look. A service that started and exited between two looks gets both.
func (b *Backend) Events(ctx context.Context) (<-chan backend.Event, error) {
	s, err := b.setup()
	if err != nil {
		return nil, err
	}
	snapshot := func() (map[string]backend.ServiceStatus, error) {
		svcs, err := listServices(s.dir)
		m := map[string]backend.ServiceStatus{}
		for _, sv := range svcs {
			m[sv.rec.ID] = sv.status
		}
		return m, err
	}
	prev, err := snapshot()
	if err != nil {
		return nil, err
	}
	ch := make(chan backend.Event, 64)
	go func() {
		defer close(ch)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-b.closed:
				return
			case <-tick.C:
			}
			cur, err := snapshot()
			if err != nil {
				return // the core subscribes again
			}
			var events []backend.Event
			for id, st := range cur {
				was, known := prev[id]
				if st.State != backend.ServiceCreated && (!known || was.State == backend.ServiceCreated) {
					events = append(events, backend.Event{Kind: backend.EventStarted, ServiceName: st.Name, HandleID: id, Time: st.StartedAt})
				}
				if st.State == backend.ServiceExited && (!known || was.State != backend.ServiceExited) {
					if st.OOMKilled {
						events = append(events, backend.Event{Kind: backend.EventOOMKilled, ServiceName: st.Name, HandleID: id, Time: st.FinishedAt})
					}
					events = append(events, backend.Event{Kind: backend.EventExited, ServiceName: st.Name, HandleID: id,
						ExitCode: st.ExitCode, Time: st.FinishedAt, Message: st.Message})
				}
			}
			prev = cur
			for _, e := range events {
				select {
				case ch <- e:
				case <-ctx.Done():
					return
				case <-b.closed:
					return
				}
			}
		}
	}()
	return ch, nil
}

// A network is a record: every service shares this machine's network.
type network struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
}

func (s *setup) networkFile(id string) string {
	return filepath.Join(s.dir, "networks", id+".json")
}

// networkExists tells whether id names a network of the deployment.
func (s *setup) networkExists(id string) bool {
	if !safeName.MatchString(id) {
		return false
	}
	_, err := os.Stat(s.networkFile(id))
	return err == nil
}

// CreateNetwork records the network; its id is its name, unique in the
// deployment.
func (b *Backend) CreateNetwork(_ context.Context, spec backend.NetworkSpec) (string, error) {
	s, err := b.setup()
	if err != nil {
		return "", err
	}
	if !safeName.MatchString(spec.Name) {
		return "", invalid("network name %q: letters, digits, '.', '_' and '-' only", spec.Name)
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	tmp := s.networkFile(".new-" + hex.EncodeToString(suffix))
	if err := writeJSON(tmp, network{Name: spec.Name, Labels: spec.Labels}); err != nil {
		return "", fmt.Errorf("localproc: %w", err)
	}
	defer func() { _ = os.Remove(tmp) }()
	// A link fails when the name exists: creation and the check are one.
	if err := os.Link(tmp, s.networkFile(spec.Name)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("network %q: %w", spec.Name, sdk.ErrAlreadyExists)
		}
		return "", fmt.Errorf("localproc: %w", err)
	}
	return spec.Name, nil
}

func (b *Backend) RemoveNetwork(_ context.Context, id string) error {
	s, err := b.setup()
	if err != nil {
		return err
	}
	if !s.networkExists(id) {
		return fmt.Errorf("network %q: %w", id, sdk.ErrNotFound)
	}
	svcs, err := listServices(s.dir)
	if err != nil {
		return err
	}
	for _, sv := range svcs {
		if sv.rec.Network == id && sv.status.State != backend.ServiceExited {
			return fmt.Errorf("network %q is used by %s: %w", id, sv.rec.Name, sdk.ErrConflict)
		}
	}
	if err := os.Remove(s.networkFile(id)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("network %q: %w", id, sdk.ErrNotFound)
		}
		return fmt.Errorf("localproc: %w", err)
	}
	return nil
}
