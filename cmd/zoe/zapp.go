package main

import "github.com/spf13/cobra"

// zappCmd is replaced by the ZApp commands (zapp validate, expand, convert).
func zappCmd() *cobra.Command {
	return &cobra.Command{Use: "zapp", Short: "Work with ZApp descriptions"}
}
