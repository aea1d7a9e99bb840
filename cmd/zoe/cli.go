package main

// The client side of the zoe command: the flags every API command shares,
// the credentials it resolves, and how it reports errors.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zoe-project/zoe/client"
)

// defaultAddr is where the CLI looks for Zoe without --addr, ZOE_ADDR or
// stored credentials.
const defaultAddr = "http://127.0.0.1:5001"

// Output formats.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// cli holds the shared flags of the API commands. One is made per run of
// the root command.
type cli struct {
	addr   string
	token  string
	user   string
	output string
	// getenv reads the environment (os.Getenv; replaced in unit tests).
	getenv func(string) string
	// source says where the credentials of the last client came from, for
	// the hint of a 401.
	source credSource
	// noPrompt: never ask for a password (shell completion runs unseen).
	noPrompt bool
}

func newCLI() *cli { return &cli{getenv: os.Getenv, output: outputTable} }

// credSource says where credentials came from.
type credSource struct {
	kind    string // "", "--token", "--user", "ZOE_TOKEN", "ZOE_USER", "stored"
	expired bool   // the stored token's expiry has passed
	// stored is what zoe login stored, whatever the kind (nil: nothing).
	stored *credentials
}

// addFlags registers the shared flags on cmd, for it and its
// subcommands: --addr, --token, --user and --output.
func (c *cli) addFlags(cmd *cobra.Command) {
	c.addAddrFlag(cmd)
	c.addOutputFlag(cmd)
	f := cmd.PersistentFlags()
	f.StringVar(&c.token, "token", "", "API token (default: $ZOE_TOKEN, else the one stored by zoe login); other users of the machine see command lines (ps): prefer $ZOE_TOKEN")
	f.StringVar(&c.user, "user", "", "log in with HTTP Basic as this user; the password comes from $ZOE_PASSWORD or is asked (default: $ZOE_USER)")
}

func (c *cli) addAddrFlag(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&c.addr, "addr", "", "Zoe's address (default: $ZOE_ADDR, else the one of zoe login, else "+defaultAddr+")")
}

func (c *cli) addOutputFlag(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVarP(&c.output, "output", "o", outputTable, "output format: table or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputTable, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
}

func (c *cli) json() bool { return c.output == outputJSON }

// run wraps an API command's body: it checks --output, and makes a 401
// say how to sign in.
func (c *cli) run(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if c.output != outputTable && c.output != outputJSON {
			return usageErrorf(cmd, "invalid --output %q: want table or json", c.output)
		}
		err := fn(cmd, args)
		var said *signInError
		var api *client.APIError
		if errors.As(err, &api) && api.Status == http.StatusUnauthorized && !errors.As(err, &said) {
			return &signInError{msg: c.signInMessage(api), err: err}
		}
		return err
	}
}

// signInError is a refused sign-in said in the command's words: which
// credentials were refused and what to do. It wraps the API's error.
type signInError struct {
	msg string
	err error
}

func (e *signInError) Error() string { return e.msg }
func (e *signInError) Unwrap() error { return e.err }

// signInMessage says why the credentials in force were refused (a 401):
// the API's message when it tells more than the command knows, without
// repeating its advice.
func (c *cli) signInMessage(api *client.APIError) string {
	switch c.source.kind {
	case "":
		// The API's message is for HTTP clients (send a bearer token).
		return "not signed in: log in with zoe login, or set ZOE_TOKEN, or ZOE_USER and ZOE_PASSWORD"
	case "stored":
		if c.source.expired {
			return "the token stored by zoe login has expired: log in again with zoe login"
		}
		return "the token stored by zoe login was refused (" + api.Message() + ")"
	case "--user", "ZOE_USER":
		user := c.user
		if c.source.kind == "ZOE_USER" {
			user = c.getenv("ZOE_USER")
		}
		return fmt.Sprintf("signing in as %s (%s) failed: %s", user, c.source.kind, api.Message())
	}
	return "the token of " + c.source.kind + " was refused: " + api.Message()
}

// resolvedAddr is the server's address: --addr, else ZOE_ADDR, else the
// stored credentials', else the default.
func (c *cli) resolvedAddr(stored *credentials) string {
	switch {
	case c.addr != "":
		return c.addr
	case c.getenv("ZOE_ADDR") != "":
		return c.getenv("ZOE_ADDR")
	case stored != nil && stored.Addr != "":
		return stored.Addr
	}
	return defaultAddr
}

// client makes an API client with the credentials in force: flags, then
// the environment, then the token zoe login stored (only for the address
// it was issued by).
func (c *cli) client(cmd *cobra.Command) (*client.Client, error) {
	// A broken or too open credentials file matters only when it would be
	// used: --token, --user and the environment come first.
	stored, _, loadErr := loadCredentials()
	explicit := c.token != "" || c.user != "" || c.getenv("ZOE_TOKEN") != "" || c.getenv("ZOE_USER") != ""
	if loadErr != nil && !explicit {
		return nil, loadErr
	}
	addr := c.resolvedAddr(stored)
	var opts []client.Option
	c.source = credSource{stored: stored}
	switch {
	case c.token != "":
		// As docker login --password does: the flag stays for scripts.
		fmt.Fprintln(cmd.ErrOrStderr(), "zoe: warning: --token shows the token to every user of this machine (ps); use $ZOE_TOKEN or zoe login")
		opts, c.source = append(opts, client.WithToken(c.token)), credSource{kind: "--token", stored: stored}
	case c.user != "":
		pw, err := c.password(cmd, c.user, "--user")
		if err != nil {
			return nil, err
		}
		opts, c.source = append(opts, client.WithBasicAuth(c.user, pw)), credSource{kind: "--user", stored: stored}
	case c.getenv("ZOE_TOKEN") != "":
		opts, c.source = append(opts, client.WithToken(c.getenv("ZOE_TOKEN"))), credSource{kind: "ZOE_TOKEN", stored: stored}
	case c.getenv("ZOE_USER") != "":
		user := c.getenv("ZOE_USER")
		pw, err := c.password(cmd, user, "ZOE_USER")
		if err != nil {
			return nil, err
		}
		opts, c.source = append(opts, client.WithBasicAuth(user, pw)), credSource{kind: "ZOE_USER", stored: stored}
	case stored != nil && sameAddr(stored.Addr, addr):
		// An expired token is not sent: it would make even the routes
		// open to anyone (zoe info) refuse the call.
		c.source = credSource{kind: "stored", expired: stored.expired(), stored: stored}
		if !c.source.expired {
			opts = append(opts, client.WithToken(stored.Token))
		}
	}
	opts = append(opts, client.WithUserAgent("zoe/"+version))
	cl, err := client.New(addr, opts...)
	if err != nil {
		return nil, usageError{cmd: cmd, err: err}
	}
	if cl.HasCredentials() {
		warnPlainHTTP(cmd, cl.Addr())
	}
	return cl, nil
}

// warnPlainHTTP warns that credentials go to addr unencrypted, unless it
// is https or this machine (loopback): anyone on the network path reads
// the password or token, and a token is as good as the password.
func warnPlainHTTP(cmd *cobra.Command, addr string) {
	u, err := client.ParseAddr(addr)
	if err != nil || u.Scheme != "http" {
		return
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); host == "localhost" || err == nil && ip.IsLoopback() {
		return
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "zoe: warning: credentials go to %s over plain HTTP, readable on the network; use an https:// address\n", u.Host)
}

// password is ZOE_PASSWORD, else asked on the terminal.
func (c *cli) password(cmd *cobra.Command, user, from string) (string, error) {
	if pw := c.getenv("ZOE_PASSWORD"); pw != "" {
		return pw, nil
	}
	if !c.noPrompt {
		if pw, ok, err := terminalPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), "Password for "+user+": "); ok || err != nil {
			return pw, err
		}
	}
	return "", fmt.Errorf("no password for %s (%s): set ZOE_PASSWORD", user, from)
}

// sameAddr compares two server addresses once normalised.
func sameAddr(a, b string) bool {
	ua, err1 := client.ParseAddr(a)
	ub, err2 := client.ParseAddr(b)
	return err1 == nil && err2 == nil && ua.String() == ub.String()
}

// ---------------------------------------------------------------------------
// Errors and exit codes

// usageError is a command used wrongly: exit code 2.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (u usageError) Error() string {
	if u.cmd == nil {
		return u.err.Error()
	}
	return fmt.Sprintf("%v (see %s --help)", u.err, u.cmd.CommandPath())
}

func (u usageError) Unwrap() error { return u.err }

func usageErrorf(cmd *cobra.Command, format string, args ...any) error {
	return usageError{cmd: cmd, err: fmt.Errorf(format, args...)}
}

// exitCode is the exit code for a command's error.
func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// errorLine is err as printed on stderr after "zoe: ": one line, except
// for a list of problems (a ZApp's, a command's several failures), which
// follows its headline one per line, indented, as zoe zapp validate
// prints them. Every line is escaped: the server's messages may quote what
// a client sent.
func errorLine(err error) string {
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	full := err.Error()
	head, items := full, []string(nil)
	var (
		api  *client.APIError
		list *listError
	)
	switch {
	case errors.As(err, &list) && strings.HasSuffix(full, list.Error()):
		head = strings.TrimSuffix(full, list.Error()) + list.head
		items = list.items
	case errors.As(err, &api) && len(api.Problems()) > 1 && strings.HasSuffix(full, api.Error()):
		// The error is the API's, after the command's context ("start
		// the execution: ").
		head = strings.TrimSuffix(full, api.Error()) + api.Message()
		for _, d := range api.Problems() {
			items = append(items, d.String())
		}
	}
	var b strings.Builder
	b.WriteString(safe(joinLines(head)))
	if len(items) > 0 {
		b.WriteString(":")
	}
	for _, it := range items {
		b.WriteString("\n  " + safe(joinLines(it)))
	}
	return b.String()
}

// joinLines joins the non-blank lines of s with "; ".
func joinLines(s string) string {
	var lines []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// listError is a failure made of several: a headline and one line per
// item. Its Error is one line; errorLine prints the items on lines of
// their own.
type listError struct {
	head  string
	items []string
	errs  []error
}

func (e *listError) Error() string { return e.head + ": " + strings.Join(e.items, "; ") }

// Unwrap gives the failures, for errors.Is and errors.As.
func (e *listError) Unwrap() []error { return e.errs }

// markUsageErrors makes every argument-count and flag error of cmd and its
// subcommands a usageError, and gives the command groups a body that
// refuses unknown subcommands (cobra would print the help and exit 0).
func markUsageErrors(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{cmd: c, err: err} })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasSubCommands() && !c.Runnable() {
			c.Args = cobra.ArbitraryArgs
			c.RunE = groupRun
		}
		if args := c.Args; args != nil {
			c.Args = func(cc *cobra.Command, a []string) error {
				if err := args(cc, a); err != nil {
					return usageError{cmd: cc, err: err}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(cmd)
}

// groupRun is the body of a command that only groups others: the help
// without arguments, a usage error with one.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageError{cmd: cmd, err: errors.New(msg)}
}
