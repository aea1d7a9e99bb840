package shop

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/zoe-project/zoe/core/zapp"
)

// Resources are what a user asks for one service of an entry instead of
// what its description says; nil leaves a value as it is.
type Resources struct {
	// Memory is the memory each instance reserves, in bytes
	// (resources.memory.min).
	Memory *int64
	// Cores are the cores each instance reserves (resources.cores.min).
	Cores *float64
}

// Fields of a ResourceError.
const (
	FieldMemory = "memory"
	FieldCores  = "cores"
)

// ResourceError is a wrong value for a service's memory or cores, or a
// service the entry does not have (Field "").
type ResourceError struct {
	Service string
	Field   string // FieldMemory, FieldCores, or "" for the service itself
	Message string
}

func (e *ResourceError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("resources of service %q: %s", e.Service, e.Message)
	}
	return fmt.Sprintf("%s of service %q: %s", e.Field, e.Service, e.Message)
}

// Unwrap makes errors.Is(err, ErrInvalidParameter) hold: the user's values
// are wrong, not the entry.
func (e *ResourceError) Unwrap() error { return ErrInvalidParameter }

// maxUnknownServices bounds the unknown services reported for one call.
const maxUnknownServices = 10

// ApplyWith is Apply with the resources of services set after the
// parameters, keyed by service name. A value sets what each instance
// reserves (min); the limit (max) is raised to it when the description's
// is lower, so that a reservation is never above its limit, and kept
// otherwise. The result is validated as any ZApp description (bounds,
// units, the administrative limits): a problem with a value given here is
// a *ResourceError at that service and field, others are reported as
// Apply does.
func (e *Entry) ApplyWith(values map[string]string, res map[string]Resources) (*zapp.App, error) {
	var errs []error
	unknown := 0
	for _, name := range slices.Sorted(maps.Keys(res)) {
		r := res[name]
		if !slices.ContainsFunc(e.app.Services, func(s zapp.Service) bool { return s.Name == name }) {
			if unknown++; unknown <= maxUnknownServices {
				errs = append(errs, &ResourceError{Service: name, Message: "unknown service; " + e.knownServices()})
			}
			continue
		}
		if r.Memory == nil && r.Cores == nil {
			errs = append(errs, &ResourceError{Service: name, Message: "give memory, cores or both"})
		}
	}
	if unknown > maxUnknownServices {
		errs = append(errs, &ResourceError{Service: "…", Message: fmt.Sprintf("and %d more unknown services", unknown-maxUnknownServices)})
	}
	app, err := e.apply(values, false)
	if err != nil {
		// Each wrong parameter stays one error of the list.
		perrs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			perrs = j.Unwrap()
		}
		errs = append(perrs, errs...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	SetResources(app, res)
	probs := zapp.Validate(app, e.limits)
	if len(probs) == 0 {
		return app, nil
	}
	rerrs, rest := ResourceProblems(app, res, probs)
	if len(rest) > 0 {
		rerrs = append(rerrs, fmt.Errorf("%w: the description with these values is invalid: %w", ErrInvalidParameter, rest))
	}
	return nil, errors.Join(rerrs...)
}

// SetResources writes res into app's services of those names (see
// ApplyWith); names app lacks are left out.
func SetResources(app *zapp.App, res map[string]Resources) {
	for i := range app.Services {
		r, ok := res[app.Services[i].Name]
		if !ok {
			continue
		}
		rs := &app.Services[i].Resources
		if r.Memory != nil {
			m := *r.Memory
			rs.Memory.Min = &m
			if rs.Memory.Max != nil && *rs.Memory.Max < m {
				rs.Memory.Max = &m
			}
		}
		if r.Cores != nil {
			c := *r.Cores
			rs.Cores.Min = &c
			if rs.Cores.Max != nil && *rs.Cores.Max < c {
				rs.Cores.Max = &c
			}
		}
	}
}

// ResourceProblems sorts the problems of a description app, made with
// SetResources(app, res), into those about a value of res (one
// *ResourceError per service and field) and the rest. A problem at
// services[i].resources.memory.* or .cores.* is about the value when res
// sets that field of service i; the submission's checks (the nodes'
// capacity) report at these paths too.
func ResourceProblems(app *zapp.App, res map[string]Resources, probs zapp.Problems) ([]error, zapp.Problems) {
	var (
		errs []error
		rest zapp.Problems
		seen = map[[2]string]bool{}
	)
	for _, p := range probs {
		name, field, ok := resourcePath(app, p.Path)
		r, set := res[name]
		if ok && set && (field == FieldMemory && r.Memory != nil || field == FieldCores && r.Cores != nil) {
			if k := [2]string{name, field}; !seen[k] {
				seen[k] = true
				errs = append(errs, &ResourceError{Service: name, Field: field, Message: p.Message})
			}
			continue
		}
		rest = append(rest, p)
	}
	return errs, rest
}

// resourcePath reads services[i].resources.<memory|cores>[.min|.max]: the
// service's name and the field.
func resourcePath(app *zapp.App, path string) (name, field string, ok bool) {
	rest, found := strings.CutPrefix(path, "services[")
	if !found {
		return "", "", false
	}
	idx, rest, found := strings.Cut(rest, "].resources.")
	if !found {
		return "", "", false
	}
	i, err := strconv.Atoi(idx)
	if err != nil || i < 0 || i >= len(app.Services) {
		return "", "", false
	}
	field, _, _ = strings.Cut(rest, ".")
	if field != FieldMemory && field != FieldCores {
		return "", "", false
	}
	return app.Services[i].Name, field, true
}

func (e *Entry) knownServices() string {
	names := make([]string, len(e.app.Services))
	for i, s := range e.app.Services {
		names[i] = s.Name
	}
	return "the services are " + strings.Join(names, ", ")
}
