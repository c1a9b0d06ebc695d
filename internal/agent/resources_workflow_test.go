package agent

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
	"github.com/vigil-ha/vigil/internal/workflow/history"
	"github.com/vigil-ha/vigil/internal/workflow/runner"
)

// resourceYAML: a service that is "up" while DIR/up exists. start goes on as a
// health loop after its commit step; restart ends with a long cool-down.
const resourceYAML = `cluster:
  name: t
nodes:
  - {name: a, addresses: [10.0.0.1]}
  - {name: b, addresses: [10.0.0.2]}
  - {name: w, addresses: [10.0.0.3], witness: true}
workflows:
  - name: start
    steps:
      - {name: up, shell: "touch up"}
      - name: watch
        command: [test, -f, up]
        commit: true
        watch: {interval: 50ms}
        on: {default: abend}
  - name: stop
    steps:
      - {name: down, shell: "rm -f up; echo stopped >> log"}
  - name: restart
    steps:
      - {name: wait-for-go, shell: "while [ ! -f go ]; do sleep 0.02; done; touch up; echo restarted >> log"}
      - {name: cooldown, wait_before: 1h}
  - name: health
    steps:
      - {name: probe, command: [test, -f, up]}
`

func newWorkflowResource(t *testing.T, spec config.Resource) (*workflowResource, string) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "vigil.yaml"), []byte(resourceYAML))
	if err != nil {
		t.Fatal(err)
	}
	self, _ := cfg.Node("a")
	a := &Agent{cfg: cfg, self: self, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	a.wf, err = runner.Open(runner.Options{Path: filepath.Join(dir, "runs.db"), Workflows: cfg.Workflows, BaseDir: dir, Grace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.wf.Close() })
	spec.Name, spec.Type = "app", "workflow"
	return &workflowResource{a: a, group: "g", spec: spec, by: "group g resource app"}, dir
}

func monitor(t *testing.T, w *workflowResource) (resource.State, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, out, err := w.Monitor(ctx)
	msg := out.Text
	if err != nil {
		msg += " | " + err.Error()
	}
	return st, msg
}

func waitState(t *testing.T, w *workflowResource, want resource.State, what string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, msg := monitor(t, w)
		if st == want {
			return msg
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s: %s", what, st, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWorkflowResourceRestartsOnceThenFails(t *testing.T) {
	w, dir := newWorkflowResource(t, config.Resource{Start: "start", Stop: "stop", Restart: "restart"})
	ctx := context.Background()
	if st, msg := monitor(t, w); st != resource.Stopped {
		t.Fatalf("before start: %s %s", st, msg)
	}
	out, err := w.Start(ctx)
	if err != nil || w.startRun == "" {
		t.Fatalf("start: %v %s (start run %q)", err, out.Text, w.startRun)
	}
	if st, msg := monitor(t, w); st != resource.Running {
		t.Fatalf("running: %s %s", st, msg)
	}

	// The service dies: the start run's watch abends; the restart begins and
	// the resource reads running while the restart works.
	must(t, os.Remove(filepath.Join(dir, "up")))
	msg := waitState(t, w, resource.Running, "restart started")
	for !strings.Contains(msg, "restart workflow restart started") && !strings.Contains(msg, "in progress") {
		msg = waitState(t, w, resource.Running, "restart started")
	}
	if w.restartRun == "" || w.startRun != "" {
		t.Fatalf("restart run %q, start run %q", w.restartRun, w.startRun)
	}
	if st, msg := monitor(t, w); st != resource.Running || !strings.Contains(msg, "in progress at step wait-for-go") {
		t.Fatalf("during the restart: %s %s", st, msg)
	}
	must(t, os.WriteFile(filepath.Join(dir, "go"), nil, 0o644))
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := w.a.wf.Run(w.restartRun)
		if err == nil && r.Phase == "waiting" && r.Step == "cooldown" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restart never reached its cool-down: %+v", r)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// In its cool-down the restart is done: without a check, running.
	if st, msg := monitor(t, w); st != resource.Running || strings.Contains(msg, "in progress") {
		t.Fatalf("restarted: %s %s", st, msg)
	}

	// It dies again within the cool-down: no second restart, a failure.
	w.spec.Check = []string{"test", "-f", "up"}
	must(t, os.Remove(filepath.Join(dir, "up")))
	if st, msg := monitor(t, w); st != resource.Failed || !strings.Contains(msg, "not restarting in a loop") {
		t.Fatalf("second failure: %s %s", st, msg)
	}
	// Stop ends the cool-down and runs the stop workflow.
	if out, err := w.Stop(ctx); err != nil || !strings.Contains(out.Text, "stopped run") {
		t.Fatalf("stop: %v %s", err, out.Text)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "log"))
	if string(log) != "restarted\nstopped\n" {
		t.Fatalf("log %q", log)
	}
}

func TestWorkflowResourceMonitorWorkflow(t *testing.T) {
	w, dir := newWorkflowResource(t, config.Resource{Start: "start", Stop: "stop", Monitor: "health"})
	if st, msg := monitor(t, w); st != resource.Stopped {
		t.Fatalf("not started, not up: %s %s", st, msg)
	}
	must(t, os.WriteFile(filepath.Join(dir, "up"), nil, 0o644))
	// Up although this agent did not start it: left over, the worker stops it.
	if st, msg := monitor(t, w); st != resource.Running {
		t.Fatalf("left over: %s %s", st, msg)
	}
	if _, err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	must(t, os.Remove(filepath.Join(dir, "up")))
	msg := waitState(t, w, resource.Failed, "monitor workflow failing")
	if !strings.Contains(msg, "abended") {
		t.Fatalf("failure %q", msg)
	}
	runs, err := w.a.wf.Runs(historyFilter("health"), 0)
	if err != nil || len(runs) < 2 || !strings.HasSuffix(runs[0].StartedBy, startedByMonitor) {
		t.Fatalf("monitor runs %v %v", runs, err)
	}
}

func TestWorkflowResourceStartFailureIsAnError(t *testing.T) {
	w, dir := newWorkflowResource(t, config.Resource{Start: "start", Stop: "stop"})
	// A start that cannot take its first step (up is a directory now: touch works,
	// but the watch's test -f fails) abends after the commit check.
	must(t, os.Mkdir(filepath.Join(dir, "up"), 0o755))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := w.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "abended at step watch") || !strings.Contains(out.Text, "watch: exit 1") {
		t.Fatalf("start: %v\n%s", err, out.Text)
	}
	// A start bounded by its timeout has its run stopped.
	w.spec.Start = "restart" // waits for a file that never comes
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, err := w.Start(ctx2); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("timed-out start: %v", err)
	}
	if runs, _ := w.a.wf.Runs(historyFilter("restart"), 1); len(runs) != 1 || runs[0].Result != "stopped" {
		t.Fatalf("the timed-out run: %+v", runs)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func historyFilter(workflowName string) history.Filter { return history.Filter{Workflow: workflowName} }
