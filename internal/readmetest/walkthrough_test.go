package readmetest

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/internal/testutil"
)

func TestParse(t *testing.T) {
	const fence = "```"
	tests := []struct {
		name   string
		readme string
		want   []Block
	}{
		{
			name:   "unmarked blocks are not run",
			readme: "# T\n\n" + fence + "sh\nmake run\n" + fence + "\n",
		},
		{
			name: "every clause",
			readme: "intro\n<!-- walkthrough: quick-1; daemon 127.0.0.1:5001; skip \"make test\"; " +
				"stdout contains \"a \\\"b\\\"\"; stdout contains \"c\" -->\n\n" + fence + "sh\n" +
				"# a comment\nmake run   # serves\n\nmake test\n" + fence + "\n" +
				"<!-- walkthrough: two; exit 1; password PASSWORD; interrupt \"bin/zoe exec logs\" after \"listening on\" -->\n" +
				fence + "bash\ncurl -u admin:PASSWORD \\\n  -d x 127.0.0.1:5001\nbin/zoe exec logs 1 -f\nfalse\n" + fence + "\n",
			want: []Block{
				{
					Name: "quick-1", Line: 2,
					Commands: []Command{{Text: "make run   # serves", Line: 6}, {Text: "make test", Line: 8}},
					Expect:   Expect{Daemon: "127.0.0.1:5001", Skip: []string{"make test"}, Stdout: []string{`a "b"`, "c"}},
				},
				{
					Name: "two", Line: 10,
					Commands: []Command{
						{Text: "curl -u admin:PASSWORD \\\n  -d x 127.0.0.1:5001", Line: 12},
						{Text: "bin/zoe exec logs 1 -f", Line: 14},
						{Text: "false", Line: 15},
					},
					Expect: Expect{Exit: 1, Password: "PASSWORD", Interrupt: []Interrupt{{Prefix: "bin/zoe exec logs", After: "listening on"}}},
				},
			},
		},
		{
			name: "a here document is part of its command",
			readme: "<!-- walkthrough: h -->\n" + fence + "sh\ncat > f.json <<'EOF'\n{\n# not a comment\n}\nEOF\n" +
				"cat <<-END\n\tx\n\tEND\nwc f.json\n" + fence + "\n",
			want: []Block{{
				Name: "h", Line: 1,
				Commands: []Command{
					{Text: "cat > f.json <<'EOF'\n{\n# not a comment\n}\nEOF", Line: 3},
					{Text: "cat <<-END\n\tx\n\tEND", Line: 8},
					{Text: "wc f.json", Line: 11},
				},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.readme)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const fence = "```"
	block := "\n" + fence + "sh\nmake run\nmake test\n" + fence + "\n"
	tests := []struct {
		name   string
		readme string
		want   string // in the error
	}{
		{"no name", "<!-- walkthrough: ; exit 0 -->" + block, "README.md:1: empty clause"},
		{"bad name", "<!-- walkthrough: Quick Start -->" + block, "starts with a name"},
		{"unknown clause", "<!-- walkthrough: q; stderr contains \"x\" -->" + block, `unknown clause "stderr contains x"`},
		{"bad exit", "<!-- walkthrough: q; exit -1 -->" + block, `"-1" is no exit code`},
		{"unterminated quote", "<!-- walkthrough: q; skip \"make -->" + block, "unterminated"},
		{"empty quote", "<!-- walkthrough: q; skip \"\" -->" + block, "empty quoted string"},
		{"two lines", "<!-- walkthrough: q;\nexit 0 -->" + block, "one line ending with -->"},
		{"no block", "<!-- walkthrough: q -->\ntext\n" + block, "followed by a ```sh block"},
		{"unclosed block", "<!-- walkthrough: q -->\n" + fence + "sh\nmake\n", "no closing ```"},
		{"skip of nothing", "<!-- walkthrough: q; skip \"make tests\" -->" + block, `skip "make tests": no command`},
		{"interrupt of nothing", "<!-- walkthrough: q; interrupt \"tail\" after \"x\" -->" + block, `interrupt "tail": no command`},
		{"password not in the block", "<!-- walkthrough: q; password PASSWORD -->" + block, "does not hold it"},
		{"password within a word only", "<!-- walkthrough: q; password PASSWORD -->\n" + fence + "sh\necho $ZOE_PASSWORD\n" + fence + "\n", "does not hold it"},
		{"password not a word", "<!-- walkthrough: q; password \"a b\" -->" + block, `unknown clause "password a b"`},
		{"everything skipped", "<!-- walkthrough: q; skip \"make\" -->" + block, "no command to run"},
		{"daemon and exit", "<!-- walkthrough: q; daemon 127.0.0.1:1; exit 1 -->" + block, "exclude each other"},
		{"two daemons", "<!-- walkthrough: q; daemon a:1; daemon b:2 -->" + block, "one daemon per block"},
		{"unclosed here document", "<!-- walkthrough: q -->\n" + fence + "sh\ncat <<EOF\nx\n" + fence + "\n", "no closing EOF line"},
		{"two of a name", "<!-- walkthrough: q -->" + block + "<!-- walkthrough: q -->" + block, `README.md:6: walkthrough "q" is already the name of README.md:1`},
		{"every error at once", "<!-- walkthrough: Q -->" + block + "\n<!-- walkthrough: q; exit x -->" + block,
			"README.md:1: a walkthrough marker starts with a name of lower-case letters, digits and '-'\nREADME.md:7: exit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.readme)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestREADMEMarkers checks the markers of the working tree's README, quickly
// and without Docker; TestREADMEWalkthrough runs them.
func TestREADMEMarkers(t *testing.T) {
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := Parse(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) == 0 {
		t.Fatal("the README marks no walkthrough block")
	}
}
