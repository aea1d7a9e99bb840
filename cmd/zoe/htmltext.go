package main

// The description of a shop entry for a terminal. The API sends it as the
// sanitized HTML of the entry's Markdown README; it is printed back as
// plain text that reads like Markdown: headings underlined, lists with
// dashes or numbers, code blocks indented, tables with aligned columns.
// Every piece of text is escaped (safe) as it is printed: no tag, no
// control character reaches the terminal.

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/zoe-project/zoe/internal/safetext"
)

// textWidth is the width paragraphs are wrapped to.
const textWidth = 80

// htmlText turns the sanitized HTML of a shop description into text for a
// terminal.
func htmlText(s string) string {
	nodes, err := html.ParseFragment(strings.NewReader(s), &html.Node{Type: html.ElementNode, Data: "body", DataAtom: atom.Body})
	if err != nil {
		// The parser does not fail on a string; never print raw HTML.
		return safe(s)
	}
	r := textRenderer{width: textWidth}
	for _, n := range nodes {
		r.block(n)
	}
	r.flush()
	return strings.TrimSpace(strings.Join(r.out, "\n"))
}

// textRenderer collects the lines of the text, blocks apart by one blank
// line.
type textRenderer struct {
	width int
	out   []string
	// inline is the text of the paragraph being gathered.
	inline strings.Builder
}

// gap starts a new block: one blank line after the last one.
func (r *textRenderer) gap() {
	if len(r.out) > 0 && r.out[len(r.out)-1] != "" {
		r.out = append(r.out, "")
	}
}

// flush prints the gathered inline text, wrapped.
func (r *textRenderer) flush() {
	text := strings.Join(strings.Fields(r.inline.String()), " ")
	r.inline.Reset()
	if text != "" {
		r.out = append(r.out, wrap(text, max(r.width, 20))...)
	}
}

// nested renders n's children apart, width narrower, for a list item or
// a quotation to indent.
func (r *textRenderer) nested(n *html.Node, width int) []string {
	sub := textRenderer{width: width}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		sub.block(c)
	}
	sub.flush()
	for len(sub.out) > 0 && sub.out[len(sub.out)-1] == "" {
		sub.out = sub.out[:len(sub.out)-1]
	}
	return sub.out
}

// block prints a node and its children: a block-level element as lines of
// its own, anything else into the paragraph being gathered.
func (r *textRenderer) block(n *html.Node) {
	if n.Type != html.ElementNode || !isBlock(n) {
		if n.Type == html.ElementNode && n.DataAtom == atom.Br {
			r.flush()
			return
		}
		r.inlineNode(n)
		return
	}
	r.flush()
	r.gap()
	switch n.DataAtom {
	case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		r.inlineChildren(n)
		title := strings.Join(strings.Fields(r.inline.String()), " ")
		r.inline.Reset()
		if title == "" {
			return
		}
		r.out = append(r.out, title)
		switch n.DataAtom {
		case atom.H1:
			r.out = append(r.out, strings.Repeat("=", utf8.RuneCountInString(title)))
		case atom.H2:
			r.out = append(r.out, strings.Repeat("-", utf8.RuneCountInString(title)))
		}
	case atom.Hr:
		r.out = append(r.out, strings.Repeat("-", 20))
	case atom.Ul, atom.Ol:
		r.list(n)
	case atom.Pre:
		code := strings.TrimRight(textOf(n), "\n")
		for _, l := range strings.Split(code, "\n") {
			// Tabs kept, carriage returns and the rest escaped.
			r.out = append(r.out, strings.TrimRight("    "+safetext.EscapeLines(l), " "))
		}
	case atom.Blockquote:
		for _, l := range r.nested(n, r.width-2) {
			r.out = append(r.out, strings.TrimRight("> "+l, " "))
		}
	case atom.Table:
		r.table(n)
	default: // p, div
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			r.block(c)
		}
		r.flush()
	}
	r.gap()
}

// list prints the items of a ul or ol: "- " or "1. " before the first line
// of each, its other lines under the text.
func (r *textRenderer) list(n *html.Node) {
	num := 1
	if v, err := strconv.Atoi(attr(n, "start")); err == nil {
		num = v
	}
	for li := n.FirstChild; li != nil; li = li.NextSibling {
		if li.Type != html.ElementNode || li.DataAtom != atom.Li {
			continue
		}
		mark := "- "
		if n.DataAtom == atom.Ol {
			mark = strconv.Itoa(num) + ". "
			num++
		}
		inner := strings.Repeat(" ", len(mark))
		first := true
		for _, l := range r.nested(li, r.width-len(mark)) {
			// An item is one run of lines, also in a loose list (items
			// in paragraphs).
			switch {
			case l == "":
			case first:
				r.out = append(r.out, mark+l)
				first = false
			default:
				r.out = append(r.out, inner+l)
			}
		}
	}
}

func isBlock(n *html.Node) bool {
	if n.Type != html.ElementNode {
		return false
	}
	switch n.DataAtom {
	case atom.P, atom.Div, atom.Ul, atom.Ol, atom.Pre, atom.Blockquote, atom.Table, atom.Hr,
		atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		return true
	}
	return false
}

// inlineNode adds an inline element's text to the paragraph: code between
// backquotes, a link's address after its text, an image as its alt text.
func (r *textRenderer) inlineNode(n *html.Node) {
	switch n.Type {
	case html.TextNode:
		r.inline.WriteString(safe(n.Data))
		return
	case html.ElementNode:
	default:
		r.inlineChildren(n)
		return
	}
	switch n.DataAtom {
	case atom.Code:
		r.inline.WriteString("`" + safe(textOf(n)) + "`")
	case atom.Br:
		// Inside a heading or a cell: a space.
		r.inline.WriteString(" ")
	case atom.Img:
		if alt := attr(n, "alt"); alt != "" {
			r.inline.WriteString("[" + safe(alt) + "]")
		}
	case atom.A:
		before := r.inline.Len()
		r.inlineChildren(n)
		text := r.inline.String()[before:]
		if href := attr(n, "href"); href != "" && strings.TrimSpace(text) != href && !strings.HasPrefix(href, "#") {
			r.inline.WriteString(" (" + safe(href) + ")")
		}
	default:
		r.inlineChildren(n)
	}
}

func (r *textRenderer) inlineChildren(n *html.Node) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		r.inlineNode(c)
	}
}

// table prints the rows of a table with aligned columns; a line of dashes
// sets the header row apart.
func (r *textRenderer) table(n *html.Node) {
	var (
		rows   [][]string
		header = -1 // the last header row
	)
	var walk func(*html.Node)
	walk = func(m *html.Node) {
		for c := m.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != html.ElementNode {
				continue
			}
			switch c.DataAtom {
			case atom.Tr:
				var cells []string
				th := false
				for td := c.FirstChild; td != nil; td = td.NextSibling {
					if td.Type != html.ElementNode || (td.DataAtom != atom.Td && td.DataAtom != atom.Th) {
						continue
					}
					th = th || td.DataAtom == atom.Th || m.DataAtom == atom.Thead
					var cr textRenderer
					cr.inlineChildren(td)
					cells = append(cells, strings.Join(strings.Fields(cr.inline.String()), " "))
				}
				rows = append(rows, cells)
				if th && header == len(rows)-2 {
					header = len(rows) - 1
				}
			case atom.Thead, atom.Tbody, atom.Tfoot:
				walk(c)
			}
		}
	}
	walk(n)
	var widths []int
	for _, row := range rows {
		for i, c := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	widths = fitColumns(widths, r.width)
	line := func(cells []string) string {
		var b strings.Builder
		for i, w := range widths {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", max(0, w-utf8.RuneCountInString(c))))
		}
		return strings.TrimRight(b.String(), " ")
	}
	for i, row := range rows {
		// A cell wider than its column goes on several lines.
		var cells [][]string
		height := 1
		for j, c := range row {
			cells = append(cells, wrap(c, widths[j]))
			height = max(height, len(cells[j]))
		}
		for k := range height {
			parts := make([]string, len(cells))
			for j, cl := range cells {
				if k < len(cl) {
					parts[j] = cl[k]
				}
			}
			r.out = append(r.out, line(parts))
		}
		if i == header {
			dashes := make([]string, len(widths))
			for j, w := range widths {
				dashes[j] = strings.Repeat("-", max(w, 1))
			}
			r.out = append(r.out, line(dashes))
		}
	}
}

// fitColumns narrows the widest columns of a table so that it fits in
// total characters (two between columns) when it can: the columns narrower
// than an even share keep their width, the others share the rest, none
// narrower than minColumn.
func fitColumns(natural []int, total int) []int {
	const minColumn = 12
	avail := total - 2*(len(natural)-1)
	sum := 0
	for _, w := range natural {
		sum += w
	}
	if sum <= avail || len(natural) == 0 {
		return natural
	}
	out := make([]int, len(natural))
	open := make([]int, len(natural))
	for i := range natural {
		open[i] = i
	}
	for len(open) > 0 {
		share := avail / len(open)
		var still []int
		for _, i := range open {
			if natural[i] <= share {
				out[i] = natural[i]
				avail -= natural[i]
			} else {
				still = append(still, i)
			}
		}
		if len(still) == len(open) {
			break
		}
		open = still
	}
	for k, i := range open {
		w := avail / len(open)
		if k < avail%len(open) {
			w++
		}
		out[i] = max(w, minColumn)
	}
	return out
}

// textOf is the text in n, as it is.
func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(m *html.Node) {
		if m.Type == html.TextNode {
			b.WriteString(m.Data)
		}
		for c := m.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// wrap cuts text into lines of at most width characters, between words
// (a longer word gets a line of its own).
func wrap(text string, width int) []string {
	var (
		lines []string
		cur   strings.Builder
		n     int
	)
	for _, w := range strings.Fields(text) {
		wl := utf8.RuneCountInString(w)
		if n > 0 && n+1+wl > width {
			lines = append(lines, cur.String())
			cur.Reset()
			n = 0
		}
		if n > 0 {
			cur.WriteByte(' ')
			n++
		}
		cur.WriteString(w)
		n += wl
	}
	if n > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}
