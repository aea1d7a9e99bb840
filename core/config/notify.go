package config

import (
	"crypto/x509"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Notifications is the notifications block: e-mail to an execution's owner
// when it ends in error, or ends after running longer than LongRunning.
type Notifications struct {
	// LongRunning: an execution that ran at least this long is worth a mail
	// whatever its end; 0 means only errors.
	LongRunning time.Duration
	// PublicURL is where users reach Zoe's pages (the base path they are
	// served under included), without a trailing slash; the mail links to
	// PublicURL/executions/<id>. "" for no link.
	PublicURL string
	// QueueSize bounds the mails waiting to be sent or retried; MaxAttempts
	// bounds the tries of one mail. 0: the notifier's defaults.
	QueueSize   int
	MaxAttempts int
	SMTP        SMTP
}

// SMTP is the mail server the notifications go through.
type SMTP struct {
	Server string
	Port   int
	// TLS is "starttls" (the default: STARTTLS is required, a server that
	// does not offer it is refused), "tls" (TLS from the first byte) or
	// "none" (plain text, only when asked for, and then without
	// credentials).
	TLS string
	// CAFile is a PEM file of the CAs the server's certificate must chain
	// to (absolute), "" for the system's.
	CAFile   string
	Username string
	Password Secret
	// From is the sender, such as "Zoe <zoe@example.org>".
	From    string
	Timeout time.Duration
}

// Secret is a value that must not end up in logs: it formats as
// "(redacted)".
type Secret string

func (Secret) String() string   { return "(redacted)" }
func (Secret) GoString() string { return `"(redacted)"` }

// SMTP TLS modes and the port each defaults to.
const (
	SMTPStartTLS = "starttls"
	SMTPTLS      = "tls"
	SMTPNone     = "none"

	DefaultSMTPTimeout = 30 * time.Second
)

func defaultSMTPPort(mode string) int {
	switch mode {
	case SMTPTLS:
		return 465
	case SMTPNone:
		return 25
	}
	return 587
}

func (d *decoder) notifications(b *hcl.Block) {
	content, diags := b.Body.Content(&hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "long_running"}, {Name: "public_url"}, {Name: "queue_size"}, {Name: "max_attempts"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "smtp"}},
	})
	d.add(diags)
	n := &Notifications{}
	a := content.Attributes
	if v, ok := d.duration(a, "long_running"); ok {
		n.LongRunning = v
	}
	if v, r, ok := d.str(a, "public_url"); ok {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(v, " \t\r\n") {
			d.errorf(r, "Invalid public URL", "public_url must be an http or https URL such as \"https://zoe.example.org\" or \"https://example.org/zoe\", without credentials, query or fragment.")
		} else {
			n.PublicURL = strings.TrimRight(v, "/")
		}
	}
	d.count(a, "queue_size", 1, 100000, &n.QueueSize)
	d.count(a, "max_attempts", 1, 100, &n.MaxAttempts)
	var smtp *hcl.Block
	for _, sb := range content.Blocks {
		if smtp != nil {
			d.errorf(sb.DefRange, "Duplicate smtp block", "Only one smtp block is allowed; the first one is at %s.", smtp.DefRange)
			continue
		}
		smtp = sb
		d.smtp(sb, &n.SMTP)
	}
	if smtp == nil {
		d.errorf(b.DefRange, "Missing smtp block", "The notifications block needs an smtp block: the server the mail goes through.")
	}
	d.cfg.Notifications = n
}

func (d *decoder) smtp(b *hcl.Block, s *SMTP) {
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "server", Required: true}, {Name: "port"}, {Name: "tls"}, {Name: "ca_file"},
		{Name: "username"}, {Name: "password"}, {Name: "from", Required: true}, {Name: "timeout"},
	}})
	d.add(diags)
	a := content.Attributes
	if v, r, ok := d.str(a, "server"); ok {
		host := strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
		if _, err := netip.ParseAddr(host); err != nil && (host == "" || strings.ContainsAny(host, " \t\r\n/:[]@")) {
			d.errorf(r, "Invalid SMTP server", "server must be a host name or an IP address, without a port (set port).")
		} else {
			s.Server = host
		}
	}
	s.TLS = SMTPStartTLS
	if v, r, ok := d.str(a, "tls"); ok && d.oneOf(r, "SMTP TLS mode", v, SMTPStartTLS, SMTPTLS, SMTPNone) {
		s.TLS = v
	}
	s.Port = defaultSMTPPort(s.TLS)
	d.count(a, "port", 1, 65535, &s.Port)
	if v, ok := d.path(a, "ca_file"); ok {
		// Checked now, so that `zoe config validate` finds a wrong path.
		if pem, err := os.ReadFile(v); err != nil {
			d.errorf(a["ca_file"].Expr.Range(), "Invalid CA file", "Cannot read ca_file: %v.", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			d.errorf(a["ca_file"].Expr.Range(), "Invalid CA file", "ca_file %s holds no PEM certificate.", v)
		} else {
			s.CAFile = v
		}
	}
	if v, _, ok := d.str(a, "username"); ok {
		s.Username = v
	}
	if v, _, ok := d.str(a, "password"); ok {
		s.Password = Secret(v)
	}
	switch {
	case (a["username"] == nil) != (a["password"] == nil):
		r := b.DefRange
		if a["username"] != nil {
			r = a["username"].NameRange
		} else if a["password"] != nil {
			r = a["password"].NameRange
		}
		d.errorf(r, "Incomplete SMTP credentials", "Set both username and password, or neither.")
	case a["username"] != nil && s.TLS == SMTPNone:
		d.errorf(a["tls"].Expr.Range(), "Credentials in clear text",
			"tls = \"none\" would send the password unencrypted; use \"starttls\" or \"tls\", or leave the credentials out.")
	case a["ca_file"] != nil && s.TLS == SMTPNone:
		d.errorf(a["ca_file"].NameRange, "CA file without TLS", "ca_file needs tls = \"starttls\" or \"tls\".")
	}
	if v, r, ok := d.str(a, "from"); ok {
		if addr, err := mail.ParseAddress(v); err != nil || strings.ContainsAny(v, "\r\n") {
			d.errorf(r, "Invalid sender", "from must be an address such as \"zoe@example.org\" or \"Zoe <zoe@example.org>\".")
		} else {
			s.From = addr.String()
		}
	}
	s.Timeout = DefaultSMTPTimeout
	if v, ok := d.duration(a, "timeout"); ok {
		s.Timeout = v
	}
}
