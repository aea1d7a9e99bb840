package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestCommandsAreChecked(t *testing.T) {
	run := func(context.Context, []string) error { return nil }
	tests := []struct {
		name     string
		commands []Command
		wantErr  string
	}{
		{name: "none"},
		{name: "good ones", commands: []Command{{Name: "adduser", Run: run}, {Name: "check-2", Run: run}}},
		{name: "empty name", commands: []Command{{Run: run}}, wantErr: `command name ""`},
		{name: "a flag as name", commands: []Command{{Name: "-v", Run: run}}, wantErr: `command name "-v"`},
		{name: "upper case", commands: []Command{{Name: "AddUser", Run: run}}, wantErr: `command name "AddUser"`},
		{name: "space", commands: []Command{{Name: "add user", Run: run}}, wantErr: `command name "add user"`},
		{name: "built-in describe", commands: []Command{{Name: "describe", Run: run}}, wantErr: `"describe" is defined twice or is built in`},
		{name: "built-in help", commands: []Command{{Name: "help", Run: run}}, wantErr: `"help" is defined twice`},
		{name: "twice", commands: []Command{{Name: "a", Run: run}, {Name: "a", Run: run}}, wantErr: `"a" is defined twice`},
		{name: "no Run", commands: []Command{{Name: "a"}}, wantErr: `"a" has no Run`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var o options
			for _, c := range tc.commands {
				c.apply(&o)
			}
			err := o.check()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("check: %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestByHand(t *testing.T) {
	var gotArgs []string
	commands := []Command{
		{Name: "adduser", Usage: "FILE USER", Help: "add a user",
			Run: func(_ context.Context, args []string) error {
				gotArgs = args
				switch {
				case len(args) != 2:
					return fmt.Errorf("want FILE and USER, got %d arguments: %w", len(args), ErrUsage)
				case args[1] == "root":
					return errors.New("root may not be added")
				}
				return nil
			}},
	}
	describe := func(w io.Writer) error { _, err := io.WriteString(w, "{}\n"); return err }
	tests := []struct {
		name       string
		args       []string
		describe   func(io.Writer) error
		code       int
		stdout     []string
		stderr     []string
		wantArgs   []string
		noArgsSeen bool
	}{
		{name: "no command: usage on stderr", args: nil, code: 2,
			stderr: []string{"zoe-plugin-x is a Zoe plugin", "zoe-plugin-x describe", "zoe-plugin-x adduser FILE USER\n        add a user", "zoe-plugin-x help"}},
		{name: "help on stdout", args: []string{"help"}, code: 0,
			stdout: []string{"zoe-plugin-x adduser FILE USER", "add a user", "zoe-plugin-x describe"}},
		{name: "-h is help", args: []string{"-h"}, code: 0, stdout: []string{"zoe-plugin-x adduser"}},
		{name: "--help is help", args: []string{"--help"}, code: 0, stdout: []string{"zoe-plugin-x adduser"}},
		{name: "describe", args: []string{"describe"}, code: 0, stdout: []string{"{}\n"}},
		{name: "describe takes no arguments", args: []string{"describe", "x"}, code: 2, stderr: []string{"describe takes no arguments"}},
		{name: "describe fails", args: []string{"describe"}, code: 1,
			describe: func(io.Writer) error { return errors.New("two kinds") }, stderr: []string{"zoe-plugin-x describe: two kinds"}},
		{name: "a command gets its arguments", args: []string{"adduser", "u.csv", "alice"}, code: 0, wantArgs: []string{"u.csv", "alice"}},
		{name: "a command's usage error", args: []string{"adduser", "u.csv"}, code: 2,
			stderr: []string{"zoe-plugin-x adduser: want FILE and USER, got 1 arguments: wrong arguments", "usage: zoe-plugin-x adduser FILE USER"}},
		{name: "a command fails", args: []string{"adduser", "u.csv", "root"}, code: 1,
			stderr: []string{"zoe-plugin-x adduser: root may not be added"}},
		{name: "unknown command: usage on stderr", args: []string{"deluser", "alice"}, code: 2, noArgsSeen: true,
			stderr: []string{`unknown command "deluser"`, "zoe-plugin-x adduser FILE USER"}},
		{name: "commands are matched whole", args: []string{"add"}, code: 2, noArgsSeen: true, stderr: []string{`unknown command "add"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gotArgs = nil
			var stdout, stderr bytes.Buffer
			b := byHand{name: "zoe-plugin-x", stdout: &stdout, stderr: &stderr, commands: commands, describe: describe}
			if tc.describe != nil {
				b.describe = tc.describe
			}
			if code := b.run(t.Context(), tc.args); code != tc.code {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			for _, want := range tc.stdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			if len(tc.stdout) == 0 && stdout.Len() > 0 {
				t.Errorf("unexpected stdout %q", stdout.String())
			}
			if len(tc.stderr) == 0 && stderr.Len() > 0 {
				t.Errorf("unexpected stderr %q", stderr.String())
			}
			if tc.wantArgs != nil && strings.Join(gotArgs, "|") != strings.Join(tc.wantArgs, "|") {
				t.Errorf("Run got %q, want %q", gotArgs, tc.wantArgs)
			}
			if tc.noArgsSeen && gotArgs != nil {
				t.Errorf("Run ran with %q", gotArgs)
			}
		})
	}
}
