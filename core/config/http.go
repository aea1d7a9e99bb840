package config

import (
	"math/big"
	"net/netip"
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
}

func (d *decoder) http(b *hcl.Block) {
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "max_connections"}, {Name: "max_connections_per_address"}, {Name: "max_header_size"},
		{Name: "read_header_timeout"}, {Name: "body_timeout"}, {Name: "write_timeout"}, {Name: "idle_timeout"},
		{Name: "password_checks"}, {Name: "trusted_proxies"},
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
