package dockerapi

import (
	"fmt"
	"os"
	"slices"

	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/sdk"
)

// The attribute and block that say where an engine is and how to reach
// it; both plugins' schemas use these names, and ClientOptions' diagnostics
// point at them.
const (
	AttrAddress  = "address"
	BlockTLS     = "tls"
	attrCAFile   = "ca_file"
	attrCertFile = "cert_file"
	attrKeyFile  = "key_file"
)

// TLS is the tls block: client certificates for an engine that requires
// TLS.
type TLS struct {
	CAFile   string `json:"ca_file"`
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
}

// TLSBlock is the schema of the tls block; help says whose engine it is
// for.
func TLSBlock(help string) sdk.Block {
	return sdk.Block{
		Name: BlockTLS, Nesting: sdk.NestingSingle,
		Help: help,
		Schema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: attrCAFile, Type: "string", Required: true, Help: "CA certificate of the engine."},
			{Name: attrCertFile, Type: "string", Required: true, Help: "Client certificate."},
			{Name: attrKeyFile, Type: "string", Required: true, Help: "Client key.", Sensitive: true},
		}},
	}
}

// ClientOptions are the options of a client for the engine at address
// (empty for DOCKER_HOST or the local socket), with tls when it is set.
// The client connects lazily, so an engine that does not answer is no
// error here. The diagnostics' paths start at the block that holds address
// and tls.
func ClientOptions(address string, tls *TLS) ([]client.Opt, sdk.Diagnostics) {
	var diags sdk.Diagnostics
	at := func(path []string, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: path})
	}
	opts := []client.Opt{client.FromEnv}
	if address != "" {
		if u, err := client.ParseHostURL(address); err != nil {
			at([]string{AttrAddress}, "invalid engine address", err.Error())
		} else if !slices.Contains([]string{"tcp", "unix", "http", "https"}, u.Scheme) {
			at([]string{AttrAddress}, "invalid engine address", fmt.Sprintf("scheme %q: want tcp:// or unix://", u.Scheme))
		}
		opts = append(opts, client.WithHost(address))
	}
	if tls != nil {
		for _, f := range []struct{ attr, path string }{{attrCAFile, tls.CAFile}, {attrCertFile, tls.CertFile}, {attrKeyFile, tls.KeyFile}} {
			if _, err := os.Stat(f.path); err != nil {
				at([]string{BlockTLS, f.attr}, "cannot read TLS file", err.Error())
			}
		}
		opts = append(opts, client.WithTLSClientConfig(tls.CAFile, tls.CertFile, tls.KeyFile))
	}
	return opts, diags
}
