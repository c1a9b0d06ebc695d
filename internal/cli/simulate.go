package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/internal/clusterstate"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/sim"
	"github.com/vigil-ha/vigil/internal/whatif"
)

func simulateCmd(g *globals) *cobra.Command {
	var down, fail, clear []string
	var live bool
	var scenario string
	cmd := &cobra.Command{
		Use:   "simulate [--scenario FILE] | [--down NODE]... [--fail GROUP=NODE]... [--clear GROUP=NODE]... [--live]",
		Short: "Ask what the coordinator would do if nodes died or groups failed, without touching anything",
		Long: "Runs the coordinator's own placement core on a copy of the state: a healthy cluster\n" +
			"from the config, or with --live the current placement read from a node. Prints where\n" +
			"each group runs before and after, and every decision with its reason.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if scenario != "" {
				return runScenario(g, cfg, scenario)
			}
			sc := whatif.Scenario{Down: down}
			if sc.Fail, err = groupNodePairs("--fail", fail); err != nil {
				return err
			}
			if sc.Clear, err = groupNodePairs("--clear", clear); err != nil {
				return err
			}
			var state *clusterstate.State
			if live {
				if state, err = g.liveState(cmd.Context()); err != nil {
					return err
				}
			}
			res, err := whatif.Run(cfg, state, sc)
			if err != nil {
				return usageError{err}
			}
			printSimulation(g, res)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&down, "down", nil, "a node that dies or is cut off (repeat)")
	cmd.Flags().StringArrayVar(&fail, "fail", nil, "GROUP=NODE: the group fails on that node (repeat)")
	cmd.Flags().StringArrayVar(&clear, "clear", nil, "GROUP=NODE: clear that flag first (repeat)")
	cmd.Flags().BoolVar(&live, "live", false, "start from the current placement (asks a node)")
	cmd.Flags().StringVar(&scenario, "scenario", "", "a timed scenario file (examples/scenarios): run the whole cluster's cores on a simulated clock")
	return cmd
}

func groupNodePairs(flag string, vals []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, v := range vals {
		grp, node, ok := strings.Cut(v, "=")
		if !ok || grp == "" || node == "" {
			return nil, usagef("%s %q: want GROUP=NODE", flag, v)
		}
		out[grp] = append(out[grp], node)
	}
	return out, nil
}

// liveState rebuilds the placement part of the state from /v1/groups.
func (g *globals) liveState(ctx context.Context) (*clusterstate.State, error) {
	c, _, err := g.connect("")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	gs, err := c.Groups(ctx)
	if err != nil {
		return nil, err
	}
	st := clusterstate.New()
	var idx uint64
	apply := func(ev model.Event) {
		idx++
		ev.Index = idx
		st.Apply(ev)
	}
	for _, s := range gs {
		if s.Node != "" {
			apply(model.Event{Kind: model.EventGroupAssigned, Group: s.Name, Node: s.Node, Epoch: s.Epoch})
			apply(model.Event{Kind: model.EventGroupStarted, Group: s.Name, Reporter: s.Node})
		}
		for n := range s.Flags {
			apply(model.Event{Kind: model.EventFlagSet, Group: s.Name, Node: n})
		}
	}
	return st, nil
}

func printSimulation(g *globals, res whatif.Result) {
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tBEFORE\tAFTER")
	for i, b := range res.Before {
		after := res.After[i].Node
		fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Group, orDash(b.Node), orDash(after))
	}
	tw.Flush()
	if len(res.Decisions) > 0 {
		fmt.Fprintln(g.stdout, "\nDecisions, in order:")
		for _, ev := range res.Decisions {
			what := "assign " + ev.Group + " to " + ev.Node
			if ev.Kind == model.EventGroupReleased {
				what = "release " + ev.Group + " from " + ev.Node
			}
			fmt.Fprintf(g.stdout, "  %-32s %s\n", what, ev.Reason)
		}
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(g.stdout, "\nwarning:", w)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runScenario plays a timed scenario on the real cores with a simulated clock.
func runScenario(g *globals, cfg *config.Config, path string) error {
	sc, err := sim.LoadScenario(path, cfg)
	if err != nil {
		return usageError{err}
	}
	s, err := sim.New(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "scenario: %s\n", sc.Name)
	if sc.Description != "" {
		fmt.Fprintf(g.stdout, "          %s\n", sc.Description)
	}
	for _, l := range s.Run(sc) {
		fmt.Fprintln(g.stdout, l)
	}
	return nil
}
