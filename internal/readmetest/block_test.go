package readmetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBlock runs small walkthroughs through the harness, without Docker, to
// show that it carries the shell's state from command to command and fails
// on each outcome a marker can get wrong.
func TestBlock(t *testing.T) {
	const fence = "```"
	block := func(marker string, cmds ...string) string {
		return "<!-- walkthrough: " + marker + " -->\n" + fence + "sh\n" + strings.Join(cmds, "\n") + "\n" + fence + "\n"
	}
	tests := []struct {
		name    string
		readme  string
		wantErr string   // "": every block passes; else the last block's error holds it
		absent  []string // files the walkthrough must not have created
	}{
		{
			name: "exported variables and the directory carry over",
			readme: block(`a; stdout contains "1 sub"`, "export A=1", "mkdir sub && cd sub", `echo "$A $(basename "$PWD")"`) +
				block(`b; stdout contains "1 sub"`, `echo "$A $(basename "$PWD")"`),
		},
		{
			name:    "standard output without the text",
			readme:  block(`a; stdout contains "yes"; stdout contains "maybe"`, "echo yes", "echo no"),
			wantErr: `walkthrough "a": the standard output does not contain "maybe"`,
		},
		{
			name:    "a command that fails stops the block",
			readme:  block("a", "exit 3", "touch after"),
			wantErr: "README.md:3: exit code 3, want 0",
			absent:  []string{"after"},
		},
		{
			name:   "the last command's expected exit",
			readme: block("a; exit 1", "true", "false"),
		},
		{
			name:    "the last command's unexpected success",
			readme:  block("a; exit 1", "true"),
			wantErr: "README.md:3: exit code 0, want 1",
		},
		{
			name:   "skipped commands",
			readme: block(`a; skip "exit 9"`, "exit 9", "true"),
		},
		{
			name:   "Ctrl-C after the text",
			readme: block(`a; interrupt "echo ready" after "ready"; stdout contains "ready"`, "echo ready; sleep 600", "touch after"),
		},
		{
			name:    "Ctrl-C awaited text never printed",
			readme:  block(`a; interrupt "echo steady" after "ready"`, "echo steady"),
			wantErr: `README.md:3: ended without printing "ready"`,
		},
		{
			name: "the password users init printed",
			readme: block("a", `printf 'Created u.csv with the admin user "admin"; its password, shown only now:\n\n    s3cret\n\n'`) +
				block(`b; password PASSWORD; stdout contains "admin:s3cret s3cret"`, `echo admin:PASSWORD "$ZOE_PASSWORD"`),
		},
		{
			name:    "a password before it was printed",
			readme:  block("b; password PASSWORD", "echo admin:PASSWORD"),
			wantErr: `walkthrough "b" needs the admin's password`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks, err := Parse(tt.readme)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			w, err := newWalk(dir, filepath.Join(t.TempDir(), "shell"))
			if err != nil {
				t.Fatal(err)
			}
			for i, b := range blocks {
				err := w.block(t.Context(), t.Logf, b)
				last := i == len(blocks)-1
				switch {
				case err != nil && (!last || tt.wantErr == ""):
					t.Fatalf("block %q: %v", b.Name, err)
				case last && tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
					t.Fatalf("block %q: error %v, want one containing %q", b.Name, err, tt.wantErr)
				}
			}
			for _, f := range tt.absent {
				if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
					t.Errorf("%s exists: a command ran after a failed one", f)
				}
			}
		})
	}
}
