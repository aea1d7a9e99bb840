package zapp

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The description is first read into a generic tree that keeps each
// value's kind, position and literal text: encoding/json into typed structs
// stops at the first error, cannot say where a problem is, and cannot see
// repeated keys or tell 2 from 2.0.

type kind uint8

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kObject
	kArray
)

func (k kind) String() string {
	return [...]string{"null", "a boolean", "a number", "a string", "an object", "an array"}[k]
}

type member struct {
	key string
	val *node
}

type node struct {
	kind    kind
	off     int    // byte offset of the value's first character
	text    string // the string, or the number's literal text
	b       bool
	members []member // objects, in document order (duplicates kept)
	elems   []*node  // arrays
}

// maxDepth bounds nesting: no description is deeper than 5, and the tree is
// built recursively.
const maxDepth = 64

// syntaxError is malformed JSON at a byte offset.
type syntaxError struct {
	off int
	msg string
}

// parser is a small recursive-descent JSON parser (RFC 8259): unlike
// encoding/json's Decoder it gives the exact offset of every value and of
// every syntax error. Invalid UTF-8 in strings becomes U+FFFD, as with
// encoding/json.
type parser struct {
	data []byte
	pos  int
}

// parseTree reads data, which must hold exactly one JSON value.
func parseTree(data []byte) (*node, *syntaxError) {
	p := &parser{data: data}
	p.skipSpace()
	if p.pos == len(data) {
		return nil, &syntaxError{p.pos, "empty input: a description is a JSON object"}
	}
	n, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(data) {
		return nil, &syntaxError{p.pos, "unexpected data after the description's closing brace"}
	}
	return n, nil
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// fail reports the character at the current position.
func (p *parser) fail(context string) *syntaxError {
	if p.pos >= len(p.data) {
		return &syntaxError{p.pos, "unexpected end of input " + context}
	}
	r, _ := utf8.DecodeRune(p.data[p.pos:])
	return &syntaxError{p.pos, fmt.Sprintf("invalid character %q %s", r, context)}
}

func (p *parser) value(depth int) (*node, *syntaxError) {
	if p.pos >= len(p.data) {
		return nil, p.fail("looking for the beginning of a value")
	}
	n := &node{off: p.pos}
	switch c := p.data[p.pos]; {
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return nil, &syntaxError{p.pos, fmt.Sprintf("nested more than %d levels deep", maxDepth)}
		}
		p.pos++
		if c == '{' {
			return n, p.object(n, depth)
		}
		return n, p.array(n, depth)
	case c == '"':
		n.kind = kString
		s, err := p.str()
		n.text = s
		return n, err
	case c == '-' || c >= '0' && c <= '9':
		n.kind = kNumber
		return n, p.number(n)
	case c == 't':
		n.kind, n.b = kBool, true
		return n, p.literal("true")
	case c == 'f':
		n.kind = kBool
		return n, p.literal("false")
	case c == 'n':
		n.kind = kNull
		return n, p.literal("null")
	}
	return nil, p.fail("looking for the beginning of a value")
}

func (p *parser) literal(word string) *syntaxError {
	for i := 0; i < len(word); i++ {
		if p.pos >= len(p.data) || p.data[p.pos] != word[i] {
			return p.fail("in literal " + word)
		}
		p.pos++
	}
	return nil
}

func (p *parser) object(n *node, depth int) *syntaxError {
	n.kind = kObject
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return p.fail("looking for the beginning of an object key string")
		}
		key, err := p.str()
		if err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return p.fail("after object key")
		}
		p.pos++
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return err
		}
		n.members = append(n.members, member{key, v})
		p.skipSpace()
		if p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == '}' {
			p.pos++
			return nil
		}
		return p.fail("after object key:value pair")
	}
}

func (p *parser) array(n *node, depth int) *syntaxError {
	n.kind = kArray
	n.elems = []*node{}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return nil
	}
	for {
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return err
		}
		n.elems = append(n.elems, v)
		p.skipSpace()
		if p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == ']' {
			p.pos++
			return nil
		}
		return p.fail("after array element")
	}
}

// number checks the JSON number grammar and keeps the literal's text.
func (p *parser) number(n *node) *syntaxError {
	start := p.pos
	digits := func() bool {
		s := p.pos
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
		}
		return p.pos > s
	}
	if p.data[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(p.data) && p.data[p.pos] == '0':
		p.pos++
	case !digits():
		return p.fail("in numeric literal")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if !digits() {
			return p.fail("after decimal point in numeric literal")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if !digits() {
			return p.fail("in exponent of numeric literal")
		}
	}
	n.text = string(p.data[start:p.pos])
	return nil
}

// str reads a string literal, the current character being its quote.
func (p *parser) str() (string, *syntaxError) {
	p.pos++
	start := p.pos
	// Fast path: no escape and valid UTF-8.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.data[start:p.pos]
			if utf8.Valid(s) {
				p.pos++
				return string(s), nil
			}
			break
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.pos++
	}
	p.pos = start
	var b strings.Builder
	for {
		if p.pos >= len(p.data) {
			return "", p.fail("in string literal")
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return b.String(), nil
		case c < 0x20:
			return "", p.fail("in string literal")
		case c == '\\':
			if err := p.escape(&b); err != nil {
				return "", err
			}
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(p.data[p.pos:])
			b.WriteRune(r) // RuneError for invalid UTF-8
			p.pos += size
		}
	}
}

func (p *parser) escape(b *strings.Builder) *syntaxError {
	p.pos++ // the backslash
	if p.pos >= len(p.data) {
		return p.fail("in string escape code")
	}
	c := p.data[p.pos]
	p.pos++
	switch c {
	case '"', '\\', '/':
		b.WriteByte(c)
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 't':
		b.WriteByte('\t')
	case 'u':
		r, ok := p.hex4()
		if !ok {
			return p.fail("in \\u hexadecimal character escape")
		}
		if utf16.IsSurrogate(r) {
			// A high surrogate pairs with a following \uXXXX low one.
			save := p.pos
			if p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
				p.pos += 2
				if r2, ok := p.hex4(); ok {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						b.WriteRune(dec)
						return nil
					}
				}
			}
			p.pos = save
			r = utf8.RuneError
		}
		b.WriteRune(r)
	default:
		p.pos--
		return p.fail("in string escape code")
	}
	return nil
}

func (p *parser) hex4() (rune, bool) {
	if p.pos+4 > len(p.data) {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}

// lineCol turns a byte offset into a 1-based line and column, the column
// counted in characters as editors do.
func lineCol(data []byte, off int) (int, int) {
	if off > len(data) {
		off = len(data)
	}
	before := data[:off]
	line := bytes.Count(before, []byte{'\n'}) + 1
	col := utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return line, col
}

// describe names a value's kind for "got ..." in messages, with the value
// when it is short.
func (n *node) describe() string {
	switch n.kind {
	case kNull:
		return "null"
	case kBool:
		return strconv.FormatBool(n.b)
	case kNumber:
		return "the number " + short(n.text)
	case kString:
		return "the string " + strconv.Quote(short(n.text))
	case kArray:
		return fmt.Sprintf("an array of %d elements", len(n.elems))
	}
	return n.kind.String()
}

func short(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	// Cut on a rune boundary.
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Paths ---------------------------------------------------------------------

// keyPath appends an object key to a path: .key for identifiers, ["key"]
// otherwise so that every path reads back unambiguously.
func keyPath(parent, key string) string {
	if isIdent(key) {
		if parent == "" {
			return key
		}
		return parent + "." + key
	}
	return parent + "[" + strconv.Quote(key) + "]"
}

func indexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// segment is one step of a path: a key or an index.
type segment struct {
	key   string
	index int // -1 for keys
}

// splitPath parses a path built by keyPath and indexPath; it stops at
// anything else, which only a hand-made Problem can hold.
func splitPath(p string) []segment {
	var segs []segment
	for p != "" {
		switch {
		case strings.HasPrefix(p, "[\""):
			q, err := strconv.QuotedPrefix(p[1:])
			if err != nil || !strings.HasPrefix(p[1+len(q):], "]") {
				return segs
			}
			k, _ := strconv.Unquote(q)
			segs = append(segs, segment{k, -1})
			p = p[2+len(q):]
		case p[0] == '[':
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return segs
			}
			i, err := strconv.Atoi(p[1:end])
			if err != nil {
				return segs
			}
			segs = append(segs, segment{"", i})
			p = p[end+1:]
		default:
			p = strings.TrimPrefix(p, ".")
			end := strings.IndexAny(p, ".[")
			if end < 0 {
				end = len(p)
			}
			segs = append(segs, segment{p[:end], -1})
			p = p[end:]
		}
	}
	return segs
}

// locate returns the offset of the value at path, or of its deepest
// ancestor present in the tree (for a missing key).
func locate(root *node, path string) int {
	n := root
	for _, s := range splitPath(path) {
		var next *node
		if s.index >= 0 {
			if n.kind == kArray && s.index < len(n.elems) {
				next = n.elems[s.index]
			}
		} else if n.kind == kObject {
			for _, m := range n.members {
				if m.key == s.key {
					next = m.val
					break
				}
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return n.off
}
