package main

// In-process tests of what the client commands say: errors, a refused
// login, zoe exec kill of several executions, the logs of every service,
// a shop entry's description, zoe exec get. A fake API answers them.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/safetext"
)

// apiError is the error of a client call answered with status and body.
func apiError(t *testing.T, status int, body string) error {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	cl, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Info(t.Context())
	if err == nil {
		t.Fatal("no error")
	}
	return err
}

func TestErrorLine(t *testing.T) {
	var problems []string
	var details []client.Detail
	for i := range 15 {
		details = append(details, client.Detail{Path: fmt.Sprintf("description.services[%d].image", i), Message: "required"})
		problems = append(problems, fmt.Sprintf("  description.services[%d].image: required", i))
	}
	doc, _ := json.Marshal(client.Error{Error: client.ErrorBody{Code: client.CodeInvalidArgument,
		Message: "the ZApp description has 15 problem(s)", Details: details}})
	zappErr := apiError(t, 400, string(doc))

	cases := []struct {
		name string
		err  error
		want string
	}{
		{"lines joined", errors.New("a\n  b\n\nc"), "a; b; c"},
		{"escaped", errors.New("no execution \"x\x1b[2J\"\nsecond"), `no execution "x\x1b[2J"; second`},
		{"no code", apiError(t, 409, `{"error":{"code":"conflict","message":"execution 5 has ended"}}`), "execution 5 has ended"},
		{"context kept", fmt.Errorf("delete execution 5: %w", apiError(t, 403, `{"error":{"code":"permission_denied","message":"admins only"}}`)),
			"delete execution 5: admins only"},
		{"a repeated detail said once", apiError(t, 400, `{"error":{"code":"invalid_argument","message":"parameter \"N\": must be from 1 to 16","details":[{"path":"shop.parameters.N","message":"must be from 1 to 16"}]}}`),
			`parameter "N": must be from 1 to 16`},
		{"one problem on the line", apiError(t, 400, `{"error":{"code":"invalid_argument","message":"the ZApp description has 1 problem(s)","details":[{"path":"description.name","message":"required"}]}}`),
			"the ZApp description has 1 problem(s): description.name: required"},
		{"problems one per line", zappErr, "the ZApp description has 15 problem(s):\n" + strings.Join(problems, "\n")},
		{"problems after the context", fmt.Errorf("app.json: %w", zappErr), "app.json: the ZApp description has 15 problem(s):\n" + strings.Join(problems, "\n")},
		{"problems escaped", apiError(t, 400, `{"error":{"code":"invalid_argument","message":"bad\u001b[2J","details":[{"path":"a","message":"x\u001b]0;t\u0007"},{"path":"b\nc","message":"y"}]}}`),
			"bad\\x1b[2J:\n  a: x\\x1b]0;t\\x07\n  b; c: y"},
		{"several failures", killErrors(3, []error{errors.New("no execution 7"), errors.New("execution 9 is still running after 1s")}),
			"2 of 3 executions not terminated:\n  no execution 7\n  execution 9 is still running after 1s"},
		{"one failure of one", killErrors(1, []error{errors.New("no execution 7")}), "no execution 7"},
		{"interrupted", fmt.Errorf("x: %w", context.Canceled), "interrupted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := errorLine(tc.err); got != tc.want {
				t.Errorf("errorLine:\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	if exitCode(usageError{err: errors.New("x")}) != 2 || exitCode(errors.New("x")) != 1 || exitCode(zappErr) != 1 {
		t.Error("exit codes")
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		msg, noun string
		it        any
		want      bool
	}{
		{"no execution 5", "execution", 5, true},
		{"no execution 55", "execution", 5, false},
		{"execution 5: x", "execution", 5, true},
		{"no token 5 here", "token", 5, true},
		{`no quota "small"`, "quota", "small", true},
		{"admins only", "execution", 5, false},
	} {
		if got := names(tc.msg, tc.noun, tc.it); got != tc.want {
			t.Errorf("names(%q, %q, %v) = %v", tc.msg, tc.noun, tc.it, got)
		}
	}
	if got := naming("execution", 5, errors.New("admins only")).Error(); got != "execution 5: admins only" {
		t.Errorf("naming: %q", got)
	}
}

// fakeAPI is a Zoe API of one execution with services, their logs (lines
// "TIME text") and a terminate that fails for ids it does not know.
type fakeAPI struct {
	mu       sync.Mutex
	execs    map[int64]*client.Execution
	logs     map[int64]string // by service id
	queries  []string         // the logs queries
	login    func(w http.ResponseWriter)
	statuses map[int64][]string // the statuses GetExecution gives in turn
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	writeDoc := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	notFound := func(msg string) {
		writeDoc(404, client.Error{Error: client.ErrorBody{Code: client.CodeNotFound, Message: msg}})
	}
	var id int64
	switch {
	case r.URL.Path == "/api/v1/sessions" && f.login != nil:
		f.login(w)
	case sscan(r.URL.Path, "/api/v1/executions/%d/terminate", &id):
		ex, ok := f.execs[id]
		if !ok {
			notFound(fmt.Sprintf("no execution %d", id))
			return
		}
		if ex.Status == "terminated" {
			writeDoc(409, client.Error{Error: client.ErrorBody{Code: client.CodeConflict, Message: fmt.Sprintf("execution %d has ended already", id)}})
			return
		}
		ex.Status = "cleaning_up"
		writeDoc(202, ex)
	case sscan(r.URL.Path, "/api/v1/executions/%d", &id):
		ex, ok := f.execs[id]
		if !ok {
			notFound(fmt.Sprintf("no execution %d", id))
			return
		}
		if s := f.statuses[id]; len(s) > 0 {
			ex.Status, f.statuses[id] = s[0], s[1:]
		}
		writeDoc(200, ex)
	case sscan(r.URL.Path, "/api/v1/services/%d/logs", &id):
		f.queries = append(f.queries, fmt.Sprintf("%d?%s", id, r.URL.RawQuery))
		text, ok := f.logs[id]
		if !ok {
			notFound(fmt.Sprintf("service %d has no output yet", id))
			return
		}
		if r.URL.Query().Get("timestamps") != "true" {
			var b strings.Builder
			for l := range strings.Lines(text) {
				_, rest, _ := strings.Cut(l, " ")
				b.WriteString(rest)
			}
			text = b.String()
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(text))
	default:
		notFound("no route " + r.URL.Path)
	}
}

func sscan(path, format string, id *int64) bool {
	var rest string
	n, _ := fmt.Sscanf(path+" end", format+" %s", id, &rest)
	return n == 2 && rest == "end"
}

// runZoeIn runs the zoe command in-process against the fake API, as
// carol; it returns the standard output and the error line.
func runZoeIn(t *testing.T, f *fakeAPI, args ...string) (string, string) {
	t.Helper()
	srv := httptest.NewServer(f)
	defer srv.Close()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("ZOE_ADDR", srv.URL)
	t.Setenv("ZOE_USER", "carol")
	t.Setenv("ZOE_PASSWORD", "pw")
	t.Setenv("ZOE_TOKEN", "")
	root := rootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(&bytes.Buffer{})
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	if err != nil {
		return out.String(), errorLine(err)
	}
	return out.String(), ""
}

func threeServices() *fakeAPI {
	return &fakeAPI{
		execs: map[int64]*client.Execution{1: {ID: 1, Name: "spark", Status: "running", Services: []client.Service{
			{ID: 11, Name: "spark-master0"}, {ID: 12, Name: "w0"}, {ID: 13, Name: "quiet0"},
		}}},
		logs: map[int64]string{
			11: "2026-01-01T00:00:01Z master up\n2026-01-01T00:00:03Z master \x1b[2Jsees w0\n",
			12: "2026-01-01T00:00:02Z worker up\n2026-01-01T00:00:03Z worker registered\n2026-01-01T00:00:04.5Z done\n",
		},
	}
}

func TestLogsOfEveryService(t *testing.T) {
	f := threeServices()
	out, errLine := runZoeIn(t, f, "exec", "logs", "1")
	want := "spark-master0 | master up\n" +
		"w0            | worker up\n" +
		"spark-master0 | master \x1b[2Jsees w0\n" + // into a pipe: as it is
		"w0            | worker registered\n" +
		"w0            | done\n"
	if errLine != "" || out != want {
		t.Errorf("zoe exec logs 1: %q\n%s\nwant\n%s", errLine, out, want)
	}
	f.queries = nil
	out, errLine = runZoeIn(t, f, "exec", "logs", "1", "--timestamps", "--tail", "1")
	if errLine != "" || !strings.Contains(out, "w0            | 2026-01-01T00:00:04.5Z done\n") {
		t.Errorf("zoe exec logs 1 --timestamps: %q\n%s", errLine, out)
	}
	for _, q := range f.queries {
		if !strings.Contains(q, "tail=1") {
			t.Errorf("--tail not passed on: %s", q)
		}
	}
	out, errLine = runZoeIn(t, f, "exec", "logs", "1", "-o", "json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if errLine != "" || len(lines) != 5 {
		t.Fatalf("zoe exec logs 1 -o json: %q\n%s", errLine, out)
	}
	var third struct{ Service, Time, Line string }
	if err := json.Unmarshal([]byte(lines[2]), &third); err != nil || third.Service != "spark-master0" ||
		third.Time != "2026-01-01T00:00:03Z" || third.Line != "master \x1b[2Jsees w0" {
		t.Errorf("the third JSON line: %+v %v", third, err)
	}
	// Services without output yet: said so.
	delete(f.logs, 11)
	delete(f.logs, 12)
	if _, errLine = runZoeIn(t, f, "exec", "logs", "1"); errLine != "execution 1 (running): its services have no output yet" {
		t.Errorf("zoe exec logs of services without output: %q", errLine)
	}
	f = threeServices()
	// One service named: its output alone, as it is.
	if out, errLine = runZoeIn(t, f, "exec", "logs", "1", "w0"); errLine != "" || out != "worker up\nworker registered\ndone\n" {
		t.Errorf("zoe exec logs 1 w0: %q %q", errLine, out)
	}
}

func TestFollowEveryService(t *testing.T) {
	f := threeServices()
	out, errLine := runZoeIn(t, f, "exec", "logs", "1", "-f")
	if errLine != "" {
		t.Fatal(errLine)
	}
	got := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"spark-master0 | master up", "w0            | worker up", "spark-master0 | master \x1b[2Jsees w0",
		"w0            | worker registered", "w0            | done"}
	if len(got) != len(want) {
		t.Fatalf("zoe exec logs 1 -f:\n%s", out)
	}
	// Each service's lines in their order; the services' lines mixed as
	// they come.
	for _, svc := range []string{"spark-master0", "w0"} {
		var g, w []string
		for i := range got {
			if strings.HasPrefix(got[i], svc+" ") {
				g = append(g, got[i])
			}
			if strings.HasPrefix(want[i], svc+" ") {
				w = append(w, want[i])
			}
		}
		if strings.Join(g, "\n") != strings.Join(w, "\n") {
			t.Errorf("the lines of %s: %q, want %q", svc, g, w)
		}
	}
	for _, q := range f.queries {
		if !strings.Contains(q, "follow=true") {
			t.Errorf("a log not followed: %s", q)
		}
	}
	if len(f.queries) != 3 {
		t.Errorf("followed %d logs, want the 3 services': %q", len(f.queries), f.queries)
	}
}

func TestLogPrinterEscapes(t *testing.T) {
	var b bytes.Buffer
	p := &logPrinter{w: &b, escape: true}
	p.prefixed([]client.Service{{Name: "a\x1b[2J"}, {Name: "bb"}})
	if err := p.line("a\x1b[2J", "2026-01-01T00:00:00Z x\x1b]0;t\x07\ry\tz"); err != nil {
		t.Fatal(err)
	}
	if want := "a\\x1b[2J | x\\x1b]0;t\\x07\\x0dy\tz\n"; b.String() != want {
		t.Errorf("escaped line %q, want %q", b.String(), want)
	}
	for _, r := range b.String() {
		if safetext.Unsafe(r) && r != '\n' && r != '\t' {
			t.Errorf("prints %U raw", r)
		}
	}
}

func TestKillSeveral(t *testing.T) {
	newAPI := func() *fakeAPI {
		return &fakeAPI{execs: map[int64]*client.Execution{
			1: {ID: 1, Status: "running"}, 2: {ID: 2, Status: "running"}, 3: {ID: 3, Status: "terminated"},
		}}
	}
	out, errLine := runZoeIn(t, newAPI(), "exec", "kill", "1", "2")
	if errLine != "" || out != "Execution 1: cleaning_up.\nExecution 2: cleaning_up.\n" {
		t.Errorf("zoe exec kill 1 2: %q\n%s", errLine, out)
	}
	// A failure does not stop the others; each is reported.
	out, errLine = runZoeIn(t, newAPI(), "exec", "kill", "9", "1", "3")
	if out != "Execution 1: cleaning_up.\n" ||
		errLine != "2 of 3 executions not terminated:\n  no execution 9\n  execution 3 has ended already" {
		t.Errorf("zoe exec kill 9 1 3: %q\n%s", errLine, out)
	}
	out, errLine = runZoeIn(t, newAPI(), "exec", "kill", "9")
	if out != "" || errLine != "no execution 9" {
		t.Errorf("zoe exec kill 9: %q %q", errLine, out)
	}
	out, errLine = runZoeIn(t, newAPI(), "exec", "kill", "9", "1", "-o", "json")
	var res struct {
		Terminated []client.Execution `json:"terminated"`
		Errors     []struct {
			ID    int64  `json:"id"`
			Error string `json:"error"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || errLine == "" || len(res.Terminated) != 1 ||
		res.Terminated[0].ID != 1 || len(res.Errors) != 1 || res.Errors[0].ID != 9 || res.Errors[0].Error != "no execution 9" {
		t.Errorf("zoe exec kill 9 1 -o json: %q %v\n%s", errLine, err, out)
	}
	// --wait waits for each.
	api := newAPI()
	api.statuses = map[int64][]string{1: {"cleaning_up", "terminated"}, 2: {"error"}}
	out, errLine = runZoeIn(t, api, "exec", "kill", "1", "2", "--wait", "-o", "json")
	res.Terminated, res.Errors = nil, nil
	if err := json.Unmarshal([]byte(out), &res); err != nil || errLine != "" || len(res.Terminated) != 2 ||
		res.Terminated[0].Status != "terminated" || res.Terminated[1].Status != "error" || res.Errors != nil {
		t.Errorf("zoe exec kill 1 2 --wait -o json: %q %v\n%s", errLine, err, out)
	}
	if _, errLine = runZoeIn(t, newAPI(), "exec", "kill", "1", "x"); !strings.Contains(errLine, `invalid id "x"`) {
		t.Errorf("zoe exec kill 1 x: %q", errLine)
	}
}

func TestLoginRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"wrong password", 401, `{"error":{"code":"unauthenticated","message":"invalid username or password"}}`,
			"as carol: the user name or password is wrong"},
		{"locked", 429, `{"error":{"code":"too_many_requests","message":"too many failed logins; try again in 30 s"}}`,
			"as carol: too many failed logins; try again in 30 s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeAPI{login: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}}
			_, errLine := runZoeIn(t, f, "login")
			if !strings.HasPrefix(errLine, "log in to http://127.0.0.1:") || !strings.HasSuffix(errLine, tc.want) {
				t.Errorf("zoe login: %q, want ... %q", errLine, tc.want)
			}
			if strings.Contains(errLine, "zoe login") || strings.Contains(errLine, "(") {
				t.Errorf("zoe login: %q gives advice or a code", errLine)
			}
		})
	}
}

func TestSignInMessages(t *testing.T) {
	api := &client.APIError{Status: 401, Body: client.ErrorBody{Code: client.CodeUnauthenticated, Message: "the token is invalid, expired or revoked; log in again"}}
	for _, tc := range []struct {
		src  credSource
		want string
	}{
		{credSource{}, "not signed in: log in with zoe login, or set ZOE_TOKEN, or ZOE_USER and ZOE_PASSWORD"},
		{credSource{kind: "stored", expired: true}, "the token stored by zoe login has expired: log in again with zoe login"},
		{credSource{kind: "stored"}, "the token stored by zoe login was refused (the token is invalid, expired or revoked; log in again)"},
		{credSource{kind: "ZOE_TOKEN"}, "the token of ZOE_TOKEN was refused: the token is invalid, expired or revoked; log in again"},
		{credSource{kind: "ZOE_USER"}, "signing in as eve (ZOE_USER) failed: the token is invalid, expired or revoked; log in again"},
	} {
		c := newCLI()
		c.getenv = func(k string) string { return map[string]string{"ZOE_USER": "eve"}[k] }
		c.source = tc.src
		if got := c.signInMessage(api); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.src, got, tc.want)
		}
	}
}

func TestExecutionSizeExplained(t *testing.T) {
	var b bytes.Buffer
	if err := printExecution(&b, &client.Execution{ID: 1, Name: "x", Status: "queued", Size: 512}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Scheduling size:") || !strings.Contains(b.String(), "512 (the ZApp's size: smaller ones start first under SIZE and DYNSIZE") {
		t.Errorf("zoe exec get:\n%s", b.String())
	}
}
