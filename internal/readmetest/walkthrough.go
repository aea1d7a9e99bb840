// Package readmetest runs the README's walkthrough on a fresh clone (see
// readme_test.go). This file reads the walkthrough out of the README: the
// fenced shell blocks that an HTML comment marks, which the reader of the
// rendered README does not see.
//
// A marker is one line right before a ```sh block (blank lines between are
// allowed), a name then clauses separated by ';':
//
//	<!-- walkthrough: quickstart; daemon 127.0.0.1:5001; skip "make test" -->
//
// The clauses, each optional:
//
//	exit N                     the block's last command exits with N (default 0);
//	                           every other command must exit 0
//	stdout contains "TEXT"     the standard output of the block's commands holds TEXT
//	daemon ADDR                the last command is a daemon serving ADDR, as the README
//	                           says to run in another terminal: it runs in the
//	                           background until the walkthrough ends, and the block
//	                           is done when GET http://ADDR/api/v1/health answers 200
//	skip "PREFIX"              the commands starting with PREFIX are not run
//	interrupt "PREFIX" after "TEXT"
//	                           the command starting with PREFIX runs until its output
//	                           shows TEXT, then gets Ctrl-C (SIGINT), as the reader
//	                           stops a followed log
//	password WORD              WORD, as a whole word in the block, stands for the
//	                           admin's password, the one `zoe users init` (run by
//	                           `make run`) printed
//
// Quoted strings are Go's ("...", with backslash escapes). A block's commands
// are its lines, lines ending with a backslash joined to the next one, here
// documents kept with their command; blank lines and comment lines are not
// commands.
package readmetest

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Block is one marked shell block of the README.
type Block struct {
	Name     string
	Line     int // of the marker, 1-based
	Commands []Command
	Expect   Expect
}

// Command is one command of a block, as the reader would type it.
type Command struct {
	Text string
	Line int // of its first line in the README
}

// Expect is what a marker's clauses say of its block.
type Expect struct {
	Exit      int
	Stdout    []string
	Daemon    string // the address the daemon serves; "" when the block starts none
	Skip      []string
	Interrupt []Interrupt
	Password  string
}

// Interrupt is an interrupt clause.
type Interrupt struct {
	Prefix string // of the command
	After  string // the output it waits for
}

const markerOpen = "<!-- walkthrough:"

// Parse returns the README's marked blocks, in order, with every problem of
// their markers, each with its line.
func Parse(readme string) ([]Block, error) {
	lines := strings.Split(readme, "\n")
	var blocks []Block
	var errs []error
	names := map[string]int{} // name to line
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(line, markerOpen) {
			continue
		}
		b, next, err := parseBlock(lines, i)
		if err != nil {
			errs = append(errs, fmt.Errorf("README.md:%d: %w", i+1, err))
			continue
		}
		if at, ok := names[b.Name]; ok {
			errs = append(errs, fmt.Errorf("README.md:%d: walkthrough %q is already the name of README.md:%d", b.Line, b.Name, at))
		}
		names[b.Name] = b.Line
		blocks = append(blocks, b)
		i = next
	}
	return blocks, errors.Join(errs...)
}

// parseBlock reads the marker on lines[at] and the block after it; next is
// the index of the block's closing fence.
func parseBlock(lines []string, at int) (b Block, next int, err error) {
	marker := strings.TrimSpace(lines[at])
	body, ok := strings.CutSuffix(strings.TrimPrefix(marker, markerOpen), "-->")
	if !ok {
		return b, 0, errors.New("a walkthrough marker is one line ending with -->")
	}
	b.Line = at + 1
	if err := parseClauses(body, &b); err != nil {
		return b, 0, err
	}
	i := at + 1
	for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
		i++
	}
	if i == len(lines) || (strings.TrimSpace(lines[i]) != "```sh" && strings.TrimSpace(lines[i]) != "```bash") {
		return b, 0, errors.New("a walkthrough marker must be followed by a ```sh block")
	}
	start := i + 1
	end := start
	for end < len(lines) && strings.TrimSpace(lines[end]) != "```" {
		end++
	}
	if end == len(lines) {
		return b, 0, fmt.Errorf("the block of walkthrough %q has no closing ```", b.Name)
	}
	b.Commands, err = splitCommands(lines[start:end], start+1)
	if err != nil {
		return b, 0, err
	}
	if err := b.check(); err != nil {
		return b, 0, err
	}
	return b, end, nil
}

var (
	namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	wordPattern = regexp.MustCompile(`^\w+$`)
)

func parseClauses(body string, b *Block) error {
	clauses, err := splitClauses(body)
	if err != nil {
		return err
	}
	if len(clauses) == 0 || len(clauses[0]) != 1 || !namePattern.MatchString(clauses[0][0]) {
		return errors.New("a walkthrough marker starts with a name of lower-case letters, digits and '-'")
	}
	b.Name = clauses[0][0]
	for _, c := range clauses[1:] {
		switch {
		case len(c) == 2 && c[0] == "exit":
			n, err := strconv.Atoi(c[1])
			if err != nil || n < 0 || n > 255 {
				return fmt.Errorf("exit: %q is no exit code (0-255)", c[1])
			}
			b.Expect.Exit = n
		case len(c) == 3 && c[0] == "stdout" && c[1] == "contains":
			b.Expect.Stdout = append(b.Expect.Stdout, c[2])
		case len(c) == 2 && c[0] == "daemon":
			if b.Expect.Daemon != "" {
				return errors.New("one daemon per block")
			}
			b.Expect.Daemon = c[1]
		case len(c) == 2 && c[0] == "skip":
			b.Expect.Skip = append(b.Expect.Skip, c[1])
		case len(c) == 4 && c[0] == "interrupt" && c[2] == "after":
			b.Expect.Interrupt = append(b.Expect.Interrupt, Interrupt{Prefix: c[1], After: c[3]})
		case len(c) == 2 && c[0] == "password" && wordPattern.MatchString(c[1]):
			b.Expect.Password = c[1]
		default:
			return fmt.Errorf("unknown clause %q: the clauses are exit N, stdout contains \"TEXT\", daemon ADDR, "+
				"skip \"PREFIX\", interrupt \"PREFIX\" after \"TEXT\" and password WORD (letters, digits, '_')", strings.Join(c, " "))
		}
	}
	return nil
}

// splitClauses splits a marker's text into clauses of words, a quoted
// string being one word.
func splitClauses(s string) ([][]string, error) {
	var clauses [][]string
	var words []string
	flush := func() error {
		if len(words) == 0 {
			return errors.New("empty clause (two ';' in a row)")
		}
		clauses = append(clauses, words)
		words = nil
		return nil
	}
	for {
		s = strings.TrimLeft(s, " \t")
		switch {
		case s == "":
			if len(words) > 0 || len(clauses) > 0 {
				if err := flush(); err != nil {
					return nil, err
				}
			}
			return clauses, nil
		case s[0] == ';':
			if err := flush(); err != nil {
				return nil, err
			}
			s = s[1:]
		case s[0] == '"':
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, fmt.Errorf("unterminated or invalid quoted string at %s", s)
			}
			w, _ := strconv.Unquote(q)
			if w == "" {
				return nil, errors.New(`empty quoted string ""`)
			}
			words = append(words, w)
			s = s[len(q):]
		default:
			n := strings.IndexAny(s, " \t;\"")
			if n < 0 {
				n = len(s)
			}
			words = append(words, s[:n])
			s = s[n:]
		}
	}
}

var heredoc = regexp.MustCompile(`<<(-?)\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?`)

// splitCommands groups a block's lines (the first being README line first)
// into commands.
func splitCommands(lines []string, first int) ([]Command, error) {
	var cmds []Command
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimSpace(lines[i])
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		c := Command{Line: first + i}
		text := lines[i]
		for strings.HasSuffix(text, `\`) && i+1 < len(lines) {
			i++
			text += "\n" + lines[i]
		}
		if m := heredoc.FindStringSubmatch(text); m != nil && !strings.Contains(text, "<<<") {
			end := -1
			for j := i + 1; j < len(lines); j++ {
				l := lines[j]
				if m[1] == "-" {
					l = strings.TrimLeft(l, "\t")
				}
				if l == m[2] {
					end = j
					break
				}
			}
			if end < 0 {
				return nil, fmt.Errorf("README.md:%d: the here document has no closing %s line", c.Line, m[2])
			}
			text += "\n" + strings.Join(lines[i+1:end+1], "\n")
			i = end
		}
		c.Text = text
		cmds = append(cmds, c)
	}
	return cmds, nil
}

// check verifies that the clauses fit the block's commands, so that a
// marker left behind by an edit of its block is an error, not a no-op.
func (b *Block) check() error {
	for _, p := range b.Expect.Skip {
		if !b.hasPrefix(p) {
			return fmt.Errorf("skip %q: no command of walkthrough %q starts so", p, b.Name)
		}
	}
	for _, in := range b.Expect.Interrupt {
		if !b.hasPrefix(in.Prefix) {
			return fmt.Errorf("interrupt %q: no command of walkthrough %q starts so", in.Prefix, b.Name)
		}
	}
	if word := b.passwordWord(); word != nil && !word.MatchString(b.joined()) {
		return fmt.Errorf("password %s: walkthrough %q does not hold it", b.Expect.Password, b.Name)
	}
	run := b.Run()
	if len(run) == 0 {
		return fmt.Errorf("walkthrough %q has no command to run", b.Name)
	}
	if b.Expect.Daemon != "" && b.Expect.Exit != 0 {
		return errors.New("exit and daemon exclude each other: a daemon's exit is its stop")
	}
	return nil
}

// Run is the commands of the block that run: all but the skipped ones.
func (b *Block) Run() []Command {
	var out []Command
	for _, c := range b.Commands {
		if b.skipped(c) {
			continue
		}
		out = append(out, c)
	}
	return out
}

func (b *Block) skipped(c Command) bool {
	for _, p := range b.Expect.Skip {
		if strings.HasPrefix(c.Text, p) {
			return true
		}
	}
	return false
}

// InterruptAfter is the output after which c gets Ctrl-C, if any.
func (b *Block) InterruptAfter(c Command) (string, bool) {
	for _, in := range b.Expect.Interrupt {
		if strings.HasPrefix(c.Text, in.Prefix) {
			return in.After, true
		}
	}
	return "", false
}

// passwordWord matches the password clause's word as a word, so that
// PASSWORD stands for the password in admin:PASSWORD but not in
// $ZOE_PASSWORD; nil without the clause.
func (b *Block) passwordWord() *regexp.Regexp {
	if b.Expect.Password == "" {
		return nil
	}
	return regexp.MustCompile(`\b` + regexp.QuoteMeta(b.Expect.Password) + `\b`)
}

func (b *Block) hasPrefix(p string) bool {
	for _, c := range b.Commands {
		if strings.HasPrefix(c.Text, p) {
			return true
		}
	}
	return false
}

func (b *Block) joined() string {
	var s strings.Builder
	for _, c := range b.Commands {
		s.WriteString(c.Text)
		s.WriteByte('\n')
	}
	return s.String()
}
