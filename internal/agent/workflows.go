package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/apiclient"
	"github.com/vigil-ha/vigil/internal/httpapi"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/workflow"
	"github.com/vigil-ha/vigil/internal/workflow/history"
	"github.com/vigil-ha/vigil/internal/workflow/runner"
)

// openWorkflows opens this node's workflow engine: its history lives in the data
// dir, its scripts next to the config file. Runs a previous agent left in progress
// are marked interrupted now and reported once the event shipper runs.
func (a *Agent) openWorkflows() error {
	eng, err := runner.Open(runner.Options{
		Path:         filepath.Join(a.opt.DataDir, "workflows.db"),
		Workflows:    a.cfg.Workflows,
		BaseDir:      a.cfg.Dir(),
		Env:          []string{"VIGIL_NODE=" + a.self.Name, "VIGIL_CLUSTER=" + a.cfg.Cluster.Name, "VIGIL_CONFIG=" + a.cfg.Path},
		Logger:       a.log.With("component", "workflows"),
		StepExecutor: a.remoteStep,
	})
	if err != nil {
		return fmt.Errorf("workflow engine: %w", err)
	}
	a.wf = eng
	return nil
}

// closeWorkflows ends the runs still in progress (recorded interrupted) and closes
// the history. It runs after the group workers are done: their stop workflows
// need the engine until then.
func (a *Agent) closeWorkflows() {
	if err := a.wf.Close(); err != nil {
		a.log.Error("close workflow engine", "err", err)
	}
}

// startedByMonitor marks the runs of workflow resources' health checks: they come
// every few seconds and are not worth an event unless they fail.
const startedByMonitor = " (monitor)"

// reportWorkflows turns run updates into events: started, and how each run ended.
// An abend is critical: it is what the seed's operators get notified of.
func (a *Agent) reportWorkflows(ctx context.Context) error {
	// Runs that a crash cut off were marked interrupted by Open; say so once.
	for _, id := range a.wf.Recovered() {
		if r, err := a.wf.Run(id); err == nil {
			a.emit(a.runEvent(r))
		}
	}
	for {
		updates, cancel := a.wf.Subscribe(4096)
		dropped := a.forwardRuns(ctx, updates)
		cancel()
		if !dropped {
			return nil
		}
		a.log.Warn("workflow events fell behind; some run events may be missing")
	}
}

func (a *Agent) forwardRuns(ctx context.Context, updates <-chan runner.Update) (dropped bool) {
	for {
		select {
		case <-ctx.Done():
			return false
		case u, ok := <-updates:
			if !ok {
				// The engine closes only after this goroutine is done: a close
				// while ctx is alive is a subscription dropped for falling behind.
				return ctx.Err() == nil
			}
			r := u.Run
			a.steps.observe(r.Workflow, u.Attempts)
			switch {
			case r.Result == workflow.ResultRunning && r.Phase == "starting":
			case r.Result.Final():
			default:
				continue
			}
			if strings.HasSuffix(r.StartedBy, startedByMonitor) && (r.Result == workflow.ResultRunning || r.Result == workflow.ResultEnded) {
				continue
			}
			a.emit(a.runEvent(r))
		}
	}
}

func (a *Agent) runEvent(r history.Run) model.Event {
	ev := model.Event{Kind: model.EventWorkflowStarted, Severity: model.SeverityInfo, Reporter: a.self.Name, Node: a.self.Name, By: r.StartedBy}
	where := ""
	if r.Step != "" {
		where = " at step " + r.Step
	}
	switch r.Result {
	case workflow.ResultRunning:
		ev.Reason = fmt.Sprintf("workflow %s run %s started%s", r.Workflow, r.ID, where)
		return ev
	case workflow.ResultEnded:
		ev.Kind = model.EventWorkflowEnded
	case workflow.ResultAbended:
		ev.Kind, ev.Severity = model.EventWorkflowAbended, model.SeverityCritical
	case workflow.ResultStopped:
		ev.Kind, ev.Severity = model.EventWorkflowStopped, model.SeverityWarning
	default:
		ev.Kind, ev.Severity = model.EventWorkflowInterrupted, model.SeverityWarning
	}
	ev.Reason = fmt.Sprintf("workflow %s run %s %s%s after %s", r.Workflow, r.ID, r.Result, where, r.Ended.Sub(r.Started).Round(time.Millisecond))
	if r.Note != "" {
		ev.Reason += ": " + r.Note
	}
	if r.Result == workflow.ResultAbended {
		// The failing step's output is what the operator needs first.
		if full, err := a.wf.Run(r.ID); err == nil {
			for i := len(full.Steps) - 1; i >= 0; i-- {
				if s := full.Steps[i]; s.Step == r.Step || i == len(full.Steps)-1 {
					ev.Output = strings.TrimSpace(s.Output)
					break
				}
			}
		}
	}
	return ev
}

// Workflows lists this node's workflows (httpapi.WorkflowBackend).
func (a *Agent) Workflows() []workflow.Workflow { return a.wf.Workflows() }

// StartWorkflow starts a run (httpapi.WorkflowBackend).
func (a *Agent) StartWorkflow(name string, opts workflow.RunOptions, by string) (string, error) {
	return a.wf.Start(name, opts, by)
}

// StopWorkflow stops the workflow's run in progress (httpapi.WorkflowBackend).
func (a *Agent) StopWorkflow(ctx context.Context, name string) (string, error) {
	return a.wf.StopWorkflow(ctx, name)
}

// ContinueRun continues a step-by-step run (httpapi.WorkflowBackend).
func (a *Agent) ContinueRun(id string) error { return a.wf.Continue(id) }

// WorkflowRuns lists runs, newest first (httpapi.WorkflowBackend).
func (a *Agent) WorkflowRuns(f history.Filter, limit int) ([]history.Run, error) {
	return a.wf.Runs(f, limit)
}

// WorkflowRun returns a run with its steps (httpapi.WorkflowBackend).
func (a *Agent) WorkflowRun(id string) (history.Run, error) { return a.wf.Run(id) }

// SubscribeRuns streams run updates (httpapi.WorkflowBackend).
func (a *Agent) SubscribeRuns() (<-chan runner.Update, func()) { return a.wf.Subscribe(1024) }

// NodeName is this node's name (httpapi.WorkflowBackend).
func (a *Agent) NodeName() string { return a.self.Name }

// remoteStep carries out a remote step (the seed's @RWC) through the other node's
// API over mutual TLS; this node's certificate is its credential there.
func (a *Agent) remoteStep(ctx context.Context, req runner.StepRequest) runner.StepResult {
	r := req.Step.Remote
	c, err := a.peerClient(r.Node)
	if err != nil {
		return runner.StepResult{ExitCode: workflow.RemoteExitRefused, Error: err.Error()}
	}
	if r.EffectiveAction() == workflow.RemoteStop {
		res, err := c.StopWorkflow(ctx, r.Workflow)
		var apiErr *apiclient.APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict:
			// Stopping what does not run leaves it as wanted: not a failure.
			return runner.StepResult{ExitCode: workflow.RemoteExitOK, Output: fmt.Sprintf("%s was not running on %s: %s", r.Workflow, r.Node, apiErr.Message)}
		case err != nil:
			return remoteFailure(r, "stop", err)
		}
		return runner.StepResult{ExitCode: workflow.RemoteExitOK, Output: fmt.Sprintf("stopped run %s of %s on %s", res.ID, r.Workflow, r.Node)}
	}
	rr := model.WorkflowRunRequest{Origin: fmt.Sprintf("workflow %s run %s step %s", req.Workflow, req.RunID, req.Step.Name)}
	if r.OnlyStep {
		rr.OnlyStep = r.Step
	} else {
		rr.From = r.Step
	}
	started, err := c.StartWorkflow(ctx, r.Workflow, rr)
	if err != nil {
		return remoteFailure(r, "start", err)
	}
	out := fmt.Sprintf("started run %s of %s on %s\n", started.ID, r.Workflow, r.Node)
	if !r.Wait {
		return runner.StepResult{ExitCode: workflow.RemoteExitOK, Output: out}
	}
	run, err := a.waitRemote(ctx, c, started.ID)
	if err != nil {
		// Cut by the step's timeout or a stop of this run: the remote run is this
		// step's process, so it is stopped too (best effort: the node may be gone).
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, serr := c.StopWorkflow(sctx, r.Workflow); serr == nil {
			out += fmt.Sprintf("stopped the remote run: %v\n", err)
		}
		return runner.StepResult{ExitCode: -1, Output: out, Error: err.Error()}
	}
	out += remoteTrace(run)
	switch run.Result {
	case workflow.ResultEnded:
		return runner.StepResult{ExitCode: workflow.RemoteExitOK, Output: out}
	case workflow.ResultAbended:
		return runner.StepResult{ExitCode: workflow.RemoteExitAbended, Output: out}
	}
	return runner.StepResult{ExitCode: workflow.RemoteExitStopped, Output: out}
}

// waitRemote follows the remote run to its end; a broken stream (a restarting
// agent, a flapping link) is followed again until ctx ends.
func (a *Agent) waitRemote(ctx context.Context, c *apiclient.Client, id string) (history.Run, error) {
	for {
		run, err := c.FollowRun(ctx, id, nil)
		if err == nil {
			return run, nil
		}
		var apiErr *apiclient.APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
			return run, err // the node lost its history: nothing to wait for
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// remoteFailure maps an API failure to the remote step's exit codes: a refusal by
// the node (4xx) or no usable answer (transport error, 5xx).
func remoteFailure(r *workflow.Remote, what string, err error) runner.StepResult {
	code := workflow.RemoteExitUnreachable
	var apiErr *apiclient.APIError
	if errors.As(err, &apiErr) && apiErr.Status >= 400 && apiErr.Status < 500 {
		code = workflow.RemoteExitRefused
	}
	return runner.StepResult{ExitCode: code, Output: fmt.Sprintf("could not %s %s on %s: %v\n", what, r.Workflow, r.Node, err), Error: err.Error()}
}

// remoteTrace summarises a remote run for the local history.
func remoteTrace(run history.Run) string {
	var b strings.Builder
	fmt.Fprintf(&b, "remote run %s: %s", run.ID, run.Result)
	if run.Step != "" {
		fmt.Fprintf(&b, " at step %s", run.Step)
	}
	b.WriteString("\n")
	for _, s := range run.Steps {
		fmt.Fprintf(&b, "  %s (attempt %d): exit %d", s.Step, s.Attempt, s.ExitCode)
		if s.Target != "" {
			fmt.Fprintf(&b, " -> %s", s.Target)
		}
		if s.Error != "" {
			fmt.Fprintf(&b, " (%s)", s.Error)
		}
		b.WriteString("\n")
	}
	return b.String()
}

var _ httpapi.WorkflowBackend = (*Agent)(nil)
