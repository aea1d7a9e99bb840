package testutil

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const unprivilegedEnv = "ZOE_TEST_UNPRIVILEGED"

// nobody is the uid and gid an unprivileged test runs as.
const nobody = 65534

// Unprivileged makes the calling test run without root's privileges, which
// checks of unwritable directories need (root writes anywhere): as root it
// runs the test again in a child process of the test binary as uid/gid
// 65534, reports that run's outcome and returns false — the caller then
// returns; otherwise it returns true and the test goes on.
//
//	if !testutil.Unprivileged(t) {
//		return
//	}
func Unprivileged(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return true
	}
	if os.Getenv(unprivilegedEnv) != "" {
		t.Fatal("still root in the unprivileged run")
	}
	// The test binary lives in go's private build directory; nobody needs a
	// copy it can execute.
	dir, err := os.MkdirTemp("", "zoe-unprivileged-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "test")
	if err := copyExecutable(bin); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexpQuote(p) + "$"
	}
	cmd := exec.Command(bin, "-test.run", strings.Join(parts, "/"), "-test.count", "1", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), unprivilegedEnv+"=1", "TMPDIR="+os.TempDir(), "HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()+" ") {
		t.Fatalf("the test run as uid %d failed: %v\n%s", nobody, err, out)
	}
	return false
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func copyExecutable(to string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	in, err := os.Open(self)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
