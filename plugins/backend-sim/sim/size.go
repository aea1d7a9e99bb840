package sim

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// parseSize parses a size such as "32GiB", "1.5 GB" or "1048576" (bytes), as
// the core's configuration does: binary units KiB, MiB, GiB and TiB, decimal
// ones KB, MB, GB and TB, case-insensitive; a whole number of bytes.
func parseSize(s string) (int64, error) {
	// Compiled here: sizes are parsed once per Configure, and the package
	// keeps no globals.
	m := regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$`).FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("invalid size %q: want a number and an optional unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", s)
	}
	var mult int64
	switch strings.ToLower(m[2]) {
	case "", "b":
		mult = 1
	case "kib":
		mult = 1 << 10
	case "mib":
		mult = 1 << 20
	case "gib":
		mult = 1 << 30
	case "tib":
		mult = 1 << 40
	case "kb":
		mult = 1e3
	case "mb":
		mult = 1e6
	case "gb":
		mult = 1e9
	case "tb":
		mult = 1e12
	default:
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (want B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s, m[2])
	}
	// Exact arithmetic: float64 would lose bytes near the int64 limit.
	n, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	n.Mul(n, new(big.Rat).SetInt64(mult))
	if !n.IsInt() {
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes", s)
	}
	if !n.Num().IsInt64() {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n.Num().Int64(), nil
}

// formatSize renders n bytes for messages, e.g. 32 GiB or 1.5 MiB.
func formatSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return strings.Replace(fmt.Sprintf("%.1f %s", f, units[i]), ".0 ", " ", 1)
}
