package shop

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/core/zapp"
)

func TestApplyWithResources(t *testing.T) {
	files := entryDir("r", entryJSON("", pLevel, pCount))
	// worker has limits: 2 GiB and 2 cores.
	files["r/app.json"] = strings.Replace(testZApp,
		`"resources": {"memory": {"min": 1073741824, "max": null}, "cores": {"min": 1, "max": null}},
     "ports": [], "environment": [["LEVEL", "1"]]`,
		`"resources": {"memory": {"min": 1073741824, "max": 2147483648}, "cores": {"min": 1, "max": 2}},
     "ports": [], "environment": [["LEVEL", "1"]]`, 1)
	s, _ := newShop(t, files)
	e := mustEntry(t, s, "r-0")
	if m := e.App().Services[1].Resources.Memory.Max; m == nil || *m != 2<<30 {
		t.Fatalf("the test's worker has no memory limit: %v", m)
	}
	mem := func(n int64) *int64 { return &n }
	cores := func(f float64) *float64 { return &f }
	type got struct {
		memMin, memMax     int64 // -1: null
		coresMin, coresMax float64
	}
	val := func(p *int64) int64 {
		if p == nil {
			return -1
		}
		return *p
	}
	fval := func(p *float64) float64 {
		if p == nil {
			return -1
		}
		return *p
	}
	cases := []struct {
		name   string
		values map[string]string
		res    map[string]Resources
		web    got
		worker got
		errs   []ResourceError // nil: success
		other  []string        // other errors' text
	}{
		{"none", nil, nil, got{1 << 30, -1, 1, -1}, got{1 << 30, 2 << 30, 1, 2}, nil, nil},
		{"memory of one service", nil, map[string]Resources{"web": {Memory: mem(3 << 30)}},
			got{3 << 30, -1, 1, -1}, got{1 << 30, 2 << 30, 1, 2}, nil, nil},
		{"within the limit keeps it", nil, map[string]Resources{"worker": {Memory: mem(1536 << 20), Cores: cores(1.5)}},
			got{1 << 30, -1, 1, -1}, got{1536 << 20, 2 << 30, 1.5, 2}, nil, nil},
		{"above the limit raises it", nil, map[string]Resources{"worker": {Memory: mem(4 << 30), Cores: cores(3)}},
			got{1 << 30, -1, 1, -1}, got{4 << 30, 4 << 30, 3, 3}, nil, nil},
		{"with parameters", map[string]string{"worker": "3"}, map[string]Resources{"worker": {Cores: cores(0.5)}},
			got{1 << 30, -1, 1, -1}, got{1 << 30, 2 << 30, 0.5, 2}, nil, nil},
		{"too little memory", nil, map[string]Resources{"worker": {Memory: mem(1)}}, got{}, got{},
			[]ResourceError{{"worker", FieldMemory, "must be at least 1024 bytes, got 1"}}, nil},
		{"above the administrative limits", nil, map[string]Resources{"web": {Memory: mem(65 << 30), Cores: cores(17)}}, got{}, got{},
			[]ResourceError{{"web", FieldMemory, "must be at most 64 GiB (the administrative limit max_service_memory), got 65 GiB"},
				{"web", FieldCores, "must be at most 16 (the administrative limit max_service_cores), got 17"}}, nil},
		{"raised limit above the administrative one is said once", nil, map[string]Resources{"worker": {Memory: mem(65 << 30)}}, got{}, got{},
			[]ResourceError{{"worker", FieldMemory, "must be at most 64 GiB (the administrative limit max_service_memory), got 65 GiB"}}, nil},
		{"no cores", nil, map[string]Resources{"worker": {Cores: cores(0)}}, got{}, got{},
			[]ResourceError{{"worker", FieldCores, "must be greater than 0, got 0"}}, nil},
		{"negative cores", nil, map[string]Resources{"worker": {Cores: cores(-1)}}, got{}, got{},
			[]ResourceError{{"worker", FieldCores, "must be greater than 0, got -1"}}, nil},
		{"unknown service", nil, map[string]Resources{"db": {Cores: cores(1)}}, got{}, got{},
			[]ResourceError{{"db", "", "unknown service; the services are web, worker"}}, nil},
		{"nothing asked", nil, map[string]Resources{"web": {}}, got{}, got{},
			[]ResourceError{{"web", "", "give memory, cores or both"}}, nil},
		{"every error at once", map[string]string{"LEVEL": "3"}, map[string]Resources{"db": {Cores: cores(1)}, "web": {Memory: mem(10)}}, got{}, got{},
			[]ResourceError{{"db", "", "unknown service; the services are web, worker"}}, []string{`parameter "LEVEL"`}},
		{"memory checked once the rest is right", nil, map[string]Resources{"web": {Memory: mem(10)}}, got{}, got{},
			[]ResourceError{{"web", FieldMemory, "must be at least 1024 bytes, got 10"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.App()
			app, err := e.ApplyWith(c.values, c.res)
			if !reflect.DeepEqual(e.app, before) {
				t.Error("ApplyWith changed the entry's description")
			}
			if c.errs == nil && c.other == nil {
				if err != nil {
					t.Fatal(err)
				}
				for i, w := range []got{c.web, c.worker} {
					r := app.Services[i].Resources
					g := got{val(r.Memory.Min), val(r.Memory.Max), fval(r.Cores.Min), fval(r.Cores.Max)}
					if g != w {
						t.Errorf("%s: %+v, want %+v", app.Services[i].Name, g, w)
					}
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidParameter) {
				t.Fatalf("error %v, want one wrapping ErrInvalidParameter", err)
			}
			var gotErrs []ResourceError
			var others []string
			for _, x := range err.(interface{ Unwrap() []error }).Unwrap() {
				var re *ResourceError
				if errors.As(x, &re) {
					gotErrs = append(gotErrs, *re)
				} else {
					others = append(others, x.Error())
				}
			}
			if !reflect.DeepEqual(gotErrs, c.errs) {
				t.Errorf("resource errors %+v, want %+v", gotErrs, c.errs)
			}
			if len(others) != len(c.other) {
				t.Fatalf("other errors %q, want %q", others, c.other)
			}
			for i, o := range c.other {
				if !strings.Contains(others[i], o) {
					t.Errorf("other error %q does not say %q", others[i], o)
				}
			}
		})
	}
}

// TestResourceProblems: problems a later check finds (the nodes'
// capacity) are placed at a value only when it was given.
func TestResourceProblems(t *testing.T) {
	app := &zapp.App{Services: []zapp.Service{{Name: "web"}, {Name: "worker"}}}
	one := 1.0
	res := map[string]Resources{"worker": {Cores: &one}}
	probs := zapp.Problems{
		{Path: "services[1].resources.cores.min", Message: "more than any node has"},
		{Path: "services[1].resources.memory.min", Message: "memory not given"},
		{Path: "services[0].resources.cores.min", Message: "web not given"},
		{Path: "services[1].labels", Message: "labels"},
		{Path: "services[7].resources.cores.min", Message: "no such index"},
	}
	errs, rest := ResourceProblems(app, res, probs)
	want := []error{&ResourceError{Service: "worker", Field: FieldCores, Message: "more than any node has"}}
	if !reflect.DeepEqual(errs, want) {
		t.Errorf("errors %v, want %v", errs, want)
	}
	if !reflect.DeepEqual(rest, probs[1:]) {
		t.Errorf("rest %v, want %v", rest, probs[1:])
	}
}
