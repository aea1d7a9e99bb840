package shop

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/zoe-project/zoe/core/zapp"
)

// Kind says which part of the ZApp description a parameter sets.
type Kind string

// Parameter kinds, spelled as in the original's manifests.
const (
	// KindEnvironment sets the value of the environment variable Name in
	// every service that defines it.
	KindEnvironment Kind = "environment"
	// KindCommand sets the command of the service Name.
	KindCommand Kind = "command"
	// KindServiceCount sets both total_count and essential_count of the
	// service Name, as the original did.
	KindServiceCount Kind = "service_count"
)

// Type is the type of a parameter's value.
type Type string

// Parameter types, spelled as in the original's manifests.
const (
	TypeString Type = "string"
	// TypeInt values are decimal integers in [Min, Max] on Min + k×Step.
	TypeInt Type = "int"
)

// Parameter is a value of the ZApp description a user may set when starting
// the entry.
type Parameter struct {
	Kind Kind `json:"kind"`
	// Name is the environment variable (KindEnvironment) or the service
	// (KindCommand, KindServiceCount).
	Name string `json:"name"`
	// Key is what Apply's values are keyed by: Name, or <name>-<kind> (the
	// original's form field) when another parameter of the entry has the
	// same name, e.g. the command and the count of one service.
	Key          string `json:"key"`
	ReadableName string `json:"readable_name"`
	Description  string `json:"description"`
	Type         Type   `json:"type"`
	// Min, Max and Step bound TypeInt values; zero for TypeString.
	Min  int64 `json:"min,omitempty"`
	Max  int64 `json:"max,omitempty"`
	Step int64 `json:"step,omitempty"`
	// Default is the value used when none is given, in its text form; nil
	// (JSON null) keeps what the ZApp description says.
	Default *string `json:"default"`
}

// Range describes the values a TypeInt parameter accepts, for messages.
func (p *Parameter) Range() string {
	if p.Type != TypeInt {
		return ""
	}
	if p.Step == 1 {
		return fmt.Sprintf("an integer from %d to %d", p.Min, p.Max)
	}
	return fmt.Sprintf("an integer from %d to %d in steps of %d", p.Min, p.Max, p.Step)
}

// check parses value for p: for TypeInt it must be in range and on the step.
func (p *Parameter) check(value string) (int64, error) {
	if p.Type != TypeInt {
		return 0, nil
	}
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil || n < p.Min || n > p.Max || (n-p.Min)%p.Step != 0 {
		return 0, fmt.Errorf("must be %s, got %q", p.Range(), value)
	}
	return n, nil
}

// ErrInvalidParameter is wrapped by every error of Apply: the values given
// by the user are wrong (an HTTP 400), the entry itself is fine.
var ErrInvalidParameter = errors.New("invalid parameter value")

// ParameterError is a wrong value for one parameter, or a parameter the
// entry does not have.
type ParameterError struct {
	Parameter string
	Message   string
}

func (e *ParameterError) Error() string {
	return fmt.Sprintf("parameter %q: %s", e.Parameter, e.Message)
}

// Unwrap makes errors.Is(err, ErrInvalidParameter) hold.
func (e *ParameterError) Unwrap() error { return ErrInvalidParameter }

// Apply returns a new, validated ZApp description with the values set: keys
// are the parameters' Key (usually their name); a parameter without a value takes its default, and a
// null default keeps the description's own value. The entry's description is
// never changed. Every wrong value is reported, each as a *ParameterError;
// all errors wrap ErrInvalidParameter.
func (e *Entry) Apply(values map[string]string) (*zapp.App, error) {
	return e.apply(values, true)
}

// apply is Apply; the result is validated only when validate is set.
func (e *Entry) apply(values map[string]string, validate bool) (*zapp.App, error) {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(values)) {
		if !slices.ContainsFunc(e.Parameters, func(p Parameter) bool { return p.Key == name }) {
			errs = append(errs, &ParameterError{Parameter: name, Message: "unknown parameter; " + e.knownParameters()})
		}
	}
	app := e.app.Clone()
	for i := range e.Parameters {
		p := &e.Parameters[i]
		v, ok := values[p.Key]
		if !ok {
			if p.Default == nil {
				continue
			}
			v = *p.Default
		}
		n, err := p.check(v)
		if err != nil {
			errs = append(errs, &ParameterError{Parameter: p.Key, Message: err.Error()})
			continue
		}
		setParameter(app, p, v, n)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if !validate {
		return app, nil
	}
	if probs := zapp.Validate(app, e.limits); len(probs) > 0 {
		return nil, fmt.Errorf("%w: the description with these values is invalid: %w", ErrInvalidParameter, probs)
	}
	return app, nil
}

func (e *Entry) knownParameters() string {
	if len(e.Parameters) == 0 {
		return "this entry has no parameters"
	}
	names := make([]string, len(e.Parameters))
	for i, p := range e.Parameters {
		names[i] = p.Key
	}
	return "the parameters are " + strings.Join(names, ", ")
}

// setParameter writes one checked value; n is the value of a TypeInt.
func setParameter(app *zapp.App, p *Parameter, v string, n int64) {
	for i := range app.Services {
		s := &app.Services[i]
		switch p.Kind {
		case KindEnvironment:
			for j := range s.Environment {
				if s.Environment[j].Name == p.Name {
					s.Environment[j].Value = v
				}
			}
		case KindCommand:
			if s.Name == p.Name {
				s.Command = &v
			}
		case KindServiceCount:
			if s.Name == p.Name {
				// Checked against Max at load, so it fits an int.
				s.TotalCount, s.EssentialCount = int(n), int(n)
			}
		}
	}
}

// intKeys are the keys only int parameters have.
func intKeys() []string { return []string{"min", "max", "step"} }

// parseParameters decodes and checks the parameters of one entry against
// its ZApp description (app is nil when that did not load).
func (w walker) parseParameters(path string, v any, app *zapp.App) ([]Parameter, bool) {
	arr, ok := v.([]any)
	if !ok {
		w.ps.errorf(w.file, path, "must be an array, got %s", jsonType(v))
		return nil, false
	}
	good := true
	params := make([]Parameter, 0, len(arr))
	for i, item := range arr {
		p, ok := w.parameter(index(path, i), item, app)
		if !ok {
			good = false
			continue
		}
		if slices.ContainsFunc(params, func(q Parameter) bool { return q.Name == p.Name && q.Kind == p.Kind }) {
			w.ps.errorf(w.file, join(index(path, i), "name"), "another %s parameter is already named %q", p.Kind, p.Name)
			good = false
			continue
		}
		params = append(params, p)
	}
	for i := range params {
		p := &params[i]
		p.Key = p.Name
		if slices.ContainsFunc(params, func(q Parameter) bool { return q.Name == p.Name && q.Kind != p.Kind }) {
			p.Key = p.Name + "-" + string(p.Kind)
		}
	}
	return params, good
}

func (w walker) parameter(path string, v any, app *zapp.App) (Parameter, bool) {
	m, good := w.object(path, v, []string{"kind", "name", "readable_name", "description", "type", "default"}, intKeys())
	if m == nil {
		return Parameter{}, false
	}
	var p Parameter
	kind, ok := w.str(path, m, "kind")
	good = good && ok
	p.Kind = Kind(kind)
	if ok && !slices.Contains([]Kind{KindEnvironment, KindCommand, KindServiceCount}, p.Kind) {
		w.ps.errorf(w.file, join(path, "kind"), "unknown kind %q; the kinds are environment, command and service_count", kind)
		good = false
	}
	p.Name, ok = w.str(path, m, "name")
	good = good && ok
	p.ReadableName, ok = w.anyStr(path, m, "readable_name")
	good = good && ok
	p.Description, ok = w.anyStr(path, m, "description")
	good = good && ok
	typ, ok := w.str(path, m, "type")
	good = good && ok
	p.Type = Type(typ)
	switch {
	case !ok:
	case typ == "integer":
		// The original's documentation spelled it so; its code only knew "int".
		w.ps.warnf(w.file, join(path, "type"), `"integer" is spelled "int"; read as "int"`)
		p.Type = TypeInt
	case p.Type != TypeString && p.Type != TypeInt:
		w.ps.errorf(w.file, join(path, "type"), "unknown type %q; the types are string and int", typ)
		good = false
	}
	boundsOK := false
	if p.Type == TypeInt {
		boundsOK = w.intBounds(path, m, &p)
		good = good && boundsOK
	} else if p.Type == TypeString {
		for _, k := range intKeys() {
			if _, ok := m[k]; ok {
				w.ps.warnf(w.file, join(path, k), "ignored: only int parameters have %s", k)
			}
		}
	}
	if p.Kind == KindServiceCount && p.Type == TypeString {
		w.ps.errorf(w.file, join(path, "type"), "a service_count parameter must be of type int")
		good = false
	}
	if d, ok := m["default"]; ok && (p.Type == TypeString || p.Type == TypeInt) {
		good = w.paramDefault(join(path, "default"), d, &p, boundsOK) && good
	}
	if good && app != nil {
		good = w.paramTarget(path, &p, app)
	}
	return p, good
}

func (w walker) intBounds(path string, m map[string]any, p *Parameter) bool {
	good := true
	for _, b := range []struct {
		key string
		dst *int64
	}{{"min", &p.Min}, {"max", &p.Max}, {"step", &p.Step}} {
		v, ok := m[b.key]
		if !ok {
			w.ps.errorf(w.file, path, "missing key %q, required for int parameters", b.key)
			good = false
			continue
		}
		n, ok := w.integer(join(path, b.key), v)
		*b.dst = n
		good = good && ok
	}
	if !good {
		return false
	}
	switch {
	case p.Step < 1:
		w.ps.errorf(w.file, join(path, "step"), "must be at least 1, got %d", p.Step)
		return false
	case p.Min > p.Max:
		w.ps.errorf(w.file, join(path, "max"), "must not be less than min (%d), got %d", p.Min, p.Max)
		return false
	case p.Kind == KindServiceCount && p.Min < 1:
		w.ps.errorf(w.file, join(path, "min"), "a service count must be at least 1, got %d", p.Min)
		return false
	case p.Kind == KindServiceCount && p.Max > 1<<20:
		w.ps.errorf(w.file, join(path, "max"), "a service count must be at most %d, got %d", 1<<20, p.Max)
		return false
	}
	return true
}

// paramDefault reads the default; it is checked against the bounds only
// when those are sound (boundsOK), not to report one mistake twice.
func (w walker) paramDefault(path string, v any, p *Parameter, boundsOK bool) bool {
	switch d := v.(type) {
	case nil:
		return true
	case string:
		if p.Type == TypeString {
			p.Default = &d
			return true
		}
	case json.Number:
		if p.Type == TypeInt {
			n, ok := w.integer(path, d)
			if !ok {
				return false
			}
			s := strconv.FormatInt(n, 10)
			p.Default = &s
			if !boundsOK {
				return true
			}
			if _, err := p.check(s); err != nil {
				w.ps.errorf(w.file, path, "%v", err)
				return false
			}
			return true
		}
	}
	want := "a string"
	if p.Type == TypeInt {
		want = "an integer"
	}
	w.ps.errorf(w.file, path, "must be %s or null, got %s", want, jsonType(v))
	return false
}

// paramTarget checks that the variable or service a parameter names exists
// in the ZApp description.
func (w walker) paramTarget(path string, p *Parameter, app *zapp.App) bool {
	var found bool
	var names []string
	for _, s := range app.Services {
		names = append(names, s.Name)
		switch p.Kind {
		case KindEnvironment:
			found = found || slices.ContainsFunc(s.Environment, func(e zapp.EnvVar) bool { return e.Name == p.Name })
		case KindCommand, KindServiceCount:
			found = found || s.Name == p.Name
		}
	}
	if found {
		return true
	}
	if p.Kind == KindEnvironment {
		w.ps.errorf(w.file, join(path, "name"), "no service of the ZApp defines the environment variable %q", p.Name)
	} else {
		w.ps.errorf(w.file, join(path, "name"), "the ZApp has no service %q; its services are %s", p.Name, strings.Join(names, ", "))
	}
	return false
}
