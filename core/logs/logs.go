// Package logs keeps the output of services in files under the data
// directory, so that it outlives the containers that wrote it and the
// daemon's restarts. The engine writes (one Writer per running service, fed
// from the back-end's log stream); the API reads, optionally following.
//
// # Layout
//
// A service's log is the directory <dir>/<execution id>/<service>, holding
// numbered files 00000001.log, 00000002.log, ...: the highest number is the
// current file, the others are rotated ones. When an append would take the
// current file past Options.MaxFileSize a new file is started and only the
// Options.MaxFiles newest rotated files are kept. Directories are 0700 and
// files 0600. A log is created by its writer's first record, and the
// writers keep at most Options.MaxOpenFiles files open. Numbers only grow,
// so a follower that reaches the end of a file it is not the newest one
// knows the writer has moved on (the writer finishes a file before it
// creates the next) and goes on with the next.
//
// # Records
//
// One record per line: "<time> <kind> <payload>\n", the time in RFC 3339
// with nanoseconds, UTC. Kind stdout and stderr are entries, the payload
// being the line; "open" names the source that follows (the back-end's
// handle id of the container), "close" ends the log for good. In a payload
// a backslash is written \\ and a newline \n, every other byte as it is:
// any bytes, invalid UTF-8 included, round-trip, and the files stay readable
// with less and grep.
//
// # Resuming without duplicates
//
// After a restart of the daemon or of the back-end plugin, or a broken
// stream, the writer subscribes again from the time of the last entry it
// stored (Writer.Since, inclusive, so nothing is lost; a back-end that
// ignores it sends everything from the start) and must drop what it has
// already stored. Writer.Resync starts such a catch-up: entries older than
// the last stored entry are dropped, and of those at exactly its time as
// many as are stored at that time (several lines often share a time). Every
// file starts with an open record of its source, so the state a writer
// resumes from (source, last time and how many entries share it, whether
// the log is closed) is read from the newest file, rarely the one before.
// A new source (an elastic service started again) starts without a cut-off:
// its output is appended after the previous container's.
package logs

import (
	"container/list"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/sdk"
)

// Options tune a Store; zero values take the defaults.
type Options struct {
	// MaxFileSize is the size in bytes past which a service's current file
	// is rotated; default 10 MiB. A single record larger than that is
	// written whole.
	MaxFileSize int64
	// MaxFiles is the number of rotated files kept per service besides the
	// current one; default 3.
	MaxFiles int
	// Poll is how often a follower looks at the files when no write of this
	// process wakes it (a writer in another process, or none yet); default
	// 1 s.
	Poll time.Duration
	// MaxOpenFiles bounds the files the writers keep open: past it, the
	// file of the writer that appended least recently is closed, and opened
	// again at its next append. Default: DefaultMaxOpenFiles or an eighth
	// of the process's limit on open files, whichever is lower (at least
	// 16). Readers open files of their own.
	MaxOpenFiles int
	// Logger reports what cannot be read or removed; nil discards.
	Logger hclog.Logger
}

// Defaults of Options.
const (
	DefaultMaxFileSize = 10 << 20
	DefaultMaxFiles    = 3
	DefaultPoll        = time.Second
	// One running service each; a daemon with more running services
	// reopens files, it does not run out of them.
	DefaultMaxOpenFiles = 1024
)

// Entry is one line of a service's output.
type Entry struct {
	Time time.Time
	// Stream is "stdout" or "stderr".
	Stream string
	// Line is the line without its newline, any bytes.
	Line []byte
}

// Streams of entries.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Store is a directory of service logs. It is safe for concurrent use; one
// Store per directory and process.
type Store struct {
	dir  string
	opts Options
	log  hclog.Logger

	mu   sync.Mutex
	logs map[key]*svcLog

	// fmu guards openFiles, the svcLogs whose writer has its file open, the
	// most recently used first. Lock order: svcLog.mu, then fmu; fmu is
	// held only to TryLock another svcLog.
	fmu       sync.Mutex
	openFiles list.List
}

type key struct {
	exec    int64
	service string
}

// svcLog is the in-memory side of one service's log, shared by its writer
// and its readers while any of them uses it.
type svcLog struct {
	s    *Store
	key  key
	dir  string
	refs int // guarded by Store.mu
	// elem is the log's place in Store.openFiles while f is open; guarded by
	// Store.fmu (and set or cleared with mu held as well).
	elem *list.Element

	mu sync.Mutex
	// wake is closed at the next change; nil until a follower waits.
	wake    chan struct{}
	removed bool
	// The writer's state, valid while writer is set. f is the current
	// file, nil when closed to stay within Options.MaxOpenFiles.
	writer bool
	f      *os.File
	seq    int64
	size   int64
	source string
	last   time.Time // time of the last entry of source; zero: none
	n      int       // entries of source at time last, at the end
	closed bool
	buf    []byte
	// header is the open record of a log that does not exist yet, written
	// when the first record creates it; nil once the log exists.
	header []byte
}

// New opens or creates the store in dir (created 0700).
func New(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("logs: no directory: %w", sdk.ErrInvalidArgument)
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxFileSize
	}
	if opts.MaxFiles <= 0 {
		opts.MaxFiles = DefaultMaxFiles
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.MaxOpenFiles <= 0 {
		opts.MaxOpenFiles = defaultMaxOpenFiles()
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("logs: create %s: %w", dir, err)
	}
	return &Store{dir: dir, opts: opts, log: opts.Logger, logs: map[key]*svcLog{}}, nil
}

// defaultMaxOpenFiles leaves most of the process's open files to the rest
// of the daemon (the state database, connections, readers).
func defaultMaxOpenFiles() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return DefaultMaxOpenFiles
	}
	return int(max(16, min(DefaultMaxOpenFiles, rl.Cur/8)))
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// checkName refuses what could leave the execution's directory. Service
// names come from validated ZApps; this is the last line of defence.
func checkName(executionID int64, service string) error {
	if executionID < 1 {
		return fmt.Errorf("logs: execution id %d: %w", executionID, sdk.ErrInvalidArgument)
	}
	if service == "" || service == "." || service == ".." || len(service) > 255 ||
		strings.ContainsAny(service, "/\\\x00") {
		return fmt.Errorf("logs: service name %q: %w", service, sdk.ErrInvalidArgument)
	}
	return nil
}

func (s *Store) execDir(executionID int64) string {
	return filepath.Join(s.dir, strconv.FormatInt(executionID, 10))
}

// acquire returns the service's shared log; release it when done.
func (s *Store) acquire(executionID int64, service string) (*svcLog, error) {
	if err := checkName(executionID, service); err != nil {
		return nil, err
	}
	k := key{executionID, service}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.logs[k]
	if l == nil {
		l = &svcLog{s: s, key: k, dir: filepath.Join(s.execDir(executionID), service)}
		s.logs[k] = l
	}
	l.refs++
	return l, nil
}

func (s *Store) release(l *svcLog) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l.refs--
	if l.refs == 0 && s.logs[l.key] == l {
		delete(s.logs, l.key)
	}
}

// notify wakes the followers; l.mu is held.
func (l *svcLog) notify() {
	if l.wake != nil {
		close(l.wake)
		l.wake = nil
	}
}

// changed returns a channel closed at the log's next change.
func (l *svcLog) changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wake == nil {
		l.wake = make(chan struct{})
	}
	return l.wake
}

func fileName(seq int64) string { return fmt.Sprintf("%08d.log", seq) }

func (l *svcLog) path(seq int64) string { return filepath.Join(l.dir, fileName(seq)) }

// files lists the log's file numbers in increasing order; an error wrapping
// os.ErrNotExist when the log does not exist.
func (l *svcLog) files() ([]int64, error) {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, err
	}
	var seqs []int64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if n, err := strconv.ParseInt(name, 10, 64); err == nil && n > 0 {
			seqs = append(seqs, n)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// notFound is the error of a service without a log.
func notFound(k key) error {
	return fmt.Errorf("logs: service %s of execution %d has no log: %w", k.service, k.exec, sdk.ErrNotFound)
}

// RemoveExecution deletes every file of the execution. Its followers
// return an error wrapping sdk.ErrNotFound, its writers fail.
func (s *Store) RemoveExecution(executionID int64) error {
	if executionID < 1 {
		return fmt.Errorf("logs: execution id %d: %w", executionID, sdk.ErrInvalidArgument)
	}
	s.mu.Lock()
	var gone []*svcLog
	for k, l := range s.logs {
		if k.exec == executionID {
			gone = append(gone, l)
			delete(s.logs, k)
		}
	}
	s.mu.Unlock()
	for _, l := range gone {
		l.mu.Lock()
		l.removed = true
		l.closeFile()
		l.mu.Unlock()
	}
	err := os.RemoveAll(s.execDir(executionID))
	// Woken after the removal, so that they find the files gone.
	for _, l := range gone {
		l.mu.Lock()
		l.notify()
		l.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("logs: remove the logs of execution %d: %w", executionID, err)
	}
	return nil
}

// Services lists the services of the execution that have a log, sorted:
// a log is created by its writer's first record.
func (s *Store) Services(executionID int64) ([]string, error) {
	if executionID < 1 {
		return nil, fmt.Errorf("logs: execution id %d: %w", executionID, sdk.ErrInvalidArgument)
	}
	ents, err := os.ReadDir(s.execDir(executionID))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("logs: execution %d: %w", executionID, err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Executions lists the executions that have logs, in increasing order.
func (s *Store) Executions() ([]int64, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	var ids []int64
	for _, e := range ents {
		if n, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && n > 0 && e.IsDir() {
			ids = append(ids, n)
		}
	}
	slices.Sort(ids)
	return ids, nil
}
