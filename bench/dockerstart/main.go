// Command dockerstart times, on the local Docker engine and the test images,
// how long a ZApp of N services takes from its submission to `running`
// through a real `zoe server` (Docker back-end), against `docker run -d` of
// the same containers one after another, each waited for until it runs:
//
//	make build && go run ./bench/dockerstart [-sizes 1,4,16] [-reps 3]
//
// Every service is zoe-test/httpservice:1 with 64 MiB and 0.1 core; the
// docker runs get the same name, hostname, network (created first, timed
// too), labels and limits. It prints the median of each and their ratio
// (Zoe / docker run: below 1 Zoe is faster). Everything it creates carries
// the label zoe.deployment=<its own deployment> (Zoe's) or zoe.bench=<the
// same> (the docker runs') and is removed at the end.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/testimages"
)

const (
	memory   = 64 << 20
	cores    = 0.1
	password = "bench-password"
)

func main() {
	zoe := flag.String("zoe", "bin/zoe", "the zoe binary (its plugins next to it: make build)")
	sizes := flag.String("sizes", "1,4,16", "ZApp sizes (services), comma-separated")
	reps := flag.Int("reps", 3, "repetitions of each measure")
	flag.Parse()
	if err := run(*zoe, *sizes, *reps); err != nil {
		fmt.Fprintln(os.Stderr, "dockerstart:", err)
		os.Exit(1)
	}
}

func run(zoeBin, sizeList string, reps int) error {
	var sizes []int
	for s := range strings.SplitSeq(sizeList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("bad size %q", s)
		}
		sizes = append(sizes, n)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		return fmt.Errorf("the docker CLI is needed for the baseline: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer cli.Close()
	if err := testimages.Build(ctx, cli); err != nil {
		return err
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	dep := "bench-" + hex.EncodeToString(b)
	defer removeAll(dep)

	srv, base, err := startZoe(zoeBin, dep)
	if err != nil {
		return err
	}
	defer srv.stop()

	fmt.Printf("%s, %d repetitions, medians; services: %s, %d MiB, %.1f core\n",
		engineVersion(), reps, testimages.HTTPService, memory>>20, cores)
	fmt.Printf("%8s  %14s  %14s  %6s\n", "services", "zoe submit→run", "docker run ×N", "ratio")
	for _, n := range sizes {
		var zt, dt []time.Duration
		for r := range reps {
			d, err := timeZoe(base, n)
			if err != nil {
				return fmt.Errorf("zoe, %d services: %w\n%s", n, err, srv.out.String())
			}
			zt = append(zt, d)
			d, err = timeDocker(dep, fmt.Sprintf("%d-%d", n, r), n)
			if err != nil {
				return fmt.Errorf("docker run, %d services: %w", n, err)
			}
			dt = append(dt, d)
		}
		zm, dm := median(zt), median(dt)
		fmt.Printf("%8d  %14s  %14s  %6.2f\n", n, zm.Round(time.Millisecond), dm.Round(time.Millisecond),
			float64(zm)/float64(dm))
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func engineVersion() string {
	out, err := exec.Command("docker", "version", "-f", "Docker engine {{.Server.Version}}").Output()
	if err != nil {
		return "Docker engine"
	}
	return strings.TrimSpace(string(out))
}

// syncBuffer is the server's output, written by the process's copier.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type server struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	dir  string
	done chan struct{}
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	_ = os.RemoveAll(s.dir)
}

// startZoe runs `zoe server` on a configuration of its own in a temporary
// directory and waits until its API answers.
func startZoe(bin, dep string) (*server, string, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, "", err
	}
	dir, err := os.MkdirTemp("", "zoe-bench-")
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := ln.Addr().String()
	ln.Close()
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
backend "docker" {}
`, addr, dep)
	if err := os.WriteFile(filepath.Join(dir, "zoe.hcl"), []byte(cfg), 0o600); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), []byte("admin,"+password+",admin\n"), 0o600); err != nil {
		return nil, "", err
	}
	s := &server{out: &syncBuffer{}, dir: dir, done: make(chan struct{})}
	s.cmd = exec.Command(bin, "server", "-config", filepath.Join(dir, "zoe.hcl"))
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		return nil, "", err
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	base := "http://" + addr + "/api/v1"
	deadline := time.Now().Add(60 * time.Second)
	for {
		var h struct{ Status string }
		if code, err := call("GET", base+"/health", nil, &h); err == nil && code == http.StatusOK && h.Status == "ok" {
			return s, base, nil
		}
		select {
		case <-s.done:
			return nil, "", fmt.Errorf("zoe server exited:\n%s", s.out)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, "", errors.New("zoe server did not answer within 60s")
		}
	}
}

func call(method, url string, body, v any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.SetBasicAuth("admin", password)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

type execution struct {
	ID           int64  `json:"id"`
	Status       string `json:"status"`
	ErrorMessage string `json:"error_message"`
}

func app(n int) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"name": "bench", "version": 3, "will_end": false, "size": n,
		"services": []map[string]any{{
			"name": "web", "image": testimages.HTTPService, "monitor": true, "startup_order": 0,
			"essential_count": n, "total_count": n,
			"resources": map[string]any{"memory": map[string]any{"min": memory, "max": nil},
				"cores": map[string]any{"min": cores, "max": nil}},
			"ports": []any{}, "environment": [][2]string{}, "volumes": []any{}, "command": nil,
		}}})
	return b
}

// timeZoe submits a ZApp of n services and measures until it runs; then it
// terminates it and waits until it ended (not measured).
func timeZoe(base string, n int) (time.Duration, error) {
	var ex execution
	t0 := time.Now()
	code, err := call("POST", base+"/executions", map[string]any{"name": "bench", "description": app(n)}, &ex)
	if err != nil || code != http.StatusCreated {
		return 0, fmt.Errorf("submit: %d %v", code, err)
	}
	if err := await(base, ex.ID, "running"); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	if code, err := call("POST", fmt.Sprintf("%s/executions/%d/terminate", base, ex.ID), nil, nil); err != nil || code != http.StatusAccepted {
		return 0, fmt.Errorf("terminate: %d %v", code, err)
	}
	return d, await(base, ex.ID, "terminated")
}

func await(base string, id int64, status string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var ex execution
		if _, err := call("GET", fmt.Sprintf("%s/executions/%d", base, id), nil, &ex); err != nil {
			return err
		}
		switch {
		case ex.Status == status:
			return nil
		case ex.Status == "error" || (ex.Status == "terminated" && status != "terminated"):
			return fmt.Errorf("execution %d ended %s: %s", id, ex.Status, ex.ErrorMessage)
		case time.Now().After(deadline):
			return fmt.Errorf("execution %d still %s after 2 minutes", id, ex.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// timeDocker creates a network and runs n containers on it with `docker
// run -d`, one after another, each waited for until it runs; then it removes
// them (not measured).
func timeDocker(dep, tag string, n int) (time.Duration, error) {
	// Not zoe.deployment: the daemon would remove them as orphans.
	netName := "bench-" + dep + "-" + tag
	label := "zoe.bench=" + dep
	t0 := time.Now()
	if out, err := exec.Command("docker", "network", "create", "--label", label, netName).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("docker network create: %v: %s", err, out)
	}
	var names []string
	for i := range n {
		name := fmt.Sprintf("web%d-%s-%s", i, tag, dep)
		out, err := exec.Command("docker", "run", "-d", "--name", name, "--hostname", name, "--network", netName,
			"--network-alias", name, "--label", label, "--memory", strconv.Itoa(memory), "--memory-swap",
			strconv.Itoa(memory), "--memory-reservation", strconv.Itoa(memory), "--cpus", strconv.FormatFloat(cores, 'f', -1, 64),
			"--restart", "no", testimages.HTTPService).CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("docker run: %v: %s", err, out)
		}
		names = append(names, name)
		for {
			out, err := exec.Command("docker", "inspect", "-f", "{{.State.Running}}", name).Output()
			if err != nil {
				return 0, fmt.Errorf("docker inspect %s: %v", name, err)
			}
			if strings.TrimSpace(string(out)) == "true" {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	d := time.Since(t0)
	if out, err := exec.Command("docker", append([]string{"rm", "-f"}, names...)...).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("docker rm: %v: %s", err, out)
	}
	if out, err := exec.Command("docker", "network", "rm", netName).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("docker network rm: %v: %s", err, out)
	}
	return d, nil
}

// removeAll removes whatever is left of the deployment and the baseline.
func removeAll(dep string) {
	for _, f := range []string{"label=zoe.deployment=" + dep, "label=zoe.bench=" + dep} {
		removeFiltered(f)
	}
}

func removeFiltered(f string) {
	if out, err := exec.Command("docker", "ps", "-aq", "--filter", f).Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		_ = exec.Command("docker", append([]string{"rm", "-f"}, strings.Fields(string(out))...)...).Run()
	}
	if out, err := exec.Command("docker", "network", "ls", "-q", "--filter", f).Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		_ = exec.Command("docker", append([]string{"network", "rm"}, strings.Fields(string(out))...)...).Run()
	}
}
