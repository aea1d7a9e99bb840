// Package htmlcheck checks that an HTML page of Zoe's web interface is a
// well-formed, accessible document that loads nothing from outside the
// daemon and runs no inline script (the pages are served with a
// Content-Security-Policy without 'unsafe-inline', which a browser
// enforces silently by not running the code).
//
// It is for tests: Check reads a whole page and lists every problem, each
// with its line.
package htmlcheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Problem is one thing wrong with a page.
type Problem struct {
	Line int    // of the tag, from 1; 0 for the document as a whole
	Rule string // one of the Rule constants
	Msg  string
}

func (p Problem) String() string {
	if p.Line == 0 {
		return p.Rule + ": " + p.Msg
	}
	return fmt.Sprintf("line %d: %s: %s", p.Line, p.Rule, p.Msg)
}

// The rules, so that a test can look for one.
const (
	RuleParse        = "parse"         // not a well-formed document: tags, nesting, attributes
	RuleStructure    = "structure"     // doctype, html, head, body, title, charset, lang
	RuleDuplicateID  = "duplicate-id"  // two elements with one id, or an empty id
	RuleLabel        = "label"         // a form control or button no one can name
	RuleAlt          = "alt"           // an image without alt text
	RuleExternal     = "external"      // a URL outside the daemon, or a javascript: URL
	RuleInlineScript = "inline-script" // a script body or an on* attribute
	RuleInlineStyle  = "inline-style"  // a style element or attribute
)

// MaxSize is the largest page Check reads.
const MaxSize = 16 << 20

// Check reads a whole HTML page and returns its problems, in the order of
// the page. base is the page's own URL: an absolute URL to its host and
// port is inside the daemon; with a nil base, every absolute URL is
// outside.
func Check(r io.Reader, base *url.URL) []Problem {
	src, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return []Problem{{Rule: RuleParse, Msg: "reading the page: " + err.Error()}}
	}
	if len(src) > MaxSize {
		return []Problem{{Rule: RuleParse, Msg: fmt.Sprintf("the page is larger than %d bytes", MaxSize)}}
	}
	c := &checker{base: base, ids: map[string]int{}, labelFor: map[string]bool{}}
	c.run(src)
	slices.SortStableFunc(c.problems, func(a, b Problem) int { return a.Line - b.Line })
	return c.problems
}

// control is a form control or button, kept until the end of the page
// since a label for= may come after it.
type control struct {
	line       int
	desc       string
	id         string
	labelled   bool     // wrapped in a label, or has aria-label
	labelledBy []string // ids of aria-labelledby
	button     bool     // needs text rather than a label
	text       string   // a button's text so far
}

type checker struct {
	base     *url.URL
	problems []Problem
	line     int

	ids        map[string]int // id -> line of its first use
	labelFor   map[string]bool
	controls   []*control
	openLabel  int      // how many label elements are open
	labelText  []string // text of the open label, for the empty-label check
	labelLines []int
	button     *control // the open button, collecting its text
	stack      []openElem

	seen map[atom.Atom]int // how many html, head, body, title start tags
	// state of the document's start
	sawDoctype, sawElement bool
	titleText              strings.Builder
	inTitle, inSVG         bool
	charset                bool
}

type openElem struct {
	name string
	line int
	data bool // a script that holds data, not code
}

func (c *checker) add(line int, rule, format string, args ...any) {
	c.problems = append(c.problems, Problem{Line: line, Rule: rule, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) run(src []byte) {
	c.seen = map[atom.Atom]int{}
	c.line = 1
	z := html.NewTokenizer(bytes.NewReader(src))
	for {
		tt := z.Next()
		raw := z.Raw()
		line := c.line
		c.line += bytes.Count(raw, []byte("\n"))
		switch tt {
		case html.ErrorToken:
			if err := z.Err(); !errors.Is(err, io.EOF) {
				c.add(line, RuleParse, "%v", err)
			}
			c.finish()
			return
		case html.DoctypeToken:
			if c.sawDoctype || c.sawElement {
				c.add(line, RuleParse, "a doctype after the start of the document")
			}
			c.sawDoctype = true
			if !strings.EqualFold(strings.TrimSpace(string(z.Text())), "html") {
				c.add(line, RuleStructure, "the doctype is %q, want <!DOCTYPE html>", raw)
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			c.start(line, z, tt == html.SelfClosingTagToken)
		case html.EndTagToken:
			name, _ := z.TagName()
			c.end(line, string(name))
		case html.TextToken:
			c.text(line, z.Text())
		}
	}
}

// Elements with no end tag, and those whose end tag may be left out
// (closed by what follows them or by their parent's end).
var (
	voidElements = map[string]bool{"area": true, "base": true, "br": true, "col": true, "embed": true,
		"hr": true, "img": true, "input": true, "link": true, "meta": true, "source": true,
		"track": true, "wbr": true}
	optionalEnd = map[string]bool{"p": true, "li": true, "dt": true, "dd": true, "option": true,
		"optgroup": true, "tr": true, "td": true, "th": true, "thead": true, "tbody": true,
		"tfoot": true, "colgroup": true, "rt": true, "rp": true, "caption": true,
		"html": true, "head": true, "body": true}
)

func (c *checker) start(line int, z *html.Tokenizer, selfClosing bool) {
	name, hasAttr := z.TagName()
	tag := string(name)
	attrs := map[string]string{}
	var order []string
	for hasAttr {
		var k, v []byte
		k, v, hasAttr = z.TagAttr()
		// The tokenizer drops a repeated attribute, as browsers do.
		// SVG's xlink:href is an href.
		key := strings.TrimPrefix(string(k), "xlink:")
		if _, dup := attrs[key]; dup {
			continue
		}
		attrs[key] = string(v)
		order = append(order, key)
	}
	desc := describe(tag, attrs)
	c.sawElement = true
	a := atom.Lookup(name)
	c.seen[a]++
	if (a == atom.Html || a == atom.Head || a == atom.Body || a == atom.Title) && c.seen[a] == 2 {
		c.add(line, RuleStructure, "a second <%s>", tag)
	}
	if a == atom.Html && !c.sawDoctype {
		c.add(line, RuleStructure, "no <!DOCTYPE html> before <html>")
	}

	// Nesting. Inside svg and math a self-closing tag closes itself.
	if c.inSVG && selfClosing {
		// nothing is left open
	} else if !voidElements[tag] {
		if selfClosing {
			c.add(line, RuleParse, "%s is not a void element: its /> is ignored and it stays open", desc)
		}
		c.stack = append(c.stack, openElem{name: tag, line: line})
	}
	switch a {
	case atom.Svg, atom.Math:
		c.inSVG = true
	case atom.Title:
		c.inTitle = true
	case atom.Html:
		if strings.TrimSpace(attrs["lang"]) == "" {
			c.add(line, RuleStructure, "<html> has no lang")
		}
	case atom.Meta:
		if cs, ok := attrs["charset"]; ok {
			c.charset = true
			if !strings.EqualFold(cs, "utf-8") {
				c.add(line, RuleStructure, "charset %q, want utf-8", cs)
			}
		}
		if strings.EqualFold(attrs["http-equiv"], "refresh") {
			content := attrs["content"]
			if i := strings.Index(strings.ToLower(content), "url="); i >= 0 {
				c.url(line, desc, "content", strings.Trim(content[i+len("url="):], `'" `))
			}
		}
	case atom.Label:
		if c.openLabel > 0 {
			c.add(line, RuleParse, "a label inside a label")
		}
		c.openLabel++
		c.labelText = append(c.labelText, "")
		c.labelLines = append(c.labelLines, line)
		if f, ok := attrs["for"]; ok {
			c.labelFor[f] = true
		}
	case atom.Img:
		if _, ok := attrs["alt"]; !ok {
			c.add(line, RuleAlt, "%s has no alt (alt=\"\" for a decoration)", desc)
		}
	case atom.Style:
		c.add(line, RuleInlineStyle, "a <style> element: the CSP allows only style sheets from the daemon")
	case atom.Script:
		c.stack[len(c.stack)-1].data = dataBlock(attrs["type"])
	}
	if id, ok := attrs["id"]; ok {
		switch first, dup := c.ids[id]; {
		case strings.TrimSpace(id) == "" || strings.ContainsAny(id, " \t\n\f\r"):
			c.add(line, RuleDuplicateID, "%s: an id may not be empty or hold spaces", desc)
		case dup:
			c.add(line, RuleDuplicateID, "%s: the id %q is used already on line %d", desc, id, first)
		default:
			c.ids[id] = line
		}
	}
	c.control(line, a, tag, desc, attrs)
	for _, k := range order {
		v := attrs[k]
		switch {
		case strings.HasPrefix(k, "on"):
			c.add(line, RuleInlineScript, "%s has the event handler attribute %s: the CSP refuses it", desc, k)
		case k == "style":
			c.add(line, RuleInlineStyle, "%s has a style attribute: the CSP refuses it", desc)
			for _, u := range cssURLs(v) {
				c.url(line, desc, k, u)
			}
		case k == "srcset" || k == "imagesrcset":
			for cand := range strings.SplitSeq(v, ",") {
				if f := strings.Fields(cand); len(f) > 0 {
					c.url(line, desc, k, f[0])
				}
			}
		case urlAttrs[k]:
			c.url(line, desc, k, v)
		}
	}
}

// urlAttrs are the attributes that hold one URL (xlink:href is href).
var urlAttrs = map[string]bool{"src": true, "href": true, "action": true, "formaction": true,
	"poster": true, "data": true, "cite": true, "background": true, "manifest": true,
	"ping": true, "longdesc": true, "codebase": true, "icon": true}

// dataBlock reports whether a script's type makes it data rather than
// code: a JSON block is neither run nor refused by the CSP.
func dataBlock(typ string) bool {
	t := strings.ToLower(strings.TrimSpace(typ))
	return t == "application/json" || t == "application/ld+json"
}

// control records a form control or button for the label check.
func (c *checker) control(line int, a atom.Atom, tag, desc string, attrs map[string]string) {
	switch a {
	case atom.Input:
		switch strings.ToLower(attrs["type"]) {
		case "hidden":
			return
		case "submit", "reset", "button":
			// Named by their value (or a default text), not a label.
			if v, ok := attrs["value"]; ok && strings.TrimSpace(v) == "" && strings.TrimSpace(attrs["aria-label"]) == "" {
				c.add(line, RuleLabel, "%s has an empty value: the button has no name", desc)
			}
			return
		case "image":
			if strings.TrimSpace(attrs["alt"]) == "" {
				c.add(line, RuleAlt, "%s has no alt: the button has no name", desc)
			}
			return
		}
	case atom.Select, atom.Textarea, atom.Button:
	default:
		return
	}
	ctl := &control{line: line, desc: desc, id: attrs["id"], button: a == atom.Button,
		labelled:   c.openLabel > 0 || strings.TrimSpace(attrs["aria-label"]) != "",
		labelledBy: strings.Fields(attrs["aria-labelledby"])}
	c.controls = append(c.controls, ctl)
	if ctl.button {
		c.button = ctl
	}
}

func (c *checker) end(line int, tag string) {
	switch tag {
	case "svg", "math":
		c.inSVG = false
	case "title":
		c.inTitle = false
	case "label":
		if c.openLabel > 0 {
			i := len(c.labelText) - 1
			if strings.TrimSpace(c.labelText[i]) == "" {
				c.add(c.labelLines[i], RuleLabel, "a label with no text")
			}
			c.labelText, c.labelLines = c.labelText[:i], c.labelLines[:i]
			c.openLabel--
		}
	case "button":
		c.button = nil
	}
	if voidElements[tag] {
		if tag != "br" { // </br> is read as <br>
			c.add(line, RuleParse, "</%s>: %s has no end tag", tag, tag)
		}
		return
	}
	// Close the innermost open element of this name; those above it must
	// be ones whose end tag may be left out.
	for i := len(c.stack) - 1; i >= 0; i-- {
		if c.stack[i].name != tag {
			continue
		}
		for _, e := range c.stack[i+1:] {
			if !optionalEnd[e.name] {
				c.add(e.line, RuleParse, "<%s> is not closed before </%s> on line %d", e.name, tag, line)
			}
		}
		c.stack = c.stack[:i]
		return
	}
	c.add(line, RuleParse, "</%s> closes nothing: no <%s> is open", tag, tag)
}

func (c *checker) text(line int, text []byte) {
	var top openElem
	if len(c.stack) > 0 {
		top = c.stack[len(c.stack)-1]
	}
	switch top.name {
	case "script":
		// A body beside src is never run, but hides a mistake.
		if !top.data && len(bytes.TrimSpace(text)) > 0 {
			c.add(top.line, RuleInlineScript, "an inline script: the CSP refuses it")
		}
		return
	case "style":
		for _, u := range cssURLs(string(text)) {
			c.url(line, "<style>", "url()", u)
		}
		return
	}
	if c.inTitle {
		c.titleText.Write(text)
	}
	if c.openLabel > 0 && top.name != "select" && top.name != "option" && top.name != "textarea" {
		c.labelText[len(c.labelText)-1] += string(text)
	}
	if c.button != nil {
		c.button.text += string(text)
	}
}

func (c *checker) finish() {
	for _, e := range c.stack {
		if !optionalEnd[e.name] {
			c.add(e.line, RuleParse, "<%s> is never closed", e.name)
		}
	}
	if !c.sawDoctype {
		c.add(0, RuleStructure, "no <!DOCTYPE html>")
	}
	for _, t := range []atom.Atom{atom.Html, atom.Head, atom.Body, atom.Title} {
		if c.seen[t] == 0 {
			c.add(0, RuleStructure, "no <%s> element", t)
		}
	}
	if c.seen[atom.Title] > 0 && strings.TrimSpace(c.titleText.String()) == "" {
		c.add(0, RuleStructure, "the title is empty")
	}
	if !c.charset {
		c.add(0, RuleStructure, `no <meta charset="utf-8">`)
	}
	for _, ctl := range c.controls {
		named := ctl.labelled || (ctl.id != "" && c.labelFor[ctl.id])
		for _, id := range ctl.labelledBy {
			if _, ok := c.ids[id]; !ok {
				c.add(ctl.line, RuleLabel, "%s: aria-labelledby names %q, which no element has as id", ctl.desc, id)
			} else {
				named = true
			}
		}
		if ctl.button {
			if !named && strings.TrimSpace(ctl.text) == "" {
				c.add(ctl.line, RuleLabel, "%s has no text and no aria-label", ctl.desc)
			}
			continue
		}
		if !named {
			c.add(ctl.line, RuleLabel, "%s has no label (label for=, a wrapping label, aria-label or aria-labelledby)", ctl.desc)
		}
	}
	for id := range c.labelFor {
		if _, ok := c.ids[id]; !ok {
			c.add(0, RuleLabel, "a label is for %q, which no element has as id", id)
		}
	}
}

var (
	cssURL    = regexp.MustCompile(`(?i)url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"\s]*))\s*\)`)
	cssImport = regexp.MustCompile(`(?i)@import\s+(?:"([^"]*)"|'([^']*)')`)
)

// cssURLs returns the URLs in CSS text: url(...) and @import "...".
func cssURLs(css string) []string {
	var out []string
	for _, re := range []*regexp.Regexp{cssURL, cssImport} {
		for _, m := range re.FindAllStringSubmatch(css, -1) {
			out = append(out, strings.Join(m[1:], "")) // one group matched

		}
	}
	return out
}

// url reports a URL that leaves the daemon: an absolute or
// protocol-relative URL to another host or port, a javascript: URL, or a
// scheme that is not a web page's (data:, mailto: and about: stay).
func (c *checker) url(line int, desc, attr, raw string) {
	// Browsers drop leading and trailing spaces and control characters, and
	// tabs and newlines anywhere (so "java\nscript:" is javascript:).
	s := strings.TrimFunc(raw, func(r rune) bool { return r <= ' ' })
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
	s = strings.ReplaceAll(s, `\`, "/") // http:\\host is http://host to a browser
	if s == "" {
		return
	}
	u, err := url.Parse(s)
	if err != nil {
		// Not a URL a browser would reject outright; say so rather than guess.
		c.add(line, RuleExternal, "%s: %s=%q is not a URL this check can read: %v", desc, attr, raw, err)
		return
	}
	switch scheme := strings.ToLower(u.Scheme); scheme {
	case "javascript":
		c.add(line, RuleExternal, "%s: %s is a javascript: URL, which the CSP refuses", desc, attr)
		return
	case "data", "mailto", "about", "blob":
		return
	case "", "http", "https", "ws", "wss":
		if u.Host == "" && !strings.HasPrefix(s, "//") {
			if scheme != "" && u.Opaque != "" {
				c.add(line, RuleExternal, "%s: %s=%q has no host", desc, attr, raw)
			}
			return // relative: on the daemon
		}
		if c.base != nil && sameHost(u, c.base) {
			return
		}
		c.add(line, RuleExternal, "%s: %s=%q points outside the daemon", desc, attr, raw)
	default:
		c.add(line, RuleExternal, "%s: %s=%q has the scheme %s: outside the daemon", desc, attr, raw, scheme)
	}
}

// sameHost compares hosts and ports, the port made explicit from the
// scheme (a protocol-relative URL takes the base's scheme).
func sameHost(u, base *url.URL) bool {
	port := func(v *url.URL, scheme string) string {
		if p := v.Port(); p != "" {
			return p
		}
		if scheme == "https" || scheme == "wss" {
			return "443"
		}
		return "80"
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme == "" {
		scheme = base.Scheme
	}
	return strings.EqualFold(u.Hostname(), base.Hostname()) && port(u, scheme) == port(base, base.Scheme)
}

// describe renders a start tag short enough for a message.
func describe(tag string, attrs map[string]string) string {
	var b strings.Builder
	b.WriteString("<" + tag)
	for _, k := range []string{"id", "name", "type", "href", "src"} {
		if v, ok := attrs[k]; ok {
			if len(v) > 60 {
				v = v[:60] + "..."
			}
			fmt.Fprintf(&b, " %s=%q", k, v)
		}
	}
	b.WriteString(">")
	return b.String()
}
