package shop

import (
	"cmp"
	"fmt"
	"slices"
)

// Severity tells whether a problem hides something (error) or is only
// worth fixing (warning).
type Severity string

// Severities of a Problem.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Problem is one mistake found in the shop directory.
type Problem struct {
	// File is the path of the file at fault: the shop directory as given to
	// Load joined with the file's path inside it.
	File string `json:"file"`
	// Path is the JSON path inside File, e.g. zapps[1].parameters[0].min, or
	// "" when the problem is about the whole file.
	Path     string   `json:"path,omitempty"`
	Message  string   `json:"message"`
	Severity Severity `json:"severity"`
}

func (p Problem) String() string {
	if p.Path == "" {
		return fmt.Sprintf("%s: %s: %s", p.Severity, p.File, p.Message)
	}
	return fmt.Sprintf("%s: %s: %s: %s", p.Severity, p.File, p.Path, p.Message)
}

// problems collects the problems of one scan.
type problems []Problem

func (ps *problems) errorf(file, path, format string, args ...any) {
	*ps = append(*ps, Problem{File: file, Path: path, Message: fmt.Sprintf(format, args...), Severity: SeverityError})
}

func (ps *problems) warnf(file, path, format string, args ...any) {
	*ps = append(*ps, Problem{File: file, Path: path, Message: fmt.Sprintf(format, args...), Severity: SeverityWarning})
}

// errors counts the error-severity problems, so that a caller can tell
// whether a step added any.
func (ps problems) errors() int {
	n := 0
	for _, p := range ps {
		if p.Severity == SeverityError {
			n++
		}
	}
	return n
}

// sortProblems orders problems by file, keeping the order in which they
// were found within a file (which follows the file's own order).
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int { return cmp.Compare(a.File, b.File) })
}
