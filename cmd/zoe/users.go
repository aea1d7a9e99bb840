package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/zoe-project/zoe/plugins/auth-file/userfile"
)

func hashPasswordCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "hash-password",
		Short: "Print a bcrypt hash of a password, for the file auth plugin's users file",
		Long: "Reads a password (asked twice on a terminal, else the first line of standard input) " +
			"and prints its bcrypt hash, to put in the password column of a users file.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			hash, err := userfile.HashPassword(pw)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), hash)
			return nil
		},
	}
}

func readPassword(in io.Reader, prompt io.Writer) (string, error) {
	return readNewPassword(in, prompt, "Password: ")
}

// readNewPassword is a new password: asked twice on a terminal (the first
// time with ask), else the first line of in.
func readNewPassword(in io.Reader, prompt io.Writer, ask string) (string, error) {
	a, onTerminal, err := terminalPassword(in, prompt, ask)
	if err == nil && !onTerminal {
		a, err = firstLine(bufio.NewReader(in))
	}
	switch {
	case err != nil:
		return "", err
	case a == "":
		return "", errors.New("empty password")
	case !onTerminal:
		return a, nil
	}
	b, _, err := terminalPassword(in, prompt, "Again: ")
	if err != nil {
		return "", err
	}
	if a != b {
		return "", errors.New("the passwords differ")
	}
	return a, nil
}

// usersCmd is the old name of zoe users-file, kept hidden for the scripts
// that run zoe users init; it was too easily confused with zoe user (the
// API's users).
func usersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:    "users",
		Short:  "Deprecated: see zoe users-file (the users file) and zoe user (the API's users)",
		Hidden: true,
		Args:   cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageErrorf(cmd, "zoe users is now zoe users-file (the file auth plugin's users file, offline); "+
				"zoe user is the API's users (a running daemon)")
		},
	}
	var admin string
	var ifMissing bool
	init := &cobra.Command{
		Use:   "init FILE",
		Short: "Deprecated: zoe users-file init",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(cmd.ErrOrStderr(), "zoe: zoe users init is deprecated; use zoe users-file init")
			return runInit(cmd, args[0], admin, ifMissing)
		},
	}
	init.Flags().StringVar(&admin, "admin", "admin", "name of the admin user")
	init.Flags().BoolVar(&ifMissing, "if-missing", false, "do nothing, successfully, when FILE exists")
	cmd.AddCommand(init)
	return cmd
}
