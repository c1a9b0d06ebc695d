package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/internal/apiclient"
	"github.com/vigil-ha/vigil/internal/drill"
	"github.com/vigil-ha/vigil/internal/model"
)

// drillFailed makes a failed drill exit 1 after its report is printed.
type drillFailed struct{ d model.Drill }

func (e drillFailed) Error() string { return fmt.Sprintf("drill %s failed: %s", e.d.ID, e.d.Error) }

func drillCmd(g *globals) *cobra.Command {
	var to, reason, node string
	var back, noWait, asJSON bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "drill GROUP [--to NODE] [--back]",
		Short: "Failover drill: move a group to another node (and back) while measuring what a client sees",
		Long: `A failover drill moves GROUP to another node through an ordinary move request
(default: the most preferred other node that is alive) and, with --back, returns it,
while the node asked probes the service as a client would (the group's drill probe,
or its first tcp/http/https/icmp check). It prints each step's timing, the longest
time clients got no answer, and what failed; the result is kept in the event log
('vigil drill list', 'vigil drill report ID') and shown in the console.

A drill moves a production service: clients see a short outage. It refuses to start
if the group is not running, is in maintenance, or the service does not answer.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.connect(node)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
			d, err := c.StartDrill(ctx, model.DrillRequest{Group: args[0], To: to, Back: back, Reason: reason})
			cancel()
			if err != nil {
				return err
			}
			if noWait {
				return printDrill(g, d, asJSON)
			}
			if !asJSON {
				fmt.Fprintf(g.stdout, "drill %s started: %s %s -> %s%s, probing from %s\n", d.ID, d.Group, d.From, d.To, backSuffix(d), d.Runner)
			}
			wctx, wcancel := context.WithTimeout(cmd.Context(), wait)
			defer wcancel()
			if d, err = followDrill(wctx, c, d.ID); err != nil {
				return fmt.Errorf("drill %s: %w (it may still be running: vigil drill report %s)", d.ID, err, d.ID)
			}
			if err := printDrill(g, d, asJSON); err != nil {
				return err
			}
			if d.Outcome != model.DrillPassed {
				return drillFailed{d}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "move the group to this node (default: the most preferred other node that is alive)")
	cmd.Flags().BoolVar(&back, "back", false, "move the group back afterwards")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded with the drill)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the drill has started")
	cmd.Flags().DurationVar(&wait, "wait", 15*time.Minute, "give up following the drill after this long")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&node, "node", "", "ask this node (it runs the drill and its probe)")
	cmd.AddCommand(drillListCmd(g), drillReportCmd(g))
	return cmd
}

func backSuffix(d model.Drill) string {
	if d.Back {
		return " -> " + d.From
	}
	return ""
}

func followDrill(ctx context.Context, c *apiclient.Client, id string) (model.Drill, error) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return model.Drill{ID: id}, ctx.Err()
		case <-t.C:
		}
		d, err := c.Drill(ctx, id)
		if err == nil && d.Outcome != model.DrillRunning {
			return d, nil
		}
	}
}

func printDrill(g *globals, d model.Drill, asJSON bool) error {
	if asJSON {
		return g.printJSON(d)
	}
	return drill.WriteReport(g.stdout, d)
}

func drillListCmd(g *globals) *cobra.Command {
	var group, node string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--group G]",
		Short: "Drills, newest first, with outcome and the longest client-visible outage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd.Context(), node, func(ctx context.Context, c *apiclient.Client) error {
				ds, err := c.Drills(ctx, group)
				if err != nil {
					return err
				}
				if asJSON {
					return g.printJSON(ds)
				}
				return g.drillTable(ds)
			})
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "only this group's drills")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&node, "node", "", "ask this node")
	return cmd
}

func drillReportCmd(g *globals) *cobra.Command {
	var node string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "report [ID]",
		Short: "Print a drill's report (default: the latest drill)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd.Context(), node, func(ctx context.Context, c *apiclient.Client) error {
				d, err := latestOr(ctx, c, args)
				if err != nil {
					return err
				}
				return printDrill(g, d, asJSON)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&node, "node", "", "ask this node")
	return cmd
}

func (g *globals) drillTable(ds []model.Drill) error {
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tGROUP\tMOVE\tSTARTED\tBY\tOUTCOME\tOUTAGE")
	for _, d := range ds {
		outage := "-"
		if o := d.OutageMS(); o != nil {
			outage = (time.Duration(*o) * time.Millisecond).String()
		}
		by := d.By
		if d.Scheduled {
			by = "schedule"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s -> %s%s\t%s\t%s\t%s\t%s\n", d.ID, d.Group, d.From, d.To, backSuffix(d),
			d.Started.Local().Format(time.DateTime), by, d.Outcome, outage)
	}
	return tw.Flush()
}

// latestOr is the drill named by args, or the newest one.
func latestOr(ctx context.Context, c *apiclient.Client, args []string) (model.Drill, error) {
	if len(args) == 1 {
		return c.Drill(ctx, args[0])
	}
	ds, err := c.Drills(ctx, "")
	if err != nil {
		return model.Drill{}, err
	}
	if len(ds) == 0 {
		return model.Drill{}, errors.New("no drill has been run yet")
	}
	return ds[0], nil
}
