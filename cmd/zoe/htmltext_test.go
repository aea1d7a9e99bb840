package main

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/shop"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/internal/safetext"
)

func TestHTMLText(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{
			name: "blocks",
			in: "<h1>Spark</h1>\n<p>A cluster &amp; a <em>notebook</em>,\nwith <code>x &lt; y</code>.</p>\n<h2>Use</h2>\n<h3>More</h3>\n" +
				"<ul>\n<li>one</li>\n<li><p>two</p>\n<ol start=\"3\">\n<li>three</li>\n</ol>\n</li>\n</ul>\n<p>Line<br>break</p>\n" +
				"<pre><code class=\"language-sh\">zoe exec ls\n\tindented\n</code></pre>\n<blockquote>\n<p>quoted</p>\n</blockquote>\n" +
				`<p><a href="https://zoe.example/doc">the doc</a>, <a href="https://x.example">https://x.example</a>, <img src="a.png" alt="logo"></p>`,
			want: "Spark\n=====\n\nA cluster & a notebook, with `x < y`.\n\nUse\n---\n\nMore\n\n" +
				"- one\n- two\n  3. three\n\nLine\nbreak\n\n    zoe exec ls\n    \tindented\n\n> quoted\n\n" +
				"the doc (https://zoe.example/doc), https://x.example, [logo]",
		},
		{
			name: "table aligned",
			in: "<table>\n<thead>\n<tr>\n<th>Parameter</th>\n<th>Default</th>\n</tr>\n</thead>\n<tbody>\n" +
				"<tr>\n<td>Workers</td>\n<td><code>4</code></td>\n</tr>\n<tr>\n<td>Executor memory</td>\n<td>unset</td>\n</tr>\n</tbody>\n</table>",
			want: "Parameter        Default\n---------------  -------\nWorkers          `4`\nExecutor memory  unset",
		},
		{
			name: "raw HTML and control characters escaped",
			in:   "<p>a\x1b[2J<script>x</script> &lt;b&gt; \u202e</p><pre>c\x1b]0;t\x07\rd</pre>",
			// The HTML parser reads a carriage return as a newline.
			want: "a\\x1b[2Jx <b> \\u202e\n\n    c\\x1b]0;t\\x07\n    d",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := htmlText(tc.in); got != tc.want {
				t.Errorf("htmlText:\n%s\nwant\n%s\n(%q)", got, tc.want, got)
			}
		})
	}
}

// TestShopREADMEsAsText: the example shop's READMEs, rendered as the API
// sends them, print with aligned tables that fit 80 columns, no raw
// Markdown table and no tag.
func TestShopREADMEsAsText(t *testing.T) {
	s, err := shop.Load("../../examples/shop", zapp.DefaultLimits(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	entries := s.Entries(shop.AdminRole)
	if len(entries) == 0 {
		t.Fatal("no entries in the example shop")
	}
	for _, e := range entries {
		text := htmlText(e.DescriptionHTML)
		for _, bad := range []string{"|---", "| ", "<", "&#", "&amp;"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s: the text holds %q:\n%s", e.ID, bad, text)
			}
		}
		if !strings.Contains(text, "\nParameters\n----------\n\nParameter ") {
			t.Errorf("%s: no parameters table:\n%s", e.ID, text)
		}
		for _, l := range strings.Split(text, "\n") {
			if utf8.RuneCountInString(l) > textWidth {
				t.Errorf("%s: a line of %d characters: %q", e.ID, utf8.RuneCountInString(l), l)
			}
		}
		if safetext.EscapeLines(text) != text {
			t.Errorf("%s: unescaped characters", e.ID)
		}
	}
}

func TestFitColumns(t *testing.T) {
	for _, tc := range []struct {
		in    []int
		total int
		want  []int
	}{
		{[]int{5, 10}, 80, []int{5, 10}},
		{[]int{9, 100, 17}, 80, []int{9, 50, 17}},
		{[]int{60, 60}, 80, []int{39, 39}},
		{[]int{30, 30, 30, 30, 30, 30, 30, 30}, 40, []int{12, 12, 12, 12, 12, 12, 12, 12}},
	} {
		if got := fitColumns(tc.in, tc.total); !slices.Equal(got, tc.want) {
			t.Errorf("fitColumns(%v, %d) = %v, want %v", tc.in, tc.total, got, tc.want)
		}
	}
}
