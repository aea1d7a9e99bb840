package shop

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/internal/testutil"
)

// testZApp is a valid description with two services: web (monitor, env
// TOKEN and LEVEL, label gpu) and worker (env LEVEL, command "run", one
// essential and one elastic instance).
const testZApp = `{
  "name": "test-app", "version": 3, "will_end": false, "size": 1,
  "services": [
    {"name": "web", "image": "zoe/web:1.0", "monitor": true, "startup_order": 0,
     "essential_count": 1, "total_count": 1,
     "resources": {"memory": {"min": 1073741824, "max": null}, "cores": {"min": 1, "max": null}},
     "ports": [], "environment": [["TOKEN", "none"], ["LEVEL", "1"]], "volumes": [],
     "command": null, "labels": ["gpu"]},
    {"name": "worker", "image": "zoe/worker:1.0", "monitor": false, "startup_order": 1,
     "essential_count": 1, "total_count": 2,
     "resources": {"memory": {"min": 1073741824, "max": null}, "cores": {"min": 1, "max": null}},
     "ports": [], "environment": [["LEVEL", "1"]], "volumes": [], "command": "run"}
  ]
}`

// Parameters of every kind and type, valid for testZApp.
const (
	pToken  = `{"kind": "environment", "name": "TOKEN", "readable_name": "Token", "description": "", "type": "string", "default": null}`
	pLevel  = `{"kind": "environment", "name": "LEVEL", "readable_name": "Level", "description": "", "type": "int", "min": 0, "max": 10, "step": 2, "default": 4}`
	pCmd    = `{"kind": "command", "name": "worker", "readable_name": "Command", "description": "", "type": "string", "default": "run --fast"}`
	pCount  = `{"kind": "service_count", "name": "worker", "readable_name": "Workers", "description": "", "type": "int", "min": 1, "max": 8, "step": 1, "default": null}`
	pCountD = `{"kind": "service_count", "name": "worker", "readable_name": "Workers", "description": "", "type": "int", "min": 1, "max": 8, "step": 1, "default": 3}`
)

// entryJSON is a manifest entry using app.json and README.md.
func entryJSON(extra string, params ...string) string {
	if extra != "" {
		extra = ", " + extra
	}
	return fmt.Sprintf(`{"category": "Tests", "name": "Test", "description": "app.json", "readable_descr": "README.md", "parameters": [%s]%s}`,
		strings.Join(params, ", "), extra)
}

func manifestJSON(entries ...string) string {
	return fmt.Sprintf(`{"version": 1, "zapps": [%s]}`, strings.Join(entries, ",\n"))
}

// entryDir is the files of one valid shop directory with the entries.
func entryDir(dir string, entries ...string) map[string]string {
	return map[string]string{
		dir + "/manifest.json": manifestJSON(entries...),
		dir + "/app.json":      testZApp,
		dir + "/README.md":     "# Test\n",
		dir + "/logo.png":      "png",
	}
}

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// newShop writes files into a new directory and loads it, checking for
// changes on every access.
func newShop(t *testing.T, files map[string]string) (*Shop, string) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	s, err := Load(dir, zapp.DefaultLimits(), testutil.Logger(t), WithCheckInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func ids(entries []*Entry) []string {
	out := []string{}
	for _, e := range entries {
		out = append(out, e.ID)
	}
	return out
}

func errorProblems(ps []Problem) []Problem {
	var out []Problem
	for _, p := range ps {
		if p.Severity == SeverityError {
			out = append(out, p)
		}
	}
	return out
}

func mustEntry(t *testing.T, s *Shop, id string) *Entry {
	t.Helper()
	e, ok := s.Entry(id, AdminRole)
	if !ok {
		t.Fatalf("no entry %s; entries %v, problems %v", id, ids(s.Entries(AdminRole)), s.Problems())
	}
	return e
}

func TestExamples(t *testing.T) {
	s, err := Load("../../examples/shop", zapp.DefaultLimits(), testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if ps := s.Problems(); len(ps) > 0 {
		t.Fatalf("problems in examples/shop: %v", ps)
	}
	if got, want := ids(s.Entries(AdminRole)), []string{"batch-0", "dask-0", "notebook-0"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("entries %v, want %v (by category)", got, want)
	}
	kinds := map[Kind]bool{}
	for _, e := range s.Entries(AdminRole) {
		if e.DescriptionHTML == "" || !strings.HasPrefix(e.LogoPath(), "/") || len(e.Parameters) == 0 {
			t.Errorf("%s: description %q, logo %q, parameters %v", e.ID, e.DescriptionHTML, e.LogoPath(), e.Parameters)
		}
		for _, p := range e.Parameters {
			kinds[p.Kind] = true
		}
		if _, err := e.Apply(nil); err != nil {
			t.Errorf("%s: defaults: %v", e.ID, err)
		}
	}
	if len(kinds) != 3 {
		t.Errorf("the examples use the kinds %v, want all three", kinds)
	}
	dask := mustEntry(t, s, "dask-0")
	app, err := dask.Apply(map[string]string{"NOTEBOOK_IDLE_MINUTES": "30"})
	if err != nil {
		t.Fatal(err)
	}
	// The null default of the worker count keeps the elastic workers.
	w := app.Services[1]
	if w.Name != "worker" || w.EssentialCount != 1 || w.TotalCount != 4 {
		t.Errorf("worker after the defaults: %+v", w)
	}
	if nb := app.Services[2]; !slices.Contains(nb.Environment, zapp.EnvVar{Name: "NOTEBOOK_IDLE_MINUTES", Value: "30"}) {
		t.Errorf("notebook's environment: %v", nb.Environment)
	}
	if _, ok := s.Entry("dask-0", "guest"); ok {
		t.Error("dask-0 is visible to guests")
	}
	if _, ok := s.Entry("batch-0", "student"); !ok {
		t.Error("batch-0 is hidden from students")
	}
}

// TestBrokenManifests breaks one thing per case in the directory "broken",
// whose manifest has a broken entry 0 and a good entry 1, next to a good
// directory: only what is broken must be hidden, and the problem must name
// the file and the path.
func TestBrokenManifests(t *testing.T) {
	good := entryJSON("")
	cases := []struct {
		name  string
		files map[string]string
		// visible are the ids of "broken" expected to stay.
		visible []string
		file    string // the problem's file, relative to the shop
		path    string
		message string
	}{
		{"syntax error", map[string]string{"broken/manifest.json": "{\n  \"version\": 1,\n  \"zapps\": [}\n"},
			nil, "broken/manifest.json", "", "line 3, column 13"},
		{"truncated", map[string]string{"broken/manifest.json": `{"version": 1, "zapps": [`},
			nil, "broken/manifest.json", "", "unexpected end of file"},
		{"trailing data", map[string]string{"broken/manifest.json": manifestJSON(good) + " {}"},
			nil, "broken/manifest.json", "", "after the JSON value"},
		{"not an object", map[string]string{"broken/manifest.json": `[1]`},
			nil, "broken/manifest.json", "", "must be a JSON object, got an array"},
		{"no version", map[string]string{"broken/manifest.json": `{"zapps": []}`},
			nil, "broken/manifest.json", "", `missing required key "version"`},
		{"version not a number", map[string]string{"broken/manifest.json": `{"version": "1", "zapps": []}`},
			nil, "broken/manifest.json", "version", "must be an integer, got a string"},
		{"zapps not an array", map[string]string{"broken/manifest.json": `{"version": 1, "zapps": {}}`},
			nil, "broken/manifest.json", "zapps", "must be an array, got an object"},
		{"unknown top-level key", map[string]string{"broken/manifest.json": `{"version": 1, "zapps": [], "extra": 1}`},
			nil, "broken/manifest.json", "extra", "unknown key"},
		{"entry not an object", map[string]string{"broken/manifest.json": manifestJSON(`"x"`, good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0]", "must be an object, got a string"},
		{"missing key", map[string]string{"broken/manifest.json": manifestJSON(
			`{"category": "T", "name": "T", "description": "app.json", "parameters": []}`, good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0]", `missing required key "readable_descr"`},
		{"unknown key", map[string]string{"broken/manifest.json": manifestJSON(entryJSON(`"colour": "red"`), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].colour", "unknown key; the known keys are category"},
		{"wrong type", map[string]string{"broken/manifest.json": manifestJSON(
			`{"category": "T", "name": 7, "description": "app.json", "readable_descr": "README.md", "parameters": []}`, good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].name", "must be a string, got a number"},
		{"empty category", map[string]string{"broken/manifest.json": manifestJSON(
			`{"category": "", "name": "T", "description": "app.json", "readable_descr": "README.md", "parameters": []}`, good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].category", "must not be empty"},
		{"labels not strings", map[string]string{"broken/manifest.json": manifestJSON(entryJSON(`"labels": ["a", 1]`), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].labels[1]", "must be a string, got a number"},
		{"enabled_for not an array", map[string]string{"broken/manifest.json": manifestJSON(entryJSON(`"enabled_for": "all"`), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].enabled_for", "must be an array of strings"},
		{"guest_access not a boolean", map[string]string{"broken/manifest.json": manifestJSON(entryJSON(`"guest_access": "yes"`), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].guest_access", "must be a boolean"},
		{"missing ZApp file", map[string]string{"broken/manifest.json": manifestJSON(
			`{"category": "T", "name": "T", "description": "nope.json", "readable_descr": "README.md", "parameters": []}`, good)},
			[]string{"broken-1"}, "broken/nope.json", "", "zapps[0].description"},
		{"invalid ZApp file", map[string]string{
			"broken/manifest.json": manifestJSON(
				`{"category": "T", "name": "T", "description": "bad.json", "readable_descr": "README.md", "parameters": []}`, good),
			"broken/bad.json": strings.Replace(testZApp, `"min": 1073741824`, `"min": 100`, 1)},
			[]string{"broken-1"}, "broken/bad.json", "services[0].resources.memory.min", ""},
		{"ZApp file outside the directory", map[string]string{"broken/manifest.json": manifestJSON(
			`{"category": "T", "name": "T", "description": "../good/app.json", "readable_descr": "README.md", "parameters": []}`, good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].description", `"../good/app.json" is not a file name inside the directory broken`},
		{"absolute Markdown file", map[string]string{"broken/manifest.json": manifestJSON(
			`{"category": "T", "name": "T", "description": "app.json", "readable_descr": "/etc/passwd", "parameters": []}`, good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].readable_descr", "not a file name inside"},
		{"missing Markdown", map[string]string{"broken/manifest.json": manifestJSON(
			`{"category": "T", "name": "T", "description": "app.json", "readable_descr": "NOPE.md", "parameters": []}`, good)},
			[]string{"broken-1"}, "broken/NOPE.md", "", "the Markdown description"},
		{"parameters not an array", map[string]string{"broken/manifest.json": manifestJSON(
			`{"category": "T", "name": "T", "description": "app.json", "readable_descr": "README.md", "parameters": {}}`, good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters", "must be an array"},
		{"unknown kind", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", strings.Replace(pToken, `"environment"`, `"volume"`, 1)), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters[0].kind", `unknown kind "volume"`},
		{"unknown type", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", strings.Replace(pToken, `"string"`, `"float"`, 1)), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters[0].type", `unknown type "float"`},
		{"unknown parameter key", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", strings.Replace(pToken, `"default"`, `"defualt"`, 1)), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters[0].defualt", "unknown key"},
		{"int without step", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", strings.Replace(pLevel, `"step": 2, `, ``, 1)), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters[0]", `missing key "step", required for int parameters`},
		{"step zero", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", strings.Replace(pLevel, `"step": 2`, `"step": 0`, 1)), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters[0].step", "must be at least 1"},
		{"min above max", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", strings.Replace(pLevel, `"max": 10`, `"max": -1`, 1)), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters[0].max", "must not be less than min"},
		{"min not an integer", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", strings.Replace(pLevel, `"min": 0`, `"min": 0.5`, 1)), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters[0].min", "must be an integer, got 0.5"},
		{"default out of range", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", strings.Replace(pLevel, `"default": 4`, `"default": 12`, 1)), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters[0].default", "must be an integer from 0 to 10 in steps of 2, got \"12\""},
		{"default off the step", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", strings.Replace(pLevel, `"default": 4`, `"default": 3`, 1)), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters[0].default", "in steps of 2"},
		{"default of the wrong type", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", strings.Replace(pLevel, `"default": 4`, `"default": "4"`, 1)), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters[0].default", "must be an integer or null, got a string"},
		{"string default a number", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", strings.Replace(pToken, `"default": null`, `"default": 5`, 1)), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters[0].default", "must be a string or null, got a number"},
		{"environment variable nobody defines", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", strings.Replace(pToken, `"TOKEN"`, `"PASSWORD"`, 1)), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters[0].name", `no service of the ZApp defines the environment variable "PASSWORD"`},
		{"command of no service", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", strings.Replace(pCmd, `"worker"`, `"master"`, 1)), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters[0].name", `the ZApp has no service "master"; its services are web, worker`},
		{"service_count of no service", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", strings.Replace(pCount, `"worker"`, `"master"`, 1)), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters[0].name", `no service "master"`},
		{"service_count of type string", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", `{"kind": "service_count", "name": "worker", "readable_name": "W", "description": "", "type": "string", "default": null}`), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters[0].type", "must be of type int"},
		{"service_count from 0", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", strings.Replace(pCount, `"min": 1`, `"min": 0`, 1)), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters[0].min", "at least 1"},
		{"duplicate parameter", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", pCount, pCmd, pCmd), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters[2].name", `another command parameter is already named "worker"`},
		{"defaults give an invalid ZApp", map[string]string{"broken/manifest.json": manifestJSON(
			entryJSON("", strings.Replace(pCmd, `"default": "run --fast"`, `"default": ""`, 1)), good)},
			[]string{"broken-1"}, "broken/manifest.json", "zapps[0].parameters", "the default values do not work"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := merge(entryDir("good", entryJSON("")), entryDir("broken", good), c.files)
			s, dir := newShop(t, files)
			want := append([]string{"good-0"}, c.visible...)
			got := ids(s.Entries(AdminRole))
			slices.Sort(got)
			slices.Sort(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("entries %v, want %v; problems %v", got, want, s.Problems())
			}
			errs := errorProblems(s.Problems())
			if len(errs) == 0 {
				t.Fatalf("no error reported; problems %v", s.Problems())
			}
			file := filepath.Join(dir, c.file)
			found := slices.ContainsFunc(errs, func(p Problem) bool {
				return p.File == file && p.Path == c.path && strings.Contains(p.Message, c.message)
			})
			if !found {
				t.Errorf("no error {%s %q ...%s...} in\n%v", file, c.path, c.message, errs)
			}
		})
	}
}

func TestOtherManifestVersionSkipped(t *testing.T) {
	s, dir := newShop(t, merge(entryDir("good", entryJSON("")), map[string]string{
		"v2/manifest.json": `{"version": 2, "apps": "whatever"}`,
		"plain/notes.txt":  "not a shop directory",
	}))
	if got := ids(s.Entries(AdminRole)); !reflect.DeepEqual(got, []string{"good-0"}) {
		t.Errorf("entries %v", got)
	}
	want := []Problem{{File: filepath.Join(dir, "v2/manifest.json"), Path: "version",
		Message: "skipped: this is a version 2 manifest, Zoe reads version 1 only", Severity: SeverityWarning}}
	if got := s.Problems(); !reflect.DeepEqual(got, want) {
		t.Errorf("problems %v, want %v", got, want)
	}
}

func TestVisibility(t *testing.T) {
	s, _ := newShop(t, entryDir("v",
		entryJSON(""), // 0: everyone
		entryJSON(`"enabled_for": ["user", "student"]`),               // 1
		entryJSON(`"disabled_for": ["guest"]`),                        // 2
		entryJSON(`"enabled_for": ["all"], "disabled_for": ["user"]`), // 3
		entryJSON(`"enabled_for": []`),                                // 4: admin only
	))
	if ps := s.Problems(); len(ps) > 0 {
		t.Fatalf("problems: %v", ps)
	}
	cases := []struct {
		role string
		want []string
	}{
		{AdminRole, []string{"v-0", "v-1", "v-2", "v-3", "v-4"}},
		{"user", []string{"v-0", "v-1", "v-2"}},
		{"guest", []string{"v-0", "v-3"}},
		{"student", []string{"v-0", "v-1", "v-2", "v-3"}},
		{"teacher", []string{"v-0", "v-2", "v-3"}},
	}
	for _, c := range cases {
		if got := ids(s.Entries(c.role)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s sees %v, want %v", c.role, got, c.want)
		}
		for i := range 5 {
			id := fmt.Sprintf("v-%d", i)
			if _, ok := s.Entry(id, c.role); ok != slices.Contains(c.want, id) {
				t.Errorf("Entry(%s, %s) found %v", id, c.role, ok)
			}
		}
	}
	if _, ok := s.Entry("v-9", AdminRole); ok {
		t.Error("Entry found v-9")
	}
}

// TestLegacyManifest reads a manifest of the earlier generation, from
// testdata: guest_access, command parameters, a custom logo name.
func TestLegacyManifest(t *testing.T) {
	s, err := Load("testdata/legacy", zapp.DefaultLimits(), testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	wantProblems := []Problem{{File: "testdata/legacy/tensorflow/manifest.json", Path: "zapps[3].guest_access",
		Message: "ignored: enabled_for and disabled_for decide who sees the entry", Severity: SeverityWarning}}
	if got := s.Problems(); !reflect.DeepEqual(got, wantProblems) {
		t.Fatalf("problems %v, want %v", got, wantProblems)
	}
	if got, want := ids(s.Entries("guest")), []string{"modern-0", "tensorflow-1", "tensorflow-3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("guest sees %v, want %v", got, want)
	}
	if got := ids(s.Entries("user")); len(got) != 5 {
		t.Errorf("user sees %v, want all 5", got)
	}
	batch := mustEntry(t, s, "tensorflow-1")
	if !batch.Legacy || mustEntry(t, s, "modern-0").Legacy {
		t.Error("Legacy is wrong")
	}
	abs, _ := filepath.Abs("testdata/legacy/tensorflow/tf-logo.png")
	if batch.Logo != "tf-logo.png" || batch.LogoPath() != abs {
		t.Errorf("logo %q at %q, want tf-logo.png at %s", batch.Logo, batch.LogoPath(), abs)
	}
	app, err := batch.Apply(map[string]string{"tf-jupyter": "python3 ./train.py"})
	if err != nil {
		t.Fatal(err)
	}
	if c := app.Services[0].Command; c == nil || *c != "python3 ./train.py" {
		t.Errorf("command %v", c)
	}
}

func TestApply(t *testing.T) {
	s, _ := newShop(t, merge(
		entryDir("p", entryJSON(`"labels": ["gpu", "ssd", "ssd"]`, pToken, pLevel, pCmd, pCount)),
		entryDir("q", entryJSON("", pCountD)),
	))
	e, q := mustEntry(t, s, "p-0"), mustEntry(t, s, "q-0")
	type want struct {
		token, webLevel, workerLevel, cmd string
		essential, total                  int
	}
	// Defaults: TOKEN null keeps "none", LEVEL 4, command "run --fast",
	// count null keeps 1 essential of 2.
	def := want{"none", "4", "4", "run --fast", 1, 2}
	cases := []struct {
		name   string
		entry  *Entry
		values map[string]string
		want   want
		err    []string // substrings of the error; nil for success
	}{
		{"defaults", e, nil, def, nil},
		{"environment string", e, map[string]string{"TOKEN": "s3cret"}, want{"s3cret", "4", "4", "run --fast", 1, 2}, nil},
		{"empty string", e, map[string]string{"TOKEN": ""}, want{"", "4", "4", "run --fast", 1, 2}, nil},
		{"environment int in every service", e, map[string]string{"LEVEL": "10"}, want{"none", "10", "10", "run --fast", 1, 2}, nil},
		{"int minimum", e, map[string]string{"LEVEL": "0"}, want{"none", "0", "0", "run --fast", 1, 2}, nil},
		{"command", e, map[string]string{"worker-command": "run --slow"}, want{"none", "4", "4", "run --slow", 1, 2}, nil},
		{"service_count sets both counts", q, map[string]string{"worker": "5"}, want{"none", "1", "1", "run", 5, 5}, nil},
		{"service_count default", q, nil, want{"none", "1", "1", "run", 3, 3}, nil},
		{"not an integer", e, map[string]string{"LEVEL": "four"},
			want{}, []string{`parameter "LEVEL": must be an integer from 0 to 10 in steps of 2, got "four"`}},
		{"not an integer either", e, map[string]string{"LEVEL": "4.0"}, want{}, []string{`"LEVEL"`, `got "4.0"`}},
		{"spaces", e, map[string]string{"LEVEL": " 4"}, want{}, []string{`"LEVEL"`}},
		{"above the maximum", e, map[string]string{"LEVEL": "12"}, want{}, []string{`"LEVEL": must be an integer from 0 to 10`}},
		{"below the minimum", e, map[string]string{"LEVEL": "-2"}, want{}, []string{`"LEVEL"`, `got "-2"`}},
		{"off the step", e, map[string]string{"LEVEL": "5"}, want{}, []string{`"LEVEL"`, "in steps of 2", `got "5"`}},
		{"count out of range", q, map[string]string{"worker": "9"}, want{}, []string{`parameter "worker": must be an integer from 1 to 8, got "9"`}},
		{"unknown parameter", e, map[string]string{"COLOR": "red"}, want{}, []string{`parameter "COLOR": unknown parameter; the parameters are TOKEN, LEVEL, worker-command, worker-service_count`}},
		{"name of a parameter with a key", e, map[string]string{"worker": "2"}, want{}, []string{`parameter "worker": unknown parameter`}},
		{"count with a key", e, map[string]string{"worker-service_count": "3"}, want{"none", "4", "4", "run --fast", 3, 3}, nil},
		{"every error at once", e, map[string]string{"COLOR": "red", "LEVEL": "3"}, want{}, []string{`"COLOR"`, `"LEVEL"`}},
		{"invalid result", e, map[string]string{"worker-command": ""}, want{}, []string{"the description with these values is invalid", "services[1].command"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := c.entry.App()
			app, err := c.entry.Apply(c.values)
			if !reflect.DeepEqual(c.entry.app, before) {
				t.Error("Apply changed the entry's description")
			}
			if c.err != nil {
				if err == nil {
					t.Fatal("no error")
				}
				if !errors.Is(err, ErrInvalidParameter) {
					t.Errorf("error %v does not wrap ErrInvalidParameter", err)
				}
				for _, sub := range c.err {
					if !strings.Contains(err.Error(), sub) {
						t.Errorf("error %q does not say %q", err, sub)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			web, worker := app.Services[0], app.Services[1]
			got := want{web.Environment[0].Value, web.Environment[1].Value, worker.Environment[0].Value,
				*worker.Command, worker.EssentialCount, worker.TotalCount}
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
			if web.Command != nil {
				t.Errorf("web's command became %q", *web.Command)
			}
		})
	}
	var pe *ParameterError
	if _, err := e.Apply(map[string]string{"LEVEL": "x"}); !errors.As(err, &pe) || pe.Parameter != "LEVEL" {
		t.Errorf("error %v is not a *ParameterError for LEVEL", err)
	}
	// Labels are appended once, after the service's own.
	app := e.App()
	if got := app.Services[0].Labels; !reflect.DeepEqual(got, []string{"gpu", "ssd"}) {
		t.Errorf("web labels %v", got)
	}
	if got := app.Services[1].Labels; !reflect.DeepEqual(got, []string{"gpu", "ssd"}) {
		t.Errorf("worker labels %v", got)
	}
	// App returns a copy.
	app.Services[0].Name = "changed"
	if e.App().Services[0].Name != "web" {
		t.Error("App returned the entry's own description")
	}
}

func TestMarkdownSanitized(t *testing.T) {
	md := "# Title\n\n<script>alert('x')</script>\n\n<a href=\"https://example.com/\" onclick=\"steal()\">click</a>\n\n" +
		"[js](javascript:alert(1))\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```go\nfmt.Println(\"<b>\")\n```\n"
	s, _ := newShop(t, merge(entryDir("m", entryJSON("")), map[string]string{"m/README.md": md}))
	html := mustEntry(t, s, "m-0").DescriptionHTML
	for _, bad := range []string{"<script", "alert('x')", "onclick", "steal", "javascript:"} {
		if strings.Contains(html, bad) {
			t.Errorf("the HTML holds %q:\n%s", bad, html)
		}
	}
	for _, good := range []string{"<h1>Title</h1>", "<table>", "<td>1</td>", `<code class="language-go">`, "&lt;b&gt;", ">click</a>"} {
		if !strings.Contains(html, good) {
			t.Errorf("the HTML lacks %q:\n%s", good, html)
		}
	}
}

func TestReload(t *testing.T) {
	s, dir := newShop(t, entryDir("a", entryJSON("")))
	check := func(want []string, errs int) {
		t.Helper()
		if got := ids(s.Entries(AdminRole)); !reflect.DeepEqual(got, want) {
			t.Errorf("entries %v, want %v", got, want)
		}
		if got := errorProblems(s.Problems()); len(got) != errs {
			t.Errorf("errors %v, want %d", got, errs)
		}
	}
	check([]string{"a-0"}, 0)

	writeFiles(t, dir, entryDir("b", entryJSON(""), entryJSON("")))
	check([]string{"a-0", "b-0", "b-1"}, 0)

	// Breaking one entry hides only it.
	writeFiles(t, dir, map[string]string{"b/manifest.json": manifestJSON(entryJSON(""), `{}`)})
	check([]string{"a-0", "b-0"}, 5)

	// A broken ZApp file hides the entries using it, and is reported once.
	writeFiles(t, dir, map[string]string{"b/manifest.json": manifestJSON(entryJSON(""), entryJSON("")), "b/app.json": "{"})
	check([]string{"a-0"}, 1)

	if err := os.RemoveAll(filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	check([]string{"a-0"}, 0)

	// A Markdown change is seen although the size stays the same.
	before := mustEntry(t, s, "a-0").DescriptionHTML
	writeFiles(t, dir, map[string]string{"a/README.md": "# Tost\n"})
	if after := mustEntry(t, s, "a-0").DescriptionHTML; after == before {
		t.Errorf("the description is still %q", after)
	}
}

func TestReloadAtMostOncePerInterval(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, entryDir("a", entryJSON("")))
	s, err := Load(dir, zapp.DefaultLimits(), testutil.Logger(t), WithCheckInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, entryDir("b", entryJSON("")))
	if got := ids(s.Entries(AdminRole)); !reflect.DeepEqual(got, []string{"a-0"}) {
		t.Errorf("entries %v before the interval passed", got)
	}
}

func TestConcurrentAccess(t *testing.T) {
	s, dir := newShop(t, entryDir("a", entryJSON("", pLevel)))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 30 {
				for _, e := range s.Entries("user") {
					if e.ID != "a-0" {
						continue
					}
					if _, err := e.Apply(map[string]string{"LEVEL": "2"}); err != nil {
						t.Error(err)
					}
				}
				_ = s.Problems()
				if g == 0 {
					writeFiles(t, dir, entryDir(fmt.Sprintf("d%d", i), entryJSON("")))
				}
			}
		})
	}
	wg.Wait()
	if got := len(s.Entries(AdminRole)); got != 31 {
		t.Errorf("%d entries, want 31", got)
	}
}

func TestLogo(t *testing.T) {
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"secret.png": "secret"})
	s, dir := newShop(t, merge(
		entryDir("a", entryJSON(""), entryJSON(`"logo": "../b/logo.png"`), entryJSON(`"logo": "/etc/passwd"`),
			entryJSON(`"logo": "link.png"`), entryJSON(`"logo": "none.png"`), entryJSON(`"logo": "img/l.png"`)),
		entryDir("b", entryJSON("")),
		map[string]string{"a/img/l.png": "png"},
	))
	if err := os.Symlink(filepath.Join(outside, "secret.png"), filepath.Join(dir, "a/link.png")); err != nil {
		t.Fatal(err)
	}
	// Also a directory linking outside the shop and a ZApp file linking
	// outside: refused, not followed.
	writeFiles(t, outside, entryDir("ext", entryJSON("")))
	if err := os.Symlink(filepath.Join(outside, "ext"), filepath.Join(dir, "ext")); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"c/manifest.json": manifestJSON(entryJSON("")), "c/README.md": "x", "c/logo.png": "png"})
	if err := os.Symlink(filepath.Join(outside, "ext/app.json"), filepath.Join(dir, "c/app.json")); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	wantLogo := map[string]string{
		"a-0": filepath.Join(abs, "a/logo.png"), "a-1": "", "a-2": "", "a-3": "", "a-4": "",
		"a-5": filepath.Join(abs, "a/img/l.png"), "b-0": filepath.Join(abs, "b/logo.png"),
	}
	got := map[string]string{}
	for _, e := range s.Entries(AdminRole) {
		got[e.ID] = e.LogoPath()
	}
	if !reflect.DeepEqual(got, wantLogo) {
		t.Errorf("logos %v, want %v", got, wantLogo)
	}
	var warned []string
	var errs []string
	for _, p := range s.Problems() {
		rel, _ := filepath.Rel(dir, p.File)
		if p.Severity == SeverityWarning {
			warned = append(warned, rel+" "+p.Path)
		} else {
			errs = append(errs, rel)
		}
	}
	wantWarned := []string{"a/link.png ", "a/manifest.json zapps[1].logo", "a/manifest.json zapps[2].logo", "a/none.png "}
	slices.Sort(warned)
	if !reflect.DeepEqual(warned, wantWarned) {
		t.Errorf("warnings about %v, want %v", warned, wantWarned)
	}
	if want := []string{"c/app.json", "ext"}; !reflect.DeepEqual(errs, want) {
		t.Errorf("errors about %v, want %v; problems %v", errs, want, s.Problems())
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope"), zapp.DefaultLimits(), nil); err == nil {
		t.Error("Load of a missing directory succeeded")
	}
	file := filepath.Join(t.TempDir(), "f")
	writeFiles(t, filepath.Dir(file), map[string]string{"f": ""})
	if _, err := Load(file, zapp.DefaultLimits(), nil); err == nil {
		t.Error("Load of a file succeeded")
	}
	// A directory that goes away leaves an empty shop with a problem.
	dir := t.TempDir()
	writeFiles(t, dir, entryDir("a", entryJSON("")))
	s, err := Load(dir, zapp.DefaultLimits(), nil, WithCheckInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if got := s.Entries(AdminRole); len(got) != 0 {
		t.Errorf("entries %v", ids(got))
	}
	if ps := s.Problems(); len(ps) != 1 || ps[0].File != dir {
		t.Errorf("problems %v", ps)
	}
}

func TestIntegerSpelledInteger(t *testing.T) {
	s, dir := newShop(t, entryDir("a", entryJSON("", strings.Replace(pLevel, `"int"`, `"integer"`, 1))))
	want := []Problem{{File: filepath.Join(dir, "a/manifest.json"), Path: "zapps[0].parameters[0].type",
		Message: `"integer" is spelled "int"; read as "int"`, Severity: SeverityWarning}}
	if got := s.Problems(); !reflect.DeepEqual(got, want) {
		t.Errorf("problems %v, want %v", got, want)
	}
	if p := mustEntry(t, s, "a-0").Parameters[0]; p.Type != TypeInt || p.Step != 2 {
		t.Errorf("parameter %+v", p)
	}
}

func TestSharedZAppFileKeepsLabelsApart(t *testing.T) {
	s, _ := newShop(t, entryDir("a", entryJSON(`"labels": ["ssd"]`), entryJSON("")))
	if got := mustEntry(t, s, "a-0").App().Services[1].Labels; !reflect.DeepEqual(got, []string{"ssd"}) {
		t.Errorf("a-0 worker labels %v", got)
	}
	if got := mustEntry(t, s, "a-1").App().Services[1].Labels; len(got) != 0 {
		t.Errorf("a-1 worker labels %v, want none", got)
	}
}

// FuzzManifest reads arbitrary manifests: problems, never a panic, and no
// entry shown despite an error about it.
func FuzzManifest(f *testing.F) {
	f.Add(manifestJSON(entryJSON("", pToken, pLevel, pCmd, pCount)))
	f.Add(manifestJSON(entryJSON(`"guest_access": true, "logo": "x.png"`, pCountD), `{}`))
	f.Add(`{"version": 1, "zapps": [{"category": 1e400, "parameters": [{"type": "int", "min": -9223372036854775808, "max": 9223372036854775807, "step": 3, "default": 9223372036854775807}]}]}`)
	f.Add(`{"version": 2}`)
	f.Add(`{"version": 1, "zapps": [`)
	f.Fuzz(func(t *testing.T, manifest string) {
		dir := t.TempDir()
		writeFiles(t, dir, merge(entryDir("a"), map[string]string{"a/manifest.json": manifest}))
		s, err := Load(dir, zapp.DefaultLimits(), nil)
		if err != nil {
			t.Fatal(err)
		}
		errs := errorProblems(s.Problems())
		for _, e := range s.Entries(AdminRole) {
			prefix := fmt.Sprintf("zapps[%d]", e.Index)
			for _, p := range errs {
				if p.Path == prefix || strings.HasPrefix(p.Path, prefix+".") || p.Path == "" && strings.HasSuffix(p.File, "manifest.json") {
					t.Errorf("entry %s shown despite %v", e.ID, p)
				}
			}
			if _, err := e.Apply(nil); err != nil {
				t.Errorf("%s: defaults: %v", e.ID, err)
			}
		}
	})
}
