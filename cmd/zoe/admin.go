package main

// Admin commands: zoe user, zoe quota and zoe plugin.

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/config"
)

func userCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "List and change the users the daemon knows (admins; the users file itself: zoe users-file)"}
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the users Zoe knows (those who signed in once)",
		Args:    cobra.NoArgs,
		RunE: c.run(func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			l, err := cl.Users(cmd.Context())
			if err != nil {
				return err
			}
			if c.json() {
				return writeJSON(cmd.OutOrStdout(), l)
			}
			t := newTable(cmd.OutOrStdout(), "USERNAME", "ROLE", "ENABLED", "QUOTA", "LAST LOGIN")
			for _, u := range l.Users {
				t.row(u.Username, u.Role, yesNo(u.Enabled), u.Quota, timeLocal(u.LastLogin))
			}
			return t.flush()
		}),
	}
	get := &cobra.Command{
		Use:               "get NAME",
		Aliases:           []string{"show"},
		Short:             "Show a user",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeUser,
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			u, err := cl.GetUser(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return c.printUser(cmd, u)
		}),
	}
	cmd.AddCommand(ls, get, userSetCmd(c))
	c.addFlags(cmd)
	return cmd
}

func (c *cli) printUser(cmd *cobra.Command, u *client.User) error {
	if c.json() {
		return writeJSON(cmd.OutOrStdout(), u)
	}
	f := newFields(cmd.OutOrStdout())
	f.add("Username", u.Username)
	f.add("Role", u.Role)
	f.add("Enabled", yesNo(u.Enabled))
	f.add("Quota", u.Quota)
	f.add("Groups", strings.Join(u.Groups, ", "))
	if u.UID != nil {
		f.add("UID", *u.UID)
	}
	if u.GID != nil {
		f.add("GID", *u.GID)
	}
	f.add("Email", u.Email)
	if u.AuthEmail != u.Email {
		f.add("Email (auth source)", u.AuthEmail)
	}
	f.add("Created", timeLocal(u.CreatedAt))
	f.add("Last login", timeLocal(u.LastLogin))
	return f.flush()
}

func userSetCmd(c *cli) *cobra.Command {
	var (
		role            string
		enable, disable bool
		quota           string
		defaultQuota    bool
		email           string
	)
	cmd := &cobra.Command{
		Use:               "set NAME [--role ROLE] [--enable|--disable] [--quota QUOTA|--default-quota] [--email ADDRESS]",
		Short:             "Change a user's role, whether they may sign in, their quota or their e-mail address",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeUser,
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			var u client.UserUpdate
			if cmd.Flags().Changed("role") {
				u.Role = &role
			}
			switch {
			case enable && disable:
				return usageErrorf(cmd, "give --enable or --disable, not both")
			case enable || disable:
				u.Enabled = &enable
			}
			switch {
			case cmd.Flags().Changed("quota") && defaultQuota:
				return usageErrorf(cmd, "give --quota or --default-quota, not both")
			case cmd.Flags().Changed("quota"):
				if quota == "" {
					return usageErrorf(cmd, "--quota needs a name; --default-quota returns to the role's default")
				}
				u.Quota = &quota
			case defaultQuota:
				none := ""
				u.Quota = &none
			}
			if cmd.Flags().Changed("email") {
				u.Email = &email
			}
			if u.Role == nil && u.Enabled == nil && u.Quota == nil && u.Email == nil {
				return usageErrorf(cmd, "nothing to change: give --role, --enable, --disable, --quota, --default-quota or --email")
			}
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			user, err := cl.UpdateUser(cmd.Context(), args[0], u)
			if err != nil {
				return err
			}
			return c.printUser(cmd, user)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "guest, user or admin")
	f.BoolVar(&enable, "enable", false, "let the user sign in")
	f.BoolVar(&disable, "disable", false, "refuse the user's sign-ins and tokens")
	f.StringVar(&quota, "quota", "", "the quota that applies to the user (see zoe quota ls)")
	f.BoolVar(&defaultQuota, "default-quota", false, "return the user to their role's default quota")
	f.StringVar(&email, "email", "", `the address notifications go to, over the auth source's ("" returns to it)`)
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions([]string{"guest", "user", "admin"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("quota", c.completeQuota)
	return cmd
}

func quotaCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "quota", Aliases: []string{"quotas"}, Short: "List, create, change and delete quotas (admins)"}
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the quotas",
		Args:    cobra.NoArgs,
		RunE: c.run(func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			l, err := cl.Quotas(cmd.Context())
			if err != nil {
				return err
			}
			if c.json() {
				return writeJSON(cmd.OutOrStdout(), l)
			}
			t := newTable(cmd.OutOrStdout(), "NAME", "EXECUTIONS", "CORES", "MEMORY", "RUN TIME")
			for _, q := range l.Quotas {
				t.row(q.Name, limitCount(q.ConcurrentExecutions), limitCores(q.Cores), limitSize(q.Memory), limitSeconds(q.RuntimeLimit))
			}
			return t.flush()
		}),
	}
	get := &cobra.Command{
		Use:               "get NAME",
		Aliases:           []string{"show"},
		Short:             "Show a quota",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeQuota,
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			q, err := cl.GetQuota(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return c.printQuota(cmd, q)
		}),
	}
	rm := &cobra.Command{
		Use:               "rm NAME...",
		Aliases:           []string{"delete"},
		Short:             "Delete quotas; their users get their role's default",
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: c.completeQuota,
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			return each(c, cmd, args, "delete quota", "Deleted quota", "deleted", (*client.Client).DeleteQuota)
		}),
	}
	cmd.AddCommand(ls, get, quotaWriteCmd(c, true), quotaWriteCmd(c, false), rm)
	c.addFlags(cmd)
	return cmd
}

func (c *cli) printQuota(cmd *cobra.Command, q *client.Quota) error {
	if c.json() {
		return writeJSON(cmd.OutOrStdout(), q)
	}
	f := newFields(cmd.OutOrStdout())
	f.add("Name", q.Name)
	f.add("Executions", limitCount(q.ConcurrentExecutions))
	f.add("Cores", limitCores(q.Cores))
	f.add("Memory", limitSize(q.Memory))
	f.add("Run time", limitSeconds(q.RuntimeLimit))
	return f.flush()
}

// quotaWriteCmd is zoe quota create (create) or zoe quota set.
func quotaWriteCmd(c *cli, create bool) *cobra.Command {
	var (
		executions      int
		coresF          float64
		memory, runtime string
	)
	use, short := "set NAME [--executions N] [--cores C] [--memory SIZE] [--runtime DURATION]",
		"Change some of a quota's limits"
	if create {
		use, short = "create NAME [--executions N] [--cores C] [--memory SIZE] [--runtime DURATION]",
			"Create a quota; a limit left out, or 0, is unlimited"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			if !create && !fl.Changed("executions") && !fl.Changed("cores") && !fl.Changed("memory") && !fl.Changed("runtime") {
				return usageErrorf(cmd, "nothing to change: give --executions, --cores, --memory or --runtime")
			}
			if executions < 0 {
				return usageErrorf(cmd, "--executions must be 0 (unlimited) or more")
			}
			if coresF < 0 || math.IsNaN(coresF) || math.IsInf(coresF, 0) {
				return usageErrorf(cmd, "--cores must be 0 (unlimited) or more")
			}
			var (
				mem, rt int64
				err     error
			)
			if fl.Changed("memory") {
				if mem, err = parseLimitSize(memory); err != nil {
					return usageErrorf(cmd, "--memory: %v", err)
				}
			}
			if fl.Changed("runtime") {
				if rt, err = parseLimitDuration(runtime); err != nil {
					return usageErrorf(cmd, "--runtime: %v", err)
				}
			}
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			q := &client.Quota{Name: args[0]}
			if !create {
				if q, err = cl.GetQuota(cmd.Context(), args[0]); err != nil {
					return err
				}
			}
			if fl.Changed("executions") {
				q.ConcurrentExecutions = executions
			}
			if fl.Changed("cores") {
				q.Cores = coresF
			}
			if fl.Changed("memory") {
				q.Memory = mem
			}
			if fl.Changed("runtime") {
				q.RuntimeLimit = rt
			}
			if create {
				q, err = cl.CreateQuota(cmd.Context(), *q)
			} else {
				q, err = cl.UpdateQuota(cmd.Context(), args[0], *q)
			}
			if err != nil {
				return err
			}
			return c.printQuota(cmd, q)
		}),
	}
	if !create {
		cmd.ValidArgsFunction = c.completeQuota
	}
	f := cmd.Flags()
	f.IntVar(&executions, "executions", 0, "executions at a time (0: unlimited)")
	f.Float64Var(&coresF, "cores", 0, "cores reserved at a time (0: unlimited)")
	f.StringVar(&memory, "memory", "0", "memory reserved at a time, e.g. 4GiB (0: unlimited)")
	f.StringVar(&runtime, "runtime", "0", "how long an execution may run, e.g. 8h (0: unlimited)")
	return cmd
}

// parseLimitSize parses a memory limit: a size (core/config's syntax),
// 0 or "unlimited".
func parseLimitSize(s string) (int64, error) {
	if strings.EqualFold(strings.TrimSpace(s), "unlimited") {
		return 0, nil
	}
	return config.ParseSize(s)
}

// parseLimitDuration parses a run-time limit into seconds: a Go duration
// (8h, 90m), a number of days (2d), 0 or "unlimited".
func parseLimitDuration(s string) (int64, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "0" || strings.EqualFold(s, "unlimited"):
		return 0, nil
	case strings.HasSuffix(s, "d"):
		if days, err := strconv.ParseInt(strings.TrimSuffix(s, "d"), 10, 32); err == nil && days >= 0 {
			return days * 86400, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 8h, 90m or 2d", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: negative", s)
	}
	if d%time.Second != 0 {
		return 0, fmt.Errorf("invalid duration %q: not a whole number of seconds", s)
	}
	return int64(d / time.Second), nil
}

func pluginCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "plugin", Aliases: []string{"plugins"}, Short: "Show Zoe's plugins (admins)"}
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the plugin processes and their states",
		Args:    cobra.NoArgs,
		RunE: c.run(func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			l, err := cl.Plugins(cmd.Context())
			if err != nil {
				return err
			}
			if c.json() {
				return writeJSON(cmd.OutOrStdout(), l)
			}
			return printPlugins(cmd.OutOrStdout(), l.Plugins)
		}),
	}
	cmd.AddCommand(ls)
	c.addFlags(cmd)
	return cmd
}

func printPlugins(w io.Writer, ps []client.PluginStatus) error {
	t := newTable(w, "KIND", "NAME", "VERSION", "STATE", "SINCE", "RESTARTS", "PID", "LAST ERROR")
	for _, p := range ps {
		pid := ""
		if p.PID > 0 {
			pid = strconv.Itoa(p.PID)
		}
		t.row(p.Kind, p.Name, p.Version, p.State, timeLocal(p.Since), p.Restarts, pid, p.LastError)
	}
	return t.flush()
}
