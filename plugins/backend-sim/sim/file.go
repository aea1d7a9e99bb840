package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zoe-project/zoe/sdk"
)

const (
	// stateFormat is the version of the state file's layout: 1 was one JSON
	// object rewritten on every change; 2 is that object on the first line
	// (the snapshot), then one line per change.
	stateFormat = 2
	// minCompact is the size the changes after the snapshot may reach before
	// the file is rewritten as one snapshot, if the snapshot is smaller:
	// the rewrite costs the platform's size, so it comes once the changes
	// have cost as much, and each change costs O(1) on average.
	minCompact = 1 << 20
)

// snapshot is the first line of the state file: the whole platform.
type snapshot struct {
	Format int `json:"format"`
	// ID tells a platform from another one created later at the same path,
	// whose event numbers start again.
	ID          string              `json:"id"`
	Seq         uint64              `json:"seq"`
	Services    map[string]*service `json:"services"`
	Networks    map[string]*network `json:"networks"`
	Pulled      map[string][]string `json:"pulled"`
	NextSubnet  int                 `json:"next_subnet"`
	BridgeHosts int                 `json:"bridge_hosts"`
	Events      []eventRecord       `json:"events"`
}

// change is each following line: what one transaction changed.
type change struct {
	// Services and Networks hold each changed one whole; null for removed.
	Services map[string]*service `json:"services,omitempty"`
	Networks map[string]*network `json:"networks,omitempty"`
	// Pulled holds each node's whole list when it changed.
	Pulled      map[string][]string `json:"pulled,omitempty"`
	NextSubnet  int                 `json:"next_subnet"`
	BridgeHosts int                 `json:"bridge_hosts"`
	Events      []eventRecord       `json:"events,omitempty"`
}

// apply carries a change out on the platform.
func (pl *platform) apply(c *change) {
	for id, s := range c.Services {
		if s == nil {
			pl.drop(id)
		} else {
			pl.put(s)
		}
	}
	for id, n := range c.Networks {
		if n == nil {
			pl.dropNetwork(id)
		} else {
			pl.putNetwork(n)
		}
	}
	for n, imgs := range c.Pulled {
		pl.pulled[n] = imgs
	}
	pl.nextSubnet, pl.bridgeHosts = c.NextSubnet, c.BridgeHosts
	if len(c.Events) > 0 {
		pl.keepEvents(c.Events...)
		pl.seq = max(pl.seq, c.Events[len(c.Events)-1].Seq)
	}
}

func (pl *platform) snapshot() *snapshot {
	return &snapshot{Format: stateFormat, ID: pl.id, Seq: pl.seq, Services: pl.services, Networks: pl.networks,
		Pulled: pl.pulled, NextSubnet: pl.nextSubnet, BridgeHosts: pl.bridgeHosts, Events: pl.recentEvents()}
}

func fromSnapshot(s *snapshot) *platform {
	pl := emptyPlatform()
	pl.id, pl.seq, pl.nextSubnet, pl.bridgeHosts = s.ID, s.Seq, s.NextSubnet, s.BridgeHosts
	for _, sv := range s.Services {
		if s.Format == 1 {
			// Format 1 stored the first line too.
			if len(sv.Logs) > 0 && sv.Logs[0].Line == fmt.Sprintf("started %s on %s", sv.Name, sv.Node) {
				sv.Logs = sv.Logs[1:]
			}
		}
		pl.put(sv)
	}
	for _, n := range s.Networks {
		pl.putNetwork(n)
	}
	for n, imgs := range s.Pulled {
		pl.pulled[n] = imgs
	}
	pl.keepEvents(s.Events...)
	return pl
}

// stateFile is the platform's file as one instance follows it: which file
// (it is replaced whole when compacted), and how much of it is applied.
type stateFile struct {
	path string
	// lock is "<path>.lock", whose flock orders the instances; open for the
	// instance's life, so that instances in one process exclude each other
	// too (flock excludes open file descriptions).
	lock *os.File
	// f is the file as last opened; size is how much of it has been
	// applied (up to the end of its last complete line), base the size of
	// its snapshot. ino and size are atomic: fresh reads them without the
	// lock.
	f    *os.File
	ino  atomic.Uint64
	size atomic.Int64
	base int64
}

func openStateFile(path string) (*stateFile, error) {
	l, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s.lock: %v: %w", path, err, sdk.ErrInternal)
	}
	return &stateFile{path: path, lock: l}, nil
}

func (sf *stateFile) close() {
	if sf.f != nil {
		_ = sf.f.Close()
	}
	_ = sf.lock.Close()
}

// acquire takes the exclusive flock, waiting until ctx ends. It is polled
// rather than blocking so that a hung holder cannot hang the caller past
// its deadline.
func (sf *stateFile) acquire(ctx context.Context) (func(), error) {
	wait := 100 * time.Microsecond
	for {
		err := unix.Flock(int(sf.lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { _ = unix.Flock(int(sf.lock.Fd()), unix.LOCK_UN) }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return nil, fmt.Errorf("lock %s.lock: %v: %w", sf.path, err, sdk.ErrInternal)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the lock of %s: %v: %w", sf.path, ctx.Err(), sdk.ErrDeadlineExceeded)
		case <-time.After(wait):
		}
		wait = min(wait*2, 20*time.Millisecond)
	}
}

// fresh tells, without the lock, whether the file is the one this instance
// has applied, all of it: a stat, whatever the platform's size.
func (sf *stateFile) fresh() bool {
	fi, err := os.Stat(sf.path)
	if err != nil {
		return false
	}
	return inode(fi) == sf.ino.Load() && fi.Size() == sf.size.Load()
}

func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// load reads the whole file: its snapshot, then its changes; a missing file
// is fs.ErrNotExist. It runs under the lock, so a last line without its
// newline was cut short by a writer killed mid-write: it is cut off.
func (sf *stateFile) load() (*platform, error) {
	f, err := os.OpenFile(sf.path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("read state %s: %v: %w", sf.path, err, sdk.ErrInternal)
	}
	first, rest, _ := bytes.Cut(b, []byte("\n"))
	var s snapshot
	if err := json.Unmarshal(first, &s); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("state file %s is corrupt: %v: %w", sf.path, err, sdk.ErrInternal)
	}
	if s.Format != stateFormat && s.Format != 1 {
		_ = f.Close()
		return nil, fmt.Errorf("state file %s has format %d; this plugin reads formats 1 and %d: %w", sf.path, s.Format, stateFormat, sdk.ErrUnsupported)
	}
	pl := fromSnapshot(&s)
	base := int64(len(first)) + 1
	if len(first) == len(b) {
		base = int64(len(b)) // format 1, or a snapshot alone without its newline
	}
	n, err := applyLines(pl, rest, nil)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("state file %s: %w", sf.path, err)
	}
	size := base + int64(n)
	if size < int64(len(b)) {
		if err := f.Truncate(size); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("cut the torn end of %s: %v: %w", sf.path, err, sdk.ErrInternal)
		}
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("stat %s: %v: %w", sf.path, err, sdk.ErrInternal)
	}
	sf.use(f, inode(fi), size, base)
	if s.Format != stateFormat {
		// Rewritten at once, so that a plugin reading format 1 refuses it
		// rather than miss the changes after the snapshot.
		return pl, sf.rewrite(pl)
	}
	return pl, nil
}

// applyLines applies each complete line of b to pl and returns how many
// bytes they take; seen gets each change applied.
func applyLines(pl *platform, b []byte, seen func(*change)) (int, error) {
	n := 0
	for {
		i := bytes.IndexByte(b[n:], '\n')
		if i < 0 {
			return n, nil
		}
		var c change
		if err := json.Unmarshal(b[n:n+i], &c); err != nil {
			return n, fmt.Errorf("corrupt change at byte %d: %v: %w", n, err, sdk.ErrInternal)
		}
		pl.apply(&c)
		if seen != nil {
			seen(&c)
		}
		n += i + 1
	}
}

func (sf *stateFile) use(f *os.File, ino uint64, size, base int64) {
	if sf.f != nil {
		_ = sf.f.Close()
	}
	sf.f, sf.base = f, base
	sf.ino.Store(ino)
	sf.size.Store(size)
}

// catchUp applies, under the lock, what other instances appended since
// this one last looked; seen gets each change. It returns false when the
// file was replaced (compacted, or deleted) and must be loaded again, after
// applying what the old one got before it was replaced.
func (sf *stateFile) catchUp(pl *platform, seen func(*change)) (bool, error) {
	fi, err := os.Stat(sf.path)
	replaced := err != nil || inode(fi) != sf.ino.Load()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("stat %s: %v: %w", sf.path, err, sdk.ErrInternal)
	}
	// The old file is complete once replaced: its writer held the lock.
	end, err := sf.f.Seek(0, io.SeekEnd)
	if err != nil {
		return false, fmt.Errorf("read %s: %v: %w", sf.path, err, sdk.ErrInternal)
	}
	size := sf.size.Load()
	if end > size {
		b := make([]byte, end-size)
		if _, err := sf.f.ReadAt(b, size); err != nil {
			return false, fmt.Errorf("read %s: %v: %w", sf.path, err, sdk.ErrInternal)
		}
		n, err := applyLines(pl, b, seen)
		if err != nil {
			return false, fmt.Errorf("state file %s: %w", sf.path, err)
		}
		size += int64(n)
		if size < end && !replaced {
			// Cut short by a writer killed mid-write.
			if err := sf.f.Truncate(size); err != nil {
				return false, fmt.Errorf("cut the torn end of %s: %v: %w", sf.path, err, sdk.ErrInternal)
			}
		}
		sf.size.Store(size)
	}
	return !replaced, nil
}

// append writes a change at the end of the file, under the lock.
func (sf *stateFile) append(c *change) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode a change: %v: %w", err, sdk.ErrInternal)
	}
	b = append(b, '\n')
	size := sf.size.Load()
	if _, err := sf.f.WriteAt(b, size); err != nil {
		// Whatever part was written is a torn line, cut by the next writer.
		return fmt.Errorf("write state %s: %v: %w", sf.path, err, sdk.ErrInternal)
	}
	sf.size.Store(size + int64(len(b)))
	return nil
}

// due tells whether the changes have grown as big as the snapshot, and
// past minCompact: time to rewrite the file.
func (sf *stateFile) due() bool {
	grown := sf.size.Load() - sf.base
	return grown > max(minCompact, sf.base)
}

// rewrite replaces the file atomically with a snapshot of pl, under the
// lock: readers see the old file or the new one, never half of one, even if
// the plugin is killed mid-write. There is no fsync: the platform must
// survive the plugin, not the machine, and large simulations would become
// disk-bound.
func (sf *stateFile) rewrite(pl *platform) error {
	f, err := os.CreateTemp(filepath.Dir(sf.path), filepath.Base(sf.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write state: %v: %w", err, sdk.ErrInternal)
	}
	// Encode writes the line, newline included, without another copy of it.
	werr := json.NewEncoder(f).Encode(pl.snapshot())
	fi, serr := f.Stat()
	if err := errors.Join(werr, serr); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return fmt.Errorf("write state %s: %v: %w", f.Name(), err, sdk.ErrInternal)
	}
	if err := os.Rename(f.Name(), sf.path); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return fmt.Errorf("replace state %s: %v: %w", sf.path, err, sdk.ErrInternal)
	}
	sf.use(f, inode(fi), fi.Size(), fi.Size())
	return nil
}

// removeStaleTemps removes the temporary files of writers killed mid-write.
// It runs under the lock, when no writer can be at work.
func (sf *stateFile) removeStaleTemps() []error {
	dir, base := filepath.Split(sf.path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), base+".tmp-") {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// readPlatform reads a state file without changing it; a missing one is
// fs.ErrNotExist. For the configuration's check.
func readPlatform(path string) (*platform, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	first, rest, _ := bytes.Cut(b, []byte("\n"))
	var s snapshot
	if err := json.Unmarshal(first, &s); err != nil {
		return nil, fmt.Errorf("state file %s is corrupt: %v: %w", path, err, sdk.ErrInternal)
	}
	if s.Format != stateFormat && s.Format != 1 {
		return nil, fmt.Errorf("state file %s has format %d; this plugin reads formats 1 and %d: %w", path, s.Format, stateFormat, sdk.ErrUnsupported)
	}
	pl := fromSnapshot(&s)
	if _, err := applyLines(pl, rest, nil); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return pl, nil
}

// isNotExist tells a missing state file from a broken one.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
