package main

// zoe login, logout, info, health and token: signing in and who one is.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/zoe-project/zoe/client"
)

func loginCmd(c *cli) *cobra.Command {
	var (
		tokenName string
		ttl       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "login [--addr ADDR] [--user NAME] [--token-name NAME] [--ttl DURATION]",
		Short: "Sign in and store an API token for the next commands",
		Long: "Asks for the password (or takes $ZOE_PASSWORD; without a terminal, the first line of standard " +
			"input), gets a token from Zoe and stores it with the address in the user's configuration " +
			"directory (zoe/credentials.json, mode 0600). The next commands use it unless --token, --user, " +
			"$ZOE_TOKEN or $ZOE_USER say otherwise. A token stored before for the same server is revoked.",
		Args: cobra.NoArgs,
		RunE: c.run(func(cmd *cobra.Command, _ []string) error {
			if ttl < 0 {
				return usageErrorf(cmd, "--ttl must be positive")
			}
			old, _, err := loadCredentials()
			if err != nil {
				old = nil // replaced below
			}
			addr := c.resolvedAddr(old)
			in := bufio.NewReader(cmd.InOrStdin())
			user := c.user
			if user == "" {
				user = c.getenv("ZOE_USER")
			}
			if user == "" && old != nil && sameAddr(old.Addr, addr) {
				user = old.Username
			}
			if user == "" {
				if user, err = askUsername(cmd, in); err != nil {
					return err
				}
			}
			pw := c.getenv("ZOE_PASSWORD")
			if pw == "" {
				if pw, err = askPassword(cmd, in, user); err != nil {
					return err
				}
			}
			cl, err := client.New(addr, client.WithUserAgent("zoe/"+version))
			if err != nil {
				return usageError{cmd: cmd, err: err}
			}
			warnPlainHTTP(cmd, cl.Addr())
			s, err := cl.Login(cmd.Context(), client.Login{Username: user, Password: pw, TokenName: tokenName, TTL: int64(ttl / time.Second)})
			if err != nil {
				return loginError(cl.Addr(), user, err)
			}
			path, err := saveCredentials(&credentials{Addr: cl.Addr(), Username: s.User.Username, Token: s.Token,
				TokenID: s.TokenInfo.ID, TokenName: s.TokenInfo.Name, ExpiresAt: s.TokenInfo.ExpiresAt})
			if err != nil {
				return err
			}
			if old != nil && sameAddr(old.Addr, cl.Addr()) && old.TokenID != 0 && old.Token != s.Token {
				// Best effort: the old token would otherwise live on unused.
				if oc, err := client.New(old.Addr, client.WithToken(old.Token)); err == nil {
					_ = oc.RevokeToken(cmd.Context(), old.TokenID)
				}
			}
			if c.json() {
				s.Token = "" // only in the credentials file
				return writeJSON(cmd.OutOrStdout(), struct {
					TokenInfo client.TokenInfo `json:"token_info"`
					User      client.User      `json:"user"`
				}{s.TokenInfo, s.User})
			}
			expires := "never expires"
			if s.TokenInfo.ExpiresAt != nil {
				expires = "expires " + timePtr(s.TokenInfo.ExpiresAt)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged in to %s as %s (%s). Token %q %s; stored in %s.\n",
				cl.Addr(), safe(s.User.Username), safe(s.User.Role), s.TokenInfo.Name, expires, path)
			return nil
		}),
	}
	c.addAddrFlag(cmd)
	c.addOutputFlag(cmd)
	cmd.Flags().StringVar(&c.user, "user", "", "username (default: $ZOE_USER, else the one of the last login, else asked)")
	cmd.Flags().StringVar(&tokenName, "token-name", "", "name of the token in zoe token ls (default: chosen by the server)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "lifetime of the token, e.g. 8h or 720h (default: the server's, 24h)")
	return cmd
}

// loginError says why a login failed. A 401 is a wrong user name or
// password, which the API does not tell apart (a 429, logins locked after
// too many failures, says so and for how long in the API's words).
func loginError(addr, user string, err error) error {
	if client.IsStatus(err, http.StatusUnauthorized) {
		return &signInError{msg: fmt.Sprintf("log in to %s as %s: the user name or password is wrong", addr, user), err: err}
	}
	return fmt.Errorf("log in to %s as %s: %w", addr, user, err)
}

func askUsername(cmd *cobra.Command, in *bufio.Reader) (string, error) {
	f, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usageErrorf(cmd, "no username: give --user or set ZOE_USER")
	}
	fmt.Fprint(cmd.ErrOrStderr(), "Username: ")
	line, err := in.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if user := strings.TrimSpace(line); user != "" {
		return user, nil
	}
	return "", errors.New("no username")
}

// askPassword reads the password without echo on a terminal, else the
// first line of standard input.
func askPassword(cmd *cobra.Command, in *bufio.Reader, user string) (string, error) {
	pw, ok, err := terminalPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), "Password for "+user+": ")
	switch {
	case err != nil:
		return "", err
	case ok && pw == "":
		return "", errors.New("empty password")
	case ok:
		return pw, nil
	}
	pw, err = firstLine(in)
	if err == nil && pw == "" {
		err = errors.New("empty password: type it on standard input or set ZOE_PASSWORD")
	}
	return pw, err
}

// terminalPassword reads a line without echo when in is a terminal, after
// prompt; ok is false when in is not a terminal.
func terminalPassword(in io.Reader, w io.Writer, prompt string) (pw string, ok bool, err error) {
	f, isFile := in.(*os.File)
	if !isFile || !term.IsTerminal(int(f.Fd())) {
		return "", false, nil
	}
	fmt.Fprint(w, prompt)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(w)
	if err != nil {
		return "", true, fmt.Errorf("read the password: %w", err)
	}
	return string(b), true, nil
}

// firstLine is the first line of r, without its end.
func firstLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// logoutResult is zoe logout -o json.
type logoutResult struct {
	Addr    string `json:"addr,omitempty"`
	Revoked bool   `json:"revoked"`
	Deleted string `json:"deleted,omitempty"` // the credentials file, when there was one
}

func logoutCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Revoke the token zoe login stored and delete it",
		Long: "Revokes the token zoe login stored, on the server it was stored for, and deletes the " +
			"credentials file. With -o json, prints {\"addr\": ..., \"revoked\": ..., \"deleted\": FILE}.",
		Args: cobra.NoArgs,
		RunE: c.run(func(cmd *cobra.Command, _ []string) error {
			var res logoutResult
			report := func(text string) error {
				if c.json() {
					return writeJSON(cmd.OutOrStdout(), res)
				}
				_, err := fmt.Fprintln(cmd.OutOrStdout(), text)
				return err
			}
			stored, path, err := loadCredentials()
			if err != nil {
				// A broken or unsafe file goes all the same.
				if _, rerr := removeCredentials(); rerr != nil {
					return rerr
				}
				res.Deleted = path
				return report(fmt.Sprintf("Deleted %s.", path))
			}
			if stored == nil {
				return report("Not logged in.")
			}
			var revokeErr error
			if stored.TokenID != 0 {
				cl, err := client.New(stored.Addr, client.WithToken(stored.Token), client.WithUserAgent("zoe/"+version))
				if err == nil {
					err = cl.RevokeToken(cmd.Context(), stored.TokenID)
				}
				// An expired or revoked token is as good as revoked.
				if err != nil && !client.IsStatus(err, http.StatusUnauthorized) && !client.IsStatus(err, http.StatusNotFound) {
					revokeErr = err
				}
			}
			if _, err := removeCredentials(); err != nil {
				return err
			}
			if revokeErr != nil {
				return fmt.Errorf("deleted %s, but the token could not be revoked on %s: %w", path, stored.Addr, revokeErr)
			}
			res = logoutResult{Addr: stored.Addr, Revoked: true, Deleted: path}
			return report(fmt.Sprintf("Logged out of %s: token revoked, %s deleted.", stored.Addr, path))
		}),
	}
	c.addOutputFlag(cmd)
	return cmd
}

func infoCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show the server's version and deployment, and who you are signed in as",
		Args:  cobra.NoArgs,
		RunE: c.run(func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			info, err := cl.Info(cmd.Context())
			if err != nil {
				return err
			}
			if c.json() {
				return writeJSON(cmd.OutOrStdout(), info)
			}
			f := newFields(cmd.OutOrStdout())
			f.add("Server", cl.Addr())
			f.add("Zoe", info.Name+" "+info.Version)
			f.add("API", info.APIVersion)
			f.add("Deployment", info.DeploymentName)
			var meErr error
			if cl.HasCredentials() {
				var me *client.User
				if me, meErr = cl.Me(cmd.Context()); meErr == nil {
					f.add("User", fmt.Sprintf("%s (%s, quota %s)", me.Username, me.Role, me.Quota))
				}
				var q *client.QuotaUse
				if meErr == nil {
					if q, meErr = cl.MyQuota(cmd.Context()); meErr == nil {
						f.add("Using", quotaUse(*q))
					}
				}
			} else {
				f.add("User", "not signed in (zoe login)")
			}
			if err := f.flush(); err != nil {
				return err
			}
			return meErr
		}),
	}
	c.addFlags(cmd)
	return cmd
}

// quotaUse says what the active executions take of each limit.
func quotaUse(q client.QuotaUse) string {
	of := func(used string, limit string) string {
		if limit == "" {
			return used + " (no limit)"
		}
		return used + " of " + limit
	}
	var ex, cores, mem string
	if q.Quota.ConcurrentExecutions > 0 {
		ex = strconv.Itoa(q.Quota.ConcurrentExecutions)
	}
	if q.Quota.Cores > 0 {
		cores = strconv.FormatFloat(q.Quota.Cores, 'f', -1, 64)
	}
	if q.Quota.Memory > 0 {
		mem = size(q.Quota.Memory)
	}
	usedCores := strconv.FormatFloat(math.Round(q.Used.Cores*1000)/1000, 'f', -1, 64)
	return fmt.Sprintf("%s executions, %s cores, %s memory", of(strconv.Itoa(q.Used.Executions), ex),
		of(usedCores, cores), of(size(q.Used.Memory), mem))
}

func healthCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Show whether Zoe and its plugins work (details for admins); exit 1 when degraded",
		Args:  cobra.NoArgs,
		RunE: c.run(func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			h, err := cl.Health(cmd.Context())
			if err != nil {
				return err
			}
			if c.json() {
				err = writeJSON(cmd.OutOrStdout(), h)
			} else {
				err = printHealth(cmd.OutOrStdout(), h)
			}
			if err == nil && h.Status != "ok" {
				err = fmt.Errorf("zoe at %s is %s", cl.Addr(), h.Status)
			}
			return err
		}),
	}
	c.addFlags(cmd)
	return cmd
}

func printHealth(w io.Writer, h *client.Health) error {
	f := newFields(w)
	f.add("Status", h.Status)
	if h.State != nil {
		st := h.State.Store
		if h.State.Error != "" {
			st += ": " + h.State.Error
		} else if h.State.SchemaVersion != 0 {
			st += fmt.Sprintf(" (schema %d)", h.State.SchemaVersion)
		}
		f.add("State store", st)
	}
	if err := f.flush(); err != nil {
		return err
	}
	if len(h.Plugins) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	return printPlugins(w, h.Plugins)
}

func tokenCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "List and revoke API tokens (yours, or with --owner a user's: admins)"}
	// --owner, not --user: --user names who logs in (HTTP Basic).
	var owner string
	ls := &cobra.Command{
		Use:   "ls [--owner NAME]",
		Short: "List your tokens, or a user's (admins)",
		Args:  cobra.NoArgs,
		RunE: c.run(func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			var l *client.TokenList
			if owner != "" {
				l, err = cl.UserTokens(cmd.Context(), owner)
			} else {
				l, err = cl.Tokens(cmd.Context())
			}
			if err != nil {
				return err
			}
			if c.json() {
				return writeJSON(cmd.OutOrStdout(), l)
			}
			stored := c.source.stored // read by c.client
			t := newTable(cmd.OutOrStdout(), "ID", "NAME", "CREATED", "EXPIRES", "LAST USED", "")
			for _, tk := range l.Tokens {
				mark := ""
				if owner == "" && stored != nil && stored.TokenID == tk.ID && sameAddr(stored.Addr, cl.Addr()) {
					mark = "(stored by zoe login)"
				}
				t.row(tk.ID, tk.Name, timeLocal(tk.CreatedAt), orText(timePtr(tk.ExpiresAt), "never"), timePtr(tk.LastUsed), mark)
			}
			return t.flush()
		}),
	}
	rm := &cobra.Command{
		Use:   "rm [--owner NAME] ID...",
		Short: "Revoke tokens: yours, or a user's (admins)",
		Args:  cobra.MinimumNArgs(1),
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			revoke := (*client.Client).RevokeToken
			if owner != "" {
				revoke = func(cl *client.Client, ctx context.Context, id int64) error {
					return cl.RevokeUserToken(ctx, owner, id)
				}
			}
			return c.eachID(cmd, args, "revoke token", "Revoked token", "revoked", revoke)
		}),
	}
	for _, sub := range []*cobra.Command{ls, rm} {
		sub.Flags().StringVar(&owner, "owner", "", "the tokens of this user (admins)")
	}
	cmd.AddCommand(ls, rm)
	c.addFlags(cmd)
	return cmd
}

// parseIDs parses numeric ids given as arguments.
func parseIDs(cmd *cobra.Command, args []string) ([]int64, error) {
	ids := make([]int64, len(args))
	for i, a := range args {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			return nil, usageErrorf(cmd, "invalid id %q: want a positive integer", a)
		}
		ids[i] = id
	}
	return ids, nil
}
