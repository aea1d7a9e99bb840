package main

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	a, onTerminal, err := terminalPassword(in, prompt, "Password: ")
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

func usersCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Manage the file auth plugin's users file"}
	var admin string
	init := &cobra.Command{
		Use:   "init FILE",
		Short: "Create a users file with one admin and a random password, printed once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw := rand.Text()
			hash, err := userfile.HashPassword(pw)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(args[0]), 0o700); err != nil {
				return err
			}
			f, err := os.OpenFile(args[0], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("create users file: %w", err)
			}
			_, err = fmt.Fprintf(f, "# Zoe users: username,password,role[,uid,gid]; role is guest, user or admin.\n"+
				"# Passwords may be bcrypt hashes (zoe hash-password) or plain text; prefer hashes.\n%s,%s,admin\n", admin, hash)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created %s with the admin user %q; its password, shown only now:\n\n    %s\n\n", args[0], admin, pw)
			return nil
		},
	}
	init.Flags().StringVar(&admin, "admin", "admin", "name of the admin user")
	cmd.AddCommand(init)
	return cmd
}
