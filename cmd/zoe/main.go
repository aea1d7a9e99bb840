// Command zoe is Zoe's daemon and command-line client.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/zoe-project/zoe/core/daemon"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := rootCmd()
	root.SetArgs(goStyleFlags(os.Args[1:], "config", "take-over"))
	if err := root.ExecuteContext(ctx); err != nil {
		// Configuration errors were printed as diagnostics already.
		if !errors.Is(err, daemon.ErrInvalidConfig) {
			fmt.Fprintln(os.Stderr, "zoe: "+errorLine(err))
		}
		stop()
		os.Exit(exitCode(err))
	}
}

// rootCmd is the zoe command. Exit codes: 0 success, 1 failure, 2 a
// command used wrongly.
func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "zoe",
		Short: "Zoe runs analytics applications (ZApps) in containers for many users",
		Long: "Zoe runs analytics applications (ZApps) in containers for many users.\n\n" +
			"zoe server runs the daemon; the other commands are its client (zoe login first) or work offline " +
			"on configuration files, users files, ZApps and shop directories. The client commands take " +
			"--addr, --token and --user, else $ZOE_ADDR, $ZOE_TOKEN, $ZOE_USER and $ZOE_PASSWORD, else what " +
			"zoe login stored; -o json prints the API's JSON documents.",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	c := newCLI()
	root.AddCommand(serverCmd(), configCmd(), hashPasswordCmd(), usersFileCmd(), usersCmd(), zappCmd(), shopCmd(c),
		loginCmd(c), logoutCmd(c), infoCmd(c), healthCmd(c), tokenCmd(c), execCmd(c), statsCmd(c), eventsCmd(c),
		userCmd(c), quotaCmd(c), pluginCmd(c))
	root.InitDefaultCompletionCmd()
	markUsageErrors(root)
	return root
}

// goStyleFlags lets `zoe server -config FILE` work as documented: pflag
// reads a single dash as a run of one-letter flags, so the long names given
// are rewritten to their double-dash form.
func goStyleFlags(args []string, names ...string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		for _, n := range names {
			if a == "-"+n || strings.HasPrefix(a, "-"+n+"=") {
				out[i] = "-" + a
			}
		}
	}
	return out
}

func executable() string {
	exe, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return exe
}

func serverCmd() *cobra.Command {
	var file string
	var takeOver bool
	cmd := &cobra.Command{
		Use:   "server --config FILE",
		Short: "Run the Zoe daemon",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return daemon.Run(cmd.Context(), daemon.Options{
				ConfigFile: file, Executable: executable(), Version: version,
				Diagnostics: os.Stderr, LogOutput: os.Stderr, TakeOver: takeOver,
			})
		},
	}
	cmd.Flags().StringVar(&file, "config", "/etc/zoe/zoe.hcl", "configuration file")
	cmd.Flags().BoolVar(&takeOver, "take-over", false,
		"remove the services of this deployment that another daemon's store created (that store is gone for good) instead of refusing to start")
	return cmd
}

func configCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with configuration files"}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "Check a configuration file, plugins included, without serving",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := daemon.Validate(cmd.Context(), daemon.Options{
				ConfigFile: args[0], Executable: executable(), Version: version,
				Diagnostics: os.Stderr, LogOutput: os.Stderr,
			})
			if err == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%s is valid\n", args[0])
			}
			return err
		},
	})
	return cmd
}
