package zapp

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestSyntaxErrors(t *testing.T) {
	cases := []struct{ doc, want string }{
		{`{"a": 3,,}`, `line 1, column 9: invalid character ',' looking for the beginning of an object key string`},
		{`{"a" 3}`, `line 1, column 6: invalid character '3' after object key`},
		{"[1,\n 2 3]", `line 2, column 4: invalid character '3' after array element`},
		{`{"a": tru}`, `line 1, column 10: invalid character '}' in literal true`},
		{`{"a": 1]`, `line 1, column 8: invalid character ']' after object key:value pair`},
		{`{"a": "x`, `line 1, column 9: unexpected end of input in string literal`},
		{`{"a": 01}`, `line 1, column 8: invalid character '1' after object key:value pair`},
		{"{\"a\": \"\x01\"}", `line 1, column 8: invalid character '\x01' in string literal`},
		{`[1,]`, `line 1, column 4: invalid character ']' looking for the beginning of a value`},
		{`{"a": -}`, `line 1, column 8: invalid character '}' in numeric literal`},
		{`{"a": 1.}`, `line 1, column 9: invalid character '}' after decimal point`},
		{`{"a": 1e}`, `line 1, column 9: invalid character '}' in exponent`},
		{`{"a": "\q"}`, `line 1, column 9: invalid character 'q' in string escape code`},
		{`{"a": "\u12"}`, `line 1, column 10: invalid character '1' in \u hexadecimal character escape`},
		{"{\n\t\"é\": x}", `line 2, column 7: invalid character 'x' looking for the beginning of a value`},
		{strings.Repeat("[", 100), "line 1, column 65: nested more than 64 levels deep"},
		{"", "line 1, column 1: empty input"},
		{"{} x", `line 1, column 4: unexpected data after`},
	}
	for _, c := range cases {
		_, err := Decode([]byte(c.doc))
		var ps Problems
		if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Path != "" || !strings.HasPrefix(ps[0].Message, c.want) {
			t.Errorf("%q: got %v, want %s", c.doc, err, c.want)
		}
	}
}

func TestStrings(t *testing.T) {
	// Escapes, surrogate pairs, and invalid UTF-8 become what encoding/json
	// would make of them.
	doc := "{\"k\": [\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\\u00e9\\ud83d\\ude00\", \"\\ud83d x\", \"\xff\"]}"
	root, err := parseTree([]byte(doc))
	if err != nil {
		t.Fatal(err.msg)
	}
	var got []string
	for _, e := range root.members[0].val.elems {
		got = append(got, e.text)
	}
	want := []string{"a\"\\/\b\f\n\r\t", "é😀", "\uFFFD x", "\uFFFD"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Problems come in document order, whatever order the rules run in.
func TestDocumentOrder(t *testing.T) {
	doc := `{
  "services": [
    {"name": "w", "image": "", "monitor": false, "startup_order": 0, "essential_count": 2, "total_count": 1,
     "resources": {"memory": {"min": 1, "max": null}, "cores": {"min": null, "max": null}},
     "ports": [], "environment": [["A", "{x}"]], "volumes": [], "command": null, "zzz": 1}
  ],
  "version": 3,
  "name": "a b",
  "will_end": false,
  "size": -1
}`
	_, err := Load([]byte(doc), DefaultLimits())
	want := `services: no service has monitor set to true; at least one must
services[0].name: must be 3 to 16 characters long, got 1 ("w")
services[0].image: must not be empty
services[0].total_count: must be at least essential_count (2), got 1
services[0].resources.memory.min: must be at least 1024 bytes, got 1
services[0].environment[0][1]: unknown variable {x}; the known variables are {user_name}, {execution_id}, {execution_name}, {deployment_name}, {dns_name#self} and {dns_name#<instance>} for an instance of this ZApp (w0)
services[0].zzz: unknown key; the known keys are name, image, monitor, startup_order, essential_count, total_count, replicas, resources, ports, environment, volumes, command, work_dir, labels, network
name: may hold only letters, digits, '-' and '@', got "a b"
size: must be at least 0, got -1`
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

// Decode reports structure only; Validate and Load add the rules.
func TestDecodeStructureOnly(t *testing.T) {
	m := base()
	m["name"] = "x"
	svcOf(m, 0)["monitor"] = false
	data := []byte(mustJSON(m))
	a, err := Decode(data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := Problems{
		{"name", `must be 3 to 128 characters long, got 1 ("x")`},
		{"services", "no service has monitor set to true; at least one must"},
	}
	if got := Validate(a, DefaultLimits()); !reflect.DeepEqual(got, want) {
		t.Errorf("Validate: got %v, want %v", got, want)
	}
	if _, err := Load(data, DefaultLimits()); !reflect.DeepEqual(err, want) {
		t.Errorf("Load: got %v, want %v", err, want)
	}
	m["version"] = 2
	if _, err := Decode([]byte(mustJSON(m))); err == nil || !strings.Contains(err.Error(), "zoe zapp convert") {
		t.Errorf("Decode of version 2: %v", err)
	}
}

func TestValidateTyped(t *testing.T) {
	if got := Validate(nil, DefaultLimits()); len(got) != 1 || got[0].Message != "no description" {
		t.Errorf("nil: %v", got)
	}
	a := load(t, "spark.json")
	before := a.Clone()
	a.Version = 2
	a.Services[1].Environment = append(a.Services[1].Environment, EnvVar{"BAD NAME", "{nope}"})
	a.Services[0].Resources.Memory.Min = new(int64(100 << 30))
	a.Services[0].Resources.Cores.Min = new(-1.0)
	a.Services[0].Command = new("")
	got := Validate(a, DefaultLimits())
	want := []want{
		{"version", "must be 3, got 2"},
		{"services[0].resources.memory.min", "must be at most 64 GiB (the administrative limit max_service_memory), got 100 GiB"},
		{"services[0].resources.cores.min", "must be greater than 0, got -1"},
		{"services[0].command", "must not be empty"},
		{"services[1].environment[4][0]", `got "BAD NAME"`},
		{"services[1].environment[4][1]", "unknown variable {nope}"},
	}
	checkProblems(t, got, want)
	for i, p := range got {
		if i > 0 && comparePaths(got[i-1].Path, p.Path) > 0 {
			t.Errorf("not in order: %s before %s", got[i-1].Path, p.Path)
		}
	}
	// Validate changes nothing, not even over the limits.
	a.Version = 3
	a.Services[1].Environment = a.Services[1].Environment[:4]
	a.Services[0].Resources = before.Services[0].Resources
	a.Services[0].Command = nil
	if !reflect.DeepEqual(a, before) {
		t.Error("Validate changed the description")
	}
	// Zero limits mean none.
	a.Services[0].Resources.Memory.Min = new(int64(1 << 40))
	a.Services[0].Resources.Cores.Min = new(1000.0)
	if got := Validate(a, Limits{}); got != nil {
		t.Errorf("zero limits: %v", got)
	}
}

func load(t testing.TB, file string) *App {
	t.Helper()
	data, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Load(data, DefaultLimits())
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return a
}

func TestPaths(t *testing.T) {
	for _, p := range []string{"", "name", "services[2].resources.memory.min", `services[0]["a b"].c`, `["x.y"][3][1]`} {
		var rebuilt string
		for _, s := range splitPath(p) {
			if s.index >= 0 {
				rebuilt = indexPath(rebuilt, s.index)
			} else {
				rebuilt = keyPath(rebuilt, s.key)
			}
		}
		if rebuilt != p {
			t.Errorf("%q reads back as %q", p, rebuilt)
		}
	}
	if Problems(nil).Error() != "" || (Problems{{"", "x"}, {"a", "y"}}).Error() != "x\na: y" {
		t.Error("Problems.Error")
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 bytes", 100: "100 bytes", 1024: "1 KiB", 1536 << 20: "1536 MiB",
		64 << 30: "64 GiB", 1<<30 + 1: "1073741825 bytes (1.0 GiB)", -5: "-5 bytes"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
