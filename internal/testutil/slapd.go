package testutil

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SlapdBinary is Debian's OpenLDAP server (package slapd).
const SlapdBinary = "/usr/sbin/slapd"

// Slapd is a real OpenLDAP server (Debian's slapd) on 127.0.0.1 for one
// test, in a temporary directory, with the core, cosine, inetOrgPerson and
// nis schemas and the memberof overlay (groupOfNames members get a
// memberOf attribute). It is stopped when the test ends.
type Slapd struct {
	// URL is ldap://127.0.0.1:PORT (StartTLS offered when TLS is on).
	URL string
	// LDAPSURL is ldaps://127.0.0.1:PORT when started with a CA, else "".
	LDAPSURL string
	Suffix   string
	RootDN   string
	RootPW   string

	dir  string
	args []string
	env  []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// SlapdOptions configure StartSlapd.
type SlapdOptions struct {
	// Suffix of the database; default dc=zoe,dc=test.
	Suffix string
	// CA, when set, signs a certificate for 127.0.0.1: the server then
	// listens on ldaps:// too and offers StartTLS.
	CA *TestCA
	// LDIF is added (by ldapadd, as the root DN) once the server is up.
	// The suffix's entry is made by StartSlapd.
	LDIF string
	// Global adds lines to the global section of slapd.conf, e.g.
	// "allow bind_anon_cred".
	Global string
	// Access replaces the database's access lines (default: passwords
	// for binds only, everything else readable by all).
	Access string
	// Env is added to slapd's environment, e.g. KRB5_KTNAME.
	Env []string
}

// StartSlapd starts a server and loads o.LDIF. When slapd or ldap-utils
// are missing it fails t under CI=true and skips it otherwise; `make deps`
// installs both.
func StartSlapd(t testing.TB, o SlapdOptions) *Slapd {
	t.Helper()
	if err := slapdInstalled(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err.Error() + " (CI)")
		}
		t.Skip(err.Error())
	}
	dir := t.TempDir()
	var tlsConf string
	if o.CA != nil {
		cert, key := o.CA.serverPEM(t, dir)
		tlsConf = fmt.Sprintf("TLSCACertificateFile %s\nTLSCertificateFile %s\nTLSCertificateKeyFile %s\n", o.CA.File, cert, key)
	}
	s, err := launchSlapd(dir, o, tlsConf)
	if s != nil {
		t.Cleanup(s.stop)
	}
	if err != nil {
		t.Fatalf("slapd: %v", err)
	}
	return s
}

// NewSlapd is StartSlapd for programs (benchmarks): the server runs in
// dir, which must exist, without TLS (o.CA is refused), until Close.
func NewSlapd(dir string, o SlapdOptions) (*Slapd, error) {
	if o.CA != nil {
		return nil, errors.New("slapd: NewSlapd does not take a CA")
	}
	if err := slapdInstalled(); err != nil {
		return nil, err
	}
	s, err := launchSlapd(dir, o, "")
	if err != nil && s != nil {
		s.stop()
	}
	return s, err
}

// Close stops a server of NewSlapd.
func (s *Slapd) Close() { s.stop() }

func slapdInstalled() error {
	for _, bin := range []string{SlapdBinary, "ldapadd"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is not installed: run `make deps` (it installs Debian's slapd and ldap-utils) or `apt-get install slapd ldap-utils`", bin)
		}
	}
	return nil
}

// launchSlapd configures and starts a server in dir and loads o.LDIF; a
// non-nil server is returned to be stopped, even with an error.
func launchSlapd(dir string, o SlapdOptions, tlsConf string) (*Slapd, error) {
	if o.Suffix == "" {
		o.Suffix = "dc=zoe,dc=test"
	}
	s := &Slapd{Suffix: o.Suffix, RootDN: "cn=admin," + o.Suffix, RootPW: "root-" + rand.Text(), dir: dir}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	access := o.Access
	if access == "" {
		access = "access to attrs=userPassword by self write by anonymous auth by * none\naccess to * by * read"
	}
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
%[2]s
%[6]s
database mdb
maxsize 104857600
suffix "%[3]s"
rootdn "%[4]s"
rootpw %[5]s
directory %[1]s/data
overlay memberof
%[7]s
`, dir, tlsConf, o.Suffix, s.RootDN, s.RootPW, o.Global, access)
	confFile := filepath.Join(dir, "slapd.conf")
	s.env = o.Env
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", port)
	urls := s.URL + "/"
	if tlsConf != "" {
		tport, err := freePort()
		if err != nil {
			return nil, err
		}
		s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", tport)
		urls += " " + s.LDAPSURL + "/"
	}
	// -d 0: in the foreground, so that the caller owns the process.
	s.args = []string{"-d", "0", "-h", urls, "-f", confFile}
	if err := s.start(); err != nil {
		return s, err
	}
	rdn, _, _ := strings.Cut(o.Suffix, ",")
	_, dc, _ := strings.Cut(rdn, "=")
	base := fmt.Sprintf("dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: %s\no: %s\n", o.Suffix, dc, dc)
	if err := s.AddLDIF(base); err != nil {
		return s, err
	}
	if o.LDIF != "" {
		if err := s.AddLDIF(o.LDIF); err != nil {
			return s, err
		}
	}
	return s, nil
}

// Add adds the entries of ldif as the root DN.
func (s *Slapd) Add(t testing.TB, ldif string) {
	t.Helper()
	if err := s.AddLDIF(ldif); err != nil {
		t.Fatal(err)
	}
}

// AddLDIF is Add for programs.
func (s *Slapd) AddLDIF(ldif string) error { return s.ldapTool("ldapadd", ldif) }

// Modify applies ldif (changetype records) as the root DN.
func (s *Slapd) Modify(t testing.TB, ldif string) {
	t.Helper()
	if err := s.ldapTool("ldapmodify", ldif); err != nil {
		t.Fatal(err)
	}
}

func (s *Slapd) ldapTool(tool, ldif string) error {
	// The root password in a file for the tools' -y, off their command
	// lines.
	pw := filepath.Join(s.dir, "rootpw")
	if err := os.WriteFile(pw, []byte(s.RootPW), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(tool, "-x", "-H", s.URL, "-D", s.RootDN, "-y", pw)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", tool, err, out)
	}
	return nil
}

// Stop stops the server (SIGTERM) and waits for it to exit; Start starts
// it again on the same ports with the same data.
func (s *Slapd) Stop(t testing.TB) {
	t.Helper()
	s.stop()
}

// Start starts the server again after Stop.
func (s *Slapd) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("slapd restart: %v", err)
	}
}

func (s *Slapd) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	var out SyncBuffer
	cmd := exec.Command(SlapdBinary, s.args...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	host := strings.TrimPrefix(s.URL, "ldap://")
	// slapd is ready within a tenth of a second; minutes under load.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c, err := net.DialTimeout("tcp", host, time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("exited at start (%s %s):\n%s", SlapdBinary, strings.Join(s.args, " "), out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after 2 minutes:\n%s", host, out.String())
		}
	}
}

func (s *Slapd) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// SSHA is password hashed as OpenLDAP's {SSHA}, for userPassword values.
func SSHA(password string) string {
	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	h := sha1.New()
	h.Write([]byte(password))
	h.Write(salt)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h.Sum(nil), salt...))
}

// serverPEM writes a certificate for 127.0.0.1 signed by ca and its key
// into dir, for servers that read PEM files.
func (ca *TestCA) serverPEM(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	c := ca.ServerTLS(t).Certificates[0]
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
