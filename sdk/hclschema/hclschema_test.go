package hclschema

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/zoe-project/zoe/sdk"
)

// testSchema exercises every nesting and a default.
func testSchema() sdk.Schema {
	return sdk.Schema{
		Attributes: []sdk.Attribute{
			{Name: "users_file", Type: "string", Required: true},
			{Name: "cache", Type: "number", Default: 10},
			{Name: "tags", Type: "list(string)", Default: []string{"a"}},
			{Name: "comment", Type: "string"},
		},
		Blocks: []sdk.Block{
			{Name: "tls", Nesting: sdk.NestingSingle, Schema: sdk.Schema{Attributes: []sdk.Attribute{
				{Name: "ca", Type: "string", Required: true},
			}}},
			{Name: "server", Nesting: sdk.NestingList, MaxItems: 2, Schema: sdk.Schema{Attributes: []sdk.Attribute{
				{Name: "uri", Type: "string", Required: true},
				{Name: "weight", Type: "number", Default: 1},
			}}},
			{Name: "host", Nesting: sdk.NestingMap, Schema: sdk.Schema{Attributes: []sdk.Attribute{
				{Name: "address", Type: "string", Required: true},
			}}},
		},
	}
}

func TestSpecErrors(t *testing.T) {
	attr := func(a ...sdk.Attribute) sdk.Schema { return sdk.Schema{Attributes: a} }
	tests := []struct {
		name   string
		schema sdk.Schema
		want   string // substring of the error; "" for no error
	}{
		{"valid", testSchema(), ""},
		{"empty schema", sdk.Schema{}, ""},
		{"bad type", attr(sdk.Attribute{Name: "a", Type: "strin"}), `attribute "a": invalid type expression "strin"`},
		{"type syntax", attr(sdk.Attribute{Name: "a", Type: "list(("}), `invalid type expression "list(("`},
		{"any refused", attr(sdk.Attribute{Name: "a", Type: "any"}), `invalid type expression "any"`},
		{"missing type", attr(sdk.Attribute{Name: "a"}), `attribute "a": missing type`},
		{"default mismatch", attr(sdk.Attribute{Name: "a", Type: "number", Default: "ten"}), `default "ten" does not match type number`},
		{"default list mismatch", attr(sdk.Attribute{Name: "a", Type: "list(number)", Default: []string{"x"}}), `does not match type list(number)`},
		{"required with default", attr(sdk.Attribute{Name: "a", Type: "string", Required: true, Default: "x"}), "cannot have a default"},
		{"duplicate attributes", attr(sdk.Attribute{Name: "a", Type: "string"}, sdk.Attribute{Name: "a", Type: "number"}), `attribute "a": name is used more than once`},
		{"attribute and block clash", sdk.Schema{
			Attributes: []sdk.Attribute{{Name: "a", Type: "string"}},
			Blocks:     []sdk.Block{{Name: "a", Nesting: sdk.NestingSingle}},
		}, `block "a": name is used more than once`},
		{"empty name", attr(sdk.Attribute{Type: "string"}), "schema: attribute with an empty name"},
		{"not identifier", attr(sdk.Attribute{Name: "users file", Type: "string"}), `attribute "users file": name is not a valid HCL identifier`},
		{"leading digit", attr(sdk.Attribute{Name: "1a", Type: "string"}), "not a valid HCL identifier"},
		{"reserved attribute", attr(sdk.Attribute{Name: "checksum", Type: "string"}), `attribute "checksum": name is reserved`},
		{"reserved block", sdk.Schema{Blocks: []sdk.Block{{Name: "binary", Nesting: sdk.NestingSingle}}}, `block "binary": name is reserved`},
		{"reserved allowed nested", sdk.Schema{Blocks: []sdk.Block{{Name: "b", Nesting: sdk.NestingSingle,
			Schema: attr(sdk.Attribute{Name: "checksum", Type: "string"})}}}, ""},
		{"unknown nesting", sdk.Schema{Blocks: []sdk.Block{{Name: "b"}}}, `block "b": unknown nesting 0`},
		{"nested error has path", sdk.Schema{Blocks: []sdk.Block{{Name: "b", Nesting: sdk.NestingList,
			Schema: attr(sdk.Attribute{Name: "c", Type: "nope"})}}}, `attribute "b.c": invalid type expression`},
		{"nested empty name", sdk.Schema{Blocks: []sdk.Block{{Name: "b", Nesting: sdk.NestingList,
			Schema: attr(sdk.Attribute{Type: "string"})}}}, "block b: attribute with an empty name"},
		{"single min 2", sdk.Schema{Blocks: []sdk.Block{{Name: "b", Nesting: sdk.NestingSingle, MinItems: 2}}}, "NestingSingle allows"},
		{"max below min", sdk.Schema{Blocks: []sdk.Block{{Name: "b", Nesting: sdk.NestingList, MinItems: 3, MaxItems: 2}}}, "MaxItems 2 is less than MinItems 3"},
		{"negative", sdk.Schema{Blocks: []sdk.Block{{Name: "b", Nesting: sdk.NestingList, MinItems: -1}}}, "negative"},
		{"map limits", sdk.Schema{Blocks: []sdk.Block{{Name: "b", Nesting: sdk.NestingMap, MinItems: 1}}}, "not supported with NestingMap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := Spec(tt.schema)
			if tt.want == "" {
				if err != nil || spec == nil {
					t.Fatalf("Spec: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Spec error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSpecReportsAllErrors(t *testing.T) {
	_, err := Spec(sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "", Type: "string"}, {Name: "b", Type: "bogus"}, {Name: "binary", Type: "string"},
	}})
	if err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Fatalf("want three joined errors, got %v", err)
	}
}

func parse(t *testing.T, src string) hcl.Body {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "p.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parse: %v", diags)
	}
	return f.Body
}

// at renders a diagnostic as "file:LINE,COL: Summary".
func at(d *hcl.Diagnostic) string {
	if d.Subject == nil {
		return "<no subject>: " + d.Summary
	}
	return fmt.Sprintf("%s:%d,%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, d.Summary)
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		want  string   // JSON, compared structurally
		diags []string // "file:LINE,COL: Summary" of every diagnostic
	}{
		{
			name: "defaults filled, optional null, empty blocks",
			src:  `users_file = "u.csv"`,
			want: `{"users_file":"u.csv","cache":10,"tags":["a"],"comment":null,"tls":null,"server":[],"host":{}}`,
		},
		{
			name: "every nesting",
			src: `
users_file = "u.csv"
cache      = 3
tls { ca = "ca.pem" }
server { uri = "ldap://a" }
server {
  uri    = "ldap://b"
  weight = 2
}
host "local" { address = "127.0.0.1" }
host "far"   { address = "10.0.0.1" }
`,
			want: `{"users_file":"u.csv","cache":3,"tags":["a"],"comment":null,"tls":{"ca":"ca.pem"},
				"server":[{"uri":"ldap://a","weight":1},{"uri":"ldap://b","weight":2}],
				"host":{"local":{"address":"127.0.0.1"},"far":{"address":"10.0.0.1"}}}`,
		},
		{
			name: "conversion to declared type",
			src:  `users_file = 42`,
			want: `{"users_file":"42","cache":10,"tags":["a"],"comment":null,"tls":null,"server":[],"host":{}}`,
		},
		{
			name:  "unknown attribute",
			src:   "users_file = \"u\"\nuser_file = \"x\"\n",
			diags: []string{"p.hcl:2,1: Unsupported argument"},
		},
		{
			name:  "wrong type",
			src:   "users_file = \"u\"\n  cache = \"lots\"\n",
			diags: []string{"p.hcl:2,11: Incorrect attribute value type"},
		},
		{
			name:  "missing required",
			src:   "cache = 1\n",
			diags: []string{"p.hcl:1,1: Missing required argument"},
		},
		{
			name:  "missing required in nested block",
			src:   "users_file = \"u\"\nhost \"x\" {\n}\n",
			diags: []string{"p.hcl:2,10: Missing required argument"},
		},
		{
			name:  "too many list blocks",
			src:   "users_file = \"u\"\nserver { uri = \"a\" }\nserver { uri = \"b\" }\nserver { uri = \"c\" }\n",
			diags: []string{"p.hcl:4,10: Too many server blocks"},
		},
		{
			name:  "duplicate single block",
			src:   "users_file = \"u\"\ntls { ca = \"a\" }\ntls { ca = \"b\" }\n",
			diags: []string{"p.hcl:3,1: Duplicate tls block"},
		},
		{
			name:  "map block without label",
			src:   "users_file = \"u\"\nhost { address = \"a\" }\n",
			diags: []string{"p.hcl:2,6: Missing name for host"},
		},
		{
			name:  "several errors at once",
			src:   "users_file = [1]\ncache = {}\nserver { url = \"a\" }\n",
			diags: []string{"p.hcl:3,10: Unsupported argument", "p.hcl:3,10: Missing required argument", "p.hcl:1,14: Incorrect attribute value type", "p.hcl:2,9: Incorrect attribute value type"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, diags := Decode(parse(t, tt.src), testSchema(), nil)
			var gotDiags []string
			for _, d := range diags {
				gotDiags = append(gotDiags, at(d))
			}
			if !sameSet(gotDiags, tt.diags) {
				t.Fatalf("diagnostics\n got %q\nwant %q", gotDiags, tt.diags)
			}
			if tt.want == "" {
				if got != nil {
					t.Fatalf("want no value on error, got %s", got)
				}
				return
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("result is not JSON: %v: %s", err, got)
			}
			if err := json.Unmarshal([]byte(tt.want), &w); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// sameSet compares ignoring order: hcldec walks an ObjectSpec, a map.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	count := map[string]int{}
	for _, x := range a {
		count[x]++
	}
	for _, x := range b {
		count[x]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestDecodeInvalidSchema(t *testing.T) {
	_, diags := Decode(parse(t, "a = 1\n"), sdk.Schema{Attributes: []sdk.Attribute{{Name: "binary", Type: "string"}}}, nil)
	if len(diags) != 1 || diags[0].Summary != "Invalid plugin schema" || !strings.Contains(diags[0].Detail, "reserved") {
		t.Fatalf("got %v", diags)
	}
}

const pathSrc = `users_file = "u.csv"
host "local" {
  address = "127.0.0.1"
}
server { uri = "a" }
server {
  uri = "b"
}
tls {
  ca = "x"
}
`

func TestPathRange(t *testing.T) {
	body := parse(t, pathSrc)
	tests := []struct {
		path []string
		want string // "LINE,COL"; "" when not found
	}{
		{[]string{"users_file"}, "1,14"},
		{[]string{"host", "local", "address"}, "3,13"},
		{[]string{"host", "local"}, "2,1"},
		{[]string{"host", "far", "address"}, ""},
		{[]string{"host"}, ""},
		{[]string{"server", "1", "uri"}, "7,9"},
		{[]string{"server", "0", "uri"}, "5,16"},
		{[]string{"server", "2", "uri"}, ""},
		{[]string{"server", "99999999999999999999999", "uri"}, ""},
		{[]string{"tls", "ca"}, "10,8"},
		{[]string{"tls", "0", "ca"}, "10,8"},
		{[]string{"tls"}, "9,1"},
		{[]string{"nope"}, ""},
		{[]string{"users_file", "x"}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.path, "."), func(t *testing.T) {
			r, ok := PathRange(body, tt.path)
			got := ""
			if ok {
				got = fmt.Sprintf("%d,%d", r.Start.Line, r.Start.Column)
			}
			if got != tt.want {
				t.Fatalf("PathRange(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
	if _, ok := PathRange(hcl.EmptyBody(), []string{"a"}); ok {
		t.Fatal("PathRange on a non-syntax body must be false")
	}
}

func TestDiagnostics(t *testing.T) {
	body := parse(t, pathSrc)
	fallback := hcl.Range{Filename: "p.hcl", Start: hcl.Pos{Line: 20, Column: 1}}
	got := Diagnostics(body, fallback, sdk.Diagnostics{
		sdk.AttributeError("users_file", "File not readable", "permission denied"),
		{Severity: sdk.SeverityWarning, Summary: "Slow", Path: []string{"host", "local", "address"}},
		{Severity: sdk.SeverityError, Summary: "Missing port", Path: []string{"host", "local", "port"}},
		{Severity: sdk.SeverityError, Summary: "Whole block"},
	})
	want := []string{"p.hcl:1,14: File not readable", "p.hcl:3,13: Slow", "p.hcl:2,1: Missing port", "p.hcl:20,1: Whole block"}
	if len(got) != len(want) {
		t.Fatalf("got %d diagnostics, want %d", len(got), len(want))
	}
	for i, d := range got {
		if at(d) != want[i] {
			t.Errorf("diagnostic %d at %q, want %q", i, at(d), want[i])
		}
	}
	if got[0].Severity != hcl.DiagError || got[1].Severity != hcl.DiagWarning || got[0].Detail != "permission denied" {
		t.Errorf("severity or detail lost: %v", got)
	}
}
