// Package safetext keeps text written by other people harmless: names
// holding characters a terminal or a page would act on are refused
// (NameProblem), and text shown on a terminal has those characters
// escaped (Escape, EscapeLines, EscapeJSON).
package safetext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Unsafe says whether r must not reach a terminal raw: control characters
// (C0, DEL, C1 such as U+009B, a one-byte CSI), format characters (U+202E
// and the other bidirectional controls, zero-width characters) and the line
// and paragraph separators U+2028 and U+2029.
func Unsafe(r rune) bool {
	return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

// NameProblem says what is wrong with a name given by a user (of an
// execution, a token, a port, ...): "" when it is fine. Names are shown in
// terminals and pages, so control and format characters are refused, and
// so are invalid UTF-8 and U+FFFD, which a JSON decoder leaves in place of
// invalid UTF-8 or of a lone surrogate such as "\ud800". Characters that
// show as nothing (default ignorable ones such as the Hangul fillers) and
// names of spaces only are refused too: such a name cannot be told apart
// from another, or from none. The empty name is fine (optional names).
func NameProblem(s string) string {
	if s != "" && strings.TrimSpace(s) == "" {
		return "must not be blank"
	}
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return fmt.Sprintf("must be valid UTF-8 (byte %d is not)", i)
			}
			return fmt.Sprintf("must not hold U+FFFD (at byte %d), the mark of text that was not valid UTF-8", i)
		case Unsafe(r):
			return fmt.Sprintf("must not hold control or format characters (%U at byte %d)", r, i)
		case invisible(r):
			return fmt.Sprintf("must not hold invisible characters (%U at byte %d)", r, i)
		}
	}
	return ""
}

// invisible says whether r is a default ignorable code point that is not a
// format character (those are Unsafe): it shows as nothing. Variation
// selectors, which pick an emoji's look, are allowed.
func invisible(r rune) bool {
	switch r {
	case '\u115f', '\u1160', '\u3164', '\uffa0': // Hangul fillers
		return true
	}
	return unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r)
}

// Escape returns s with every unsafe character (Unsafe, newlines and tabs
// included) and every byte of invalid UTF-8 written as a Go escape: \x1b,
// \u202e, \U000e0001.
func Escape(s string) string { return escape(s, false) }

// EscapeLines is Escape for text printed line by line: newlines and tabs
// stay as they are (a carriage return is escaped: it would let a line
// print over another).
func EscapeLines(s string) string { return escape(s, true) }

func escape(s string, lines bool) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || (Unsafe(r) && !(lines && (r == '\n' || r == '\t'))) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := make([]byte, 0, len(s)+16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = fmt.Appendf(b, `\x%02x`, s[i])
		case lines && (r == '\n' || r == '\t'), !Unsafe(r):
			b = append(b, s[i:i+n]...)
		case r < 0x100:
			b = fmt.Appendf(b, `\x%02x`, r)
		case r <= 0xffff:
			b = fmt.Appendf(b, `\u%04x`, r)
		default:
			b = fmt.Appendf(b, `\U%08x`, r)
		}
		i += n
	}
	return string(b)
}

// EscapeJSON rewrites the unsafe characters of an encoded JSON document as
// \u escapes; the document means the same. encoding/json escapes C0, U+2028
// and U+2029 itself, but leaves DEL, C1 and the format characters raw.
// Outside strings a JSON document has only ASCII, so every such character
// is inside a string. Bytes of invalid UTF-8 become \ufffd.
func EscapeJSON(doc []byte) []byte {
	var out []byte
	for i := 0; i < len(doc); {
		r, n := utf8.DecodeRune(doc[i:])
		invalid := r == utf8.RuneError && n == 1
		if !invalid && (!Unsafe(r) || r == '\n' || r == '\t' || r == '\r') {
			if out != nil {
				out = append(out, doc[i:i+n]...)
			}
			i += n
			continue
		}
		if out == nil {
			out = append(make([]byte, 0, len(doc)+16), doc[:i]...)
		}
		switch {
		case invalid:
			// Only inside a string (a json.RawMessage is copied as it
			// is); a lone byte such as 0x9b is a CSI to some terminals.
			out = append(out, `\ufffd`...)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += n
	}
	if out == nil {
		return doc
	}
	return out
}
