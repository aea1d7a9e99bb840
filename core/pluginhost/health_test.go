package pluginhost

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		cpu     time.Duration
		stopped bool
		wantErr bool
	}{
		{name: "running", stat: "42 (zoe-plugin) R 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 0 0",
			cpu: 3 * time.Second},
		{name: "sleeping", stat: "42 (zoe-plugin) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 9 0 100 0 0",
			cpu: 30 * time.Millisecond},
		{name: "stopped by SIGSTOP", stat: "42 (zoe-plugin) T 1 42 42 0 -1 4194560 100 0 0 0 7 0 0 0 20 0 9 0 100 0 0",
			cpu: 70 * time.Millisecond, stopped: true},
		{name: "stopped by a debugger", stat: "42 (zoe-plugin) t 1 42 42 0 -1 4194560 100 0 0 0 7 0 0 0 20 0 9 0 100 0 0",
			cpu: 70 * time.Millisecond, stopped: true},
		{name: "a command with spaces and parentheses", stat: "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 100 0 0 0 20 0 9 0 100 0 0",
			cpu: time.Second},
		{name: "cut short", stat: "42 (zoe-plugin) S 1 42", wantErr: true},
		{name: "no command", stat: "42 zoe-plugin S", wantErr: true},
		{name: "not numbers", stat: "42 (p) S 1 42 42 0 -1 4194560 100 0 0 0 x y 0 0 20 0 9 0 100 0 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, stopped, err := parseStat([]byte(tt.stat))
			if (err != nil) != tt.wantErr || cpu != tt.cpu || stopped != tt.stopped {
				t.Errorf("parseStat = %s, %v, %v; want %s, %v, error %v", cpu, stopped, err, tt.cpu, tt.stopped, tt.wantErr)
			}
		})
	}
}

// judge tells a busy plugin from a dead one, ping by ping.
func TestHealthJudge(t *testing.T) {
	timing := Timing{PingFailures: 3, BusyTimeout: time.Minute}
	timeout := errors.New("no answer within 5s")
	noProc := errors.New("no /proc")
	type ping struct {
		after   time.Duration // since the previous ping
		err     error
		cpu     time.Duration // CPU time of the process then
		stopped bool
		perr    error
		want    verdict
		dead    string // part of the error when the plugin is declared dead
	}
	tests := []struct {
		name  string
		pings []ping
	}{
		{"answers", []ping{{after: 5 * time.Second, cpu: 1}, {after: 5 * time.Second, cpu: 1}}},
		{"idle and silent: dead after three", []ping{
			{after: 10 * time.Second, err: timeout, want: verdictFailed},
			{after: 10 * time.Second, err: timeout, want: verdictFailed},
			{after: 10 * time.Second, err: timeout, want: verdictFailed, dead: "3 in a row"},
		}},
		{"stopped: dead after three, even with CPU time", []ping{
			{after: 10 * time.Second, err: timeout, cpu: time.Second, stopped: true, want: verdictFailed},
			{after: 10 * time.Second, err: timeout, cpu: 2 * time.Second, stopped: true, want: verdictFailed},
			{after: 10 * time.Second, err: timeout, cpu: 3 * time.Second, stopped: true, want: verdictFailed, dead: "stopped"},
		}},
		{"busy: silent but working is not a failure", []ping{
			{after: 10 * time.Second, err: timeout, cpu: time.Second, want: verdictBusy},
			{after: 10 * time.Second, err: timeout, cpu: 2 * time.Second, want: verdictBusy},
			{after: 10 * time.Second, err: timeout, cpu: 3 * time.Second, want: verdictBusy},
			{after: 10 * time.Second, err: timeout, cpu: 4 * time.Second, want: verdictBusy},
			{after: time.Second, cpu: 5 * time.Second, want: verdictBack},
		}},
		{"busy for too long: dead", []ping{
			{after: 30 * time.Second, err: timeout, cpu: time.Second, want: verdictBusy},
			{after: 30 * time.Second, err: timeout, cpu: 2 * time.Second, want: verdictFailed, dead: "the longest a busy plugin"},
		}},
		{"an answer forgives", []ping{
			{after: 5 * time.Second, err: timeout, want: verdictFailed},
			{after: 5 * time.Second, err: timeout, want: verdictFailed},
			{after: 5 * time.Second, want: verdictBack},
			{after: 5 * time.Second, err: timeout, want: verdictFailed},
			{after: 5 * time.Second, err: timeout, want: verdictFailed},
		}},
		{"work between failures does not forgive them", []ping{
			{after: 5 * time.Second, err: timeout, want: verdictFailed},
			{after: 5 * time.Second, err: timeout, cpu: time.Second, want: verdictBusy},
			{after: 5 * time.Second, err: timeout, cpu: time.Second, want: verdictFailed},
			{after: 5 * time.Second, err: timeout, cpu: time.Second, want: verdictFailed, dead: "3 in a row"},
		}},
		{"no /proc: every silence counts", []ping{
			{after: 5 * time.Second, err: timeout, perr: noProc, want: verdictFailed},
			{after: 5 * time.Second, err: timeout, perr: noProc, want: verdictFailed},
			{after: 5 * time.Second, err: timeout, perr: noProc, want: verdictFailed, dead: "CPU time is unknown"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			h := health{timing: timing, answered: now}
			for i, p := range tt.pings {
				now = now.Add(p.after)
				v, dead := h.judge(now, p.err, p.cpu, p.stopped, p.perr)
				switch {
				case v != p.want:
					t.Fatalf("ping %d: verdict %d, want %d", i, v, p.want)
				case p.dead == "" && dead != nil:
					t.Fatalf("ping %d: declared dead: %v", i, dead)
				case p.dead != "" && (dead == nil || !strings.Contains(dead.Error(), p.dead)):
					t.Fatalf("ping %d: dead = %v, want an error saying %q", i, dead, p.dead)
				}
			}
		})
	}
}
