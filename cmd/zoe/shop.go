package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/zoe-project/zoe/core/shop"
)

func shopCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "shop", Short: "Browse Zoe's ZApp shop, or check a shop directory offline"}
	cmd.AddCommand(shopCheckCmd(), shopLsCmd(c), shopShowCmd(c), shopLogoCmd(c))
	return cmd
}

func shopCheckCmd() *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "check [DIR] [--config FILE]",
		Short: "Load a ZApp shop directory offline, list its entries and report every problem",
		Long: "Loads the shop directory DIR (by default the configuration's shop_dir) as the daemon would, " +
			"lists its entries by category with their visibility and parameters, and reports every problem " +
			"with its file and JSON path. Per-service limits come from the configuration's limits block, " +
			"else the defaults (16 cores, 64 GiB). Exits 1 if any problem is an error.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			limits, _, dir, err := zappSettings(configFile, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if len(args) == 1 {
				dir = args[0]
			}
			if dir == "" {
				return errors.New("no shop directory: give DIR, or a --config whose shop_dir is set")
			}
			s, err := shop.Load(dir, limits, hclog.NewNullLogger())
			if err != nil {
				return err
			}
			return printShop(cmd.OutOrStdout(), s)
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "configuration file to take the per-service limits (and shop_dir) from")
	return cmd
}

// printShop lists the entries by category, then the problems; it returns an
// error when a problem is an error.
func printShop(w io.Writer, s *shop.Shop) error {
	entries := s.Entries(shop.AdminRole)
	category := ""
	for i, e := range entries {
		if i == 0 || e.Category != category {
			category = e.Category
			fmt.Fprintf(w, "%s\n", category)
		}
		fmt.Fprintf(w, "  %s  %s\n", e.ID, e.Name)
		fmt.Fprintf(w, "    zapp: %s, visible to: %s\n", e.ZAppFile, visibility(e))
		if len(e.Parameters) == 0 {
			fmt.Fprintf(w, "    no parameters\n")
		}
		for _, p := range e.Parameters {
			fmt.Fprintf(w, "    parameter %s: %s, %s, default %s\n", p.Key, p.Kind, paramType(p), paramDefault(p))
		}
	}
	problems := s.Problems()
	errs := 0
	if len(problems) > 0 {
		fmt.Fprintln(w, "Problems:")
	}
	for _, p := range problems {
		fmt.Fprintf(w, "  %s\n", p)
		if p.Severity == shop.SeverityError {
			errs++
		}
	}
	fmt.Fprintf(w, "%d %s, %d %s, %d %s\n", len(entries), plural(len(entries), "entry", "entries"),
		errs, plural(errs, "error", "errors"), len(problems)-errs, plural(len(problems)-errs, "warning", "warnings"))
	if errs > 0 {
		return fmt.Errorf("%s: %d %s", s.Dir(), errs, plural(errs, "error", "errors"))
	}
	return nil
}

func visibility(e *shop.Entry) string {
	v := "admin only"
	if len(e.EnabledFor) > 0 {
		v = strings.Join(e.EnabledFor, ", ")
	}
	if len(e.DisabledFor) > 0 {
		v += " except " + strings.Join(e.DisabledFor, ", ")
	}
	return v
}

func paramType(p shop.Parameter) string {
	if p.Type == shop.TypeInt {
		return fmt.Sprintf("int %d..%d step %d", p.Min, p.Max, p.Step)
	}
	return string(p.Type)
}

func paramDefault(p shop.Parameter) string {
	switch {
	case p.Default == nil:
		return "none (the ZApp's own value)"
	case p.Type == shop.TypeInt:
		return *p.Default
	}
	return fmt.Sprintf("%q", *p.Default)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
