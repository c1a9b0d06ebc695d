package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/internal/apiclient"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/workflow"
	"github.com/vigil-ha/vigil/internal/workflow/history"
)

// requestTimeout bounds one API call of the workflow verbs (not a followed run).
const requestTimeout = 30 * time.Second

func workflowCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "workflow",
		Aliases: []string{"wf"},
		Short:   "Run, stop and inspect workflows (procedures of steps driven by exit codes)",
	}
	cmd.AddCommand(wfListCmd(g), wfShowCmd(g), wfRunCmd(g), wfStopCmd(g), wfContinueCmd(g), wfRunsCmd(g), wfLogsCmd(g))
	return cmd
}

// wfVerb builds a verb that talks to one node (--node, default this machine's).
func wfVerb(g *globals, use, short string, args cobra.PositionalArgs, run func(ctx context.Context, c *apiclient.Client, args []string, node string) error) (*cobra.Command, *string) {
	node := new(string)
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := g.oneNode(*node)
			if err != nil {
				return err
			}
			c, _, err := g.connect(name)
			if err != nil {
				return err
			}
			defer c.Close()
			return run(cmd.Context(), c, args, name)
		},
	}
	cmd.Flags().StringVar(node, "node", "", "the node whose engine to use (default: this machine's node); workflows and runs are per node")
	return cmd, node
}

// oneNode is the node a per-node verb talks to: --node, else this machine's node.
// Unlike the cluster-wide verbs it never falls back to another node: a workflow
// started on the wrong node (a takeover where the service runs) does harm.
func (g *globals) oneNode(node string) (string, error) {
	if node != "" {
		return node, nil
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return "", err
	}
	local := localAddrs()
	var mine []string
	for _, n := range cfg.Nodes {
		for _, a := range n.Addresses {
			if local[a] {
				mine = append(mine, n.Name)
				break
			}
		}
	}
	if len(mine) != 1 {
		return "", usagef("say which node with --node: workflows, runs and batches are per node, and this machine is %s (nodes: %v)",
			map[bool]string{true: "several of them", false: "none of them"}[len(mine) > 1], cfg.NodeNames())
	}
	return mine[0], nil
}

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, requestTimeout)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func wfListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd, _ := wfVerb(g, "list", "List the workflows and what each is doing", cobra.NoArgs, func(ctx context.Context, c *apiclient.Client, _ []string, _ string) error {
		ctx, cancel := withTimeout(ctx)
		defer cancel()
		ws, err := c.Workflows(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(g.stdout, ws)
		}
		tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKFLOW\tSTEPS\tEXCLUSIVE\tSTATE\tLAST RUN\tDESCRIPTION")
		for _, w := range ws {
			state, last := "idle", "-"
			if w.Last != nil {
				last = fmt.Sprintf("%s %s", w.Last.ID, w.Last.Result)
			}
			if w.Running != "" {
				state = "running"
			}
			fmt.Fprintf(tw, "%s\t%d\t%v\t%s\t%s\t%s\n", w.Name, len(w.Steps), w.Exclusive, state, last, w.Description)
		}
		return tw.Flush()
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func wfShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd, _ := wfVerb(g, "show WORKFLOW", "Show a workflow's steps and transitions", cobra.ExactArgs(1), func(ctx context.Context, c *apiclient.Client, args []string, _ string) error {
		ctx, cancel := withTimeout(ctx)
		defer cancel()
		w, err := c.Workflow(ctx, args[0])
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(g.stdout, w)
		}
		printWorkflow(g.stdout, w)
		return nil
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printWorkflow(out io.Writer, w apiclient.WorkflowStatus) {
	fmt.Fprintf(out, "workflow %s", w.Name)
	if w.Exclusive {
		fmt.Fprint(out, " (exclusive: nothing else runs beside it)")
	}
	fmt.Fprintln(out)
	if w.Description != "" {
		fmt.Fprintf(out, "  %s\n", w.Description)
	}
	switch {
	case w.Running != "":
		fmt.Fprintf(out, "  running: run %s\n", w.Running)
	case w.Last != nil:
		fmt.Fprintf(out, "  last run: %s %s\n", w.Last.ID, w.Last.Result)
	}
	first := w.FirstStep()
	for _, s := range w.Steps {
		mark := " "
		if s.Name == first {
			mark = ">"
		}
		fmt.Fprintf(out, "%s %s: %s\n", mark, s.Name, stepWhat(s))
		var opts []string
		if s.WaitBefore > 0 {
			opts = append(opts, "wait_before "+s.WaitBefore.D().String())
		}
		if s.Timeout > 0 {
			opts = append(opts, "timeout "+s.Timeout.D().String())
		}
		if s.Retries > 0 {
			opts = append(opts, fmt.Sprintf("retries %d every %s", s.Retries, s.RetryDelay.D()))
		}
		if s.Watch != nil {
			opts = append(opts, "watch every "+s.Watch.Interval.D().String())
		}
		if s.Commit {
			opts = append(opts, "commit")
		}
		if len(opts) > 0 {
			fmt.Fprintf(out, "      %s\n", strings.Join(opts, ", "))
		}
		fmt.Fprintf(out, "      on %s\n", transitions(s))
	}
}

func stepWhat(s workflow.Step) string {
	switch {
	case s.Remote != nil:
		return strings.Join(s.Remote.Describe(), " ")
	case s.Shell != "":
		return "sh -c " + quote(s.Shell)
	case len(s.Command) > 0:
		parts := make([]string, len(s.Command))
		for i, a := range s.Command {
			parts[i] = quote(a)
		}
		return strings.Join(parts, " ")
	}
	return "(pause)"
}

func quote(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\"'$\\|&;<>()*?") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// transitions renders a step's `on` with the implicit defaults spelled out.
func transitions(s workflow.Step) string {
	keys := make([]string, 0, len(s.On))
	for k := range s.On {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i] == workflow.OnDefault || keys[j] == workflow.OnDefault {
			return keys[j] == workflow.OnDefault && keys[i] != workflow.OnDefault
		}
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) < len(keys[j])
		}
		return keys[i] < keys[j]
	})
	var parts []string
	if _, ok := s.On["0"]; !ok {
		parts = append(parts, "0 -> next")
	}
	for _, k := range keys {
		parts = append(parts, k+" -> "+s.On[k])
	}
	if _, ok := s.On[workflow.OnDefault]; !ok {
		parts = append(parts, "default -> abend")
	}
	return strings.Join(parts, ", ")
}

// errRunFailed makes `run --follow` and `logs --follow` exit 1 when the run did not end well.
type errRunFailed struct{ run history.Run }

func (e errRunFailed) Error() string {
	return fmt.Sprintf("run %s of %s %s at step %s", e.run.ID, e.run.Workflow, e.run.Result, e.run.Step)
}

func wfRunCmd(g *globals) *cobra.Command {
	var req model.WorkflowRunRequest
	var follow bool
	cmd, _ := wfVerb(g, "run WORKFLOW", "Start a workflow (whole, from a step, one step only, or step by step)", cobra.ExactArgs(1), func(ctx context.Context, c *apiclient.Client, args []string, _ string) error {
		sctx, cancel := withTimeout(ctx)
		defer cancel()
		started, err := c.StartWorkflow(sctx, args[0], req)
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "started run %s of %s on %s\n", started.ID, started.Workflow, started.Node)
		if req.StepByStep {
			fmt.Fprintf(g.stdout, "step by step: after each step run 'vigil workflow continue %s --node %s'\n", started.ID, started.Node)
		}
		if !follow {
			return nil
		}
		return followRun(ctx, g.stdout, c, started.ID)
	})
	cmd.Flags().StringVar(&req.From, "from", "", "start at this step instead of the first")
	cmd.Flags().StringVar(&req.OnlyStep, "only-step", "", "run this one step only")
	cmd.Flags().BoolVar(&req.StepByStep, "step-by-step", false, "pause after each step until 'vigil workflow continue RUN'")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "print the steps as they run; exit 1 unless the run ends well")
	return cmd
}

// followRun prints each attempt as it finishes, then the result.
func followRun(ctx context.Context, out io.Writer, c *apiclient.Client, id string) error {
	printed := map[int]bool{}
	paused := ""
	show := func(run history.Run, _ []history.Attempt) error {
		for _, a := range run.Steps {
			if a.Ended.IsZero() || printed[a.Seq] {
				continue
			}
			printed[a.Seq] = true
			printAttempt(out, a, false)
		}
		if run.Phase == "paused" && run.Step != paused {
			paused = run.Step
			fmt.Fprintf(out, "paused before %s: run 'vigil workflow continue %s'\n", run.Step, run.ID)
		}
		return nil
	}
	for {
		run, err := c.FollowRun(ctx, id, show)
		if err == nil {
			fmt.Fprintf(out, "run %s %s", run.ID, run.Result)
			if run.Commit != "" {
				fmt.Fprintf(out, " (last commit point: %s)", run.Commit)
			}
			fmt.Fprintln(out)
			if run.Result != workflow.ResultEnded {
				return errRunFailed{run}
			}
			return nil
		}
		var apiErr *apiclient.APIError
		if ctx.Err() != nil || errors.As(err, &apiErr) {
			return err
		}
		// The stream broke (agent restarting, link flapping): pick it up again.
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

func printAttempt(out io.Writer, a history.Attempt, withOutput bool) {
	what := a.Step
	if a.Attempt > 1 {
		what += fmt.Sprintf(" (attempt %d)", a.Attempt)
	}
	if a.Check > 0 {
		what += fmt.Sprintf(" (check %d)", a.Check)
	}
	code := fmt.Sprintf("exit %d", a.ExitCode)
	switch {
	case a.Ended.IsZero():
		code = "running"
	case a.TimedOut:
		code = "timed out"
	case a.Signal != "":
		code = "killed by " + a.Signal
	}
	d := a.Duration
	if d == 0 && !a.Ended.IsZero() {
		d = a.Ended.Sub(a.Started)
	}
	line := fmt.Sprintf("%s  %-28s %-12s %8s", a.Started.Local().Format("15:04:05.000"), what, code, d.Round(time.Millisecond))
	if a.Target != "" {
		line += "  -> " + a.Target
	}
	if a.Error != "" {
		line += "  (" + a.Error + ")"
	}
	fmt.Fprintln(out, line)
	if !withOutput || a.Output == "" {
		return
	}
	for _, l := range strings.Split(strings.TrimRight(a.Output, "\n"), "\n") {
		fmt.Fprintf(out, "    | %s\n", l)
	}
	if a.Truncated {
		fmt.Fprintln(out, "    | (output truncated)")
	}
}

func wfStopCmd(g *globals) *cobra.Command {
	cmd, _ := wfVerb(g, "stop WORKFLOW", "Stop a workflow's run in progress (its step's process group is killed)", cobra.ExactArgs(1), func(ctx context.Context, c *apiclient.Client, args []string, _ string) error {
		ctx, cancel := withTimeout(ctx)
		defer cancel()
		res, err := c.StopWorkflow(ctx, args[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "stopped run %s of %s on %s\n", res.ID, res.Workflow, res.Node)
		return nil
	})
	return cmd
}

func wfContinueCmd(g *globals) *cobra.Command {
	cmd, _ := wfVerb(g, "continue RUN", "Run the next step of a step-by-step run", cobra.ExactArgs(1), func(ctx context.Context, c *apiclient.Client, args []string, _ string) error {
		ctx, cancel := withTimeout(ctx)
		defer cancel()
		if err := c.ContinueRun(ctx, args[0]); err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "run %s continues\n", args[0])
		return nil
	})
	return cmd
}

func wfRunsCmd(g *globals) *cobra.Command {
	var asJSON bool
	var wf string
	var limit int
	cmd, _ := wfVerb(g, "runs", "List workflow runs, newest first", cobra.NoArgs, func(ctx context.Context, c *apiclient.Client, _ []string, _ string) error {
		ctx, cancel := withTimeout(ctx)
		defer cancel()
		runs, err := c.Runs(ctx, wf, limit)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(g.stdout, runs)
		}
		tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tWORKFLOW\tRESULT\tSTEP\tSTARTED\tDURATION\tSTARTED BY")
		for _, r := range runs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Workflow, resultText(r), dashIfEmpty(r.Step),
				r.Started.Local().Format("2006-01-02 15:04:05"), runDuration(r), r.StartedBy)
		}
		return tw.Flush()
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&wf, "workflow", "", "only runs of this workflow")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many runs")
	return cmd
}

func resultText(r history.Run) string {
	if r.Result == workflow.ResultRunning && r.Phase != "" {
		return "running (" + r.Phase + ")"
	}
	return string(r.Result)
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runDuration(r history.Run) string {
	end := r.Ended
	if end.IsZero() {
		end = time.Now()
	}
	return end.Sub(r.Started).Round(time.Millisecond).String()
}

func wfLogsCmd(g *globals) *cobra.Command {
	var asJSON, follow bool
	cmd, _ := wfVerb(g, "logs RUN", "Show a run step by step: exit codes, durations, transitions and output", cobra.ExactArgs(1), func(ctx context.Context, c *apiclient.Client, args []string, _ string) error {
		if follow {
			return followRun(ctx, g.stdout, c, args[0])
		}
		rctx, cancel := withTimeout(ctx)
		defer cancel()
		run, err := c.Run(rctx, args[0])
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(g.stdout, run)
		}
		fmt.Fprintf(g.stdout, "run %s of %s: %s\n", run.ID, run.Workflow, resultText(run))
		fmt.Fprintf(g.stdout, "started %s by %s, %s\n", run.Started.Local().Format(time.RFC3339), run.StartedBy, runDuration(run))
		if o := run.Options; o.From != "" || o.OnlyStep != "" || o.StepByStep {
			fmt.Fprintf(g.stdout, "options: from=%q only_step=%q step_by_step=%v\n", o.From, o.OnlyStep, o.StepByStep)
		}
		if run.Commit != "" {
			fmt.Fprintf(g.stdout, "last commit point: %s\n", run.Commit)
		}
		if run.QuietChecks > 0 {
			fmt.Fprintf(g.stdout, "%d further passing watch checks, the last at %s\n", run.QuietChecks, run.LastCheck.Local().Format(time.RFC3339))
		}
		if run.Note != "" {
			fmt.Fprintf(g.stdout, "note: %s\n", run.Note)
		}
		for _, a := range run.Steps {
			printAttempt(g.stdout, a, true)
		}
		return nil
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow a run in progress to its end")
	return cmd
}
