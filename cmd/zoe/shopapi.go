package main

// zoe shop ls, show and logo: the shop of a running Zoe, as the caller's
// role sees it.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/safetext"
)

func shopLsCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the ZApps of Zoe's shop you may start",
		Args:    cobra.NoArgs,
		RunE: c.run(func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			l, err := cl.Shop(cmd.Context())
			if err != nil {
				return err
			}
			if c.json() {
				return writeJSON(cmd.OutOrStdout(), l)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "CATEGORY", "NAME", "PARAMETERS")
			for _, e := range l.Entries {
				keys := make([]string, len(e.Parameters))
				for i, p := range e.Parameters {
					keys[i] = p.Key
				}
				t.row(e.ID, e.Category, e.Name, strings.Join(keys, ", "))
			}
			return t.flush()
		}),
	}
	c.addFlags(cmd)
	return cmd
}

func shopShowCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:               "show ID",
		Aliases:           []string{"get"},
		Short:             "Show a shop entry: its description and the parameters zoe exec start --param sets",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeShopArg,
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			e, err := cl.ShopEntry(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if c.json() {
				return writeJSON(cmd.OutOrStdout(), e)
			}
			return printShopEntry(cmd.OutOrStdout(), e)
		}),
	}
	c.addFlags(cmd)
	return cmd
}

func printShopEntry(w io.Writer, e *client.ShopEntry) error {
	f := newFields(w)
	f.add("ID", e.ID)
	f.add("Name", e.Name)
	f.add("Category", e.Category)
	f.add("Labels", strings.Join(e.Labels, ", "))
	if err := f.flush(); err != nil {
		return err
	}
	if text := htmlText(e.DescriptionHTML); text != "" {
		fmt.Fprintf(w, "\n%s\n", safetext.EscapeLines(text))
	}
	if err := printShopServices(w, e); err != nil {
		return err
	}
	if len(e.Parameters) == 0 {
		fmt.Fprintf(w, "\nNo parameters: zoe exec start --shop %s\n", safe(e.ID))
		return nil
	}
	fmt.Fprintln(w, "\nParameters:")
	t := newTable(w, "  KEY", "KIND", "TYPE", "DEFAULT", "NAME", "DESCRIPTION")
	for _, p := range e.Parameters {
		t.row("  "+p.Key, p.Kind, paramTypeText(p), paramDefaultText(p), p.ReadableName, p.Description)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nStart it with: zoe exec start --shop %s --param %s=VALUE ...\n", safe(e.ID), safe(e.Parameters[0].Key))
	return nil
}

// printShopServices lists the entry's services with what each instance
// reserves, which --memory and --cores change.
func printShopServices(w io.Writer, e *client.ShopEntry) error {
	var desc struct {
		Services []struct {
			Name           string `json:"name"`
			EssentialCount int    `json:"essential_count"`
			TotalCount     int    `json:"total_count"`
			Resources      struct {
				Memory struct{ Min *int64 }   `json:"memory"`
				Cores  struct{ Min *float64 } `json:"cores"`
			} `json:"resources"`
		} `json:"services"`
	}
	if json.Unmarshal(e.Description, &desc) != nil || len(desc.Services) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nServices (each instance reserves):")
	t := newTable(w, "  SERVICE", "INSTANCES", "MEMORY", "CORES")
	for _, s := range desc.Services {
		mem, cores := "-", "-"
		if m := s.Resources.Memory.Min; m != nil {
			mem = size(*m)
		}
		if c := s.Resources.Cores.Min; c != nil {
			cores = strconv.FormatFloat(*c, 'f', -1, 64)
		}
		t.row("  "+s.Name, fmt.Sprintf("%d (%d essential)", s.TotalCount, s.EssentialCount), mem, cores)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "Change them with --memory %s=SIZE --cores %s=N on zoe exec start.\n", safe(desc.Services[0].Name), safe(desc.Services[0].Name))
	return nil
}

func paramTypeText(p client.ShopParameter) string {
	if p.Type != "int" {
		return p.Type
	}
	s := fmt.Sprintf("int %d..%d", p.Min, p.Max)
	if p.Step > 1 {
		s += fmt.Sprintf(" step %d", p.Step)
	}
	return s
}

func paramDefaultText(p client.ShopParameter) string {
	switch {
	case p.Default == nil:
		return "(the ZApp's)"
	case *p.Default == "":
		return `""`
	}
	return *p.Default
}

func shopLogoCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:               "logo ID FILE",
		Short:             "Save a shop entry's logo to FILE (- for standard output)",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: c.completeShopArg,
		RunE: c.run(func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd)
			if err != nil {
				return err
			}
			b, _, err := cl.ShopLogo(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if args[1] == "-" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			if err := os.WriteFile(args[1], b, 0o644); err != nil {
				return fmt.Errorf("save the logo: %w", err)
			}
			if !c.json() {
				fmt.Fprintf(cmd.OutOrStdout(), "Saved the logo of %s to %s (%s).\n", args[0], args[1], size(int64(len(b))))
			}
			return nil
		}),
	}
	c.addFlags(cmd)
	return cmd
}
