package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/internal/model"
)

func groupsCmd(g *globals) *cobra.Command {
	var asJSON bool
	var node string
	cmd := &cobra.Command{
		Use:   "groups [--json]",
		Short: "Show where each group runs, its state and its flags",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := g.connect(node)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			gs, err := c.Groups(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(gs)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "GROUP\tNODE\tSTATE\tPREFERENCE\tFAILBACK\tFLAGS\tNOTES")
			for _, s := range gs {
				where := s.Node
				if where == "" {
					where = "-"
				}
				var notes []string
				if s.Releasing {
					notes = append(notes, "moving to "+s.Target)
				}
				if s.Maintenance {
					notes = append(notes, "maintenance")
				}
				if s.MoveTarget != "" {
					notes = append(notes, "move requested to "+s.MoveTarget)
				}
				notes = append(notes, roleNotes(s.Roles)...)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, where, s.State, strings.Join(s.Nodes, ","), s.Failback, flagList(s.Flags), strings.Join(notes, "; "))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			return printSync(g.stdout, gs)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&node, "node", "", "ask this node")
	return cmd
}

// printSync shows the replication of the sync resources, one line per target,
// when any group has them: how far behind each copy is.
func printSync(w io.Writer, gs []model.GroupStatus) error {
	show := false
	for _, s := range gs {
		show = show || len(s.Sync) > 0 || s.SyncUnknown != ""
	}
	if !show {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SYNC\tRESOURCE\tFROM\tTO\tLAG\tLAST PASS\tNOTES")
	for _, s := range gs {
		if s.SyncUnknown != "" {
			fmt.Fprintf(tw, "%s\t-\t%s\t-\t?\t-\t%s\n", s.Name, s.Node, s.SyncUnknown)
		}
		for _, r := range s.Sync {
			last, note := "never", strings.ReplaceAll(r.Error, "\n", " | ")
			if r.LastPass != nil {
				last = r.LastPass.Local().Format("15:04:05")
			}
			if note == "" {
				note = "-"
			}
			lag := time.Duration(r.LagSeconds * float64(time.Second)).Round(100 * time.Millisecond)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, r.Resource, r.Source, r.Target, lag, last, note)
		}
	}
	return tw.Flush()
}

func flagList(flags map[string]string) string {
	if len(flags) == 0 {
		return "-"
	}
	var names []string
	for n := range flags {
		names = append(names, n)
	}
	sort.Strings(names)
	return "failed on " + strings.Join(names, ",")
}

// actionCmd builds the operator verbs; each records an event with who and why.
func actionCmd(g *globals, use, short string, args cobra.PositionalArgs, build func(args []string) (string, model.OperatorAction, error)) *cobra.Command {
	var reason, node string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, a []string) error {
			path, act, err := build(a)
			if err != nil {
				return err
			}
			act.Reason = reason
			c, _, err := g.connect(node)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			ev, err := c.Act(ctx, path, act)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "recorded %s: %s\n", ev.Kind, ev.Reason)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the event log)")
	cmd.Flags().StringVar(&node, "via", "", "send through this node")
	return cmd
}

func operatorCmds(g *globals) []*cobra.Command {
	move := actionCmd(g, "move GROUP NODE", "Move a group to another node (stops it here, then starts it there)", cobra.ExactArgs(2),
		func(a []string) (string, model.OperatorAction, error) {
			return "/v1/groups/" + url.PathEscape(a[0]) + "/move", model.OperatorAction{Node: a[1]}, nil
		})
	failback := actionCmd(g, "failback GROUP", "Authorise a group to move back to its preferred node (failback: manual)", cobra.ExactArgs(1),
		func(a []string) (string, model.OperatorAction, error) {
			return "/v1/groups/" + url.PathEscape(a[0]) + "/failback", model.OperatorAction{}, nil
		})
	flags := &cobra.Command{Use: "flags", Short: "Persistent failure flags"}
	flags.AddCommand(actionCmd(g, "clear GROUP [NODE]", "Clear the flag of GROUP on NODE (all nodes if omitted)", cobra.RangeArgs(1, 2),
		func(a []string) (string, model.OperatorAction, error) {
			act := model.OperatorAction{Group: a[0]}
			if len(a) == 2 {
				act.Node = a[1]
			}
			return "/v1/flags/clear", act, nil
		}))
	maint := actionCmd(g, "maintenance on|off [GROUP]", "Maintenance: nothing is started, stopped or moved; monitors only report", cobra.RangeArgs(1, 2),
		func(a []string) (string, model.OperatorAction, error) {
			var on bool
			switch a[0] {
			case "on":
				on = true
			case "off":
			default:
				return "", model.OperatorAction{}, usagef("maintenance: say on or off, not %q", a[0])
			}
			act := model.OperatorAction{On: &on}
			if len(a) == 2 {
				act.Group = a[1]
			}
			return "/v1/maintenance", act, nil
		})
	return []*cobra.Command{groupsCmd(g), move, failback, flags, withWindow(g, maint)}
}
