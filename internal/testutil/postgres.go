package testutil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a throwaway PostgreSQL server on 127.0.0.1 for the tests of
// one test binary: started on first use (initdb takes a few seconds, so
// tests that do not need it do not pay), with a fresh database per caller,
// and stopped by Stop from TestMain:
//
//	var pg = testutil.NewPostgres()
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		pg.Stop()
//		os.Exit(code)
//	}
//
// It runs the server binaries of Debian's postgresql package
// (/usr/lib/postgresql/*/bin), as the postgres user when the tests run as
// root (initdb refuses root). When the server cannot start, tests fail with
// the reason; they are not skipped, in CI or not, since the PostgreSQL store
// must be tested against a real server.
type Postgres struct {
	once sync.Once
	err  error
	dir  string // holds data/, the socket and the log
	bin  string
	port int
	run  []string // prefix running a command as the server's owner
	dbs  atomic.Int64
	// durable keeps PostgreSQL's durability (NewDurablePostgres).
	durable bool
}

// NewPostgres returns a server that starts on first use. It does not wait
// for the disk (fsync and synchronous commit off): tests need no
// durability.
func NewPostgres() *Postgres { return &Postgres{} }

// NewDurablePostgres is NewPostgres with PostgreSQL's default durability
// (fsync, synchronous commit, full page writes), for benchmarks whose
// figures must include the disk.
func NewDurablePostgres() *Postgres { return &Postgres{durable: true} }

// StartPostgres starts a server for t alone, stopped when t ends, and
// returns the DSN of a new database on it. When several tests of a binary
// need PostgreSQL, share one NewPostgres instead: each start costs initdb's
// seconds.
func StartPostgres(t testing.TB) string {
	t.Helper()
	p := NewPostgres()
	t.Cleanup(p.Stop)
	return p.DSN(t)
}

// DSN starts the server if needed, creates a new empty database and
// returns its DSN. It fails t when the server cannot start.
func (p *Postgres) DSN(t testing.TB) string {
	t.Helper()
	dsn, err := p.NewDatabase()
	if err != nil {
		ci := ""
		if os.Getenv("CI") == "true" {
			ci = " (CI)"
		}
		t.Fatalf("PostgreSQL for the tests%s: %v", ci, err)
	}
	return dsn
}

// NewDatabase is DSN for callers without a testing.TB.
func (p *Postgres) NewDatabase() (string, error) {
	p.once.Do(func() { p.err = p.start() })
	if p.err != nil {
		return "", p.err
	}
	name := fmt.Sprintf("t%d", p.dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.dsn("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect to the test server: %w", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return p.dsn(name), nil
}

func (p *Postgres) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

// PostgresBinDir finds the server binaries: the newest
// /usr/lib/postgresql/<version>/bin, else the directory of initdb on PATH.
func PostgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(dirs, func(a, b string) int { return pgVersion(a) - pgVersion(b) })
	if len(dirs) > 0 {
		return filepath.Dir(dirs[len(dirs)-1]), nil
	}
	if initdb, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(initdb), nil
	}
	return "", errors.New("the PostgreSQL server is not installed: no /usr/lib/postgresql/*/bin/initdb and no initdb on PATH; " +
		"run `make deps` (it installs Debian's postgresql package) or `apt-get install postgresql`")
}

func pgVersion(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

func (p *Postgres) start() error {
	bin, err := PostgresBinDir()
	if err != nil {
		return err
	}
	p.bin = bin
	dir, err := os.MkdirTemp("", "zoe-pg-")
	if err != nil {
		return err
	}
	p.dir = dir
	if os.Geteuid() == 0 {
		// initdb refuses to run as root: the cluster belongs to postgres,
		// which must be able to reach dir (MkdirTemp's parent is the
		// world-traversable temporary directory).
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root, but there is no postgres user to own the test cluster: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			return fmt.Errorf("running as root needs runuser to start PostgreSQL as postgres: %w", err)
		}
		p.run = []string{runuser, "-u", "postgres", "--"}
	}
	data := filepath.Join(dir, "data")
	if out, err := p.cmd("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
		"--locale=C.UTF-8", "--no-sync").CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// A free port can be taken between our probe and the server's bind:
	// try a few.
	for attempt := 0; ; attempt++ {
		p.port, err = freePort()
		if err != nil {
			return err
		}
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200", p.port, dir)
		if !p.durable {
			opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
		}
		out, err := p.cmd("pg_ctl", "-D", data, "-l", filepath.Join(dir, "pg.log"), "-o", opts, "-w", "-t", "60",
			"start").CombinedOutput()
		if err == nil {
			return nil
		}
		if attempt == 2 {
			log, _ := os.ReadFile(filepath.Join(dir, "pg.log"))
			return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, tail(string(log), 20))
		}
	}
}

// Stop stops the server, if it started, and removes its files.
func (p *Postgres) Stop() {
	p.once.Do(func() { p.err = errors.New("stopped") })
	if p.dir == "" {
		return
	}
	if p.err == nil {
		if out, err := p.cmd("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-m", "immediate", "-w",
			"stop").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "pg_ctl stop: %v\n%s\n", err, out)
		}
	}
	_ = os.RemoveAll(p.dir)
}

func (p *Postgres) cmd(name string, arg ...string) *exec.Cmd {
	argv := append(append(slices.Clone(p.run), filepath.Join(p.bin, name)), arg...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = p.dir // the postgres user may not be able to enter ours
	return cmd
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
