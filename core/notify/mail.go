package notify

import (
	"bytes"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/zoe-project/zoe/core/state"
)

// Bounds on user text copied into a mail: execution names and reasons come
// from users and back-ends.
const (
	maxNameLen   = 200
	maxReasonLen = 2000
)

// message is one mail about one execution's end.
type message struct {
	// EventID is the feed event that ended the execution; with the store's
	// identity it makes the Message-ID, so that a mail sent again after a
	// crash carries the same one.
	EventID   int64
	StoreID   string
	Execution state.Execution
	// Status and Reason are the ending event's.
	Status, Reason string
	Ended          time.Time
	Owner          string
	To             string // a bare address
	From           string // the From header, as config.SMTP.From
	// Link is the execution's page, "" for none.
	Link        string
	LongRunning time.Duration
	Date        time.Time
}

// ran is how long the execution ran: from its start to its end, 0 when it
// never started.
func ran(e state.Execution, ended time.Time) time.Duration {
	if e.StartedAt == nil {
		return 0
	}
	if e.EndedAt != nil {
		ended = *e.EndedAt
	}
	return max(ended.Sub(*e.StartedAt), 0)
}

// shown is a duration as the mail shows it, to the second.
func shown(d time.Duration) string { return d.Round(time.Second).String() }

// oneLine makes user text safe for one line of a mail: control characters
// (CR and LF among them) become spaces, invalid UTF-8 is replaced, and it
// is cut to at most max bytes.
func oneLine(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) <= max {
		return s
	}
	cut := max - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func (m message) subject() string {
	name := oneLine(m.Execution.Name, maxNameLen)
	if m.Status == string(state.StatusError) {
		return fmt.Sprintf("[Zoe] Execution \"%s\" (#%d) ended in error", name, m.Execution.ID)
	}
	return fmt.Sprintf("[Zoe] Execution \"%s\" (#%d) ended after %s", name, m.Execution.ID, shown(ran(m.Execution, m.Ended)))
}

func (m message) body() string {
	e := m.Execution
	var b strings.Builder
	fmt.Fprintf(&b, "Hello %s,\n\n", oneLine(m.Owner, maxNameLen))
	if m.Status == string(state.StatusError) {
		fmt.Fprintf(&b, "your execution \"%s\" (id %d) ended in error.\n\n", oneLine(e.Name, maxNameLen), e.ID)
	} else {
		fmt.Fprintf(&b, "your execution \"%s\" (id %d) has ended after running %s.\n\n", oneLine(e.Name, maxNameLen), e.ID, shown(ran(e, m.Ended)))
	}
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-11s %s\n", k+":", v)
		}
	}
	at := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	row("Status", m.Status)
	row("Reason", oneLine(m.Reason, maxReasonLen))
	if e.ErrorMessage != "" && e.ErrorMessage != m.Reason {
		row("Error", oneLine(e.ErrorMessage, maxReasonLen))
	}
	if e.ExitCode != nil {
		row("Exit code", fmt.Sprint(*e.ExitCode))
	}
	row("Submitted", at(&e.SubmittedAt))
	row("Started", at(e.StartedAt))
	ended := m.Ended
	if e.EndedAt != nil {
		ended = *e.EndedAt
	}
	row("Ended", at(&ended))
	if e.StartedAt != nil {
		row("Ran for", shown(ran(e, m.Ended)))
	}
	if m.Link != "" {
		fmt.Fprintf(&b, "\nIts services, events and logs: %s\n", m.Link)
	}
	b.WriteString("\n-- \nZoe writes when one of your executions ends in error")
	if m.LongRunning > 0 {
		fmt.Fprintf(&b, " or ends after running at least %s", m.LongRunning)
	}
	b.WriteString(".\n")
	return b.String()
}

// bytes renders the mail: headers encoded (RFC 2047) so that no user text
// can add a header, the body in quoted-printable UTF-8, CRLF line ends.
func (m message) bytes() ([]byte, error) {
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	from, err := mail.ParseAddress(m.From)
	if err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	var buf bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&buf, "%s: %s\r\n", k, v) }
	h("From", from.String())
	h("To", (&mail.Address{Address: to.Address}).String())
	// Folded between encoded words (RFC 2047 §2), so that no header line
	// grows past 998 bytes (RFC 5322 §2.1.1) whatever the name.
	h("Subject", strings.ReplaceAll(mime.QEncoding.Encode("utf-8", m.subject()), "?= =?", "?=\r\n =?"))
	h("Date", m.Date.Format(time.RFC1123Z))
	h("Message-ID", fmt.Sprintf("<zoe-notify.%d.%s@%s>", m.EventID, m.StoreID, domain))
	h("Auto-Submitted", "auto-generated")
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	buf.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&buf)
	if _, err := qp.Write([]byte(strings.ReplaceAll(m.body(), "\n", "\r\n"))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
