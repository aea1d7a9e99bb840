package main

import "github.com/spf13/cobra"

// shopCmd is replaced by the shop commands (shop check).
func shopCmd() *cobra.Command {
	return &cobra.Command{Use: "shop", Short: "Work with ZApp shop directories"}
}
