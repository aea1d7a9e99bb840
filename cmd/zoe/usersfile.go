package main

// zoe users-file: the file auth plugin's users file, edited offline and
// safely (userfile.Edit) while a daemon may be reading it. Named apart from
// zoe user, which is the API's view of the users.

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/zoe-project/zoe/plugins/auth-file/userfile"
	"github.com/zoe-project/zoe/sdk/auth"
)

const usersFileHelp = "Edits the users file of the file auth plugin (auth \"file\"), offline: one " +
	"username,password,role[,uid,gid] line per user; a password starting with '!' marks a disabled user. " +
	"Passwords are stored as bcrypt hashes. Each edit takes a lock beside the file (FILE.lock), checks the " +
	"result as the daemon would, and replaces the file atomically with the same mode and owner, keeping " +
	"comments and other lines as they are; a running daemon follows within seconds, no restart needed.\n\n" +
	"This is not zoe user, which shows and changes what Zoe's API keeps about users (role overrides, " +
	"enabled, quota) on a running daemon."

func usersFileCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users-file",
		Short: "Edit the file auth plugin's users file offline: add users, set passwords and roles",
		Long:  usersFileHelp,
	}
	cmd.AddCommand(usersFileInitCmd(), usersFileAddCmd(), usersFilePasswdCmd(), usersFileSetCmd(),
		usersFileDisableCmd(true), usersFileDisableCmd(false), usersFileRmCmd(), usersFileLsCmd())
	return cmd
}

// usersFileError adds to an edit's error what to do about it.
func usersFileError(file string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w; create it with zoe users-file init %s", err, file)
	case errors.Is(err, userfile.ErrUnknownUser):
		return fmt.Errorf("%w %s; zoe users-file ls %s lists them, zoe users-file add %s NAME adds one", err, file, file, file)
	case errors.Is(err, userfile.ErrUserExists):
		return fmt.Errorf("%w %s; change it with zoe users-file set|passwd %s NAME", err, file, file)
	case errors.Is(err, userfile.ErrNoPassword):
		return fmt.Errorf("%w %s; give one with zoe users-file passwd %s NAME, then enable it", err, file, file)
	case errors.Is(err, userfile.ErrInvalidFile):
		return fmt.Errorf("%s: %w", file, err)
	}
	return err
}

// edit applies fn to file, with the hints of usersFileError.
func edit(file string, fn func(*userfile.Doc) error) (bool, error) {
	changed, err := userfile.Edit(file, fn)
	if err != nil {
		return false, usersFileError(file, err)
	}
	return changed, nil
}

// loadUsers reads file as the daemon would.
func loadUsers(file string) (*userfile.Users, error) {
	u, err := userfile.Load(file)
	if err != nil {
		return nil, usersFileError(file, err)
	}
	return u, nil
}

// checkName refuses a username the file could not hold, as a usage error.
func checkName(cmd *cobra.Command, name string) error {
	if err := userfile.ValidUsername(name); err != nil {
		return usageErrorf(cmd, "invalid username %s: %v", strconv.Quote(name), err)
	}
	return nil
}

// roleFlag parses --role.
func roleFlag(cmd *cobra.Command, s string) (auth.Role, error) {
	r, err := auth.ParseRole(s)
	if err != nil {
		return "", usageErrorf(cmd, "invalid --role %s: want guest, user or admin", strconv.Quote(s))
	}
	return r, nil
}

// idFlags returns --uid and --gid when given.
func idFlags(cmd *cobra.Command, uid, gid uint32) (u, g *uint32) {
	if cmd.Flags().Changed("uid") {
		u = &uid
	}
	if cmd.Flags().Changed("gid") {
		g = &gid
	}
	return u, g
}

// newPassword reads a password (asked twice on a terminal, else the first
// line of standard input), or makes a random one when random is set; it
// returns the password and its bcrypt hash.
func newPassword(cmd *cobra.Command, name string, random bool) (pw, hash string, err error) {
	if random {
		pw = rand.Text()
	} else if pw, err = readNewPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), "New password for "+name+": "); err != nil {
		return "", "", err
	}
	hash, err = userfile.HashPassword(pw)
	if err != nil {
		return "", "", err
	}
	return pw, hash, nil
}

// printPassword shows a random password once, in the form zoe users-file
// init has always used (a line of its own, indented by four spaces).
func printPassword(w io.Writer, pw string) {
	fmt.Fprintf(w, "Its password, shown only now:\n\n    %s\n\n", pw)
}

// warnNoAdmin warns when file has no enabled admin left after an edit
// that may have removed the last one; another auth source may have one,
// so it is not refused.
func warnNoAdmin(cmd *cobra.Command, file string) {
	u, err := userfile.Load(file)
	if err != nil {
		return
	}
	for _, e := range u.Entries() {
		if e.Role == auth.RoleAdmin && !e.Disabled {
			return
		}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s has no enabled admin left; add one with zoe users-file add %s NAME --role admin\n",
		safe(file), safe(file))
}

// following is the note printed after a change: what the daemon does.
const following = "a running daemon follows within seconds"

func usersFileInitCmd() *cobra.Command {
	var admin string
	var ifMissing bool
	cmd := &cobra.Command{
		Use:   "init FILE [--admin NAME] [--if-missing]",
		Short: "Create a users file with one admin and a random password, printed once",
		Long: "Creates FILE (mode 0600, its directory 0700 if missing) with one admin user and a random " +
			"password, printed once. FILE must not exist: with --if-missing an existing FILE is left as it " +
			"is and the command succeeds, so that scripts can run it every time.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInit(cmd, args[0], admin, ifMissing)
		},
	}
	cmd.Flags().StringVar(&admin, "admin", "admin", "name of the admin user")
	cmd.Flags().BoolVar(&ifMissing, "if-missing", false, "do nothing, successfully, when FILE exists")
	return cmd
}

func runInit(cmd *cobra.Command, file, admin string, ifMissing bool) error {
	if err := checkName(cmd, admin); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	exists := func() error {
		if ifMissing {
			fmt.Fprintf(out, "%s exists: left as it is (zoe users-file ls %s lists its users; zoe users-file passwd %s NAME resets a password)\n",
				safe(file), safe(file), safe(file))
			return nil
		}
		return fmt.Errorf("%s exists; add users with zoe users-file add %s NAME, reset a password with zoe users-file passwd %s NAME", file, file, file)
	}
	// Checked first to spare the hashing; Create checks again under the lock.
	if _, err := os.Lstat(file); err == nil {
		return exists()
	}
	pw := rand.Text()
	hash, err := userfile.HashPassword(pw)
	if err != nil {
		return err
	}
	d := userfile.NewDoc([]byte("# Zoe users: username,password,role[,uid,gid]; role is guest, user or admin.\n" +
		"# Edit with zoe users-file (add, passwd, set, disable, enable, rm, ls); a password\n" +
		"# starting with '!' marks a disabled user.\n"))
	if err := d.Add(userfile.NewUser{Name: admin, Hash: hash, Role: auth.RoleAdmin}); err != nil {
		return err
	}
	err = userfile.Create(file, d.Bytes())
	switch {
	case errors.Is(err, fs.ErrExist):
		return exists()
	case err != nil:
		return err
	}
	fmt.Fprintf(out, "Created %s with the admin user %q; its password, shown only now:\n\n    %s\n\n", safe(file), admin, pw)
	return nil
}

func usersFileAddCmd() *cobra.Command {
	var (
		role     string
		uid, gid uint32
		random   bool
		disabled bool
	)
	cmd := &cobra.Command{
		Use:   "add FILE NAME [--role R] [--uid N] [--gid N] [--random-password] [--disabled]",
		Short: "Add a user; the password is asked twice, read from standard input, or made up",
		Long: "Adds the user NAME to FILE with a bcrypt hash of its password: asked twice on a terminal, " +
			"else the first line of standard input; with --random-password, a random one printed once. " +
			"The role is user unless --role says guest or admin.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, name := args[0], args[1]
			if err := checkName(cmd, name); err != nil {
				return err
			}
			r, err := roleFlag(cmd, role)
			if err != nil {
				return err
			}
			u, g := idFlags(cmd, uid, gid)
			// Checked before asking for a password, and again under the lock.
			users, err := loadUsers(file)
			if err != nil {
				return err
			}
			if _, ok := users.Lookup(name); ok {
				return usersFileError(file, fmt.Errorf("user %q %w", name, userfile.ErrUserExists))
			}
			pw, hash, err := newPassword(cmd, name, random)
			if err != nil {
				return err
			}
			if _, err := edit(file, func(d *userfile.Doc) error {
				return d.Add(userfile.NewUser{Name: name, Hash: hash, Role: r, UID: u, GID: g, Disabled: disabled})
			}); err != nil {
				return err
			}
			state := ""
			if disabled {
				state = ", disabled"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added %s (%s%s) to %s; %s.\n", name, r, state, safe(file), following)
			if random {
				printPassword(cmd.OutOrStdout(), pw)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "user", "guest, user or admin")
	cmd.Flags().Uint32Var(&uid, "uid", 0, "the user's POSIX uid (default: none)")
	cmd.Flags().Uint32Var(&gid, "gid", 0, "the user's POSIX gid (default: none)")
	cmd.Flags().BoolVar(&random, "random-password", false, "make up a random password and print it once")
	cmd.Flags().BoolVar(&disabled, "disabled", false, "add the user disabled")
	return cmd
}

func usersFilePasswdCmd() *cobra.Command {
	var random bool
	cmd := &cobra.Command{
		Use:   "passwd FILE NAME [--random-password]",
		Short: "Set a user's password: asked twice, read from standard input, or made up",
		Long: "Replaces NAME's password in FILE by a bcrypt hash of a new one: asked twice on a terminal, " +
			"else the first line of standard input; with --random-password, a random one printed once. " +
			"The old password stops working within seconds on a running daemon. A disabled user stays " +
			"disabled (zoe users-file enable).",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, name := args[0], args[1]
			if err := checkName(cmd, name); err != nil {
				return err
			}
			users, err := loadUsers(file)
			if err != nil {
				return err
			}
			e, ok := users.Lookup(name)
			if !ok {
				return usersFileError(file, fmt.Errorf("user %q %w", name, userfile.ErrUnknownUser))
			}
			pw, hash, err := newPassword(cmd, name, random)
			if err != nil {
				return err
			}
			if _, err := edit(file, func(d *userfile.Doc) error { return d.SetPassword(name, hash) }); err != nil {
				return err
			}
			note := ""
			if e.Disabled {
				note = fmt.Sprintf(" %s stays disabled: zoe users-file enable %s %s.", name, safe(file), name)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Set the password of %s in %s; %s.%s\n", name, safe(file), following, note)
			if random {
				printPassword(cmd.OutOrStdout(), pw)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&random, "random-password", false, "make up a random password and print it once")
	return cmd
}

func usersFileSetCmd() *cobra.Command {
	var (
		role     string
		uid, gid uint32
		clearIDs bool
	)
	cmd := &cobra.Command{
		Use:   "set FILE NAME [--role R] [--uid N] [--gid N] [--clear-ids]",
		Short: "Change a user's role, uid or gid",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, name := args[0], args[1]
			if err := checkName(cmd, name); err != nil {
				return err
			}
			var c userfile.Change
			if cmd.Flags().Changed("role") {
				r, err := roleFlag(cmd, role)
				if err != nil {
					return err
				}
				c.Role = &r
			}
			c.UID, c.GID = idFlags(cmd, uid, gid)
			c.ClearIDs = clearIDs
			switch {
			case c.Role == nil && c.UID == nil && c.GID == nil && !clearIDs:
				return usageErrorf(cmd, "nothing to change: give --role, --uid, --gid or --clear-ids")
			case clearIDs && (c.UID != nil || c.GID != nil):
				return usageErrorf(cmd, "--clear-ids empties both ids: give it alone, or --uid and --gid alone")
			}
			changed, err := edit(file, func(d *userfile.Doc) error { return d.Set(name, c) })
			if err != nil {
				return err
			}
			if !changed {
				fmt.Fprintf(cmd.OutOrStdout(), "%s in %s is already so; nothing written.\n", name, safe(file))
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Changed %s in %s; %s.\n", name, safe(file), following)
			warnNoAdmin(cmd, file)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "guest, user or admin")
	cmd.Flags().Uint32Var(&uid, "uid", 0, "the user's POSIX uid")
	cmd.Flags().Uint32Var(&gid, "gid", 0, "the user's POSIX gid")
	cmd.Flags().BoolVar(&clearIDs, "clear-ids", false, "remove the uid and gid")
	return cmd
}

// usersFileDisableCmd is disable (disable true) or enable.
func usersFileDisableCmd(disable bool) *cobra.Command {
	verb, short, done := "enable", "Enable a disabled user again, with the password it had", "Enabled"
	if disable {
		verb, short, done = "disable", "Disable a user, keeping its password: to the daemon it is gone, as if removed", "Disabled"
	}
	return &cobra.Command{
		Use:   verb + " FILE NAME",
		Short: short,
		Long: short + ". A disabled user's password field starts with '!'. Within seconds a running daemon " +
			"refuses its logins and, as for a removed user, revokes its tokens, ends its active executions and " +
			"clears what zoe user set gave it (role, quota); enabling restores the password, not those. " +
			"zoe user set NAME --disable is the daemon's own switch, kept in its state rather than in the file.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, name := args[0], args[1]
			if err := checkName(cmd, name); err != nil {
				return err
			}
			changed, err := edit(file, func(d *userfile.Doc) error {
				_, err := d.SetDisabled(name, disable)
				return err
			})
			if err != nil {
				return err
			}
			if !changed {
				fmt.Fprintf(cmd.OutOrStdout(), "%s in %s is %sd already; nothing written.\n", name, safe(file), verb)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s in %s; %s.\n", done, name, safe(file), following)
			if disable {
				fmt.Fprintf(cmd.OutOrStdout(), "To the daemon %s is gone: tokens revoked, active executions ended.\n", name)
				warnNoAdmin(cmd, file)
			}
			return nil
		},
	}
}

func usersFileRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm FILE NAME...",
		Short: "Remove users; none is removed when one of them is not in the file",
		Long: "Removes the users' lines from FILE; a running daemon revokes their tokens and ends their " +
			"executions within seconds. When a name is not in FILE, nothing is removed.",
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, names := args[0], args[1:]
			for _, n := range names {
				if err := checkName(cmd, n); err != nil {
					return err
				}
			}
			if _, err := edit(file, func(d *userfile.Doc) error { return d.Remove(names...) }); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed %d user(s) from %s; %s.\n", len(names), safe(file), following)
			warnNoAdmin(cmd, file)
			return nil
		},
	}
}

// usersFileEntry is a user in zoe users-file ls -o json. It holds no
// secret: the password's kind only.
type usersFileEntry struct {
	Username string  `json:"username"`
	Role     string  `json:"role"`
	UID      *uint32 `json:"uid,omitempty"`
	GID      *uint32 `json:"gid,omitempty"`
	// Password is "bcrypt", "plain" or "none".
	Password string `json:"password"`
	Disabled bool   `json:"disabled"`
	Line     int    `json:"line"`
}

func usersFileLsCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "ls FILE [-o json]",
		Short: "List the users of a users file: names, roles, ids, disabled (never passwords)",
		Long: "Lists FILE's users after checking it as the daemon does (mode 0600, every line valid). " +
			"The PASSWORD column says bcrypt, plain (plain text: replace it with zoe users-file passwd) or none.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != outputTable && output != outputJSON {
				return usageErrorf(cmd, "invalid --output %q: want table or json", output)
			}
			users, err := loadUsers(args[0])
			if err != nil {
				return err
			}
			list := []usersFileEntry{}
			plain := 0
			for _, e := range users.Entries() {
				kind := "bcrypt"
				switch {
				case e.NoPassword:
					kind = "none"
				case !e.Hashed:
					kind = "plain"
					plain++
				}
				list = append(list, usersFileEntry{Username: e.Username, Role: string(e.Role), UID: e.UID, GID: e.GID,
					Password: kind, Disabled: e.Disabled, Line: e.Line})
			}
			if plain > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d user(s) of %s have a plain-text password: set hashes with zoe users-file passwd %s NAME\n",
					plain, safe(args[0]), safe(args[0]))
			}
			if output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), struct {
					Users []usersFileEntry `json:"users"`
				}{list})
			}
			t := newTable(cmd.OutOrStdout(), "USERNAME", "ROLE", "UID", "GID", "PASSWORD", "DISABLED")
			for _, e := range list {
				t.row(e.Username, e.Role, idText(e.UID), idText(e.GID), e.Password, yesNo(e.Disabled))
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "output format: table or json")
	return cmd
}

func idText(id *uint32) string {
	if id == nil {
		return "-"
	}
	return strconv.FormatUint(uint64(*id), 10)
}
