package testutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestErrorsSince: a failed swarm test shows the warnings and errors the
// engine logged after the test began, the last ones when there are many.
func TestErrorsSince(t *testing.T) {
	e := &SwarmEngine{dir: t.TempDir()}
	before := "level=error msg=\"before the test\"\n"
	if err := os.WriteFile(filepath.Join(e.dir, "dockerd.log"), []byte(before), 0o600); err != nil {
		t.Fatal(err)
	}
	off := e.LogSize()
	f, err := os.OpenFile(e.logPath(), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{
		`level=info msg="task created"`,
		`level=error msg="task allocation failure" error="one"`,
		`level=warning msg="two"`,
		`level=error msg="three"`,
	} {
		if _, err := f.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	cases := []struct {
		name      string
		max       int
		want, not []string
	}{
		{"all", 10, []string{`"task allocation failure" error="one"`, `"two"`, `"three"`}, []string{"before the test", "task created", "left out"}},
		{"the last", 2, []string{"(1 earlier lines left out)", `"two"`, `"three"`}, []string{`error="one"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := e.ErrorsSince(off, c.max)
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("ErrorsSince = %q, want %q in it", got, w)
				}
			}
			for _, n := range c.not {
				if strings.Contains(got, n) {
					t.Errorf("ErrorsSince = %q, want no %q in it", got, n)
				}
			}
		})
	}
}
