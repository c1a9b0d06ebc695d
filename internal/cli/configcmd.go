package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func configCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check the cluster configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate [FILE]",
		Short: "Report every problem in FILE as FILE:LINE: field: message (exit 2 if any)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				g.configPath = args[0]
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings() {
				fmt.Fprintln(g.stderr, "warning:", w)
			}
			fmt.Fprintf(g.stdout, "%s: ok (%d nodes, cluster %q)\n", cfg.Path, len(cfg.Nodes), cfg.Cluster.Name)
			return nil
		},
	})
	return cmd
}
