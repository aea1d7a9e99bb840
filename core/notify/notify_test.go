package notify_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	_ "modernc.org/sqlite"

	"github.com/zoe-project/zoe/core/config"
	"github.com/zoe-project/zoe/core/notify"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/internal/testutil"
	"github.com/zoe-project/zoe/sdk/auth"
)

// wait bounds every wait on the notifier: generous, as the machine may be
// busy; the tests wait on events, never on time.
const wait = 2 * time.Minute

// env is a real SQLite store with two users, and a log to read.
type env struct {
	st  state.Store
	db  string
	log *testutil.SyncBuffer
	hl  hclog.Logger
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{db: filepath.Join(t.TempDir(), "zoe.db"), log: &testutil.SyncBuffer{}}
	e.hl = hclog.New(&hclog.LoggerOptions{Name: "notify", Level: hclog.Debug, Output: e.log})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", e.log.String())
		}
	})
	st, err := state.Open(t.Context(), config.State{SQLite: e.db}, "test", hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	for name, email := range map[string]string{"alice": "alice@lab.example", "bob": ""} {
		if _, err := st.RecordLogin(t.Context(), auth.Identity{Username: name, Role: auth.RoleUser, Email: email}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// end runs an execution of owner through to status to; ran > 0 backdates
// its start by that much, as if it had run that long.
func (e *env) end(t *testing.T, owner, name string, to state.Status, reason string, ran time.Duration) state.Execution {
	t.Helper()
	ctx := t.Context()
	x, err := e.st.CreateExecution(ctx, state.NewExecution{Owner: owner, Name: name, Description: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Transition(ctx, x.ID, []state.Status{state.StatusSubmitted}, state.StatusRunning,
		state.ExecutionChange{Reason: "started", Started: true}); err != nil {
		t.Fatal(err)
	}
	if ran > 0 {
		// Beside the store's own connections: wait for them.
		db, err := sql.Open("sqlite", "file:"+e.db+"?_pragma=busy_timeout(30000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		at := time.Now().UTC().Add(-ran).Format("2006-01-02T15:04:05.000000Z")
		if _, err := db.ExecContext(ctx, "UPDATE executions SET started_at = ? WHERE id = ?", at, x.ID); err != nil {
			t.Fatal(err)
		}
	}
	c := state.ExecutionChange{Reason: reason, Ended: true}
	if to == state.StatusError {
		c.ErrorMessage = &reason
	}
	x, err = e.st.Transition(ctx, x.ID, []state.Status{state.StatusRunning}, to, c)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// run starts a notifier on the store and returns its stop, which waits for
// Run to return.
func (e *env) run(t *testing.T, cfg notify.Config) (stop func()) {
	t.Helper()
	cfg.Store = e.st
	if cfg.From == "" {
		cfg.From = "Zoe <zoe@zoe.example>"
	}
	cfg.Poll = 10 * time.Millisecond
	if cfg.Backoff == 0 {
		cfg.Backoff, cfg.MaxBackoff = 20*time.Millisecond, 100*time.Millisecond
	}
	n := notify.New(e.hl, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once bool
	stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(wait):
			t.Fatal("the notifier did not stop")
		}
	}
	t.Cleanup(stop)
	// Run records where it starts before it reads anything: the tests end
	// executions once it has.
	testutil.WaitFor(t, wait, "the notifier's cursor", func() (bool, string) {
		_, ok, err := e.st.FeedCursor(t.Context(), notify.CursorName)
		return ok, fmt.Sprint(err)
	})
	return stop
}

func sender(t *testing.T, ms *testutil.MailServer, tlsMode, caFile, user, password string) notify.Sender {
	t.Helper()
	s, err := notify.NewSMTP(config.SMTP{Server: "127.0.0.1", Port: ms.Port, TLS: tlsMode, CAFile: caFile,
		Username: user, Password: config.Secret(password), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mailOf is a received mail, parsed.
type mailOf struct {
	testutil.Mail
	header  mail.Header
	subject string
	body    string
}

func next(t *testing.T, ms *testutil.MailServer) mailOf {
	t.Helper()
	select {
	case r := <-ms.Received:
		m, err := mail.ReadMessage(bytes.NewReader(r.Data))
		if err != nil {
			t.Fatalf("unreadable mail: %v\n%s", err, r.Data)
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		if err != nil {
			t.Fatalf("subject %q: %v", m.Header.Get("Subject"), err)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
		if err != nil {
			t.Fatalf("body: %v", err)
		}
		return mailOf{Mail: r, header: m.Header, subject: subject, body: string(body)}
	case <-time.After(wait):
		t.Fatal("no mail came")
	}
	return mailOf{}
}

// noMore checks nothing else was received once the notifier is stopped.
func noMore(t *testing.T, ms *testutil.MailServer) {
	t.Helper()
	select {
	case r := <-ms.Received:
		t.Fatalf("an unexpected mail:\n%s", r.Data)
	default:
	}
}

// TestNotify: an execution that fails gets one mail, one that ran long
// gets one, a short successful one none; the mail says what, why and
// where; an owner without an address gets none.
func TestNotify(t *testing.T) {
	e := newEnv(t)
	ms := testutil.StartMailServer(t, testutil.MailServerOptions{})
	stop := e.run(t, notify.Config{Sender: sender(t, ms, "none", "", "", ""), LongRunning: time.Hour,
		PublicURL: "https://zoe.example/base"})

	short := e.end(t, "alice", "quick", state.StatusTerminated, "finished", 0)
	failed := e.end(t, "alice", "spark-job", state.StatusError, "service spark-master exited with code 3", 0)
	e.end(t, "bob", "no-address", state.StatusError, "boom", 0)
	long := e.end(t, "alice", "long-notebook", state.StatusTerminated, "terminated by the user", 2*time.Hour)
	// The last: once its mail came, every earlier end was decided.
	sentinel := e.end(t, "alice", "sentinel", state.StatusError, "the last", 0)

	got := []mailOf{next(t, ms), next(t, ms), next(t, ms)}
	// The cursor moves past every mail settled.
	testutil.WaitFor(t, wait, "the cursor past the last end", func() (bool, string) {
		id, _, err := e.st.FeedCursor(t.Context(), notify.CursorName)
		return id >= lastEvent(t, e.st), fmt.Sprint(id, err)
	})
	stop()
	noMore(t, ms)
	byID := map[string]mailOf{}
	for _, m := range got {
		if m.From != "zoe@zoe.example" || !slices.Equal(m.To, []string{"alice@lab.example"}) ||
			m.header.Get("To") != "<alice@lab.example>" || m.header.Get("From") != `"Zoe" <zoe@zoe.example>` {
			t.Errorf("envelope %q → %q, headers From %q To %q", m.From, m.To, m.header.Get("From"), m.header.Get("To"))
		}
		if m.header.Get("Auto-Submitted") != "auto-generated" || m.header.Get("Message-ID") == "" {
			t.Errorf("headers: %v", m.header)
		}
		for _, x := range []state.Execution{short, failed, long, sentinel} {
			if strings.Contains(m.subject, fmt.Sprintf("(#%d)", x.ID)) {
				byID[x.Name] = m
			}
		}
	}
	if _, ok := byID["quick"]; ok || len(byID) != 3 {
		t.Fatalf("mails about %v, want spark-job, long-notebook and sentinel", slices.Collect(mapKeys(byID)))
	}
	f := byID["spark-job"]
	if want := fmt.Sprintf(`[Zoe] Execution "spark-job" (#%d) ended in error`, failed.ID); f.subject != want {
		t.Errorf("subject %q, want %q", f.subject, want)
	}
	for _, want := range []string{"Hello alice,", "Status:     error", "Reason:     service spark-master exited with code 3",
		fmt.Sprintf("https://zoe.example/base/executions/%d\r\n", failed.ID), "or ends after running at least 1h0m0s"} {
		if !strings.Contains(f.body, want) {
			t.Errorf("the error's body lacks %q:\n%s", want, f.body)
		}
	}
	l := byID["long-notebook"]
	if !strings.HasPrefix(l.subject, fmt.Sprintf(`[Zoe] Execution "long-notebook" (#%d) ended after 2h0m`, long.ID)) ||
		!strings.Contains(l.body, "Status:     terminated") || !strings.Contains(l.body, "Ran for:    2h0m") {
		t.Errorf("the long one: %q\n%s", l.subject, l.body)
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func lastEvent(t *testing.T, st state.Store) int64 {
	t.Helper()
	id, err := st.LastEventID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestNotifyRestart: the first start mails nothing that ended before it;
// a restart sends nothing twice and loses nothing that ended in between.
func TestNotifyRestart(t *testing.T) {
	e := newEnv(t)
	ms := testutil.StartMailServer(t, testutil.MailServerOptions{})
	e.end(t, "alice", "before-the-first-start", state.StatusError, "old", 0)
	cfg := notify.Config{Sender: sender(t, ms, "none", "", "", "")}
	stop := e.run(t, cfg)
	first := e.end(t, "alice", "first", state.StatusError, "one", 0)
	if m := next(t, ms); !strings.Contains(m.subject, fmt.Sprintf("(#%d)", first.ID)) {
		t.Fatalf("first mail: %q", m.subject)
	}
	testutil.WaitFor(t, wait, "the cursor past the first mail", func() (bool, string) {
		id, _, err := e.st.FeedCursor(t.Context(), notify.CursorName)
		return id >= lastEvent(t, e.st), fmt.Sprint(id, err)
	})
	stop()
	// Ends while the notifier is down (a daemon that crashed after the
	// commit): mailed after the restart.
	between := e.end(t, "alice", "in-between", state.StatusError, "two", 0)
	e.run(t, cfg)
	after := e.end(t, "alice", "after", state.StatusError, "three", 0)
	for _, x := range []state.Execution{between, after} {
		if m := next(t, ms); !strings.Contains(m.subject, fmt.Sprintf("(#%d)", x.ID)) {
			t.Fatalf("after the restart: %q, want #%d", m.subject, x.ID)
		}
	}
	noMore(t, ms)
}

// TestNotifyServerDownThenUp: mail waits for the server, retried with
// back-off, and is delivered once it is back; the failures are logged
// with the execution and owner.
func TestNotifyServerDownThenUp(t *testing.T) {
	e := newEnv(t)
	ca := testutil.NewCA(t, "ca")
	ms := testutil.StartMailServer(t, testutil.MailServerOptions{Down: true, TLS: ca.ServerTLS(t), User: "zoe", Password: "pw-not-in-logs"})
	e.run(t, notify.Config{Sender: sender(t, ms, "starttls", ca.File, "zoe", "pw-not-in-logs"), MaxAttempts: 100})
	x := e.end(t, "alice", "waits", state.StatusError, "boom", 0)
	testutil.WaitFor(t, wait, "two refused attempts", func() (bool, string) {
		n := ms.Refused.Load()
		return n >= 2, fmt.Sprint(n)
	})
	ms.Down.Store(false)
	if m := next(t, ms); !strings.Contains(m.subject, fmt.Sprintf("(#%d)", x.ID)) {
		t.Fatalf("mail %q", m.subject)
	}
	logged := e.log.String()
	if !strings.Contains(logged, fmt.Sprintf("notification not sent; trying again: execution=%d owner=alice", x.ID)) {
		t.Errorf("no warning of the failure with the execution and owner:\n%s", logged)
	}
	if strings.Contains(logged, "pw-not-in-logs") {
		t.Errorf("the log shows the password:\n%s", logged)
	}
}

// TestNotifyServerDownForGood: each mail is tried MaxAttempts times and
// given up, logged; no more than QueueSize wait at once; the notifier
// stops promptly and its cursor ends past every end.
func TestNotifyServerDownForGood(t *testing.T) {
	e := newEnv(t)
	ms := testutil.StartMailServer(t, testutil.MailServerOptions{Down: true})
	const ends, attempts, queue = 6, 3, 2
	n := notify.New(e.hl, notify.Config{Store: e.st, Sender: sender(t, ms, "none", "", "", ""), From: "zoe@zoe.example",
		MaxAttempts: attempts, QueueSize: queue, Poll: 10 * time.Millisecond,
		Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	testutil.WaitFor(t, wait, "the notifier's cursor", func() (bool, string) {
		_, ok, err := e.st.FeedCursor(t.Context(), notify.CursorName)
		return ok, fmt.Sprint(err)
	})
	// The ends are written at once, whatever the notifier does.
	for i := range ends {
		e.end(t, "alice", fmt.Sprintf("doomed-%d", i), state.StatusError, "boom", 0)
	}
	most := 0
	testutil.WaitFor(t, wait, "every mail given up", func() (bool, string) {
		most = max(most, n.Queued())
		g := strings.Count(e.log.String(), "notification not sent; giving up")
		return g == ends, fmt.Sprintf("%d given up, %d refused", g, ms.Refused.Load())
	})
	if most > queue {
		t.Errorf("%d mails queued at once, want at most %d", most, queue)
	}
	if got := ms.Refused.Load(); got != ends*attempts {
		t.Errorf("%d connections, want %d (%d attempts each)", got, ends*attempts, attempts)
	}
	testutil.WaitFor(t, wait, "the cursor past the last end", func() (bool, string) {
		id, _, err := e.st.FeedCursor(t.Context(), notify.CursorName)
		return id >= lastEvent(t, e.st), fmt.Sprint(id, err)
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("the notifier did not stop")
	}
	noMore(t, ms)
}

// TestNotifyTLS: STARTTLS and implicit TLS with the test's CA and
// credentials; a certificate from another CA, or a server without
// STARTTLS, gets no mail and a logged reason.
func TestNotifyTLS(t *testing.T) {
	ca, other := testutil.NewCA(t, "ca"), testutil.NewCA(t, "other")
	for _, tc := range []struct {
		name      string
		server    testutil.MailServerOptions
		mode, ca  string
		delivered bool
		logged    string
	}{
		{"starttls", testutil.MailServerOptions{TLS: ca.ServerTLS(t), User: "zoe", Password: "pw"}, "starttls", ca.File, true, ""},
		{"implicit tls", testutil.MailServerOptions{TLS: ca.ServerTLS(t), Implicit: true, User: "zoe", Password: "pw"}, "tls", ca.File, true, ""},
		{"wrong ca", testutil.MailServerOptions{TLS: other.ServerTLS(t), User: "zoe", Password: "pw"}, "starttls", ca.File, false,
			"certificate signed by unknown authority"},
		{"wrong ca, implicit", testutil.MailServerOptions{TLS: other.ServerTLS(t), Implicit: true, User: "zoe", Password: "pw"}, "tls", ca.File, false,
			"certificate signed by unknown authority"},
		{"system roots", testutil.MailServerOptions{TLS: ca.ServerTLS(t), User: "zoe", Password: "pw"}, "starttls", "", false,
			"certificate signed by unknown authority"},
		{"no starttls offered", testutil.MailServerOptions{}, "starttls", ca.File, false, "does not offer STARTTLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ms := testutil.StartMailServer(t, tc.server)
			stop := e.run(t, notify.Config{Sender: sender(t, ms, tc.mode, tc.ca, "zoe", "pw"), MaxAttempts: 1})
			x := e.end(t, "alice", "x", state.StatusError, "boom", 0)
			if tc.delivered {
				if m := next(t, ms); !strings.Contains(m.subject, fmt.Sprintf("(#%d)", x.ID)) {
					t.Fatalf("mail %q", m.subject)
				}
				if logins := ms.Logins(); !slices.Equal(logins, []string{"zoe"}) {
					t.Errorf("logins %v, want zoe once", logins)
				}
				return
			}
			testutil.WaitFor(t, wait, "the mail given up", func() (bool, string) {
				return strings.Contains(e.log.String(), "giving up"), ""
			})
			stop()
			noMore(t, ms)
			if logged := e.log.String(); !strings.Contains(logged, tc.logged) || strings.Contains(logged, "pw\"") {
				t.Errorf("the log lacks %q:\n%s", tc.logged, logged)
			}
		})
	}
}

// TestNotifyHeaderInjection: names and reasons with line breaks stay in
// their header or line; an owner's address with one gets no mail.
func TestNotifyHeaderInjection(t *testing.T) {
	e := newEnv(t)
	if _, err := e.st.RecordLogin(t.Context(), auth.Identity{Username: "mallory", Role: auth.RoleUser,
		Email: "mallory@lab.example\r\nBcc: eve@evil.example"}); err != nil {
		t.Fatal(err)
	}
	ms := testutil.StartMailServer(t, testutil.MailServerOptions{})
	stop := e.run(t, notify.Config{Sender: sender(t, ms, "none", "", "", "")})
	e.end(t, "mallory", "sneaky", state.StatusError, "boom", 0)
	name := "x\r\nBcc: eve@evil.example\r\nSubject: pwned\r\n\r\nfake body"
	x := e.end(t, "alice", name, state.StatusError, "why\r\n.\r\nMAIL FROM:<eve@evil.example>", 0)
	m := next(t, ms)
	stop()
	noMore(t, ms)
	if !slices.Equal(m.To, []string{"alice@lab.example"}) {
		t.Errorf("recipients %v", m.To)
	}
	if len(m.header["Subject"]) != 1 || m.header.Get("Bcc") != "" || len(m.header["To"]) != 1 {
		t.Errorf("headers %v", m.header)
	}
	if want := fmt.Sprintf(`[Zoe] Execution "x  Bcc: eve@evil.example  Subject: pwned    fake body" (#%d) ended in error`, x.ID); m.subject != want {
		t.Errorf("subject %q, want %q", m.subject, want)
	}
	if !strings.Contains(m.body, "Reason:     why  .  MAIL FROM:<eve@evil.example>\r\n") {
		t.Errorf("body:\n%s", m.body)
	}
	if !strings.Contains(e.log.String(), "the owner's e-mail address is not valid; no mail: execution=") {
		t.Errorf("mallory's address not reported:\n%s", e.log.String())
	}
}
