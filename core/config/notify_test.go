package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zoe-project/zoe/internal/testutil"
)

func TestNotificationsBlock(t *testing.T) {
	t.Setenv("ZOE_TEST_SMTP_PASSWORD", "s3cret-pw")
	dir := t.TempDir()
	ca := testutil.NewCA(t, "ca")
	if err := os.Rename(ca.File, filepath.Join(dir, "ca.pem")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "not-pem.txt"), []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `notifications {
  long_running = "2h"
  public_url   = "https://zoe.example.org/base/"
  queue_size   = 50
  max_attempts = 3
  smtp {
    server   = "smtp.example.org"
    port     = 2525
    ca_file  = "ca.pem"
    username = "zoe"
    password = env("ZOE_TEST_SMTP_PASSWORD")
    from     = "Zoe <zoe@example.org>"
    timeout  = "10s"
  }
}
`
	cfg, diags := Parse(filepath.Join(dir, "zoe.hcl"), []byte(src))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	want := &Notifications{LongRunning: 2 * time.Hour, PublicURL: "https://zoe.example.org/base", QueueSize: 50, MaxAttempts: 3,
		SMTP: SMTP{Server: "smtp.example.org", Port: 2525, TLS: "starttls", CAFile: filepath.Join(dir, "ca.pem"), Username: "zoe",
			Password: "s3cret-pw", From: `"Zoe" <zoe@example.org>`, Timeout: 10 * time.Second}}
	if !reflect.DeepEqual(cfg.Notifications, want) {
		t.Errorf("got %+v, want %+v", cfg.Notifications, want)
	}
	// The password does not show when the block is printed.
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, *cfg.Notifications); strings.Contains(s, "s3cret") {
			t.Errorf("%s shows the password: %s", verb, s)
		}
	}
	if cfg, _ := Parse("zoe.hcl", nil); cfg.Notifications != nil {
		t.Errorf("no block: %+v, want nil (no mail)", cfg.Notifications)
	}
	// Defaults: STARTTLS on 587; implicit TLS on 465; none on 25.
	for mode, port := range map[string]int{"": 587, `tls = "tls"`: 465, `tls = "none"`: 25} {
		cfg, diags := Parse("zoe.hcl", []byte("notifications {\n  smtp {\n    server = \"127.0.0.1\"\n    from = \"z@x.example\"\n    "+mode+"\n  }\n}\n"))
		if len(diags) > 0 {
			t.Fatal(mode, diags)
		}
		if s := cfg.Notifications.SMTP; s.Port != port || s.Timeout != DefaultSMTPTimeout || (mode == "" && s.TLS != "starttls") {
			t.Errorf("%q: %+v", mode, s)
		}
	}

	smtp := func(lines ...string) string {
		return "notifications {\n  smtp {\n" + strings.Join(lines, "\n") + "\n  }\n}\n"
	}
	const srv, from = `    server = "smtp.example.org"`, `    from = "zoe@example.org"`
	for _, tc := range []struct{ name, src, want string }{
		{"no smtp block", "notifications {\n}\n", "bad.hcl:1,1: Missing smtp block"},
		{"two smtp blocks", "notifications {\n  smtp {\n" + srv + "\n" + from + "\n  }\n  smtp {\n" + srv + "\n" + from + "\n  }\n}\n",
			"bad.hcl:6,3: Duplicate smtp block"},
		{"no server", smtp(from), "bad.hcl:2,8: Missing required argument"},
		{"server with a port", smtp(`    server = "smtp.example.org:25"`, from), "bad.hcl:3,14: Invalid SMTP server"},
		{"bad tls", smtp(srv, from, `    tls = "ssl"`), "bad.hcl:5,11: Invalid SMTP TLS mode"},
		{"bad port", smtp(srv, from, `    port = 0`), "bad.hcl:5,12: Invalid number"},
		{"bad sender", smtp(srv, `    from = "zoe"`), "bad.hcl:4,12: Invalid sender"},
		{"sender with a newline", smtp(srv, `    from = "zoe@example.org\nBcc: x@y.example"`), "bad.hcl:4,12: Invalid sender"},
		{"username alone", smtp(srv, from, `    username = "zoe"`), "bad.hcl:5,5: Incomplete SMTP credentials"},
		{"credentials in clear", smtp(srv, from, `    tls = "none"`, `    username = "zoe"`, `    password = "x"`),
			"bad.hcl:5,11: Credentials in clear text"},
		{"unset env", smtp(srv, from, `    username = "zoe"`, `    password = env("ZOE_TEST_UNSET_SMTP")`),
			"bad.hcl:6,16: Error in function call"},
		{"bad timeout", smtp(srv, from, `    timeout = "soon"`), "bad.hcl:5,15: Invalid duration"},
		{"bad public url", "notifications {\n  public_url = \"zoe.example.org\"\n  smtp {\n" + srv + "\n" + from + "\n  }\n}\n",
			"bad.hcl:2,16: Invalid public URL"},
		{"bad long_running", "notifications {\n  long_running = \"-1h\"\n  smtp {\n" + srv + "\n" + from + "\n  }\n}\n",
			"bad.hcl:2,18: Invalid duration"},
		{"unknown attribute", smtp(srv, from, `    pasword = "x"`), "bad.hcl:5,5: Unsupported argument"},
		{"missing ca file", smtp(srv, from, `    ca_file = "`+filepath.Join(dir, "nowhere.pem")+`"`), "bad.hcl:5,15: Invalid CA file"},
		{"ca file not pem", smtp(srv, from, `    ca_file = "`+filepath.Join(dir, "not-pem.txt")+`"`), "bad.hcl:5,15: Invalid CA file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Parse("bad.hcl", []byte(tc.src))
			if got := locations(diags); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("diagnostics %q, want %q", got, tc.want)
			}
			for _, d := range diags {
				if strings.Contains(d.Detail, "s3cret") {
					t.Errorf("a diagnostic shows the password: %s", d.Detail)
				}
			}
		})
	}
}

// TestNotificationsExample: the commented-out block in examples/zoe.hcl,
// uncommented, is valid.
func TestNotificationsExample(t *testing.T) {
	t.Setenv("ZOE_SMTP_PASSWORD", "x")
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "zoe.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	for _, line := range strings.Split(string(b), "\n") {
		if line == "# notifications {" || len(block) > 0 {
			block = append(block, strings.TrimPrefix(strings.TrimPrefix(line, "#"), " "))
		}
		if len(block) > 0 && line == "# }" {
			break
		}
	}
	if len(block) < 3 {
		t.Fatal("no commented-out notifications block in examples/zoe.hcl")
	}
	cfg, diags := Parse("zoe.hcl", []byte(strings.Join(block, "\n")))
	if len(diags) > 0 {
		t.Fatalf("%s\n%s", diags, strings.Join(block, "\n"))
	}
	if n := cfg.Notifications; n == nil || n.SMTP.Server != "smtp.example.org" || n.SMTP.TLS != SMTPStartTLS || n.LongRunning != 4*time.Hour {
		t.Errorf("got %+v", n)
	}
}
