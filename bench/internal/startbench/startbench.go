// Package startbench is what the start benchmarks share: a ZApp of N
// services, waiting for an execution's status, medians; and for those of
// the container back-ends (dockerstart, swarmstart) a `zoe server` process
// on the back-end they configure, the ZApp timed from its submission until
// it runs, and the table of medians against their baseline.
package startbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zoe-project/zoe/bench/internal/benchd"
	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/internal/testutil"
)

const (
	// Memory and Cores are every service's reservation.
	Memory = 64 << 20
	Cores  = 0.1
	// Image is every service's image.
	Image = testimages.HTTPService

	user     = "admin"
	password = "bench-password"
)

// ParseSizes reads a comma-separated list of ZApp sizes.
func ParseSizes(list string) ([]int, error) {
	var sizes []int
	for s := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad size %q", s)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// A Measure times one repetition (rep) of a start of n services.
type Measure func(ctx context.Context, n, rep int) (time.Duration, error)

// Compare measures, for each size, Zoe then the baseline, reps times, and
// prints a row of their medians and ratio (Zoe / baseline: below 1 Zoe is
// faster), with each repetition's time. baseline names the baseline's
// column.
func Compare(ctx context.Context, sizes []int, reps int, baseline string, zoe, base Measure) error {
	fmt.Printf("%8s  %14s  %18s  %6s\n", "services", "zoe submit→run", baseline, "ratio")
	for _, n := range sizes {
		var zt, bt []time.Duration
		for r := range reps {
			d, err := zoe(ctx, n, r)
			if err != nil {
				return fmt.Errorf("zoe, %d services: %w", n, err)
			}
			zt = append(zt, d)
			if d, err = base(ctx, n, r); err != nil {
				return fmt.Errorf("%s, %d services: %w", baseline, n, err)
			}
			bt = append(bt, d)
		}
		zm, bm := Median(zt), Median(bt)
		fmt.Printf("%8d  %14s  %18s  %6.2f   (zoe %s; baseline %s)\n", n, zm.Round(time.Millisecond),
			bm.Round(time.Millisecond), float64(zm)/float64(bm), Durations(zt), Durations(bt))
	}
	return nil
}

// Median of ds (not empty).
func Median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Durations lists ds, to the millisecond.
func Durations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Round(time.Millisecond).String()
	}
	return strings.Join(parts, " ")
}

// LoadAvg is the machine's load average (1, 5, 15 minutes).
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// Server is a `zoe server` process on a configuration of its own, in a
// temporary directory.
type Server struct {
	cmd  *exec.Cmd
	out  *testutil.SyncBuffer
	dir  string
	done chan struct{}
	c    *client.Client
}

// StartServer runs `zoe server` (bin, its plugins next to it) for
// deployment on the back-end plugin backend configured with block (the
// block's body), and waits until its API answers.
func StartServer(ctx context.Context, bin, deployment, backend, block string) (*Server, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	// Built by make, never here: say so before the daemon fails to load
	// them.
	for _, f := range []string{bin, filepath.Join(filepath.Dir(bin), "zoe-plugin-auth-file"),
		filepath.Join(filepath.Dir(bin), "zoe-plugin-workspace-dir"), filepath.Join(filepath.Dir(bin), "zoe-plugin-backend-"+backend)} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("%s is missing: run `make build` first (from the repository's root): %w", f, err)
		}
	}
	addr, err := benchd.FreeAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "zoe-bench-")
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`listen = %q
deployment_name = %q
data_dir = "data"
log_level = "warn"
auth "file" {
  users_file = "users.csv"
}
workspace "dir" {
  base_path = "ws"
}
backend %q {
%s
}
`, addr, deployment, backend, block)
	if err := os.WriteFile(filepath.Join(dir, "zoe.hcl"), []byte(cfg), 0o600); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	// A plain-text password: no bcrypt on each request's Basic check.
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), []byte(user+","+password+",admin\n"), 0o600); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	s := &Server{out: &testutil.SyncBuffer{}, dir: dir, done: make(chan struct{})}
	s.cmd = exec.Command(bin, "server", "-config", filepath.Join(dir, "zoe.hcl"))
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	// Gone with the benchmark, even when it is killed.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := s.cmd.Start(); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	// No streaming calls: every call is bounded.
	if s.c, err = client.New("http://"+addr, client.WithBasicAuth(user, password),
		client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second})); err != nil {
		s.Stop()
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if h, err := s.c.Health(ctx); err == nil && h.Status == "ok" {
			return s, nil
		}
		select {
		case <-s.done:
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("zoe server exited:\n%s", s.out)
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, errors.New("zoe server did not answer within 60s")
		}
	}
}

// Stop stops the server and removes its directory.
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	_ = os.RemoveAll(s.dir)
}

// Output is what the server wrote so far.
func (s *Server) Output() string { return s.out.String() }

// TimeStart submits a ZApp of n services (each publishing port 8080 when
// port is set) and measures until it runs; then running, when not nil, is
// called with the execution's id, and the execution is terminated and
// waited for until it ended (neither measured).
func (s *Server) TimeStart(ctx context.Context, n int, port bool, running func(ctx context.Context, id int64) error) (time.Duration, error) {
	desc, err := ZApp(n, Image, "web", port)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	ex, err := s.c.StartExecution(ctx, client.StartExecution{Name: "bench", Description: desc})
	if err != nil {
		return 0, fmt.Errorf("submit: %w", err)
	}
	if err := Await(ctx, s.c, ex.ID, "running"); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	if running != nil {
		if err := running(ctx, ex.ID); err != nil {
			return 0, err
		}
	}
	if _, err := s.c.Terminate(ctx, ex.ID); err != nil {
		return 0, fmt.Errorf("terminate: %w", err)
	}
	return d, Await(ctx, s.c, ex.ID, "terminated")
}

// Await polls execution id until it has status, for 2 minutes at most; an
// execution that ended otherwise is an error.
func Await(ctx context.Context, c *client.Client, id int64, status string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ex, err := c.GetExecution(ctx, id)
		if err != nil {
			return err
		}
		switch {
		case ex.Status == status:
			return nil
		case ex.Status == "error" || (ex.Status == "terminated" && status != "terminated"):
			return fmt.Errorf("execution %d ended %s: %s", id, ex.Status, ex.ErrorMessage)
		case time.Now().After(deadline):
			return fmt.Errorf("execution %d still %s after 2 minutes: %s", id, ex.Status, ex.WaitingReason)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ZApp is a ZApp of one service, called service, of n essential instances
// of image, with Memory and Cores each, publishing port 8080 when port is
// set.
func ZApp(n int, image, service string, port bool) (json.RawMessage, error) {
	ports := []any{}
	if port {
		ports = append(ports, map[string]any{"name": "page", "port_number": 8080, "protocol": "tcp",
			"url_template": "http://{ip_port}/"})
	}
	return json.Marshal(map[string]any{"name": "bench", "version": 3, "will_end": false, "size": n,
		"services": []map[string]any{{
			"name": service, "image": image, "monitor": true, "startup_order": 0,
			"essential_count": n, "total_count": n,
			"resources": map[string]any{"memory": map[string]any{"min": Memory, "max": nil},
				"cores": map[string]any{"min": Cores, "max": nil}},
			"ports": ports, "environment": [][2]string{}, "volumes": []any{}, "command": nil,
		}}})
}
