package hclschema

import (
	"fmt"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/zoe-project/zoe/sdk"
)

// Decode decodes body against s and returns it as a JSON object: attributes
// by name, absent optional attributes null, defaults filled in. The body is
// decoded directly (not re-parsed from JSON) so that every diagnostic keeps
// the user's source range.
func Decode(body hcl.Body, s sdk.Schema, ctx *hcl.EvalContext) ([]byte, hcl.Diagnostics) {
	spec, err := Spec(s)
	if err != nil {
		r := body.MissingItemRange()
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid plugin schema",
			Detail:   fmt.Sprintf("The plugin published a configuration schema the core cannot use: %v. This is a bug in the plugin.", err),
			Subject:  &r,
		}}
	}
	val, diags := hcldec.Decode(body, spec, ctx)
	if diags.HasErrors() {
		return nil, diags
	}
	b, err := ctyjson.Marshal(val, val.Type())
	if err != nil {
		// Unknown values can only come from an EvalContext with unknown
		// variables; say so rather than fail obscurely.
		r := body.MissingItemRange()
		return nil, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cannot encode plugin configuration",
			Detail:   err.Error(),
			Subject:  &r,
		})
	}
	return b, diags
}

// PathRange finds the source range of the value named by path inside an
// *hclsyntax.Body. A path is a sequence of block types, each followed by the
// block's label for labelled (map) blocks or its index for repeated (list)
// blocks, ending with an attribute name; e.g. {"users_file"} or
// {"host", "local", "address"}. A path ending at a block gives the block's
// header. The result is false when the path names nothing in body.
func PathRange(body hcl.Body, path []string) (hcl.Range, bool) {
	b, ok := body.(*hclsyntax.Body)
	if !ok || len(path) == 0 {
		return hcl.Range{}, false
	}
	name, rest := path[0], path[1:]
	if len(rest) == 0 {
		if a, ok := b.Attributes[name]; ok {
			return a.Expr.Range(), true
		}
	}
	var blocks []*hclsyntax.Block
	for _, blk := range b.Blocks {
		if blk.Type == name {
			blocks = append(blocks, blk)
		}
	}
	if len(blocks) == 0 {
		return hcl.Range{}, false
	}
	var blk *hclsyntax.Block
	switch {
	case len(blocks[0].Labels) > 0:
		// Labelled blocks: the next element is the label.
		if len(rest) == 0 {
			return hcl.Range{}, false
		}
		for _, c := range blocks {
			if len(c.Labels) > 0 && c.Labels[0] == rest[0] {
				blk = c
				break
			}
		}
		rest = rest[1:]
	case len(rest) > 0 && isIndex(rest[0]):
		// HCL identifiers never start with a digit, so a number can only be
		// an index into repeated blocks.
		if i, err := strconv.Atoi(rest[0]); err == nil && i < len(blocks) {
			blk = blocks[i]
		}
		rest = rest[1:]
	default:
		blk = blocks[0]
	}
	if blk == nil {
		return hcl.Range{}, false
	}
	if len(rest) == 0 {
		return blk.DefRange(), true
	}
	return PathRange(blk.Body, rest)
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Diagnostics converts a plugin's diagnostics to hcl ones, each placed at the
// range of its path, else at the nearest enclosing element of the path that
// exists (a missing attribute is reported at its block), else at fallback.
func Diagnostics(body hcl.Body, fallback hcl.Range, d sdk.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, x := range d {
		subject := fallback
		for n := len(x.Path); n > 0; n-- {
			if r, ok := PathRange(body, x.Path[:n]); ok {
				subject = r
				break
			}
		}
		sev := hcl.DiagError
		if x.Severity == sdk.SeverityWarning {
			sev = hcl.DiagWarning
		}
		out = append(out, &hcl.Diagnostic{
			Severity: sev,
			Summary:  x.Summary,
			Detail:   x.Detail,
			Subject:  &subject,
		})
	}
	return out
}
