package engine_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/engine"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/internal/testutil"
)

// lifeLines are the lifecycle lines of execution id in a JSON log, in
// order, each as "@level @message" with its attributes.
func lifeLines(t *testing.T, out string, id int64) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["execution"] == float64(id) && strings.HasPrefix(m["@message"].(string), "execution ") {
			lines = append(lines, m)
		}
	}
	return lines
}

// lifeMessages are the lines of the moves to each status.
var lifeMessages = map[string]string{
	"submitted": "execution submitted", "queued": "execution queued", "starting": "execution starting",
	"running": "execution running", "cleaning_up": "execution ending: cleaning up",
	"terminated": "execution ended", "error": "execution failed",
}

// TestLifeLog: the daemon's log says, at info, when an execution is
// submitted, queued, starts, runs, ends or fails (and why) and is removed,
// naming it by id, owner and name, and never prints its description (which
// holds environment values).
func TestLifeLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{noEngine: true})
	var out testutil.SyncBuffer
	log := hclog.New(&hclog.LoggerOptions{Name: "engine", Level: hclog.Info, Output: &out, JSONFormat: true})
	var err error
	if e.eng, err = engine.New(log, e.cfg); err != nil {
		t.Fatal(err)
	}
	e.run()

	const secret = "s3cr3t-value"
	ok := e.submit(zappJSON(t, true, svc{name: "job", ess: 1, total: 1, monitor: true,
		env: map[string]string{"ZOE_SIM_RUN": "200ms", "ZOE_SIM_EXIT": "0", "PASSWORD": secret}}))
	bad := e.submit(zappJSON(t, true, svc{name: "job", ess: 1, total: 1, monitor: true,
		env: map[string]string{"ZOE_SIM_RUN": "200ms", "ZOE_SIM_EXIT": "3"}}))
	e.waitStatus(ok.ID, state.StatusTerminated)
	e.waitStatus(bad.ID, state.StatusError)
	// The lines are the steps the store recorded, in their order: a job
	// that ends before its execution is marked running (a loaded machine)
	// goes from starting to cleaning up, and says so.
	steps := map[int64][]string{}
	for _, ex := range []state.Execution{ok, bad} {
		evs, err := e.store.Events(t.Context(), ex.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.ServiceName == "" && ev.From != ev.To {
				steps[ex.ID] = append(steps[ex.ID], lifeMessages[ev.To])
			}
		}
	}
	// The API deletes through the store the daemon wraps the same way.
	if err := engine.WithLifeLog(log, e.store).DeleteExecution(t.Context(), ok.ID); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		ex   state.Execution
		want []string
	}{
		{ok, append(steps[ok.ID], "execution removed")},
		{bad, steps[bad.ID]},
	}
	for _, tt := range tests {
		for _, must := range []string{"execution submitted", "execution queued", "execution starting", "execution ending: cleaning up"} {
			if !slices.Contains(tt.want, must) {
				t.Errorf("execution %d: the store recorded no step %q: %q", tt.ex.ID, must, tt.want)
			}
		}
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.ex.ID), func(t *testing.T) {
			lines := lifeLines(t, out.String(), tt.ex.ID)
			var got []string
			for _, l := range lines {
				got = append(got, l["@message"].(string))
				if l["@level"] != "info" || l["owner"] != "alice" || l["name"] != "test" {
					t.Errorf("line %v: want info, owner alice, name test", l)
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("lines\n got %q\nwant %q\n%s", got, tt.want, out.String())
			}
			last := lines[len(lines)-1]
			if tt.ex.ID == bad.ID {
				if msg, _ := last["error"].(string); !strings.Contains(msg, "exited with code 3") || last["exit_code"] != float64(3) {
					t.Errorf("failure line %v: want the error and exit code 3", last)
				}
			}
			for _, l := range lines[1:] {
				if l["@message"] != "execution removed" && l["reason"] == nil {
					t.Errorf("line %v says no reason", l)
				}
			}
		})
	}
	if strings.Contains(out.String(), secret) {
		t.Errorf("the log holds a description's environment value:\n%s", out.String())
	}
}

// An execution's cores are a sum of its services' fractions, rounded to
// millicores: 0.1 three times is 0.3, not 0.30000000000000004.
func TestExecutionCoresAreRounded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cores []float64
		want  float64
	}{
		{[]float64{0.1, 0.1, 0.1}, 0.3},
		{[]float64{1.1, 0.9}, 2},
		{[]float64{0.25, 0.125}, 0.375},
		{[]float64{2}, 2},
	} {
		var svcs []svc
		for i, c := range tc.cores {
			svcs = append(svcs, svc{name: fmt.Sprintf("svc%d", i), ess: 1, total: 1, monitor: i == 0, cores: c})
		}
		ne, err := engine.NewExecution("alice", "x", zappJSON(t, false, svcs...), engine.Submission{Limits: zapp.DefaultLimits()})
		if err != nil {
			t.Fatal(err)
		}
		if ne.Cores != tc.want {
			t.Errorf("cores %v: %v, want %v", tc.cores, ne.Cores, tc.want)
		}
	}
}
