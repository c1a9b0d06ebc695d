package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/internal/apiclient"
	"github.com/vigil-ha/vigil/internal/model"
)

func batchCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "batch", Short: "Run the commands a node's remote batch service offers"}
	cmd.AddCommand(batchRunCmd(g))
	return cmd
}

// batchFailed carries a batch's non-zero exit code to the CLI's exit status (1).
type batchFailed struct{ res model.BatchResult }

func (e batchFailed) Error() string {
	if e.res.ExitCode < 0 {
		return fmt.Sprintf("batch %s failed: %s", e.res.Name, e.res.Error)
	}
	return fmt.Sprintf("batch %s exited with code %d", e.res.Name, e.res.ExitCode)
}

func batchRunCmd(g *globals) *cobra.Command {
	var node string
	var params []string
	var tries int
	var interval, timeout time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "run NAME [--param k=v]...",
		Short: "Run a batch command: exit 0 when it answers 200, 1 otherwise; retried on no answer or 5xx",
		Long: `Run a batch command configured in the batch section of vigil.yaml on a node.
As in seed 002's Remote Batch, a failed attempt (no answer, HTTP 5xx: the command
exited non-zero or timed out) is tried again after --interval, up to --tries in all;
a refusal (HTTP 4xx: unknown command, parameter not allowed) is not.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kv, err := parseParams(params)
			if err != nil {
				return err
			}
			if tries < 1 {
				return usagef("--tries must be at least 1")
			}
			name, err := g.oneNode(node)
			if err != nil {
				return err
			}
			c, _, err := g.connect(name)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := runBatch(cmd.Context(), c, args[0], kv, tries, interval, timeout, func(try int, err error) {
				fmt.Fprintf(g.stderr, "vigil: try %d of %d: %v\n", try, tries, err)
			})
			if err != nil {
				return err
			}
			if asJSON {
				if err := printJSON(g.stdout, res); err != nil {
					return err
				}
			} else {
				fmt.Fprint(g.stdout, res.Output)
				if res.Output != "" && !strings.HasSuffix(res.Output, "\n") {
					fmt.Fprintln(g.stdout)
				}
			}
			if res.ExitCode != 0 {
				return batchFailed{res}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "the node to run it on (default: this machine's node)")
	cmd.Flags().StringArrayVarP(&params, "param", "p", nil, "a parameter as name=value (the command must allow it)")
	cmd.Flags().IntVar(&tries, "tries", 3, "attempts in all before giving up (seed 002: three)")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "wait between attempts (seed 002's check rate)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "bound on each attempt, on top of the command's own timeout on the node")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func parseParams(params []string) (map[string]string, error) {
	if len(params) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, p := range params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usagef("--param %q: use name=value", p)
		}
		out[k] = v
	}
	return out, nil
}

// runBatch tries up to tries times. The last attempt's result is returned, even a
// failed one: its exit code and output are the answer.
func runBatch(ctx context.Context, c *apiclient.Client, name string, params map[string]string, tries int, interval, timeout time.Duration, onRetry func(int, error)) (model.BatchResult, error) {
	var res model.BatchResult
	var err error
	for try := 1; try <= tries; try++ {
		actx, cancel := context.WithTimeout(ctx, timeout)
		res, err = c.RunBatch(actx, name, params)
		cancel()
		var be *apiclient.BatchError
		switch {
		case err == nil && res.ExitCode == 0:
			return res, nil
		case errors.As(err, &be) && be.Status >= 400 && be.Status < 500:
			if be.Status == http.StatusBadRequest || be.Status == http.StatusNotFound || be.Status == http.StatusForbidden {
				return res, usageError{err}
			}
			return res, err
		}
		if try == tries || ctx.Err() != nil {
			break
		}
		if err != nil {
			onRetry(try, err)
		} else {
			onRetry(try, batchFailed{res})
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(interval):
		}
	}
	return res, err
}
