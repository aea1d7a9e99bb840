package testutil

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

// MailServer is a real SMTP server (github.com/emersion/go-smtp) on
// 127.0.0.1 that keeps what it receives. While Down, it closes every
// connection at once, as a server that is not there would.
type MailServer struct {
	Port int
	// Down: connections are closed as soon as they are accepted.
	Down atomic.Bool
	// Refused counts the connections closed while Down.
	Refused atomic.Int64
	// Received has each mail accepted, in order.
	Received chan Mail

	user, password string
	mu             sync.Mutex
	logins         []string
}

// Mail is a mail as the server received it: the envelope and the data.
type Mail struct {
	From string
	To   []string
	Data []byte
}

// MailServerOptions configure a MailServer.
type MailServerOptions struct {
	// TLS is the server's certificate, offered with STARTTLS, or from the
	// first byte when Implicit.
	TLS      *tls.Config
	Implicit bool
	// User and Password are required credentials (AUTH PLAIN), when set.
	User, Password string
	// Down starts the server down.
	Down bool
}

// Logins are the users who authenticated, in order.
func (ms *MailServer) Logins() []string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]string(nil), ms.logins...)
}

// StartMailServer starts a server for the test, stopped at its end.
func StartMailServer(t testing.TB, o MailServerOptions) *MailServer {
	t.Helper()
	ms := &MailServer{Received: make(chan Mail, 100), user: o.User, password: o.Password}
	ms.Down.Store(o.Down)
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{ms: ms}, nil
	}))
	srv.Domain = "mail.test"
	// The refused and failed connections are the tests' doing.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.MaxMessageBytes = 1 << 20
	srv.MaxRecipients = 10
	if !o.Implicit {
		srv.TLSConfig = o.TLS
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err) // a test machine always has a loopback
	}
	ms.Port = ln.Addr().(*net.TCPAddr).Port
	var l net.Listener = &flappingListener{Listener: ln, ms: ms}
	if o.Implicit {
		l = tls.NewListener(l, o.TLS)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ms
}

// flappingListener closes what it accepts while the server is down.
type flappingListener struct {
	net.Listener
	ms *MailServer
}

func (l *flappingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || !l.ms.Down.Load() {
			return c, err
		}
		c.Close()
		l.ms.Refused.Add(1)
	}
}

type session struct {
	ms   *MailServer
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
	s.ms.Received <- Mail{From: s.from, To: s.to, Data: b}
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// TestCA is a certificate authority made for one test, and File the PEM
// file its certificate is in.
type TestCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	File string
}

// NewCA makes a CA named name.
func NewCA(t testing.TB, name string) *TestCA {
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
	return &TestCA{cert: cert, key: key, File: file}
}

// ServerTLS is a certificate for 127.0.0.1 signed by the CA.
func (ca *TestCA) ServerTLS(t testing.TB) *tls.Config {
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
