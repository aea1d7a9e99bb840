// Package hclschema turns a plugin's sdk.Schema into an HCL decoder spec, so
// that the core can decode the plugin's configuration block with diagnostics
// at the user's file, line and column, and place the plugin's own semantic
// errors at the attribute they are about.
package hclschema

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/zoe-project/zoe/sdk"
)

// mapLabel names the single label of a NestingMap block in hcldec's messages
// ("Missing name for ...").
const mapLabel = "name"

// Spec converts a plugin's schema into an hcldec.ObjectSpec. All problems of
// the schema are reported together, joined, so an author fixes them in one go.
func Spec(s sdk.Schema) (hcldec.Spec, error) {
	spec, errs := objectSpec(s, "", true)
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid plugin schema: %w", errors.Join(errs...))
	}
	return spec, nil
}

// objectSpec converts one level of a schema; prefix names the enclosing
// blocks in error messages.
func objectSpec(s sdk.Schema, prefix string, top bool) (hcldec.ObjectSpec, []error) {
	spec := hcldec.ObjectSpec{}
	var errs []error
	seen := map[string]bool{}
	checkName := func(what, name string) bool {
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("%s: %s with an empty name", where(prefix), what))
			return false
		case !hclsyntax.ValidIdentifier(name):
			errs = append(errs, fmt.Errorf("%s %q: name is not a valid HCL identifier", what, prefix+name))
			return false
		case seen[name]:
			errs = append(errs, fmt.Errorf("%s %q: name is used more than once", what, prefix+name))
			return false
		case top && slices.Contains(sdk.ReservedAttributes(), name):
			errs = append(errs, fmt.Errorf("%s %q: name is reserved for the core (reserved: %s)",
				what, name, strings.Join(sdk.ReservedAttributes(), ", ")))
			return false
		}
		seen[name] = true
		return true
	}

	for _, a := range s.Attributes {
		if !checkName("attribute", a.Name) {
			continue
		}
		as, err := attrSpec(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("attribute %q: %w", prefix+a.Name, err))
			continue
		}
		spec[a.Name] = as
	}
	for _, b := range s.Blocks {
		if !checkName("block", b.Name) {
			continue
		}
		bs, berrs := blockSpec(b, prefix+b.Name+".")
		errs = append(errs, berrs...)
		if bs != nil {
			spec[b.Name] = bs
		}
	}
	return spec, errs
}

func where(prefix string) string {
	if prefix == "" {
		return "schema"
	}
	return "block " + strings.TrimSuffix(prefix, ".")
}

func attrSpec(a sdk.Attribute) (hcldec.Spec, error) {
	ty, err := parseType(a.Type)
	if err != nil {
		return nil, err
	}
	as := &hcldec.AttrSpec{Name: a.Name, Type: ty, Required: a.Required}
	if a.Default == nil {
		return as, nil
	}
	if a.Required {
		return nil, errors.New("a required attribute cannot have a default")
	}
	def, err := defaultValue(a.Default, ty)
	if err != nil {
		return nil, err
	}
	return &hcldec.DefaultSpec{Primary: as, Default: &hcldec.LiteralSpec{Value: def}}, nil
}

// parseType parses an HCL type expression such as "list(string)". The "any"
// keyword is refused: the decoded value must have a type known in advance
// for the JSON handed to the plugin to have a stable shape.
func parseType(expr string) (cty.Type, error) {
	if strings.TrimSpace(expr) == "" {
		return cty.NilType, errors.New("missing type")
	}
	x, diags := hclsyntax.ParseExpression([]byte(expr), "type", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("invalid type expression %q: %w", expr, diags)
	}
	ty, diags := typeexpr.Type(x)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("invalid type expression %q: %w", expr, diags)
	}
	return ty, nil
}

// defaultValue converts a Go default to a cty value of type ty by way of
// JSON, the same encoding the plugin receives its configuration in.
func defaultValue(v any, ty cty.Type) (cty.Value, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return cty.NilVal, fmt.Errorf("default: %w", err)
	}
	val, err := ctyjson.Unmarshal(b, ty)
	if err != nil {
		return cty.NilVal, fmt.Errorf("default %s does not match type %s: %w", b, typeexpr.TypeString(ty), err)
	}
	return val, nil
}

func blockSpec(b sdk.Block, prefix string) (hcldec.Spec, []error) {
	nested, errs := objectSpec(b.Schema, prefix, false)
	name := strings.TrimSuffix(prefix, ".")
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("block %q: "+format, append([]any{name}, args...)...))
	}
	if b.MinItems < 0 || b.MaxItems < 0 {
		bad("negative MinItems or MaxItems")
	}
	if b.MaxItems > 0 && b.MaxItems < b.MinItems {
		bad("MaxItems %d is less than MinItems %d", b.MaxItems, b.MinItems)
	}
	var spec hcldec.Spec
	switch b.Nesting {
	case sdk.NestingSingle:
		if b.MinItems > 1 || b.MaxItems > 1 {
			bad("NestingSingle allows MinItems and MaxItems of 0 or 1 only")
		}
		spec = &hcldec.BlockSpec{TypeName: b.Name, Nested: nested, Required: b.MinItems >= 1}
	case sdk.NestingList:
		spec = &hcldec.BlockListSpec{TypeName: b.Name, Nested: nested, MinItems: b.MinItems, MaxItems: b.MaxItems}
	case sdk.NestingMap:
		// hcldec has no item limits for labelled blocks.
		if b.MinItems != 0 || b.MaxItems != 0 {
			bad("MinItems and MaxItems are not supported with NestingMap")
		}
		spec = &hcldec.BlockMapSpec{TypeName: b.Name, LabelNames: []string{mapLabel}, Nested: nested}
	default:
		bad("unknown nesting %d", b.Nesting)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return spec, nil
}
