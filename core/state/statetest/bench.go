package statetest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/sdk/auth"
)

// BenchSizeEnv shrinks Bench's database for a quick run, e.g.
// ZOE_BENCH_EXECUTIONS=2000.
const BenchSizeEnv = "ZOE_BENCH_EXECUTIONS"

// Bench fills a database with 100,000 executions (4 services each) of 100
// users, reporting the fill rate, then measures one more submission and
// listing the newest 50 executions of one user and of all users (the target
// is under 5 ms).
func Bench(b *testing.B, h Harness) {
	n := 100_000
	if v := os.Getenv(BenchSizeEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			b.Fatalf("%s=%q: want a number of executions, at least 100", BenchSizeEnv, v)
		}
	}
	const users = 100
	ctx := context.Background()
	loc := h.New(b)
	st, err := h.Open(ctx, loc, hclog.NewNullLogger())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	// Unlimited, so that the fill is not refused; the quota check still
	// runs (it needs a limit to count anything, see below).
	must(st.CreateQuota(ctx, state.Quota{Name: "bench"}))(b)
	must(st.CreateQuota(ctx, state.Quota{Name: "limited", ConcurrentExecutions: state.MaxQuotaExecutions}))(b)
	for u := range users {
		name := fmt.Sprintf("user%03d", u)
		must(st.RecordLogin(ctx, auth.Identity{Username: name, Role: auth.RoleUser}))(b)
		must(st.UpdateUser(ctx, name, state.UserUpdate{Quota: ptr("bench")}))(b)
	}
	// A ZApp-sized description (~1.5 KB) and expanded services (~400 B).
	desc := []byte(`{"name":"spark","version":3,"size":1024,"services":[` +
		strings.Repeat(`{"name":"worker","image":"zoe/spark:3.5","resources":{"cores":{"min":1,"max":2},"memory":{"min":1073741824}},"ports":[{"name":"ui","port_number":4040,"protocol":"tcp"}]},`, 7) +
		`{"name":"master"}]}`)
	svc := []byte(`{"name":"worker","image":"zoe/spark:3.5","environment":[["SPARK_MASTER","spark://master0:7077"]],` +
		`"resources":{"cores":{"min":1,"max":2},"memory":{"min":1073741824,"max":2147483648}},"ports":[{"name":"ui","port_number":4040}]}`)
	next := 0
	insert := func(b *testing.B) {
		ne := state.NewExecution{Owner: fmt.Sprintf("user%03d", next%users), Name: fmt.Sprintf("spark-%d", next),
			Description: desc, Size: 1024, Cores: 4, Memory: 4 << 30}
		for i := range 4 {
			ne.Services = append(ne.Services, state.NewService{Name: fmt.Sprintf("worker%d", i), Group: "worker",
				Essential: i == 0, StartupOrder: i, Description: svc})
		}
		next++
		if _, err := st.CreateExecution(ctx, ne); err != nil {
			b.Fatal(err)
		}
	}

	start := time.Now()
	for range n {
		insert(b)
	}
	elapsed := time.Since(start)
	b.Logf("filled %d executions with 4 services each in %v: %.0f inserts/s", n, elapsed.Round(time.Millisecond),
		float64(n)/elapsed.Seconds())

	b.Run(fmt.Sprintf("fill-%d", n), func(b *testing.B) {
		// The figure is the fill above; the loop only satisfies the
		// framework.
		for b.Loop() {
		}
		b.ReportMetric(float64(n)/elapsed.Seconds(), "inserts/s")
		b.ReportMetric(float64(elapsed.Nanoseconds())/float64(n), "ns/op")
	})
	b.Run("insert", func(b *testing.B) {
		for b.Loop() {
			insert(b)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
	})
	b.Run("insert-quota-checked", func(b *testing.B) {
		// With a limit the submission counts the owner's active
		// executions (about n/100 here, all still submitted).
		must(st.UpdateUser(ctx, "user007", state.UserUpdate{Quota: ptr("limited")}))(b)
		b.Cleanup(func() { must(st.UpdateUser(ctx, "user007", state.UserUpdate{Quota: ptr("bench")}))(b) })
		for b.Loop() {
			next = 7
			insert(b)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
	})
	lists := []struct {
		name string
		f    state.Filter
	}{
		{"list-user", state.Filter{Owner: "user042", Limit: 50}},
		{"list-all", state.Filter{Limit: 50}},
		{"list-user-submitted", state.Filter{Owner: "user042", Statuses: []state.Status{state.StatusSubmitted}, Limit: 50}},
		{"list-user-active", state.Filter{Owner: "user042", Statuses: state.ActiveStatuses(), Limit: 50}},
		{"list-all-active", state.Filter{Statuses: state.ActiveStatuses(), Limit: 50}},
	}
	for _, l := range lists {
		b.Run(l.name, func(b *testing.B) {
			for b.Loop() {
				es, _, err := st.ListExecutions(ctx, l.f)
				if err != nil || len(es) == 0 || len(es) > 50 {
					b.Fatalf("%d executions, %v", len(es), err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/list")
		})
	}
}

// BenchStartEnv sets BenchStart's number of executions, e.g.
// ZOE_BENCH_START_EXECUTIONS=5000.
const BenchStartEnv = "ZOE_BENCH_START_EXECUTIONS"

// BenchStart measures the store's share of the engine's start path and of
// its passes. Executions of 4 services (one per start-up order) are
// submitted first, untimed; then 16 goroutines, each an execution at a
// time as the engine's start workers, place every service and record it
// running, in three ways: the five separate writes the engine used to make
// (node, starting, handle, endpoints, running), PlaceServices and
// RecordStarted per service (two commits), and PlaceServices for the whole
// execution at once (1.25 commits per service). It reports services/s and
// commits/s. Then it reads the services of every active execution both
// ways: one query each (Services) and one for all (ActiveServices).
func BenchStart(b *testing.B, h Harness) {
	n := 1000
	if v := os.Getenv(BenchStartEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 16 {
			b.Fatalf("%s=%q: want a number of executions, at least 16", BenchStartEnv, v)
		}
	}
	const (
		services = 4
		workers  = 16
	)
	ctx := context.Background()
	ep := []state.Endpoint{{Name: "ui", Port: 4040, Protocol: "tcp", ExternalAddress: "192.0.2.1", ExternalPort: 31000}}
	started := func(sv state.Service) state.Started {
		return state.Started{Handle: state.Handle{Version: 1, ID: "c-" + sv.Name, Data: []byte(`{"id":"c"}`)},
			Node: "node1", IP: "10.0.0.1", BackendStatus: "running", Endpoints: ep, Reason: "started on node node1"}
	}
	ways := []struct {
		name    string
		commits float64 // per service
		start   func(st state.Store, e int64, svs []state.Service) error
	}{
		{"separate-writes", 5, func(st state.Store, e int64, svs []state.Service) error {
			for _, sv := range svs {
				s := started(sv)
				bs := s.BackendStatus
				if _, err := st.UpdateService(ctx, sv.ID, state.ServiceUpdate{Node: ptr("node1")}); err != nil {
					return err
				}
				if _, err := st.TransitionService(ctx, sv.ID, []state.ServiceStatus{state.ServiceCreated},
					state.ServiceStarting, state.ServiceChange{Reason: "placed on node node1"}); err != nil {
					return err
				}
				if _, err := st.UpdateService(ctx, sv.ID, state.ServiceUpdate{Handle: &s.Handle, Node: &s.Node, IP: &s.IP,
					BackendStatus: &bs, ClearExitCode: true}); err != nil {
					return err
				}
				if err := st.SetEndpoints(ctx, sv.ID, s.Endpoints); err != nil {
					return err
				}
				if _, err := st.TransitionService(ctx, sv.ID, []state.ServiceStatus{state.ServiceStarting},
					state.ServiceRunning, state.ServiceChange{Reason: s.Reason, BackendStatus: &bs}); err != nil {
					return err
				}
			}
			return nil
		}},
		{"place-record", 2, func(st state.Store, e int64, svs []state.Service) error {
			for _, sv := range svs {
				if _, err := st.PlaceServices(ctx, e, []state.Placement{{ServiceID: sv.ID, Node: "node1",
					Reason: "placed on node node1"}}); err != nil {
					return err
				}
				if _, err := st.RecordStarted(ctx, sv.ID, started(sv)); err != nil {
					return err
				}
			}
			return nil
		}},
		{"place-execution-record", 1 + 1.0/services, func(st state.Store, e int64, svs []state.Service) error {
			ps := make([]state.Placement, len(svs))
			for i, sv := range svs {
				ps[i] = state.Placement{ServiceID: sv.ID, Node: "node1", Reason: "placed on node node1"}
			}
			if _, err := st.PlaceServices(ctx, e, ps); err != nil {
				return err
			}
			for _, sv := range svs {
				if _, err := st.RecordStarted(ctx, sv.ID, started(sv)); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	// fill opens a new database and submits n executions.
	fill := func(b *testing.B) (state.Store, []int64) {
		st, err := h.Open(ctx, h.New(b), hclog.NewNullLogger())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		must(st.CreateQuota(ctx, state.Quota{Name: "bench"}))(b)
		must(st.RecordLogin(ctx, auth.Identity{Username: "user", Role: auth.RoleUser}))(b)
		must(st.UpdateUser(ctx, "user", state.UserUpdate{Quota: ptr("bench")}))(b)
		ids := make([]int64, n)
		for i := range n {
			ids[i] = must(st.CreateExecution(ctx, newExecution("user", fmt.Sprint("e", i), services)))(b).ID
		}
		return st, ids
	}
	for _, w := range ways {
		b.Run(w.name, func(b *testing.B) {
			st, ids := fill(b)
			execs := make(chan int64, n)
			for _, id := range ids {
				execs <- id
			}
			close(execs)
			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for range workers {
				wg.Go(func() {
					for e := range execs {
						svs, err := st.Services(ctx, e)
						if err == nil {
							err = w.start(st, e, svs)
						}
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			close(errs)
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
			// The figure is the run above; the loop only satisfies the
			// framework.
			for b.Loop() {
			}
			rate := float64(n*services) / elapsed.Seconds()
			b.ReportMetric(rate, "services/s")
			b.ReportMetric(rate*w.commits, "commits/s")
			b.ReportMetric(0, "ns/op")
		})
	}
	// What a pass reads, every execution active.
	b.Run("read", func(b *testing.B) {
		st, _ := fill(b)
		b.Run("per-execution", func(b *testing.B) {
			for b.Loop() {
				for _, e := range must(st.ActiveExecutions(ctx))(b) {
					must(st.Services(ctx, e.ID))(b)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/read")
		})
		b.Run("active-services", func(b *testing.B) {
			for b.Loop() {
				must(st.ActiveExecutions(ctx))(b)
				if m := must(st.ActiveServices(ctx))(b); len(m) != n {
					b.Fatalf("services of %d executions, want %d", len(m), n)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/read")
		})
	})
}
