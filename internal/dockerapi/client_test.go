package dockerapi

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/client"
)

func TestClientOptions(t *testing.T) {
	dir := t.TempDir()
	pem := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("not checked here"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	present := &TLS{CAFile: pem("ca.pem"), CertFile: pem("cert.pem"), KeyFile: pem("key.pem")}
	missing := &TLS{CAFile: present.CAFile, CertFile: filepath.Join(dir, "no-cert.pem"), KeyFile: filepath.Join(dir, "no-key.pem")}
	tests := []struct {
		name    string
		address string
		tls     *TLS
		paths   []string // of the diagnostics, in order
		opts    int
	}{
		{"the local engine", "", nil, nil, 1},
		{"tcp", "tcp://10.0.0.1:2376", nil, nil, 2},
		{"a unix socket", "unix:///var/run/docker.sock", nil, nil, 2},
		{"https", "https://engine.example:2376", nil, nil, 2},
		{"not a URL", "bogus://x y", nil, []string{"address"}, 2},
		{"another scheme", "ssh://engine", nil, []string{"address"}, 2},
		{"TLS files", "tcp://10.0.0.1:2376", present, nil, 3},
		{"missing TLS files", "tcp://10.0.0.1:2376", missing, []string{"tls.cert_file", "tls.key_file"}, 3},
		{"both wrong", "ssh://engine", missing, []string{"address", "tls.cert_file", "tls.key_file"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, diags := ClientOptions(tt.address, tt.tls)
			var paths []string
			for _, d := range diags {
				paths = append(paths, strings.Join(d.Path, "."))
			}
			if !slices.Equal(paths, tt.paths) || len(opts) != tt.opts {
				t.Fatalf("ClientOptions = %d options, diagnostics %v at %v; want %d options, diagnostics at %v", len(opts), diags, paths, tt.opts, tt.paths)
			}
			if diags.HasErrors() || tt.tls != nil {
				return // the client would read the files, not PEM here
			}
			// The options make a client, which connects only when used.
			cli, err := client.New(opts...)
			if err != nil {
				t.Fatalf("client.New: %v", err)
			}
			_ = cli.Close()
		})
	}
}

// TestTLSBlock: the block's attributes are TLS's fields, the key secret.
func TestTLSBlock(t *testing.T) {
	b := TLSBlock("for the engine")
	if b.Name != BlockTLS || b.Help != "for the engine" {
		t.Errorf("block %q, help %q", b.Name, b.Help)
	}
	var names []string
	for _, a := range b.Schema.Attributes {
		names = append(names, a.Name)
		if !a.Required || a.Sensitive != (a.Name == "key_file") {
			t.Errorf("attribute %+v: want it required, and sensitive for the key alone", a)
		}
	}
	if !slices.Equal(names, []string{"ca_file", "cert_file", "key_file"}) {
		t.Errorf("attributes %v; want TLS's json names", names)
	}
}
