package zapp

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Limits are the administrative limits on what one service may ask for. A
// limit of zero or less means none.
type Limits struct {
	MaxCores  float64
	MaxMemory int64 // bytes
}

// DefaultLimits are the original Zoe's defaults: 16 cores and 64 GiB.
func DefaultLimits() Limits {
	return Limits{MaxCores: 16, MaxMemory: 64 << 30}
}

// MaxInstances bounds the service instances one ZApp creates, so that a
// short description cannot make Expand build millions of them.
const MaxInstances = 1000

// MaxStored bounds what one ZApp's instances take stored: each instance
// is a copy of its service's description (environment, labels, volumes,
// command), so a 4 MiB description of one service of 1000 instances would
// otherwise make the daemon encode and store 4 GB at submission.
const MaxStored = 16 << 20

// Problem is one mistake in a description.
type Problem struct {
	// Path is where the mistake is, e.g. services[2].resources.memory.min;
	// "" for the whole document. Keys that are not identifiers are written
	// ["like this"].
	Path    string
	Message string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Problems are all the mistakes found in a description, in document order.
type Problems []Problem

// Error lists the problems, one "path: message" per line.
func (ps Problems) Error() string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// fieldRank is the position of a known key in the format's documentation;
// the keys of each object appear in it in their relative order, so one
// ranking orders the siblings of every object.
func fieldRank(key string) (int, bool) {
	switch key {
	case "name":
		return 0, true
	case "version":
		return 1, true
	case "will_end":
		return 2, true
	case "size":
		return 3, true
	case "services":
		return 4, true
	case "image":
		return 5, true
	case "monitor":
		return 6, true
	case "startup_order":
		return 7, true
	case "essential_count":
		return 8, true
	case "total_count":
		return 9, true
	case "replicas":
		return 10, true
	case "resources":
		return 11, true
	case "memory":
		return 12, true
	case "cores":
		return 13, true
	case "min":
		return 14, true
	case "max":
		return 15, true
	case "shm":
		return 16, true
	case "ports":
		return 17, true
	case "port_number":
		return 18, true
	case "protocol":
		return 19, true
	case "url_template":
		return 20, true
	case "proxy":
		return 21, true
	case "environment":
		return 22, true
	case "volumes":
		return 23, true
	case "path":
		return 24, true
	case "read_only":
		return 25, true
	case "command":
		return 26, true
	case "work_dir":
		return 27, true
	case "labels":
		return 28, true
	case "network":
		return 29, true
	}
	return 0, false
}

// comparePaths orders paths as the fields appear in a description written
// in the documented order: a parent before its children, elements by
// index, keys by their rank, unknown keys last.
func comparePaths(a, b string) int {
	sa, sb := splitPath(a), splitPath(b)
	for i := 0; i < len(sa) && i < len(sb); i++ {
		x, y := sa[i], sb[i]
		if c := cmp.Compare(x.index, y.index); c != 0 {
			return c
		}
		if x.key == y.key {
			continue
		}
		rx, okx := fieldRank(x.key)
		ry, oky := fieldRank(y.key)
		switch {
		case okx && oky:
			return cmp.Compare(rx, ry)
		case okx != oky:
			if okx {
				return -1
			}
			return 1
		}
		return strings.Compare(x.key, y.key)
	}
	return cmp.Compare(len(sa), len(sb))
}

// sortCanonical sorts problems found on a typed App, which has no document.
func sortCanonical(ps Problems) {
	slices.SortStableFunc(ps, func(a, b Problem) int { return comparePaths(a.Path, b.Path) })
}

// sortByDocument sorts problems by where they are in the document; a
// missing key sorts at its object, ties in the documented order.
func sortByDocument(ps Problems, root *node) {
	offs := make(map[string]int, len(ps))
	for _, p := range ps {
		if _, ok := offs[p.Path]; !ok {
			offs[p.Path] = locate(root, p.Path)
		}
	}
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if c := cmp.Compare(offs[a.Path], offs[b.Path]); c != 0 {
			return c
		}
		return comparePaths(a.Path, b.Path)
	})
}

// formatBytes writes a size in the largest binary unit it is a whole
// multiple of, with the exact byte count when it is not.
func formatBytes(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	if n > 0 {
		for i := len(units) - 1; i >= 0; i-- {
			u := int64(1) << (10 * (i + 1))
			if n%u == 0 {
				return strconv.FormatInt(n/u, 10) + " " + units[i]
			}
		}
		for i := len(units) - 1; i >= 0; i-- {
			u := int64(1) << (10 * (i + 1))
			if n >= u {
				return strconv.FormatInt(n, 10) + " bytes (" +
					strconv.FormatFloat(float64(n)/float64(u), 'f', 1, 64) + " " + units[i] + ")"
			}
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
