package daemon

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	zoeclient "github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/testutil"
)

// TestNotificationsEndToEnd: with a notifications block, the daemon mails
// the address an admin set through the API when an execution ends after
// running long enough, through a real SMTP server with STARTTLS, the
// password from env(), which the log never shows.
func TestNotificationsEndToEnd(t *testing.T) {
	const password = "smtp-secret-d41d8"
	t.Setenv("ZOE_TEST_SMTP_PASSWORD", password)
	ca := testutil.NewCA(t, "ca")
	ms := testutil.StartMailServer(t, testutil.MailServerOptions{TLS: ca.ServerTLS(t), User: "zoe", Password: password})
	_, opts, _ := setup(t, simConfig+fmt.Sprintf(`
notifications {
  long_running = "1ms"
  public_url   = "https://zoe.test/"
  smtp {
    server   = "127.0.0.1"
    port     = %d
    ca_file  = %q
    username = "zoe"
    password = env("ZOE_TEST_SMTP_PASSWORD")
    from     = "Zoe <zoe@zoe.test>"
  }
}
`, ms.Port, ca.File))
	addr := serveDaemon(t, opts)
	alice := apiClient{t: t, base: "http://" + addr.String() + "/api/v1", user: "alice", pass: "wonderland"}
	var u zoeclient.User
	if code := alice.do("PATCH", "/users/alice", zoeclient.UserUpdate{Email: ptr("alice@lab.example")}, &u); code != http.StatusOK ||
		u.Email != "alice@lab.example" {
		t.Fatalf("PATCH email: %d %+v", code, u)
	}
	ex := alice.submit("mailed", notebook(t))
	alice.await(ex.ID, "running")
	if code := alice.do("POST", fmt.Sprintf("/executions/%d/terminate", ex.ID), nil, &zoeclient.Execution{}); code != http.StatusAccepted {
		t.Fatalf("terminate: %d", code)
	}
	alice.await(ex.ID, "terminated")
	select {
	case m := <-ms.Received:
		body := string(m.Data)
		if len(m.To) != 1 || m.To[0] != "alice@lab.example" ||
			!strings.Contains(body, fmt.Sprintf(`Execution "mailed" (#%d) ended after`, ex.ID)) ||
			!strings.Contains(body, fmt.Sprintf("https://zoe.test/executions/%d", ex.ID)) {
			t.Errorf("mail to %v:\n%s", m.To, body)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("no mail came")
	}
	logs := opts.LogOutput.(*testutil.SyncBuffer)
	waitUntil(t, "the mail logged", func() (bool, string) {
		return strings.Contains(logs.String(), "notification sent"), ""
	})
	if strings.Contains(logs.String(), password) {
		t.Errorf("the log shows the password:\n%s", logs)
	}
}

func ptr[T any](v T) *T { return &v }
