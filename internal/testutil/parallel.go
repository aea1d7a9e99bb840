package testutil

import (
	"flag"
	"strconv"
)

// RaiseParallel sets -test.parallel to n when the command line does not set
// it and its default (GOMAXPROCS) is lower. It is for the TestMain of
// packages whose parallel tests wait on Docker, PostgreSQL or daemon
// processes rather than compute: on a 2-core machine the default runs two
// of them at a time, and the others wait for a slot while the cores idle.
// It calls flag.Parse, as m.Run would.
func RaiseParallel(n int) {
	if !flag.Parsed() {
		flag.Parse()
	}
	f := flag.Lookup("test.parallel")
	if f == nil {
		return
	}
	set := false
	flag.Visit(func(v *flag.Flag) { set = set || v.Name == "test.parallel" })
	if cur, err := strconv.Atoi(f.Value.String()); set || err != nil || cur >= n {
		return
	}
	_ = f.Value.Set(strconv.Itoa(n))
}
