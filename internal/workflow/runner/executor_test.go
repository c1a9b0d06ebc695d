package runner

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/workflow"
)

func remoteStep(name, node string, on map[string]string) workflow.Step {
	return workflow.Step{Name: name, Remote: &workflow.Remote{Node: node, Workflow: "far"}, On: on}
}

func openWith(t *testing.T, x StepExecutor, ws ...workflow.Workflow) *Engine {
	t.Helper()
	path := filepath.Join(t.TempDir(), "runs.db")
	e, err := Open(Options{Path: path, Workflows: ws, Grace: 200 * time.Millisecond, StepExecutor: x})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestStepExecutorRunsRemoteStepsAndItsCodeChoosesTheNextStep(t *testing.T) {
	var got []StepRequest
	x := func(ctx context.Context, r StepRequest) StepResult {
		got = append(got, r) // the run's goroutine alone calls it
		if r.Step.Remote.Node == "down" {
			return StepResult{ExitCode: workflow.RemoteExitUnreachable, Output: "no answer"}
		}
		return StepResult{ExitCode: 0, Output: "started run 1 on " + r.Step.Remote.Node}
	}
	w := workflow.Workflow{Name: "w", Steps: []workflow.Step{
		remoteStep("one", "b", nil),
		remoteStep("two", "down", map[string]string{"3": "fallback"}),
		{Name: "never", Command: []string{"false"}},
		sh("fallback", "echo local"),
	}}
	e := openWith(t, x, w)
	r := wait(t, e, start(t, e, "w", workflow.RunOptions{}))
	if r.Result != workflow.ResultEnded || trace(r) != "one:0>two two:3>fallback fallback:0>end" {
		t.Fatalf("%s %s", r.Result, trace(r))
	}
	if len(got) != 2 || got[0].Workflow != "w" || got[0].RunID != r.ID || got[0].StartedBy != "test" {
		t.Fatalf("requests %+v", got)
	}
	if c := strings.Join(r.Steps[0].Command, " "); !strings.Contains(c, "@remote node=b workflow=far action=run") {
		t.Fatalf("history shows %q", c)
	}
	if r.Steps[0].Output != "started run 1 on b" {
		t.Fatalf("output %q", r.Steps[0].Output)
	}
}

func TestStepExecutorIsCutByTimeoutAndStop(t *testing.T) {
	x := func(ctx context.Context, r StepRequest) StepResult {
		<-ctx.Done()
		return StepResult{ExitCode: 0, Output: "late"}
	}
	timed := workflow.Workflow{Name: "timed", Steps: []workflow.Step{{Name: "r", Remote: &workflow.Remote{Node: "b", Workflow: "far"}, Timeout: dur(100 * time.Millisecond)}}}
	held := workflow.Workflow{Name: "held", Steps: []workflow.Step{remoteStep("r", "b", nil)}}
	e := openWith(t, x, timed, held)
	r := wait(t, e, start(t, e, "timed", workflow.RunOptions{}))
	if r.Result != workflow.ResultAbended || !r.Steps[0].TimedOut || r.Steps[0].ExitCode != -1 {
		t.Fatalf("timeout: %s %+v", r.Result, r.Steps)
	}
	id := start(t, e, "held", workflow.RunOptions{})
	eventually(t, "remote step executing", func() bool { return phase(t, e, id) == "executing" })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	if r := wait(t, e, id); r.Result != workflow.ResultStopped {
		t.Fatalf("stop: %s", r.Result)
	}
}

func TestRemoteStepWithoutExecutorFails(t *testing.T) {
	e := openWith(t, nil, workflow.Workflow{Name: "w", Steps: []workflow.Step{remoteStep("r", "b", nil)}})
	r := wait(t, e, start(t, e, "w", workflow.RunOptions{}))
	if r.Result != workflow.ResultAbended || !strings.Contains(r.Steps[0].Error, "no step executor") {
		t.Fatalf("%s %+v", r.Result, r.Steps)
	}
}
