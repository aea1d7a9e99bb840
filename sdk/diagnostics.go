package sdk

import "strings"

// Severity of a diagnostic.
type Severity int

const (
	SeverityError Severity = iota + 1
	SeverityWarning
)

// Diagnostic is one problem with a plugin's configuration.
type Diagnostic struct {
	Severity Severity
	Summary  string
	Detail   string
	// Path names the attribute the problem is about, e.g. {"users_file"} or
	// {"host", "local", "address"}; empty for the block as a whole.
	Path []string
}

// Diagnostics is returned by Configure for problems with the configuration.
// It is an error only when it holds at least one error.
type Diagnostics []Diagnostic

// AttributeError is a diagnostic of severity error about one attribute.
func AttributeError(attribute, summary, detail string) Diagnostic {
	return Diagnostic{Severity: SeverityError, Summary: summary, Detail: detail, Path: []string{attribute}}
}

// HasErrors tells whether any diagnostic is an error.
func (d Diagnostics) HasErrors() bool {
	for _, x := range d {
		if x.Severity != SeverityWarning {
			return true
		}
	}
	return false
}

// Err returns d as an error when it holds errors, nil otherwise, so a
// Configure method can end with `return diags.Err()`.
func (d Diagnostics) Err() error {
	if !d.HasErrors() {
		return nil
	}
	return d
}

func (d Diagnostics) Error() string {
	var parts []string
	for _, x := range d {
		s := x.Summary
		if len(x.Path) > 0 {
			s = strings.Join(x.Path, ".") + ": " + s
		}
		if x.Detail != "" {
			s += ": " + x.Detail
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
