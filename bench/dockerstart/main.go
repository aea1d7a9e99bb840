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
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/bench/internal/startbench"
	"github.com/zoe-project/zoe/internal/testimages"
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
	sizes, err := startbench.ParseSizes(sizeList)
	if err != nil {
		return err
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

	srv, err := startbench.StartServer(ctx, zoeBin, dep, "docker", "")
	if err != nil {
		return err
	}
	defer srv.Stop()

	fmt.Printf("%s, %d repetitions, medians; services: %s, %d MiB, %.1f core\n",
		engineVersion(), reps, startbench.Image, startbench.Memory>>20, startbench.Cores)
	zoe := func(ctx context.Context, n, _ int) (time.Duration, error) {
		d, err := srv.TimeStart(ctx, n, false, nil)
		if err != nil {
			return 0, fmt.Errorf("%w\n%s", err, srv.Output())
		}
		return d, nil
	}
	docker := func(_ context.Context, n, rep int) (time.Duration, error) {
		return timeDocker(dep, fmt.Sprintf("%d-%d", n, rep), n)
	}
	return startbench.Compare(ctx, sizes, reps, "docker run ×N", zoe, docker)
}

func engineVersion() string {
	out, err := exec.Command("docker", "version", "-f", "Docker engine {{.Server.Version}}").Output()
	if err != nil {
		return "Docker engine"
	}
	return strings.TrimSpace(string(out))
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
			"--network-alias", name, "--label", label, "--memory", strconv.Itoa(startbench.Memory), "--memory-swap",
			strconv.Itoa(startbench.Memory), "--memory-reservation", strconv.Itoa(startbench.Memory),
			"--cpus", strconv.FormatFloat(startbench.Cores, 'f', -1, 64),
			"--restart", "no", startbench.Image).CombinedOutput()
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
