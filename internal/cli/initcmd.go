package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/internal/clusterinit"
)

func initCmd(g *globals) *cobra.Command {
	var opt clusterinit.Options
	var nodes, witnesses []string
	cmd := &cobra.Command{
		Use:   "init --dir DIR --cluster NAME --node NAME=ADDR[,ADDR...] ... [--witness NAME=ADDR[,ADDR...]]",
		Short: "Make a cluster: CA, node certificates, heartbeat key, operator token and vigil.yaml",
		Long: "Writes DIR/vigil.yaml (the same file on every node), the cluster CA, one certificate per node,\n" +
			"the heartbeat HMAC key and DIR/operator.token. Several addresses per node make several links:\n" +
			"the i-th address of every node is on link i. Existing keys are never overwritten without --force.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, n := range nodes {
				spec, err := clusterinit.ParseNodeFlag(n, false)
				if err != nil {
					return usageError{err}
				}
				opt.Nodes = append(opt.Nodes, spec)
			}
			for _, n := range witnesses {
				spec, err := clusterinit.ParseNodeFlag(n, true)
				if err != nil {
					return usageError{err}
				}
				opt.Nodes = append(opt.Nodes, spec)
			}
			written, err := clusterinit.Run(opt)
			if err != nil {
				return usageError{err}
			}
			for _, w := range written {
				fmt.Fprintln(g.stdout, "wrote", w)
			}
			fmt.Fprintf(g.stdout, "\nCopy %s to every node (ca.key can stay offline), then on each node run:\n  vigil agent --config %s/vigil.yaml --node NAME\n", opt.Dir, opt.Dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&opt.Dir, "dir", "", "directory to write (created if missing)")
	cmd.Flags().StringVar(&opt.Cluster, "cluster", "", "cluster name")
	cmd.Flags().StringArrayVar(&nodes, "node", nil, "NAME=ADDR[,ADDR...] of a node that runs groups (repeat)")
	cmd.Flags().StringArrayVar(&witnesses, "witness", nil, "NAME=ADDR[,ADDR...] of a witness that only votes")
	cmd.Flags().BoolVar(&opt.Force, "force", false, "overwrite existing keys and certificates")
	_ = cmd.MarkFlagRequired("dir")
	_ = cmd.MarkFlagRequired("cluster")
	return cmd
}
