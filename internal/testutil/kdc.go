package testutil

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// KDC is a real MIT Kerberos KDC (Debian's krb5-kdc) on 127.0.0.1 for one
// test, with its database in a temporary directory; stopped when the test
// ends.
type KDC struct {
	Realm string
	// KRB5Conf is a krb5.conf naming this KDC for Realm (TCP only, no DNS).
	KRB5Conf string
	dir      string
	env      []string
}

// StartKDC creates a realm and starts its KDC. When krb5kdc, kdb5_util or
// kadmin.local are missing it fails t under CI=true and skips it
// otherwise; `make deps` installs them.
func StartKDC(t testing.TB, realm string) *KDC {
	t.Helper()
	for _, bin := range []string{"/usr/sbin/krb5kdc", "/usr/sbin/kdb5_util", "/usr/sbin/kadmin.local"} {
		if _, err := os.Stat(bin); err != nil {
			msg := fmt.Sprintf("%s is not installed: run `make deps` (it installs Debian's krb5-kdc, krb5-admin-server and libsasl2-modules-gssapi-mit)", bin)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg + " (CI)")
			}
			t.Skip(msg)
		}
	}
	dir := t.TempDir()
	k := &KDC{Realm: realm, KRB5Conf: filepath.Join(dir, "krb5.conf"), dir: dir}
	k.env = append(os.Environ(), "KRB5_CONFIG="+k.KRB5Conf, "KRB5_KDC_PROFILE="+filepath.Join(dir, "kdc.conf"))
	// The database does not depend on the port: made once.
	k.writeConf(t, 0)
	k.run(t, "/usr/sbin/kdb5_util", "create", "-s", "-r", realm, "-P", "master-"+rand.Text())
	// A free port can be taken between our probe and the KDC's bind (it
	// then exits at once, saying so in its log): try a few, as for
	// PostgreSQL.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		k.writeConf(t, port)
		err = k.start(t, port)
		if err == nil {
			return k
		}
		if attempt == 2 {
			t.Fatal(err)
		}
	}
}

// writeConf writes krb5.conf and kdc.conf for the KDC on port.
func (k *KDC) writeConf(t testing.TB, port int) {
	t.Helper()
	krb5 := fmt.Sprintf(`[libdefaults]
  default_realm = %[1]s
  dns_lookup_realm = false
  dns_lookup_kdc = false
  rdns = false
  dns_canonicalize_hostname = false
  udp_preference_limit = 1
[realms]
  %[1]s = {
    kdc = 127.0.0.1:%[2]d
  }
`, k.Realm, port)
	// TCP only (kdc_ports empty: no UDP): freePort probes TCP, and the same
	// number over UDP may be any program's, which made the KDC exit.
	kdc := fmt.Sprintf(`[kdcdefaults]
  kdc_ports = ""
  kdc_tcp_ports = %[2]d
[realms]
  %[1]s = {
    database_name = %[3]s/principal
    key_stash_file = %[3]s/stash
    acl_file = %[3]s/kadm5.acl
    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
  }
[logging]
  kdc = FILE:%[3]s/kdc.log
`, k.Realm, port, k.dir)
	for name, text := range map[string]string{"krb5.conf": krb5, "kdc.conf": kdc} {
		if err := os.WriteFile(filepath.Join(k.dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// start starts krb5kdc on port, stopped when t ends, and waits until it
// listens; an error says why it did not, with the end of its log.
func (k *KDC) start(t testing.TB, port int) error {
	t.Helper()
	cmd := exec.Command("/usr/sbin/krb5kdc", "-n", "-P", filepath.Join(k.dir, "kdc.pid"))
	cmd.Env = k.env
	out := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	var exited error
	WaitFor(t, 2*time.Minute, "the KDC listens", func() (bool, string) {
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(k.dir, "kdc.log"))
			exited = fmt.Errorf("krb5kdc on port %d exited:\n%s\nthe end of kdc.log:\n%s", port, out, tail(string(log), 10))
			return true, ""
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return false, err.Error()
		}
		_ = c.Close()
		return true, ""
	})
	return exited
}

// Keytab creates principal (with a random key) and returns a keytab file
// holding its keys.
func (k *KDC) Keytab(t testing.TB, principal string) string {
	t.Helper()
	k.run(t, "/usr/sbin/kadmin.local", "-q", "addprinc -randkey "+principal+"@"+k.Realm)
	file := filepath.Join(k.dir, fmt.Sprintf("%s.keytab", filepath.Base(filepath.Clean("/"+principal))))
	k.run(t, "/usr/sbin/kadmin.local", "-q", "ktadd -k "+file+" "+principal+"@"+k.Realm)
	return file
}

// Env is the environment for programs using this realm: KRB5_CONFIG.
func (k *KDC) Env() []string { return []string{"KRB5_CONFIG=" + k.KRB5Conf} }

func (k *KDC) run(t testing.TB, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = k.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
