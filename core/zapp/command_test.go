package zapp

import (
	"slices"
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string // in the error; "" for none
	}{
		{in: "python3 main.py --epochs 20", want: []string{"python3", "main.py", "--epochs", "20"}},
		{in: "sh -c 'echo a b'", want: []string{"sh", "-c", "echo a b"}},
		{in: `sh -c 'echo $HOME; ls | wc -l'`, want: []string{"sh", "-c", "echo $HOME; ls | wc -l"}},
		{in: `echo "a b" "c\"d" "\$x" "\\" "a\b"`, want: []string{"echo", "a b", `c"d`, "$x", `\`, `a\b`}},
		{in: `echo a\ b \$HOME \'x\' \\`, want: []string{"echo", "a b", "$HOME", "'x'", `\`}},
		{in: "echo 'it''s' \"it's\" it\\'s", want: []string{"echo", "its", "it's", "it's"}},
		{in: "start-notebook.sh --NotebookApp.token=''", want: []string{"start-notebook.sh", "--NotebookApp.token="}},
		{in: "  a\t b  ", want: []string{"a", "b"}},
		{in: "echo ''", want: []string{"echo", ""}},
		{in: "echo 'two\nlines'", want: []string{"echo", "two\nlines"}},
		{in: "a \\\nb", want: []string{"a", "b"}}, // an escaped new line joins the lines
		{in: "echo héllo 'wörld' \"日本\" ✓", want: []string{"echo", "héllo", "wörld", "日本", "✓"}},
		// No shell: globs, ~, braces and # within a word are plain text.
		{in: "ls *.go ~/x {a,b} {execution_id} a#b", want: []string{"ls", "*.go", "~/x", "{a,b}", "{execution_id}", "a#b"}},
		{in: `"if" then`, want: []string{"if", "then"}},
		{in: "A=1", err: "starts with a variable assignment (A=): set it in the service's environment"},
		{in: "env A=1 cmd", want: []string{"env", "A=1", "cmd"}},

		{in: "", err: "holds no word"},
		{in: " \t ", err: "holds no word"},
		{in: `sh -c 'echo a`, err: "cannot be split into words: at character 7: reached EOF without closing quote `'`"},
		{in: `echo "a`, err: "at character 6: reached EOF without closing quote `\"`"},
		{in: `echo a\`, err: "a backslash at the end escapes nothing"},
		{in: "echo $HOME", err: "a shell expansion ($HOME) at character 6: Zoe runs the command without a shell: " +
			"quote it to pass it as it is, or write sh -c '...' to run a shell"},
		{in: `echo "$HOME"`, err: "a shell expansion ($HOME) at character 7"},
		{in: "echo ${x:-y}", err: "a shell expansion (${) at character 6"},
		{in: "echo $(date)", err: "a shell expansion ($() at character 6"},
		{in: "echo $((1+1))", err: "a shell expansion ($() at character 6"},
		{in: "echo `date`", err: "a command substitution (`) at character 6"},
		{in: "echo $", err: "a shell expansion ($) at character 6"},
		{in: "echo $'x'", err: "a shell expansion ($) at character 6"},
		{in: "a|b", err: "the shell operator | at character 2"},
		{in: "a && b", err: "the shell operator & at character 3"},
		{in: "a; b", err: "the shell operator ; at character 2"},
		{in: "a &", err: "the shell operator & at character 3"},
		{in: "a\nb", err: "a new line at character 2"},
		{in: "a > out", err: "a redirection (>) at character 3"},
		{in: "cat <<EOF", err: "a redirection (<) at character 5"},
		{in: "(a)", err: "the shell operator ( at character 1"},
		{in: "if true", err: "the shell keyword if at character 1"},
		{in: "  ! a", err: "the shell keyword ! at character 3"},
		{in: "{ a", err: "the shell keyword { at character 1"},
		{in: "echo a # note", err: "a comment (#) at character 8"},
		{in: "echo é\x00", err: "holds the control character U+0000 at character 7"},
		{in: "sh -c 'a\r\nb'", err: "holds the control character U+000D at character 9"},
		{in: strings.Repeat("a", MaxCommandLen+1), err: "must be at most 65536 bytes"},
		// Nested deep, these would cost the parser megabytes of stack (or,
		// longer, kill the process).
		{in: strings.Repeat("$((", MaxCommandLen/3), err: "a shell expansion ($() at character 1"},
		{in: strings.Repeat("if ", 1<<14), err: "the shell keyword if"},
		{in: "a " + strings.Repeat("(", 1<<14), err: "the shell operator ( at character 3"},
		{in: `"` + strings.Repeat("`", 1<<14), err: "a command substitution (`) at character 2"},
	}
	for _, tt := range tests {
		name := tt.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			got, err := SplitCommand(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("SplitCommand(%q) = %q, %v; want an error with %q", name, got, err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("SplitCommand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// FuzzSplitCommand: SplitCommand never panics nor exhausts the stack, and
// the words it returns, quoted back, split into the same words.
func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{"sh -c 'echo a b'", "sh -c 'a\r\nb'", " \\\r\t", `a "b\"c" d\ e`, "a $b", "((((", "if a", "a#b #c", "'\"'\"'", `"\a\$"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitCommand(s)
		if err != nil {
			return
		}
		if len(words) == 0 {
			t.Fatalf("%q: no word and no error", s)
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		again, err := SplitCommand(strings.Join(quoted, " "))
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("%q: words %q, quoted back %q: %q, %v", s, words, quoted, again, err)
		}
	})
}
