package console

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/workflow"
	"github.com/vigil-ha/vigil/internal/workflow/history"
	"github.com/vigil-ha/vigil/internal/workflow/runner"
)

// runsBackend adds a workflow engine to the fake: one paused step-by-step run.
type runsBackend struct {
	*fakeBackend
	mu        sync.Mutex
	started   []string // "workflow|by|from|stepbystep"
	continued []string
	stopped   []string
}

var pausedRun = history.Run{ID: "20261122T000000.000000Z", Workflow: "restart", StartedBy: "alice (console: test)",
	Options: workflow.RunOptions{StepByStep: true}, Started: time.Now(), Result: workflow.ResultRunning, Phase: "paused", Step: "start",
	Steps: []history.Attempt{{Seq: 1, Step: "stop", Attempt: 1, Command: []string{"systemctl", "stop", "tomcat"},
		Started: time.Now(), Ended: time.Now(), ExitCode: 0, Output: "stopped <tomcat>\n", Transition: "next", Target: "start"}}}

func (b *runsBackend) WorkflowRun(id string) (history.Run, error) {
	if id != pausedRun.ID {
		return history.Run{}, history.ErrNotFound
	}
	return pausedRun, nil
}

func (b *runsBackend) WorkflowRuns(history.Filter, int) ([]history.Run, error) {
	return []history.Run{pausedRun}, nil
}

func (b *runsBackend) ContinueRun(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.continued = append(b.continued, id)
	return nil
}

func (b *runsBackend) StartWorkflow(name string, opts workflow.RunOptions, by string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.started = append(b.started, strings.Join([]string{name, by, opts.From, map[bool]string{true: "sbs"}[opts.StepByStep]}, "|"))
	return "20261122T000001.000000Z", nil
}

func (b *runsBackend) StopWorkflow(_ context.Context, name string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.stopped) > 0 {
		return "", runner.ErrNotRunning
	}
	b.stopped = append(b.stopped, name)
	return pausedRun.ID, nil
}

func TestWorkflowPagesAndActions(t *testing.T) {
	h := newHarness(t)
	rb := &runsBackend{fakeBackend: h.f}
	h.c.api = newAPIFor(t, rb)
	op := h.f.addToken("alice", model.TokenOperator)
	sid, csrf := h.login(op)

	r := h.do("GET", "/runs/"+pausedRun.ID, sid, nil)
	for _, want := range []string{"systemctl stop tomcat", "stopped &lt;tomcat&gt;", `id="continue"`, "Continue with start", "step by step"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("run page lacks %q", want)
		}
	}
	if r := h.do("GET", "/runs/nope", sid, nil); r.code != 404 {
		t.Errorf("unknown run: %d", r.code)
	}
	if r := h.do("GET", "/workflows", sid, nil); !strings.Contains(r.body, `data-action="stop"`) || !strings.Contains(r.body, pausedRun.ID) {
		t.Errorf("workflows page: %s", r.body)
	}
	// Continue is its own confirmation: no reason asked.
	if r := h.do("POST", "/actions/continue", sid, url.Values{"run": {pausedRun.ID}}, "HX-Request", "true", "X-CSRF-Token", csrf); r.code != 200 || len(rb.continued) != 1 {
		t.Fatalf("continue: %d %s %v", r.code, r.body, rb.continued)
	}
	// Run step by step from a step: the reason goes into started_by.
	form := url.Values{"workflow": {"restart"}, "from": {"start"}, "step_by_step": {"1"}, "reason": {"tomcat hangs"}}
	if r := h.do("POST", "/actions/run", sid, form, "HX-Request", "true", "X-CSRF-Token", csrf); r.code != 200 {
		t.Fatalf("run: %d %s", r.code, r.body)
	}
	if len(rb.started) != 1 || rb.started[0] != "restart|alice (console: tomcat hangs)|start|sbs" {
		t.Fatalf("started: %v", rb.started)
	}
	// An unknown step comes back from the API as 400 naming the field, shown in the dialog.
	form.Set("from", "nope")
	if r := h.do("POST", "/actions/run", sid, form, "HX-Request", "true", "X-CSRF-Token", csrf); r.code != 400 || !strings.Contains(r.body, `data-field="from"`) || !strings.Contains(r.body, "<dialog") {
		t.Fatalf("bad step: %d %s", r.code, r.body)
	}
	stop := url.Values{"workflow": {"restart"}, "reason": {"wrong node"}}
	if r := h.do("POST", "/actions/stop", sid, stop, "HX-Request", "true", "X-CSRF-Token", csrf); r.code != 200 {
		t.Fatalf("stop: %d %s", r.code, r.body)
	}
	if r := h.do("POST", "/actions/stop", sid, stop, "HX-Request", "true", "X-CSRF-Token", csrf); r.code != 409 {
		t.Fatalf("second stop: %d %s", r.code, r.body)
	}
	// A viewer sees the run but no continue button.
	sid, _ = h.login(h.f.addToken("ro", model.TokenViewer))
	if r := h.do("GET", "/runs/"+pausedRun.ID, sid, nil); strings.Contains(r.body, `id="continue"`) || strings.Contains(r.body, "data-action=") {
		t.Errorf("viewer's run page has actions")
	}
}
