package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zoe-project/zoe/core/config"
	"github.com/zoe-project/zoe/core/policy"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk/auth"
)

func zappCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "zapp", Short: "Work with ZApp descriptions"}
	cmd.AddCommand(zappValidateCmd(), zappExpandCmd(), zappConvertCmd())
	return cmd
}

// zappSettings reads the per-service limits, the deployment name and the
// shop directory from a configuration file; without one, the defaults. A
// configuration with errors is reported on w and refused.
func zappSettings(file string, w io.Writer) (limits zapp.Limits, deployment, shopDir string, err error) {
	if file == "" {
		return zapp.DefaultLimits(), config.DefaultDeploymentName, "", nil
	}
	cfg, diags := config.Load(file)
	if len(diags) > 0 {
		_ = config.WriteDiagnostics(w, cfg.Files, diags)
	}
	if diags.HasErrors() {
		return zapp.Limits{}, "", "", fmt.Errorf("configuration %s is invalid", file)
	}
	return zapp.Limits{MaxCores: cfg.Limits.MaxServiceCores, MaxMemory: cfg.Limits.MaxServiceMemory},
		cfg.DeploymentName, cfg.ShopDir, nil
}

// syntaxPosition splits the Problem zapp reports for malformed JSON,
// "line L, column C: message", so that it prints as FILE:L:C: message.
func syntaxPosition(p zapp.Problem) (line, col int, msg string, ok bool) {
	if p.Path != "" {
		return 0, 0, "", false
	}
	if _, err := fmt.Sscanf(p.Message, "line %d, column %d:", &line, &col); err != nil {
		return 0, 0, "", false
	}
	_, msg, ok = strings.Cut(p.Message, ": ")
	return line, col, msg, ok
}

// printProblems writes err's problems as FILE: PATH: message, or
// FILE:LINE:COL: message for malformed JSON.
func printProblems(w io.Writer, file string, err error) {
	var ps zapp.Problems
	if !errors.As(err, &ps) {
		fmt.Fprintf(w, "%s: %v\n", file, err)
		return
	}
	for _, p := range ps {
		if line, col, msg, ok := syntaxPosition(p); ok {
			fmt.Fprintf(w, "%s:%d:%d: %s\n", file, line, col, msg)
		} else {
			fmt.Fprintf(w, "%s: %s\n", file, p)
		}
	}
}

func readZApp(file string, l zapp.Limits) (*zapp.App, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		// The file name is printed before the error already.
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	return zapp.Load(data, l)
}

// zappPolicy is the container policy of a valid configuration file; nil
// without one. The plugins' directories are not known offline.
func zappPolicy(file string) *policy.Policy {
	if file == "" {
		return nil
	}
	cfg, _ := config.Load(file)
	p := cfg.Containers.Policy(cfg.ReservedPaths()...)
	return &p
}

func zappValidateCmd() *cobra.Command {
	var configFile, role string
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check ZApp descriptions offline and list every problem",
		Long: "Checks ZApp descriptions (format version 3) and prints every problem as FILE: PATH: message. " +
			"Per-service limits come from the limits block of --config FILE, else the defaults " +
			"(16 cores, 64 GiB); with --config, the container policy of its containers block applies too, " +
			"for a submitter of --role. Exits 1 when a file is invalid.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := auth.ParseRole(role)
			if err != nil {
				return fmt.Errorf("--role %q: use guest, user or admin", role)
			}
			limits, _, _, err := zappSettings(configFile, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			pol := zappPolicy(configFile)
			out := cmd.OutOrStdout()
			invalid := 0
			for _, file := range args {
				app, err := readZApp(file, limits)
				if err == nil && pol != nil {
					if probs := pol.Check(app, r); probs != nil {
						err = probs
					}
				}
				if err != nil {
					invalid++
					printProblems(out, file, err)
					continue
				}
				fmt.Fprintf(out, "%s: valid\n", file)
			}
			switch {
			case invalid == 0:
				return nil
			case len(args) == 1:
				return fmt.Errorf("%s is invalid", args[0])
			case invalid == 1:
				return fmt.Errorf("1 of %d files is invalid", len(args))
			}
			return fmt.Errorf("%d of %d files are invalid", invalid, len(args))
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "Zoe configuration file whose limits and container policy apply")
	cmd.Flags().StringVar(&role, "role", string(auth.RoleUser), "the submitter's role, for the container policy of --config")
	return cmd
}

func zappExpandCmd() *cobra.Command {
	var (
		configFile, user, execID, execName, deployment, proxyBase string
		uid, gid                                                  uint32
		asJSON                                                    bool
	)
	cmd := &cobra.Command{
		Use:   "expand FILE",
		Short: "Print the service instances a ZApp description would create",
		Long: "Validates a ZApp description like validate, then prints the service instances one execution " +
			"of it would create, essential ones first, with their DNS names, resources, ports and " +
			"environment (templates resolved, Zoe's variables added).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			limits, cfgDeployment, _, err := zappSettings(configFile, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			a, err := readZApp(args[0], limits)
			if err != nil {
				printProblems(cmd.ErrOrStderr(), args[0], err)
				return fmt.Errorf("%s is invalid", args[0])
			}
			// The proxy tokens are secrets the daemon makes at submission;
			// a stand-in shows which instances get one.
			c := zapp.ExpandContext{ExecutionID: execID, ExecutionName: execName, UserName: user,
				Deployment: deployment, ProxyBase: proxyBase, Limits: limits,
				NewSecret: func() string { return "<a secret made at submission>" }}
			if !cmd.Flags().Changed("deployment") {
				c.Deployment = cfgDeployment
			}
			if c.ExecutionName == "" {
				c.ExecutionName = a.Name
			}
			if cmd.Flags().Changed("uid") {
				c.UID = &uid
			}
			if cmd.Flags().Changed("gid") {
				c.GID = &gid
			}
			insts, err := zapp.Expand(a, c)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), insts)
			}
			printInstances(cmd.OutOrStdout(), a, insts)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "Zoe configuration file whose limits and deployment_name apply")
	f.StringVar(&user, "user", defaultUser(), "owner of the execution ({user_name}, ZOE_USER)")
	f.StringVar(&execID, "execution-id", "1", "execution id ({execution_id}, EXECUTION_ID)")
	f.StringVar(&execName, "execution-name", "", "execution name ({execution_name}); the ZApp's name when empty")
	f.StringVar(&deployment, "deployment", config.DefaultDeploymentName, "deployment name ({deployment_name}, DEPLOY_NAME); --config's deployment_name when not given")
	f.StringVar(&proxyBase, "proxy-base", "/proxy", "path prefix of REVERSE_PROXY_PATH_<port>")
	f.Uint32Var(&uid, "uid", 0, "user's file owner id (ZOE_UID); not set when not given")
	f.Uint32Var(&gid, "gid", 0, "user's file group id (ZOE_GID); not set when not given")
	f.BoolVar(&asJSON, "json", false, "print the instances as JSON")
	return cmd
}

func defaultUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "user"
}

func writeJSON(w io.Writer, v any) error {
	// Commands hold & and <, which need no escaping outside HTML.
	return encodeJSON(w, v, "  ")
}

func printInstances(w io.Writer, a *zapp.App, insts []zapp.Instance) {
	essential := 0
	for _, i := range insts {
		if i.Essential {
			essential++
		}
	}
	fmt.Fprintf(w, "%s: %d instances (%d essential, %d elastic)\n", a.Name, len(insts), essential, len(insts)-essential)
	for _, i := range insts {
		kind := "elastic"
		if i.Essential {
			kind = "essential"
		}
		extra := ""
		if i.Monitor {
			extra = ", monitor"
		}
		fmt.Fprintf(w, "\n%s (%s, service %s, startup order %d%s)\n", i.Name, kind, i.Service, i.StartupOrder, extra)
		// field writes one aligned line; a continuation line has no name.
		field := func(name, format string, args ...any) {
			if name != "" {
				name += ":"
			}
			fmt.Fprintf(w, "  %-12s %s\n", name, fmt.Sprintf(format, args...))
		}
		field("dns name", "%s", i.DNSName)
		field("image", "%s", i.Image)
		if i.Command != nil {
			field("command", "%s", *i.Command)
		}
		if i.WorkDir != "" {
			field("work dir", "%s", i.WorkDir)
		}
		field("memory", "%s", describeMemory(i.MemoryReservation, i.MemoryLimit))
		cores := strconv.FormatFloat(i.Cores, 'g', -1, 64) + " reserved, "
		if i.CoresLimit > 0 {
			cores += "limit " + strconv.FormatFloat(i.CoresLimit, 'g', -1, 64)
		} else {
			cores += "no limit"
		}
		field("cores", "%s", cores)
		if i.Shm > 0 {
			field("shm", "%s", sizeString(i.Shm))
		}
		for j, p := range i.Ports {
			name := ""
			if j == 0 {
				name = "ports"
			}
			s := fmt.Sprintf("%d/%s %q", p.PortNumber, p.Protocol, p.Name)
			if p.URLTemplate != "" {
				s += " " + p.URLTemplate
			}
			if p.Proxy {
				s += " (proxied)"
			}
			field(name, "%s", s)
		}
		for j, v := range i.Volumes {
			name := ""
			if j == 0 {
				name = "volumes"
			}
			mode := "read-write"
			if v.ReadOnly {
				mode = "read-only"
			}
			field(name, "%s -> /mnt/%s (%s)", v.Path, v.Name, mode)
		}
		if len(i.Labels) > 0 {
			field("labels", "%s", strings.Join(i.Labels, ", "))
		}
		fmt.Fprintln(w, "  environment:")
		for _, e := range i.Environment {
			fmt.Fprintf(w, "    %s=%s\n", e.Name, e.Value)
		}
	}
}

func describeMemory(reservation, limit int64) string {
	r := "none reserved"
	if reservation > 0 {
		r = sizeString(reservation) + " reserved"
	}
	if limit > 0 {
		return r + ", limit " + sizeString(limit)
	}
	return r + ", no limit"
}

// sizeString writes bytes in the largest binary unit that divides them.
func sizeString(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

func zappConvertCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "convert FILE",
		Short: "Convert a format-2 (or format-1) ZApp description to format 3",
		Long: "Prints the format-3 description on standard output and, on standard error, a warning " +
			"for everything that could not be carried over exactly.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			a, warns, err := zapp.ConvertV2(data)
			if err != nil {
				printProblems(cmd.ErrOrStderr(), file, err)
				return fmt.Errorf("%s cannot be converted", file)
			}
			for _, w := range warns {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: warning: %s\n", file, w)
			}
			return writeJSON(cmd.OutOrStdout(), a)
		},
	}
}
