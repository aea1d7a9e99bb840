package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"strconv"
	"time"

	"github.com/zoe-project/zoe/core/config"
)

// SMTP sends mail through one server, a new connection per mail: mail is
// rare, and a connection kept open would only time out between mails.
type SMTP struct {
	addr, host string
	mode       string
	tls        *tls.Config
	username   string
	password   string
	timeout    time.Duration
}

// NewSMTP checks the configuration and reads the CA file.
func NewSMTP(c config.SMTP) (*SMTP, error) {
	s := &SMTP{addr: net.JoinHostPort(c.Server, strconv.Itoa(c.Port)), host: c.Server, mode: c.TLS,
		username: c.Username, password: string(c.Password), timeout: c.Timeout}
	if s.timeout <= 0 {
		s.timeout = config.DefaultSMTPTimeout
	}
	switch c.TLS {
	case config.SMTPStartTLS, config.SMTPTLS:
		s.tls = &tls.Config{ServerName: c.Server, MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("smtp ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("smtp ca_file %s: no PEM certificate in it", c.CAFile)
			}
			s.tls.RootCAs = pool
		}
	case config.SMTPNone:
		if c.Username != "" {
			return nil, errors.New(`smtp: credentials need tls = "starttls" or "tls"`)
		}
	default:
		return nil, fmt.Errorf("smtp: unknown tls mode %q", c.TLS)
	}
	return s, nil
}

// Send delivers msg from the envelope sender from to one recipient. It
// gives up after the configured timeout or when ctx ends. Errors name the
// server, never the credentials.
func (s *SMTP) Send(ctx context.Context, from, to string, msg []byte) (err error) {
	sender, err := mail.ParseAddress(from)
	if err != nil {
		return fmt.Errorf("sender: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", s.addr, err)
	}
	// net/smtp knows no context: the deadline bounds each read and
	// write, and closing the connection ends a send when ctx ends.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	defer func() {
		if err != nil {
			conn.Close()
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
			}
		}
	}()
	if s.mode == config.SMTPTLS {
		tc := tls.Client(conn, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("smtp %s: TLS: %w", s.addr, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", s.addr, err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return fmt.Errorf("smtp %s: EHLO: %w", s.addr, err)
	}
	if s.mode == config.SMTPStartTLS {
		// Required: without it the mail, and the password, would cross
		// the network in clear.
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf(`smtp %s: the server does not offer STARTTLS (tls = "none" sends in clear, if that is wanted)`, s.addr)
		}
		if err := c.StartTLS(s.tls); err != nil {
			return fmt.Errorf("smtp %s: STARTTLS: %w", s.addr, err)
		}
	}
	if s.username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("smtp %s: the server offers no authentication, and credentials are set", s.addr)
		}
		if err := c.Auth(smtp.PlainAuth("", s.username, s.password, s.host)); err != nil {
			return fmt.Errorf("smtp %s: authentication as %q: %w", s.addr, s.username, err)
		}
	}
	if err := c.Mail(sender.Address); err != nil {
		return fmt.Errorf("smtp %s: MAIL FROM: %w", s.addr, err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("smtp %s: RCPT TO: %w", s.addr, err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", s.addr, err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", s.addr, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", s.addr, err)
	}
	// The server took the mail; a failed QUIT does not undo that.
	_ = c.Quit()
	return nil
}
