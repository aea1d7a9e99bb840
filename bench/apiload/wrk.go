package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what wrk reports of one endpoint.
type wrkResult struct {
	name          string
	rps           float64
	p50, p90, p99 string
	errors        int // non-2xx answers and socket errors
}

// runWrk loads one endpoint with wrk (Debian's package), a separate
// process written in C, so that the figures do not include a Go load
// generator's own work. A first run of warmup is not measured, as with
// the Go generator: it may pay for a password check whose cached answer
// expired, and wrk's latencies are corrected for coordinated omission (a
// stall counts for every request that could have been sent meanwhile).
func runWrk(ctx context.Context, base string, t target, conns int, warmup, d time.Duration) (wrkResult, error) {
	run := func(d time.Duration) ([]byte, error) {
		args := []string{"-t2", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(max(1, int(d.Seconds()))) + "s", "--latency"}
		if t.header != "" {
			args = append(args, "-H", "Authorization: "+t.header)
		}
		args = append(args, base+t.path)
		out, err := exec.CommandContext(ctx, "wrk", args...).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("wrk: %v\n%s", err, out)
		}
		return out, nil
	}
	if warmup > 0 {
		if _, err := run(warmup); err != nil {
			return wrkResult{}, err
		}
	}
	out, err := run(d)
	if err != nil {
		return wrkResult{}, err
	}
	return parseWrk(t.name, bytes.NewReader(out))
}

func parseWrk(name string, r io.Reader) (wrkResult, error) {
	res := wrkResult{name: name}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "50%":
			res.p50 = f[1]
		case len(f) == 2 && f[0] == "90%":
			res.p90 = f[1]
		case len(f) == 2 && f[0] == "99%":
			res.p99 = f[1]
		case len(f) == 2 && f[0] == "Requests/sec:":
			res.rps, _ = strconv.ParseFloat(f[1], 64)
		case len(f) == 5 && f[0] == "Non-2xx":
			n, _ := strconv.Atoi(f[4])
			res.errors += n
		case len(f) > 2 && f[0] == "Socket" && f[1] == "errors:":
			for i := 2; i+1 < len(f); i += 2 {
				n, _ := strconv.Atoi(strings.TrimSuffix(f[i+1], ","))
				res.errors += n
			}
		}
	}
	if res.rps == 0 || res.p99 == "" {
		return res, fmt.Errorf("wrk printed no result for %s", name)
	}
	return res, nil
}

func printWrkTable(w io.Writer, conns int, rs []wrkResult) {
	fmt.Fprintln(w, "| endpoint (wrk) | conns | requests/s | p50 | p90 | p99 | errors |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %s | %d |\n", label(r.name), conns, r.rps, r.p50, r.p90, r.p99, r.errors)
	}
}
