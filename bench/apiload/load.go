package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zoe-project/zoe/client"
)

// target is one endpoint under load.
type target struct {
	name string
	path string // under /api/v1
	// header is the Authorization header's value, "" for none.
	header string
	auth   func(*http.Request)
	check  func(body []byte) error // of a 200 answer
	// writes is how many writes per second another process makes to the
	// database during the load (see writeEvery); 0 for none.
	writes int
}

type result struct {
	name     string
	elapsed  time.Duration
	lat      []time.Duration // sorted
	errors   int
	firstErr error
}

// worker is one connection's measures.
type worker struct {
	lat      []time.Duration
	errors   int
	firstErr error
}

// load sends requests to t back to back from conns connections for warmup
// plus duration and keeps the measures of the requests that started after
// the warm-up.
func load(ctx context.Context, base string, t target, conns int, warmup, duration time.Duration, profile string) (result, error) {
	start := time.Now()
	measureFrom, end := start.Add(warmup), start.Add(warmup+duration)
	workers := make([]worker, conns)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() { workers[i].run(ctx, base, t, measureFrom, end) })
	}
	if profile != "" {
		if err := profileUntil(ctx, profile, measureFrom, end); err != nil {
			wg.Wait()
			return result{}, err
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	r := result{name: t.name, elapsed: duration}
	for _, w := range workers {
		r.lat = append(r.lat, w.lat...)
		r.errors += w.errors
		if r.firstErr == nil {
			r.firstErr = w.firstErr
		}
	}
	slices.Sort(r.lat)
	return r, nil
}

// profileUntil writes a CPU profile of the process, daemon included, from
// from to until.
func profileUntil(ctx context.Context, file string, from, until time.Time) error {
	sleepUntil(ctx, from)
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	sleepUntil(ctx, until)
	pprof.StopCPUProfile()
	return f.Close()
}

func sleepUntil(ctx context.Context, t time.Time) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(t)):
	}
}

func (w *worker) run(ctx context.Context, base string, t target, measureFrom, end time.Time) {
	// A transport per connection: requests queue on their own connection
	// only, never on a shared pool's lock or on another idle connection.
	tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	// The stored data do not change under the load, so the answers
	// should not either: an answer equal to the last one that passed the
	// check passes too, without decoding it again (which would cost the
	// generator as much CPU as the daemon spends on it).
	var body bytes.Buffer
	var passed []byte
	for ctx.Err() == nil {
		t0 := time.Now()
		if !t0.Before(end) {
			return
		}
		err := get(ctx, c, base+t.path, t.auth, &body)
		if err == nil && !bytes.Equal(body.Bytes(), passed) {
			if err = t.check(body.Bytes()); err == nil {
				passed = append(passed[:0], body.Bytes()...)
			}
		}
		if t0.Before(measureFrom) {
			continue
		}
		w.lat = append(w.lat, time.Since(t0))
		if err != nil {
			w.errors++
			if w.firstErr == nil {
				w.firstErr = err
			}
		}
	}
}

// get reads the body of a 200 answer into body; any other answer is an
// error.
func get(ctx context.Context, c *http.Client, url string, auth func(*http.Request), body *bytes.Buffer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if auth != nil {
		auth(req)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body.Reset()
	// Read to the end even on an error, so the connection is reused.
	if _, err := body.ReadFrom(resp.Body); err != nil {
		return fmt.Errorf("GET %s: read: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(body.String()))
	}
	return nil
}

func checkInfo(body []byte) error {
	var info client.Info
	if err := json.Unmarshal(body, &info); err != nil {
		return fmt.Errorf("info: %w", err)
	}
	if info.APIVersion != "v1" || info.DeploymentName != deployment {
		return fmt.Errorf("info: unexpected %+v", info)
	}
	return nil
}

// page is what the checks read of an ExecutionList: the ids only, to keep
// the generator's share of the CPU small.
type page struct {
	Executions []struct {
		ID int64 `json:"id"`
	} `json:"executions"`
	NextCursor string `json:"next_cursor"`
}

func checkList(body []byte) error {
	_, err := decodePage(body)
	return err
}

func decodePage(body []byte) (page, error) {
	var p page
	if err := json.Unmarshal(body, &p); err != nil {
		return p, fmt.Errorf("execution list: %w", err)
	}
	if len(p.Executions) != pageSize {
		return p, fmt.Errorf("execution list: %d executions, want %d", len(p.Executions), pageSize)
	}
	return p, nil
}

// login opens a session for the bench user and returns its token.
func login(base, password string) (string, error) {
	b, err := json.Marshal(client.Login{Username: user, Password: password, TokenName: "apiload"})
	if err != nil {
		return "", err
	}
	resp, err := http.Post(base+"/sessions", "application/json", bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("login: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	var s client.Session
	if err := json.Unmarshal(body, &s); err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	return s.Token, nil
}

// checkPagination reads the first two pages: the newest executions, then
// the next ones, each page newest first.
func checkPagination(base, token string, n int) error {
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
	var body bytes.Buffer
	url := fmt.Sprintf("%s/executions?limit=%d", base, pageSize)
	want := int64(n)
	cursor := ""
	for p := 1; p <= 2; p++ {
		u := url
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		if err := get(context.Background(), http.DefaultClient, u, bearer, &body); err != nil {
			return fmt.Errorf("pagination, page %d: %w", p, err)
		}
		pg, err := decodePage(body.Bytes())
		if err != nil {
			return fmt.Errorf("pagination, page %d: %w", p, err)
		}
		for _, ex := range pg.Executions {
			if ex.ID != want {
				return fmt.Errorf("pagination, page %d: execution %d where %d was expected", p, ex.ID, want)
			}
			want--
		}
		if pg.NextCursor == "" {
			return fmt.Errorf("pagination, page %d: no next_cursor with %d executions stored", p, n)
		}
		cursor = pg.NextCursor
	}
	return nil
}

func printTable(w io.Writer, conns int, rs []result) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
	fmt.Fprintln(w, "| endpoint | conns | requests/s | p50 | p90 | p99 | max | errors |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range rs {
		if len(r.lat) == 0 {
			fmt.Fprintf(w, "| %s | %d | 0 | | | | | %d |\n", label(r.name), conns, r.errors)
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %s | %s | %d |\n", label(r.name), conns,
			float64(len(r.lat))/r.elapsed.Seconds(), ms(quantile(r.lat, 0.50)), ms(quantile(r.lat, 0.90)),
			ms(quantile(r.lat, 0.99)), ms(r.lat[len(r.lat)-1]), r.errors)
	}
}

func label(name string) string {
	switch name {
	case "info":
		return "`GET /info`"
	case "list-bearer":
		return fmt.Sprintf("`GET /executions?limit=%d`, bearer token", pageSize)
	case "list-basic":
		return fmt.Sprintf("`GET /executions?limit=%d`, HTTP Basic", pageSize)
	case "list-bearer-writes":
		return fmt.Sprintf("`GET /executions?limit=%d`, bearer token, other writes", pageSize)
	}
	return name
}

// quantile is the nearest-rank quantile q of sorted.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(float64(len(sorted))*q)) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
