package main

import (
	"strings"
	"testing"
)

func TestParseWrk(t *testing.T) {
	const out = `Running 10s test @ http://127.0.0.1:40123/api/v1/info
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.71ms    1.02ms  21.30ms   85.12%
    Req/Sec    19.01k     1.20k   22.10k    70.00%
  Latency Distribution
     50%    1.50ms
     75%    2.10ms
     90%    2.90ms
     99%    5.61ms
  378123 requests in 10.00s, 98.12MB read
  Socket errors: connect 0, read 2, write 1, timeout 0
  Non-2xx or 3xx responses: 4
Requests/sec:  37812.30
Transfer/sec:      9.81MB
`
	got, err := parseWrk("info", strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{name: "info", rps: 37812.30, p50: "1.50ms", p90: "2.90ms", p99: "5.61ms", errors: 7}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := parseWrk("info", strings.NewReader("unable to connect to 127.0.0.1:1 Connection refused\n")); err == nil {
		t.Error("no error for an output without results")
	}
}
