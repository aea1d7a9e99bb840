package statetest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
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
