package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/internal/apiclient"
	"github.com/vigil-ha/vigil/internal/model"
)

// tokenCmd manages API tokens (admin). The secret of a new token is printed once
// on stdout and kept nowhere: the log holds only its hash.
func tokenCmd(g *globals) *cobra.Command {
	var node string
	cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke API tokens (needs an admin token)"}
	cmd.PersistentFlags().StringVar(&node, "via", "", "send through this node")

	var name, role string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create --role viewer|operator|admin --name NAME",
		Short: "Create a token and print its secret (shown only this once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := model.TokenRole(role)
			if r.Rank() == 0 {
				return usagef("--role: viewer, operator or admin, not %q", role)
			}
			if name == "" {
				return usagef("--name is required")
			}
			return g.withClient(cmd.Context(), node, func(ctx context.Context, c *apiclient.Client) error {
				t, err := c.CreateToken(ctx, name, r)
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(g.stdout).Encode(t)
				}
				fmt.Fprintln(g.stdout, t.Token)
				fmt.Fprintf(g.stderr, "token %s (role %s) created; the secret above is not shown again. Use it as VIGIL_TOKEN or paste it into the console.\n", t.Name, t.Role)
				return nil
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "the token's name, recorded as who in every event it causes")
	create.Flags().StringVar(&role, "role", "", "viewer (read), operator (act) or admin (tokens)")
	create.Flags().BoolVar(&asJSON, "json", false, "print the answer as JSON")

	var reason string
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token: every node refuses it once the event reaches it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd.Context(), node, func(ctx context.Context, c *apiclient.Client) error {
				ev, err := c.RevokeToken(ctx, args[0], reason)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "recorded %s: %s\n", ev.Kind, ev.Reason)
				return nil
			})
		},
	}
	revoke.Flags().StringVar(&reason, "reason", "", "why (kept in the event log)")

	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the tokens: name, role, who created them and when",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd.Context(), node, func(ctx context.Context, c *apiclient.Client) error {
				ts, err := c.Tokens(ctx)
				if err != nil {
					return err
				}
				if listJSON {
					return g.printJSON(ts)
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tROLE\tCREATED\tBY")
				for _, t := range ts {
					created := "-"
					if !t.Created.IsZero() {
						created = t.Created.Local().Format(time.DateTime)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Role, created, t.By)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	cmd.AddCommand(create, revoke, list)
	return cmd
}
