package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/internal/testutil"
)

// TestRun runs the benchmark briefly with small numbers, on binaries built
// for it, so that it keeps compiling and working: every login of every
// phase must succeed.
func TestRun(t *testing.T) {
	for _, bin := range []string{testutil.SlapdBinary, "ldapadd"} {
		if _, err := exec.LookPath(bin); err != nil {
			msg := bin + " is not installed: run `make deps` (Debian's slapd and ldap-utils)"
			if os.Getenv("CI") == "true" {
				t.Fatal(msg + " (CI)")
			}
			t.Skip(msg)
		}
	}
	bins := t.TempDir()
	pkgs := testutil.Binaries()
	pkgs["zoe-plugin-auth-ldap"] = "plugins/auth-ldap"
	if err := testutil.Build(bins, pkgs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a hang bound
	defer cancel()
	var out strings.Builder
	err := run(ctx, options{duration: time.Second, concurrency: 2, users: 4, coldRounds: 1, poolSize: 2,
		bin: filepath.Join(bins, "zoe")}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{"ldap cold (1×2)", "ldap warm", "file cold (1×2)", "file warm"} {
		if !strings.Contains(out.String(), "\n"+row+" ") {
			t.Errorf("no row %q in the table", row)
		}
	}
}
