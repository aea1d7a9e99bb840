package htmlcheck

import (
	"net/url"
	"strings"
	"testing"
)

// doc wraps a body in a document that passes every check.
func doc(body string) string {
	return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Zoe</title>
<link rel="stylesheet" href="/static/zoe.css">
<script src="/static/zoe.js" defer></script>
</head>
<body>
` + body + `
</body>
</html>
`
}

var base = &url.URL{Scheme: "http", Host: "127.0.0.1:5001", Path: "/zoe/"}

func TestCheckGood(t *testing.T) {
	cases := map[string]string{
		"empty body": doc(""),
		"form with every kind of label": doc(`<form method="post" action="/zoe/login">
<input type="hidden" name="csrf" value="x">
<label for="user">User name</label> <input id="user" name="user">
<label>Password <input type="password" name="password"></label>
<input name="q" aria-label="Search">
<span id="memlabel">Memory</span> <input name="mem" aria-labelledby="memlabel">
<label for="kind">Kind</label> <select id="kind" name="kind"><option>a<option>b</select>
<label for="desc">Description</label> <textarea id="desc" name="desc">text</textarea>
<button type="submit">Log in</button> <input type="submit" value="Go"> <input type="reset">
<button type="button" aria-label="Close">×</button>
</form>`),
		"images and links on the daemon": doc(`<img src="/zoe/static/logo.png" alt="Zoe">
<img src="data:image/png;base64,AAAA" alt="">
<img srcset="/a.png 1x, http://127.0.0.1:5001/b.png 2x" src="a.png" alt="a">
<a href="http://127.0.0.1:5001/zoe/executions">Executions</a>
<a href="//127.0.0.1:5001/zoe/">Home</a> <a href="?page=2">Next</a> <a href="#main">Top</a>
<a href="mailto:admin@example.org">Admin</a>
<svg viewBox="0 0 10 10" aria-hidden="true"><rect width="10" height="10"/><use href="#x"/></svg>`),
		"optional end tags": doc(`<ul><li>one<li>two</ul><p>para<p>another
<table><thead><tr><th>a<th>b<tbody><tr><td>1<td>2</table><dl><dt>t<dd>d</dl>`),
		"json data block":        doc(`<script type="application/json" id="data">{"a": 1}</script>`),
		"br end tag":             doc(`line<br>two</br>`),
		"comment before doctype": "<!-- generated -->\n" + doc(""),
	}
	for name, page := range cases {
		t.Run(name, func(t *testing.T) {
			if problems := Check(strings.NewReader(page), base); len(problems) > 0 {
				t.Errorf("problems in a good page: %v", problems)
			}
		})
	}
}

func TestCheckBad(t *testing.T) {
	cases := []struct {
		name string
		page string
		want []string // each must be in the problems, "line N: rule: ..." prefix included
	}{
		{"no doctype", strings.TrimPrefix(doc(""), "<!DOCTYPE html>\n"),
			[]string{"line 1: structure: no <!DOCTYPE html> before <html>", "structure: no <!DOCTYPE html>"}},
		{"old doctype", strings.Replace(doc(""), "<!DOCTYPE html>", `<!DOCTYPE html PUBLIC "-//W3C//DTD HTML 4.01//EN">`, 1),
			[]string{"line 1: structure: the doctype is"}},
		{"fragment", `<p>hello</p>`, []string{
			"structure: no <!DOCTYPE html>", "structure: no <html> element", "structure: no <head> element",
			"structure: no <body> element", "structure: no <title> element", `structure: no <meta charset="utf-8">`}},
		{"no lang", strings.Replace(doc(""), ` lang="en"`, "", 1), []string{"line 2: structure: <html> has no lang"}},
		{"empty title", strings.Replace(doc(""), "<title>Zoe</title>", "<title> </title>", 1), []string{"structure: the title is empty"}},
		{"two bodies", doc("<body>"), []string{"line 10: structure: a second <body>"}},
		{"latin1", strings.Replace(doc(""), `charset="utf-8"`, `charset="latin1"`, 1), []string{`line 4: structure: charset "latin1", want utf-8`}},

		{"unclosed div", doc(`<div><span>x</div>`), []string{"line 10: parse: <span> is not closed before </div> on line 10"}},
		{"not closed", doc(`<main><div>`), []string{"line 10: parse: <main> is not closed before </body> on line 11", "line 10: parse: <div> is not closed"}},
		{"never closed", "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>x</title></head><body>\n<main><div>",
			[]string{"line 2: parse: <main> is never closed", "line 2: parse: <div> is never closed"}},
		{"stray end tag", doc(`</div>`), []string{"line 10: parse: </div> closes nothing"}},
		{"self-closing div", doc(`<div/>`), []string{`line 10: parse: <div> is not a void element`}},
		{"end tag of a void element", doc(`<input name="a" aria-label="A"></input>`), []string{"line 10: parse: </input>: input has no end tag"}},
		{"nested labels", doc(`<label>A <label>B</label></label>`), []string{"line 10: parse: a label inside a label"}},

		{"duplicate id", doc("<p id=\"x\">a</p>\n<p id=\"x\">b</p>"), []string{`line 11: duplicate-id: <p id="x">: the id "x" is used already on line 10`}},
		{"empty id", doc(`<p id="">a</p>`), []string{"line 10: duplicate-id: <p id=\"\">: an id may not be empty"}},
		{"id with a space", doc(`<p id="a b">a</p>`), []string{"an id may not be empty or hold spaces"}},

		{"input without label", doc(`<input name="user">`), []string{`line 10: label: <input name="user"> has no label`}},
		{"select without label", doc(`<select name="s"><option>a</select>`), []string{`label: <select name="s"> has no label`}},
		{"textarea without label", doc(`<textarea name="t"></textarea>`), []string{`label: <textarea name="t"> has no label`}},
		{"placeholder is no label", doc(`<input name="q" placeholder="Search">`), []string{`label: <input name="q"> has no label`}},
		{"label for another id", doc(`<label for="other">User</label><input id="user" name="user"><p id="other">x</p>`),
			[]string{`label: <input id="user" name="user"> has no label`}},
		{"label for a missing id", doc(`<label for="nope">User</label>`), []string{`label: a label is for "nope", which no element has as id`}},
		{"empty label", doc(`<label><input name="a"></label>`), []string{"line 10: label: a label with no text"}},
		{"labelledby a missing id", doc(`<input name="a" aria-labelledby="gone">`),
			[]string{`label: <input name="a">: aria-labelledby names "gone"`, `label: <input name="a"> has no label`}},
		{"empty button", doc(`<button type="submit"></button>`), []string{`label: <button type="submit"> has no text and no aria-label`}},
		{"icon button", doc(`<button><img src="/x.png" alt=""></button>`), []string{"label: <button> has no text"}},
		{"empty submit value", doc(`<input type="submit" value=" ">`), []string{"label: <input type=\"submit\"> has an empty value"}},

		{"image without alt", doc(`<img src="/logo.png">`), []string{`line 10: alt: <img src="/logo.png"> has no alt`}},
		{"image button without alt", doc(`<input type="image" src="/go.png">`), []string{`alt: <input type="image" src="/go.png"> has no alt`}},

		{"CDN script", doc(`<script src="https://cdn.example.com/lib.js"></script>`),
			[]string{`line 10: external: <script src="https://cdn.example.com/lib.js">: src="https://cdn.example.com/lib.js" points outside the daemon`}},
		{"protocol-relative image", doc(`<img src="//cdn.example.com/x.png" alt="x">`), []string{"external: <img src=\"//cdn.example.com/x.png\">: src=\"//cdn.example.com/x.png\" points outside"}},
		{"same host, other port", doc(`<a href="http://127.0.0.1:8080/">x</a>`), []string{"points outside the daemon"}},
		{"https to the daemon's http port", doc(`<a href="https://127.0.0.1/">x</a>`), []string{"points outside the daemon"}},
		{"backslashes", doc(`<a href="\\evil.example/x">x</a>`), []string{"points outside the daemon"}},
		{"style sheet", strings.Replace(doc(""), "/static/zoe.css", "https://fonts.example.com/css", 1), []string{"line 6: external:"}},
		{"form action", doc(`<form action="https://evil.example/steal"><button>Go</button></form>`), []string{`action="https://evil.example/steal" points outside`}},
		{"formaction", doc(`<button formaction="http://evil.example/">Go</button>`), []string{`formaction="http://evil.example/" points outside`}},
		{"srcset", doc(`<img src="/a.png" srcset="/a.png 1x, https://cdn.example.com/b.png 2x" alt="a">`), []string{`srcset="https://cdn.example.com/b.png" points outside`}},
		{"style url", doc(`<p style="background: url('https://cdn.example.com/bg.png')">x</p>`),
			[]string{"inline-style: <p> has a style attribute", `style="https://cdn.example.com/bg.png" points outside`}},
		{"style element", strings.Replace(doc(""), "</head>", "<style>@import \"https://fonts.example.com/a.css\"; p { background: url(//cdn.example.com/x.png) }</style></head>", 1),
			[]string{"line 8: inline-style: a <style> element", `url()="https://fonts.example.com/a.css" points outside`, `url()="//cdn.example.com/x.png" points outside`}},
		{"meta refresh", strings.Replace(doc(""), "</head>", `<meta http-equiv="refresh" content="0; URL='https://evil.example/'"></head>`, 1),
			[]string{`content="https://evil.example/" points outside`}},
		{"svg xlink", doc(`<svg aria-hidden="true"><image xlink:href="https://cdn.example.com/i.svg"/></svg>`), []string{`href="https://cdn.example.com/i.svg" points outside`}},
		{"javascript URL", doc(`<a href="javascript:alert(1)">x</a>`), []string{"external: <a href=\"javascript:alert(1)\">: href is a javascript: URL"}},
		{"javascript URL in disguise", doc("<a href=\" JaVa\tScRiPt:alert(1)\">x</a>"), []string{"is a javascript: URL"}},
		{"other scheme", doc(`<a href="ftp://files.example/x">x</a>`), []string{"has the scheme ftp"}},
		{"websocket elsewhere", doc(`<a href="wss://evil.example/ws">x</a>`), []string{"points outside the daemon"}},

		{"inline script", doc("<p>x</p>\n<script>\nalert(1)\n</script>"), []string{"line 11: inline-script: an inline script"}},
		{"script body beside src", doc(`<script src="/a.js">alert(1)</script>`), []string{"inline-script: an inline script"}},
		{"module script", doc(`<script type="module">import "/a.js"</script>`), []string{"inline-script: an inline script"}},
		{"event handler", doc(`<button type="button" onclick="go()">Go</button>`), []string{`line 10: inline-script: <button type="button"> has the event handler attribute onclick`}},
		{"event handler on body", strings.Replace(doc(""), "<body>", `<body onload="init()">`, 1), []string{"line 9: inline-script: <body> has the event handler attribute onload"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			problems := Check(strings.NewReader(c.page), base)
			var got []string
			for _, p := range problems {
				got = append(got, p.String())
			}
			all := strings.Join(got, "\n")
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("no problem %q; got:\n%s", w, all)
				}
			}
		})
	}
}

func TestCheckNilBase(t *testing.T) {
	// Without the page's URL every absolute URL is outside.
	page := doc(`<a href="http://127.0.0.1:5001/zoe/">x</a><a href="/zoe/">y</a>`)
	problems := Check(strings.NewReader(page), nil)
	if len(problems) != 1 || problems[0].Rule != RuleExternal || problems[0].Line != 10 {
		t.Errorf("problems %v, want the one absolute link on line 10", problems)
	}
}

func TestCheckTooLarge(t *testing.T) {
	page := doc(strings.Repeat("<p>x</p>", MaxSize/8+1))
	problems := Check(strings.NewReader(page), base)
	if len(problems) != 1 || !strings.Contains(problems[0].Msg, "larger than") {
		t.Errorf("problems %v, want one saying the page is too large", problems)
	}
}

func FuzzCheck(f *testing.F) {
	f.Add(doc(`<form><label>A <input name="a"></label></form>`))
	f.Add(`<p id=x><p id=x><img src=//a.b><script>x</script>`)
	f.Fuzz(func(t *testing.T, page string) {
		for _, p := range Check(strings.NewReader(page), base) {
			if p.Rule == "" || p.Msg == "" {
				t.Fatalf("a problem without rule or message: %#v", p)
			}
		}
	})
}
