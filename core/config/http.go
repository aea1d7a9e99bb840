package config

import (
	"fmt"
	"math/big"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// HTTP bounds what clients may hold of the API server (core/httplimit);
// zero fields take the server's defaults.
type HTTP struct {
	MaxConnections           int
	MaxConnectionsPerAddress int
	MaxHeaderSize            int64 // bytes
	ReadHeaderTimeout        time.Duration
	BodyTimeout              time.Duration
	WriteTimeout             time.Duration
	IdleTimeout              time.Duration
	// PasswordChecks bounds the password checks that run at once.
	PasswordChecks int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client, for the throttling of failed logins.
	TrustedProxies []netip.Prefix
	// BasePath is where the daemon serves everything (the web pages,
	// <BasePath>/api/v1, <BasePath>/proxy): "" when not set, the root
	// (see Base).
	BasePath string
}

// Base is the base path: "/" or an absolute clean path without a
// trailing slash.
func (h HTTP) Base() string {
	if h.BasePath == "" {
		return "/"
	}
	return h.BasePath
}

// basePathProblem says what is wrong with a base path; "" when nothing.
func basePathProblem(p string) string {
	switch {
	case !strings.HasPrefix(p, "/"):
		return "it must be an absolute path, starting with /"
	case p != "/" && strings.HasSuffix(p, "/"):
		return "it must not end with / (write " + strings.TrimRight(p, "/") + ")"
	case path.Clean(p) != p:
		return "it must be a clean path, without empty, . or .. segments (write " + path.Clean(p) + ")"
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/-._~", r)) {
			return fmt.Sprintf("%q may not appear in it: letters, digits, /, -, ., _ and ~ only (no query, no escapes)", r)
		}
	}
	return ""
}

func (d *decoder) http(b *hcl.Block) {
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "max_connections"}, {Name: "max_connections_per_address"}, {Name: "max_header_size"},
		{Name: "read_header_timeout"}, {Name: "body_timeout"}, {Name: "write_timeout"}, {Name: "idle_timeout"},
		{Name: "password_checks"}, {Name: "trusted_proxies"}, {Name: "base_path"},
	}})
	d.add(diags)
	a, h := content.Attributes, &d.cfg.HTTP
	d.count(a, "max_connections", 1, 1<<20, &h.MaxConnections)
	d.count(a, "max_connections_per_address", 1, 1<<20, &h.MaxConnectionsPerAddress)
	d.count(a, "password_checks", 1, 1024, &h.PasswordChecks)
	if n, ok := d.size(a, "max_header_size"); ok {
		if n < 4096 || n > 16<<20 {
			d.errorf(a["max_header_size"].Expr.Range(), "Invalid header size", "max_header_size must be from 4 KiB to 16 MiB.")
		} else {
			h.MaxHeaderSize = n
		}
	}
	for name, dst := range map[string]*time.Duration{
		"read_header_timeout": &h.ReadHeaderTimeout, "body_timeout": &h.BodyTimeout,
		"write_timeout": &h.WriteTimeout, "idle_timeout": &h.IdleTimeout,
	} {
		if v, ok := d.duration(a, name); ok {
			*dst = v
		}
	}
	if v, r, ok := d.value(a, "trusted_proxies", cty.List(cty.String)); ok {
		for _, e := range v.AsValueSlice() {
			if e.IsNull() {
				continue
			}
			p, err := parsePrefix(e.AsString())
			if err != nil {
				d.errorf(r, "Invalid proxy address", "trusted_proxies: %q is neither an IP address nor a CIDR range such as \"10.0.0.0/8\".", e.AsString())
				continue
			}
			h.TrustedProxies = append(h.TrustedProxies, p)
		}
	}
	if v, r, ok := d.str(a, "base_path"); ok {
		if msg := basePathProblem(v); msg != "" {
			d.errorf(r, "Invalid base path", "base_path %q: %s.", v, msg)
		} else {
			h.BasePath = v
		}
	}
	if h.MaxConnections > 0 && h.MaxConnectionsPerAddress > h.MaxConnections {
		d.errorf(a["max_connections_per_address"].Expr.Range(), "Invalid connection bound",
			"max_connections_per_address (%d) must not exceed max_connections (%d).", h.MaxConnectionsPerAddress, h.MaxConnections)
	}
}

// parsePrefix parses a CIDR range or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	return p.Masked(), err
}

// count decodes a whole number from lo to hi.
func (d *decoder) count(a hcl.Attributes, name string, lo, hi int64, dst *int) {
	v, r, ok := d.value(a, name, cty.Number)
	if !ok {
		return
	}
	n, acc := v.AsBigFloat().Int64()
	if acc != big.Exact || n < lo || n > hi {
		d.errorf(r, "Invalid number", "%s must be a whole number from %d to %d.", name, lo, hi)
		return
	}
	*dst = int(n)
}

// duration decodes a duration such as "30s", greater than 0.
func (d *decoder) duration(a hcl.Attributes, name string) (time.Duration, bool) {
	v, r, ok := d.str(a, name)
	if !ok {
		return 0, false
	}
	t, err := time.ParseDuration(v)
	switch {
	case err != nil:
		d.errorf(r, "Invalid duration", "%s %q is not a duration such as \"30s\" or \"1m30s\".", name, v)
	case t <= 0:
		d.errorf(r, "Invalid duration", "%s must be greater than 0.", name)
	default:
		return t, true
	}
	return 0, false
}
