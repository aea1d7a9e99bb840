package zapp

import (
	"errors"
	"fmt"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// MaxCommandLen bounds a service's command, in bytes. Linux takes at most
// 128 KiB in one argument; a longer script belongs in a file.
const MaxCommandLen = 64 << 10

// needsShell ends the message of a command that only a shell would run.
const needsShell = "Zoe runs the command without a shell: quote it to pass it as it is, " +
	"or write sh -c '...' to run a shell"

// SplitCommand splits a service's command into the words the container
// runs, with the quoting rules of a POSIX shell, as Docker's own clients
// and the original Zoe did: blanks separate words; single quotes keep
// everything they hold; double quotes keep everything but the escapes \\,
// \", \$ and \`; outside quotes a backslash keeps the character after it.
// Nothing is expanded, as no shell runs the command: *, ~ and braces (the
// command has no template variables) stay as written.
//
// A command that needs a shell is refused with what and where: a $
// (variables, $(...), $((...))), `...`, an operator (|, &, ;, &&, ||, a
// new line outside quotes, parentheses), a redirection, a comment, a
// keyword or a variable assignment as the first word. sh -c '...' runs a
// shell.
func SplitCommand(s string) ([]string, error) {
	if len(s) > MaxCommandLen {
		return nil, fmt.Errorf("must be at most %d bytes, got %d: put a long script in a file", MaxCommandLen, len(s))
	}
	// The parser recurses into nested constructs: a command of a million
	// "$((" would exhaust the stack, which kills the process. scan refuses
	// every construct that nests before the parser sees the command.
	if err := scan(s); err != nil {
		return nil, err
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX), syntax.KeepComments(true)).
		Parse(strings.NewReader(s), "")
	if err != nil {
		var pe syntax.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("cannot be split into words: at character %d: %s",
				charPos(s, int(pe.Pos.Offset())), pe.Text)
		}
		return nil, fmt.Errorf("cannot be split into words: %v", err)
	}
	// What follows checks what scan already refused, should the two ever
	// disagree: one simple command of plain words.
	if len(f.Stmts) == 0 {
		return nil, errors.New("holds no word: use null to keep the image's command")
	}
	st := f.Stmts[0]
	call, ok := st.Cmd.(*syntax.CallExpr)
	switch {
	case len(f.Stmts) > 1 || len(f.Last) > 0 || len(st.Comments) > 0 || !ok || st.Negated || st.Background ||
		st.Coprocess || st.Disown || len(st.Redirs) > 0:
		return nil, fmt.Errorf("is not one simple command; %s", needsShell)
	case len(call.Assigns) > 0:
		return nil, errors.New("starts with a variable assignment: set it in the service's environment")
	}
	words := make([]string, 0, len(call.Args))
	for _, w := range call.Args {
		var b strings.Builder
		for _, part := range w.Parts {
			if err := literal(&b, part, false); err != nil {
				return nil, fmt.Errorf("at character %d: %w; %s", charPos(s, int(part.Pos().Offset())), err, needsShell)
			}
		}
		words = append(words, b.String())
	}
	return words, nil
}

// literal appends the text of a word's part that holds no expansion.
func literal(b *strings.Builder, part syntax.WordPart, quoted bool) error {
	switch p := part.(type) {
	case *syntax.Lit:
		return unescape(b, p.Value, quoted)
	case *syntax.SglQuoted:
		if p.Dollar {
			return errors.New("$'...' needs a shell")
		}
		b.WriteString(p.Value)
		return nil
	case *syntax.DblQuoted:
		if p.Dollar {
			return errors.New(`$"..." needs a shell`)
		}
		for _, q := range p.Parts {
			if err := literal(b, q, true); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%s needs a shell", partName(part))
}

// unescape appends a literal as the shell reads it: the parser keeps the
// backslashes of the source (and drops those before a new line).
func unescape(b *strings.Builder, lit string, quoted bool) error {
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		switch {
		case c == '$':
			return errors.New("$ needs a shell")
		case c != '\\':
			b.WriteByte(c)
		case i+1 == len(lit):
			return errors.New("a backslash at the end escapes nothing")
		case !quoted || strings.IndexByte("$`\"\\\n", lit[i+1]) >= 0:
			i++
			if lit[i] != '\n' {
				b.WriteByte(lit[i])
			}
		default: // kept within double quotes
			b.WriteByte(c)
		}
	}
	return nil
}

func partName(p syntax.WordPart) string {
	switch p.(type) {
	case *syntax.ParamExp:
		return "a variable"
	case *syntax.CmdSubst:
		return "a command substitution"
	case *syntax.ArithmExp:
		return "an arithmetic expansion"
	}
	return "a shell expansion"
}

// scan refuses, in one pass without recursion, every construct that needs
// a shell and may nest; it says which, and where.
func scan(s string) error {
	const (
		plain = iota
		single
		double
	)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' && c != '\n' || c == 0x7f {
			// NUL ends a C string; the parser reads \r\n as \n.
			return fmt.Errorf("holds the control character %U at character %d", rune(c), charPos(s, i))
		}
	}
	quote, wordStart := plain, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch quote {
		case single:
			if c == '\'' {
				quote = plain
			}
			continue
		case double:
			switch c {
			case '\\':
				i++
			case '"':
				quote = plain
			case '$', '`':
				return refused(s, i)
			}
			continue
		}
		if c == ' ' || c == '\t' {
			wordStart = true
			continue
		}
		if c == '#' && wordStart {
			return fmt.Errorf("a comment (#) at character %d: %s", charPos(s, i), needsShell)
		}
		wordStart = false
		switch c {
		case '\\':
			i++
		case '\'':
			quote = single
		case '"':
			quote = double
		case '$', '`', '|', '&', ';', '<', '>', '(', ')', '\n':
			return refused(s, i)
		}
	}
	// The first word as written (quotes make a keyword a plain word): a
	// keyword or an assignment makes the rest a shell program.
	at := len(s) - len(strings.TrimLeft(s, " \t"))
	w := s[at:]
	if i := strings.IndexAny(w, " \t"); i >= 0 {
		w = w[:i]
	}
	if syntax.IsKeyword(w) || w == "{" || w == "}" {
		return fmt.Errorf("the shell keyword %s at character %d: %s", w, charPos(s, at), needsShell)
	}
	if name, _, ok := strings.Cut(w, "="); ok && syntax.ValidName(name) {
		return fmt.Errorf("starts with a variable assignment (%s=): set it in the service's environment", name)
	}
	return nil
}

// refused describes the character at s[i] that needs a shell.
func refused(s string, i int) error {
	what := ""
	switch c := s[i]; c {
	case '$':
		j := i + 1
		for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j == i+1 && j < len(s) && (s[j] == '(' || s[j] == '{') {
			j++
		}
		what = fmt.Sprintf("a shell expansion (%s)", short(s[i:j]))
	case '`':
		what = "a command substitution (`)"
	case '<', '>':
		what = fmt.Sprintf("a redirection (%c)", c)
	case '\n':
		what = "a new line"
	default:
		what = fmt.Sprintf("the shell operator %c", c)
	}
	return fmt.Errorf("%s at character %d: %s", what, charPos(s, i), needsShell)
}
