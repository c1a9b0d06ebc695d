package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
	"github.com/vigil-ha/vigil/internal/runexec"
	"github.com/vigil-ha/vigil/internal/workflow"
	"github.com/vigil-ha/vigil/internal/workflow/history"
	"github.com/vigil-ha/vigil/internal/workflow/runner"
)

func init() {
	resourceTypes["workflow"] = func(a *Agent, g config.Group, r config.Resource) (resource.Agent, error) {
		if a.wf == nil {
			return nil, errors.New("the workflow engine is not open")
		}
		return &workflowResource{a: a, group: g.Name, spec: r, by: fmt.Sprintf("group %s resource %s", g.Name, r.Name)}, nil
	}
}

// workflowResource drives a service through workflows of this node's engine (the
// seed's Decision Engine calling normalPrimer, gracefulShutdown, takeControl and
// restartWorkFlow):
//
//   - Start runs `takeover` when the group came here because it failed on another
//     node (clusterstate.Group.Takeover), else `start`. It succeeds when the run
//     ends, or when it passes a commit step, or reaches a pure wait step, while
//     still running: a start workflow may go on as the service's own health loop
//     (the seed's commit step that "loops without exit").
//   - Stop stops that run if it still goes on, then runs `stop` to its end.
//   - Monitor fails when the start run abended; else it runs `monitor` (a workflow,
//     to its end) or `check` (a command, exit 0). Without either the service is
//     taken as running while started. When the check fails and `restart` is set,
//     the restart workflow is started and the resource reported running while it
//     works; once it passes its commit (or pure wait) step the checks resume. A
//     failure while the restart run is still in progress (its long final wait, the
//     seed's guard against restart chains) is not restarted again: it fails the
//     resource, and the group's own restart or move policy takes over.
//
// The grouprun worker calls one method at a time, so the fields need no lock.
type workflowResource struct {
	a     *Agent
	group string
	spec  config.Resource
	by    string

	started    bool
	startRun   string // a start or takeover run still in progress after it settled
	restartRun string // the restart run in progress
}

// Start implements resource.Agent.
func (w *workflowResource) Start(ctx context.Context) (resource.Output, error) {
	name, why := w.spec.Start, "start"
	if w.spec.Takeover != "" && w.a.isTakeover(w.group) {
		name, why = w.spec.Takeover, "takeover"
	}
	run, out, err := w.runSettled(ctx, name, w.by+" "+why)
	if err != nil {
		return out, err
	}
	w.started = true
	w.startRun = ""
	if run.Result == workflow.ResultRunning {
		w.startRun = run.ID
	}
	return out, nil
}

// Stop implements resource.Agent.
func (w *workflowResource) Stop(ctx context.Context) (resource.Output, error) {
	var notes []string
	for _, id := range []string{w.restartRun, w.startRun} {
		if id == "" {
			continue
		}
		if err := w.a.wf.Stop(ctx, id); err != nil && !errors.Is(err, runner.ErrNotRunning) {
			return resource.Output{Text: strings.Join(notes, "\n")}, fmt.Errorf("stop run %s: %w", id, err)
		}
		notes = append(notes, "stopped run "+id)
	}
	w.restartRun, w.startRun = "", ""
	_, out, err := w.runSettled(ctx, w.spec.Stop, w.by+" stop")
	if len(notes) > 0 {
		out.Text = strings.Join(notes, "\n") + "\n" + out.Text
	}
	if err != nil {
		return out, err
	}
	w.started = false
	return out, nil
}

// Monitor implements resource.Agent.
func (w *workflowResource) Monitor(ctx context.Context) (resource.State, resource.Output, error) {
	if w.restartRun != "" {
		run, err := w.a.wf.Run(w.restartRun)
		switch {
		case err != nil:
			w.restartRun = ""
		case run.Result == workflow.ResultRunning && !w.a.settled(run):
			return resource.Running, resource.Output{Text: fmt.Sprintf("restart workflow %s (run %s) in progress at step %s", run.Workflow, run.ID, run.Step)}, nil
		case run.Result == workflow.ResultEnded:
			w.restartRun = ""
		case run.Result.Final():
			w.restartRun = ""
			return resource.Failed, runOutput(run), fmt.Errorf("restart workflow %s (run %s) %s at step %s", run.Workflow, run.ID, run.Result, run.Step)
		}
	}
	var failure error
	var out resource.Output
	if w.startRun != "" {
		// A start workflow that went on past its commit step is the service's own
		// health loop: its end other than `end` is a failure detected.
		run, err := w.a.wf.Run(w.startRun)
		switch {
		case err != nil:
			w.startRun, failure = "", fmt.Errorf("start run %s: %w", w.startRun, err)
		case run.Result == workflow.ResultEnded:
			w.startRun = ""
		case run.Result.Final():
			w.startRun, out = "", runOutput(run)
			failure = fmt.Errorf("workflow %s (run %s) %s at step %s", run.Workflow, run.ID, run.Result, run.Step)
		}
	}
	if failure == nil {
		ok, cout, err := w.check(ctx)
		switch {
		case ok:
			return resource.Running, cout, nil
		case errors.Is(ctx.Err(), context.Canceled):
			// Cut by the agent's shutdown, not by the monitor timeout: no verdict,
			// and surely no reason to flag the group as failed here.
			if w.started {
				return resource.Running, cout, nil
			}
			return resource.Stopped, cout, nil
		case !w.started:
			// Not started by this agent and not answering: nothing left over to stop.
			return resource.Stopped, cout, nil
		}
		failure, out = err, cout
	}
	switch {
	case w.spec.Restart == "":
		return resource.Failed, out, failure
	case w.restartRun != "":
		return resource.Failed, out, fmt.Errorf("%v, again while restart run %s is still in progress: not restarting in a loop", failure, w.restartRun)
	}
	// The restart replaces the start run's health loop, which would see the
	// service go down and up again as a failure.
	if w.startRun != "" {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = w.a.wf.Stop(sctx, w.startRun)
		cancel()
		w.startRun = ""
	}
	id, err := w.a.wf.Start(w.spec.Restart, workflow.RunOptions{}, w.by+" restart")
	if err != nil {
		// Already running: the seed's guard against restart chains held.
		return resource.Failed, out, fmt.Errorf("%v; restart workflow not started: %w", failure, err)
	}
	w.restartRun = id
	out.Text = strings.TrimSpace(out.Text + fmt.Sprintf("\n%v: restart workflow %s started (run %s)", failure, w.spec.Restart, id))
	return resource.Running, out, nil
}

// check runs the monitor workflow or the check command; ok means healthy.
func (w *workflowResource) check(ctx context.Context) (bool, resource.Output, error) {
	switch {
	case w.spec.Monitor != "":
		run, out, err := w.runToEnd(ctx, w.spec.Monitor, w.by+startedByMonitor)
		if err != nil {
			return false, out, err
		}
		if run.Result != workflow.ResultEnded {
			return false, out, fmt.Errorf("monitor workflow %s (run %s) %s at step %s", run.Workflow, run.ID, run.Result, run.Step)
		}
		return true, out, nil
	case len(w.spec.Check) > 0:
		res, err := runexec.Run(ctx, runexec.Cmd{Argv: w.spec.Check, Dir: w.a.cfg.Dir(),
			Env: []string{"VIGIL_NODE=" + w.a.self.Name, "VIGIL_GROUP=" + w.group, "VIGIL_RESOURCE=" + w.spec.Name}, MaxOutput: 4 << 10})
		if err != nil {
			return false, resource.Output{}, fmt.Errorf("check: %w", err)
		}
		out := resource.Output{Text: string(res.Output), ExitCode: res.ExitCode, Duration: res.Duration}
		if rerr := res.Err(); rerr != nil {
			return false, out, fmt.Errorf("check: %w", rerr)
		}
		return true, out, nil
	}
	return w.started, resource.Output{}, errors.New("no monitor or check configured")
}

// runSettled starts a run and waits until it is settled (see settled); if ctx ends
// first (the action's timeout) the run is stopped.
func (w *workflowResource) runSettled(ctx context.Context, name, by string) (history.Run, resource.Output, error) {
	return w.run(ctx, name, by, w.a.settled)
}

// runToEnd starts a run and waits for its end.
func (w *workflowResource) runToEnd(ctx context.Context, name, by string) (history.Run, resource.Output, error) {
	return w.run(ctx, name, by, func(r history.Run) bool { return r.Result.Final() })
}

func (w *workflowResource) run(ctx context.Context, name, by string, done func(history.Run) bool) (history.Run, resource.Output, error) {
	id, err := w.a.wf.Start(name, workflow.RunOptions{}, by)
	if err != nil {
		return history.Run{}, resource.Output{}, fmt.Errorf("workflow %s: %w", name, err)
	}
	_, werr := w.a.waitRun(ctx, id, done)
	if werr != nil {
		// The action's timeout: the run is this action's process, stop it.
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = w.a.wf.Stop(sctx, id)
		cancel()
	}
	run, err := w.a.wf.Run(id)
	if err != nil {
		return run, resource.Output{}, err
	}
	out := runOutput(run)
	if werr != nil {
		return run, out, fmt.Errorf("workflow %s (run %s) stopped: %w", name, id, werr)
	}
	if run.Result.Final() && run.Result != workflow.ResultEnded {
		return run, out, fmt.Errorf("workflow %s (run %s) %s at step %s", name, id, run.Result, run.Step)
	}
	return run, out, nil
}

// runOutput is a run's trace for the resource action event.
func runOutput(run history.Run) resource.Output {
	var b strings.Builder
	fmt.Fprintf(&b, "run %s of %s: %s\n", run.ID, run.Workflow, run.Result)
	for _, s := range run.Steps {
		fmt.Fprintf(&b, "%s: exit %d", s.Step, s.ExitCode)
		if s.Error != "" {
			fmt.Fprintf(&b, " (%s)", s.Error)
		}
		if o := strings.TrimSpace(s.Output); o != "" && (s.ExitCode != 0 || s.Error != "") {
			fmt.Fprintf(&b, ": %s", lastLines(o, 5))
		}
		b.WriteString("\n")
	}
	code := 0
	if run.Result != workflow.ResultEnded && run.Result != workflow.ResultRunning {
		code = 1
	}
	d := time.Since(run.Started)
	if !run.Ended.IsZero() {
		d = run.Ended.Sub(run.Started)
	}
	return resource.Output{Text: strings.TrimSpace(b.String()), ExitCode: code, Duration: d}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// settled: the run ended, or goes on past a commit step or in a pure wait step
// (the work is done; what remains is a health loop or a cool-down).
func (a *Agent) settled(r history.Run) bool {
	switch {
	case r.Result.Final():
		return true
	case r.Commit != "":
		return true
	case r.Phase == "waiting":
		w, ok := a.cfg.Workflow(r.Workflow)
		if !ok {
			return false
		}
		s, ok := w.Step(r.Step)
		return ok && s.IsPause()
	}
	return false
}

// waitRun waits until done(run) holds, following the engine's updates, with a
// slow poll of the history as a safety net for a dropped subscription.
func (a *Agent) waitRun(ctx context.Context, id string, done func(history.Run) bool) (history.Run, error) {
	updates, cancel := a.wf.Subscribe(64)
	defer cancel()
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	check := func() (history.Run, bool) {
		r, err := a.wf.Run(id)
		return r, err == nil && done(r)
	}
	if r, ok := check(); ok {
		return r, nil
	}
	for {
		select {
		case <-ctx.Done():
			return history.Run{}, ctx.Err()
		case <-poll.C:
			if r, ok := check(); ok {
				return r, nil
			}
		case u, ok := <-updates:
			if !ok {
				// Dropped for falling behind: the poll carries on alone.
				updates = nil
				if r, ok := check(); ok {
					return r, nil
				}
				continue
			}
			if u.Run.ID == id && done(u.Run) {
				return u.Run, nil
			}
		}
	}
}

// isTakeover says whether this node's current assignment of group is a takeover
// after a failure elsewhere (see clusterstate.Group.Takeover).
func (a *Agent) isTakeover(group string) bool {
	g := a.store.ClusterState().Get(group)
	return g.Node == a.self.Name && g.Takeover
}
