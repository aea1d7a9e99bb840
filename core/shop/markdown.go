package shop

import (
	"bytes"
	"fmt"
	"regexp"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer/html"
)

// renderer turns an entry's Markdown description into HTML that is safe to
// put in a page. One is built per scan: neither part is shared state.
type renderer struct {
	md     goldmark.Markdown
	policy *bluemonday.Policy
}

func newRenderer() *renderer {
	// Raw HTML is let through goldmark (the original's Markdown did the
	// same, and READMEs use it for images and line breaks) because the
	// sanitizer, not the renderer, is what makes the output safe.
	md := goldmark.New(
		goldmark.WithExtensions(extension.GFM),
		goldmark.WithRendererOptions(html.WithUnsafe()),
	)
	p := bluemonday.UGCPolicy()
	// Keep the language of fenced code blocks for client-side highlighting.
	p.AllowAttrs("class").Matching(regexp.MustCompile(`^language-[\w+#.-]+$`)).OnElements("code")
	return &renderer{md: md, policy: p}
}

// render converts Markdown to sanitized HTML.
func (r *renderer) render(src []byte) (string, error) {
	var buf bytes.Buffer
	if err := r.md.Convert(src, &buf); err != nil {
		return "", fmt.Errorf("rendering Markdown: %w", err)
	}
	return r.policy.SanitizeReader(&buf).String(), nil
}
