package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/internal/model"
)

func eventsCmd(g *globals) *cobra.Command {
	var asJSON, follow bool
	var node string
	var after uint64
	var limit int
	cmd := &cobra.Command{
		Use:   "events [--follow] [--json]",
		Short: "Show the replicated event log",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := g.connect(node)
			if err != nil {
				return err
			}
			defer c.Close()
			print := func(ev model.Event) error { return printEvent(g.stdout, ev, asJSON) }
			if follow {
				return c.Follow(cmd.Context(), after, print)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			evs, err := c.Events(ctx, after, limit)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				if err := print(ev); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	cmd.Flags().StringVar(&node, "node", "", "ask this node (default: this machine's node, else any)")
	cmd.Flags().Uint64Var(&after, "after", 0, "only events with a greater index")
	cmd.Flags().IntVar(&limit, "limit", 1000, "at most this many events")
	return cmd
}

func printEvent(w io.Writer, ev model.Event, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(ev)
	}
	about := ev.Node
	if ev.Link != "" {
		about += " link " + ev.Link
	}
	_, err := fmt.Fprintf(w, "%6d  %s  %-8s  %-19s  %-10s  %-14s  %s\n", ev.Index, ev.Time.Local().Format("2006-01-02 15:04:05.000"),
		ev.Severity, ev.Kind, ev.Reporter, about, ev.Reason)
	return err
}
