package main

import (
	"maps"
	"testing"
)

func TestProblems(t *testing.T) {
	log := `2026-12-06T06:55:00.327Z [WARN]  zoe.engine: cannot open a service's log: execution=1931 service=worker0 error="logs: too many open files"
2026-12-06T06:55:00.328Z [WARN]  zoe.engine: cannot open a service's log: execution=1941 service=worker3 error="logs: too many open files"
2026-12-06T06:55:01.000Z [INFO]  zoe.engine: execution running: execution=1
2026-12-06T06:55:02.000Z [ERROR] zoe.plugin.backend-sim: plugin lost; restarting it: reason="health check failed"
2026-12-06T06:55:03.000Z [WARN]  zoe.engine: pass failed; trying again: error="active executions: the database is unavailable"
not a log line
`
	want := map[string]int{
		"[WARN] zoe.engine: cannot open a service's log":             2,
		"[ERROR] zoe.plugin.backend-sim: plugin lost; restarting it": 1,
		"[WARN] zoe.engine: pass failed; trying again":               1,
	}
	if got := problems(log); !maps.Equal(got, want) {
		t.Errorf("problems = %v, want %v", got, want)
	}
}
