package config

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestHTTPBlock(t *testing.T) {
	src := `http {
  max_connections             = 2000
  max_connections_per_address = 50
  max_header_size             = "32KiB"
  read_header_timeout         = "5s"
  body_timeout                = "20s"
  write_timeout               = "1m"
  idle_timeout                = "90s"
  password_checks             = 4
  trusted_proxies             = ["10.1.2.3", "192.168.7.1/16"]
  base_path                   = "/zoe/v-1"
}
`
	cfg, diags := Parse("zoe.hcl", []byte(src))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	want := HTTP{MaxConnections: 2000, MaxConnectionsPerAddress: 50, MaxHeaderSize: 32 << 10,
		ReadHeaderTimeout: 5 * time.Second, BodyTimeout: 20 * time.Second, WriteTimeout: time.Minute,
		IdleTimeout: 90 * time.Second, PasswordChecks: 4,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("192.168.0.0/16")},
		BasePath:       "/zoe/v-1"}
	if !reflect.DeepEqual(cfg.HTTP, want) {
		t.Errorf("got %+v, want %+v", cfg.HTTP, want)
	}
	if cfg, _ := Parse("zoe.hcl", nil); !reflect.DeepEqual(cfg.HTTP, HTTP{}) || cfg.HTTP.Base() != "/" {
		t.Errorf("no block: %+v (zero: the server's defaults, base path /)", cfg.HTTP)
	}
	if cfg, diags := Parse("zoe.hcl", []byte("http {\n  base_path = \"/\"\n}\n")); len(diags) > 0 || cfg.HTTP.Base() != "/" {
		t.Errorf("base_path \"/\": %q %v", cfg.HTTP.Base(), diags)
	}

	for _, tc := range []struct{ name, src, want string }{
		{"zero connections", "http {\n  max_connections = 0\n}\n", "bad.hcl:2,21: Invalid number"},
		{"fractional", "http {\n  password_checks = 1.5\n}\n", "bad.hcl:2,21: Invalid number"},
		{"tiny header", "http {\n  max_header_size = 100\n}\n", "bad.hcl:2,21: Invalid header size"},
		{"bad duration", "http {\n  idle_timeout = \"forever\"\n}\n", "bad.hcl:2,18: Invalid duration"},
		{"negative duration", "http {\n  body_timeout = \"-1s\"\n}\n", "bad.hcl:2,18: Invalid duration"},
		{"per address over total", "http {\n  max_connections = 10\n  max_connections_per_address = 20\n}\n",
			"bad.hcl:3,33: Invalid connection bound"},
		{"unknown attribute", "http {\n  max_conns = 10\n}\n", "bad.hcl:2,3: Unsupported argument"},
		{"relative base path", "http {\n  base_path = \"zoe\"\n}\n", "bad.hcl:2,15: Invalid base path"},
		{"empty base path", "http {\n  base_path = \"\"\n}\n", "bad.hcl:2,15: Invalid base path"},
		{"trailing slash", "http {\n  base_path = \"/zoe/\"\n}\n", "bad.hcl:2,15: Invalid base path"},
		{"unclean base path", "http {\n  base_path = \"/a//b\"\n}\n", "bad.hcl:2,15: Invalid base path"},
		{"dot-dot base path", "http {\n  base_path = \"/a/../b\"\n}\n", "bad.hcl:2,15: Invalid base path"},
		{"query in base path", "http {\n  base_path = \"/zoe?x=1\"\n}\n", "bad.hcl:2,15: Invalid base path"},
		{"escape in base path", "http {\n  base_path = \"/z%20e\"\n}\n", "bad.hcl:2,15: Invalid base path"},
		{"bad proxy", "http {\n  trusted_proxies = [\"10.0.0.0/8\", \"proxy.example\"]\n}\n", "bad.hcl:2,21: Invalid proxy address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Parse("bad.hcl", []byte(tc.src))
			if got := locations(diags); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("diagnostics %q, want %q", got, tc.want)
			}
		})
	}
}
