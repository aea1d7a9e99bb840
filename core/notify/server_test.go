package notify_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// mailServer is a real SMTP server (github.com/emersion/go-smtp) on
// 127.0.0.1 that keeps what it receives. While down, it closes every
// connection at once, as a server that is not there would.
type mailServer struct {
	addr     *net.TCPAddr
	srv      *smtp.Server
	down     atomic.Bool
	refused  atomic.Int64 // connections closed while down
	received chan received

	user, password string
	mu             sync.Mutex
	logins         []string
}

type received struct {
	from string
	to   []string
	data []byte
}

type serverOptions struct {
	// tls: the certificate, offered with STARTTLS, or from the first byte
	// with implicit.
	tls      *tls.Config
	implicit bool
	// user and password: required credentials (PLAIN).
	user, password string
	down           bool
}

func startMailServer(t *testing.T, o serverOptions) *mailServer {
	t.Helper()
	ms := &mailServer{received: make(chan received, 100), user: o.user, password: o.password}
	ms.down.Store(o.down)
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{ms: ms}, nil
	}))
	srv.Domain = "mail.test"
	// The refused and failed connections are the tests' doing.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.MaxMessageBytes = 1 << 20
	srv.MaxRecipients = 10
	if !o.implicit {
		srv.TLSConfig = o.tls
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err) // a test machine always has a loopback
	}
	ms.addr = ln.Addr().(*net.TCPAddr)
	var l net.Listener = &flappingListener{Listener: ln, ms: ms}
	if o.implicit {
		l = tls.NewListener(l, o.tls)
	}
	ms.srv = srv
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ms
}

// flappingListener closes what it accepts while the server is down.
type flappingListener struct {
	net.Listener
	ms *mailServer
}

func (l *flappingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || !l.ms.down.Load() {
			return c, err
		}
		c.Close()
		l.ms.refused.Add(1)
	}
}

type session struct {
	ms   *mailServer
	from string
	to   []string
	auth bool
}

func (s *session) AuthMechanisms() []string {
	if s.ms.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		if user != s.ms.user || password != s.ms.password {
			return errors.New("invalid credentials")
		}
		s.ms.mu.Lock()
		s.ms.logins = append(s.ms.logins, user)
		s.ms.mu.Unlock()
		s.auth = true
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.ms.user != "" && !s.auth {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.ms.received <- received{from: s.from, to: s.to, data: b}
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// testCA is a certificate authority made for one test, and the file its
// certificate is in.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), name+".pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, file: file}
}

// serverTLS is a certificate for 127.0.0.1 signed by the CA.
func (ca *testCA) serverTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}
