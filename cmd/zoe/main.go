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
	root.SetArgs(goStyleFlags(os.Args[1:], "config"))
	if err := root.ExecuteContext(ctx); err != nil {
		if !errors.Is(err, daemon.ErrInvalidConfig) {
			fmt.Fprintln(os.Stderr, "zoe:", err)
		}
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "zoe",
		Short:         "Zoe runs analytics applications (ZApps) in containers for many users",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serverCmd(), configCmd(), hashPasswordCmd(), usersCmd(), zappCmd(), shopCmd())
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
	cmd := &cobra.Command{
		Use:   "server --config FILE",
		Short: "Run the Zoe daemon",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return daemon.Run(cmd.Context(), daemon.Options{
				ConfigFile: file, Executable: executable(), Version: version,
				Diagnostics: os.Stderr, LogOutput: os.Stderr,
			})
		},
	}
	cmd.Flags().StringVar(&file, "config", "/etc/zoe/zoe.hcl", "configuration file")
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
