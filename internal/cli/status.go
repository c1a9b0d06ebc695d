package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/internal/apiclient"
	"github.com/vigil-ha/vigil/internal/model"
)

func statusCmd(g *globals) *cobra.Command {
	var asJSON bool
	var node string
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show nodes, links, the coordinator and quorum",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd.Context(), node, func(ctx context.Context, c *apiclient.Client) error {
				st, err := c.Status(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					return g.printJSON(st)
				}
				printStatus(g.stdout, st)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&node, "node", "", "ask this node (default: this machine's node, else any)")
	return cmd
}

// colour maps the seed's red/yellow/green to a word that survives a pipe.
func overall(st model.Status) string {
	if !st.Quorum {
		return "RED (no quorum: no decisions possible from this node)"
	}
	for _, n := range st.Nodes {
		if n.State != model.NodeAlive {
			return "YELLOW (degraded: a node is " + string(n.State) + ")"
		}
		for _, l := range n.Links {
			if l.State != model.LinkUp {
				return "YELLOW (degraded: a link is down)"
			}
		}
	}
	return "GREEN"
}

func printStatus(w io.Writer, st model.Status) {
	leader := st.Leader
	if leader == "" {
		leader = "(none)"
	}
	fmt.Fprintf(w, "cluster %s   seen from %s   coordinator %s   quorum %s\n", st.Cluster, st.Node, leader, yesNo(st.Quorum))
	fmt.Fprintf(w, "health  %s\n\n", overall(st))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tSTATE\tLEASE\tLAST HEARD\tLINKS")
	for _, n := range st.Nodes {
		name := n.Name
		if n.Self {
			name += " *"
		}
		if n.Name == st.Leader {
			name += " (coordinator)"
		}
		heard := "-"
		if n.LastHeardMS != nil {
			heard = "never"
			if *n.LastHeardMS >= 0 {
				heard = fmt.Sprintf("%dms ago", *n.LastHeardMS)
			}
		}
		var links []string
		for _, l := range n.Links {
			links = append(links, l.Address+" "+string(l.State))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, n.Role, n.State, yesNo(n.Lease), heard, strings.Join(links, ", "))
	}
	tw.Flush()
	if hb := st.Heartbeat; hb.BadMAC+hb.Malformed+hb.Replayed+hb.UnknownSender > 0 {
		fmt.Fprintf(w, "\nrejected heartbeats: %d bad signature, %d malformed, %d replayed, %d unknown sender\n",
			hb.BadMAC, hb.Malformed, hb.Replayed, hb.UnknownSender)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
