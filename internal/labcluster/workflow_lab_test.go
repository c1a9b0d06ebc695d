package labcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/workflow"
	"github.com/vigil-ha/vigil/internal/workflow/history"
)

// Workflow engine scenarios (issue 5) with real agents: a remote workflow
// command between two lab nodes, over mutual TLS, on either network; a
// crash of the agent in the middle of a run; and a group whose start, stop
// and takeover are workflows, failing over when its node loses power.
//
// Workflow steps write their marks in the data dir of the node that runs
// them ($DATA/$VIGIL_NODE: every node's data dir is DATA/NAME), so a file
// says on which node, and for which workflow, a step ran.

// dataRoot is the directory of every node's data dir.
func dataRoot(c *Cluster) string { return filepath.Dir(c.Node("a").DataDir) }

// startRun runs `vigil workflow run W --node N` through node via's CLI and
// returns the run id.
func startRun(t *testing.T, c *Cluster, via, wf, node string, extra ...string) string {
	t.Helper()
	out := c.mustVigil(via, append([]string{"workflow", "run", wf, "--node", node}, extra...)...)
	// started run ID of W on N
	f := strings.Fields(out)
	if len(f) < 7 || f[0] != "started" || f[1] != "run" || f[4] != wf || f[6] != node {
		t.Fatalf("vigil workflow run %s --node %s: %q", wf, node, out)
	}
	t.Logf("%s", strings.TrimSpace(out))
	return f[2]
}

// runOf is `vigil workflow logs ID --node N --json`, asked through via.
func runOf(c *Cluster, via, node, id string) (history.Run, error) {
	var r history.Run
	err := c.vigilJSON(via, &r, "workflow", "logs", id, "--node", node)
	return r, err
}

// waitRunEnd waits until run id on node has a final result.
func waitRunEnd(t *testing.T, c *Cluster, via, node, id string, timeout time.Duration) history.Run {
	t.Helper()
	var r history.Run
	c.WaitFor("run "+id+" on "+node+" to end", timeout, func() error {
		var err error
		if r, err = runOf(c, via, node, id); err != nil {
			return err
		}
		if !r.Result.Final() {
			return fmt.Errorf("run %s is %s (%s at step %s)", id, r.Result, r.Phase, r.Step)
		}
		return nil
	})
	return r
}

// stepCodes renders a run's attempts as "step:code ...".
func stepCodes(r history.Run) string {
	var parts []string
	for _, a := range r.Steps {
		parts = append(parts, fmt.Sprintf("%s:%d", a.Step, a.ExitCode))
	}
	return strings.Join(parts, " ")
}

// runsOn is `vigil workflow runs --node N --json`, asked through via.
func runsOn(c *Cluster, via, node string) ([]history.Run, error) {
	var rs []history.Run
	err := c.vigilJSON(via, &rs, "workflow", "runs", "--node", node)
	return rs, err
}

// --- remote workflow ---------------------------------------------------------

const remoteWorkflowsYAML = `workflows:
  - name: mark
    steps:
      - name: write
        shell: 'echo "$VIGIL_NODE $VIGIL_STARTED_BY" >> "%[1]s/$VIGIL_NODE/marks"'
  - name: fail
    steps:
      - {name: boom, shell: "echo broken disk; exit 3"}
  - name: orchestrate
    description: a's procedure that drives b's (the seed's @RWC)
    steps:
      - name: mark-b
        remote: {node: b, workflow: mark, wait: true}
        timeout: 60s
      - name: fail-b
        remote: {node: b, workflow: fail, wait: true}
        timeout: 60s
        on: {1: end, default: abend}
`

// A remote workflow between two lab nodes: a's orchestrate starts b's mark
// and then b's fail, each with wait: true, over mutual TLS with a's node
// certificate. The run on a ends well (mark-b exit 0, fail-b exit 1 taken
// to end); b's steps ran on b (the mark is in b's data dir, none in a's),
// and b's run history, read with `vigil workflow runs --node b` from the
// witness, names a's run as their origin. b's abend is an event with a's
// run as its cause. Then b's public link is cut: the same remote command
// reaches b over the heartbeat network.
func TestRemoteWorkflowBetweenLabNodes(t *testing.T) {
	c := newLab(t, "wrem", 13, Timing{})
	data := dataRoot(c)
	appendYAML(t, c, fmt.Sprintf(remoteWorkflowsYAML, data))
	c.StartAll()
	c.WaitHealthy(formTimeout)
	before := lastIndex(mustEvents(t, c, "w"))

	id := startRun(t, c, "a", "orchestrate", "a")
	run := waitRunEnd(t, c, "a", "a", id, convergeTimeout)
	if run.Result != workflow.ResultEnded || stepCodes(run) != "mark-b:0 fail-b:1" {
		t.Fatalf("orchestrate on a: %s, steps %s, want ended with mark-b:0 fail-b:1\n%+v", run.Result, stepCodes(run), run.Steps)
	}
	t.Logf("orchestrate on a: %s, steps %s", run.Result, stepCodes(run))
	if out := run.Steps[1].Output; !strings.Contains(out, "remote run") || !strings.Contains(out, "boom (attempt 1): exit 3") {
		t.Errorf("fail-b's output on a does not trace b's run: %q", out)
	}
	origin := func(step string) string { return fmt.Sprintf("node:a (workflow orchestrate run %s step %s)", id, step) }
	if got := readFile(filepath.Join(data, "b", "marks")); got != "b "+origin("mark-b")+"\n" {
		t.Errorf("b's marks: %q, want b's step started by a's run", got)
	}
	if _, err := os.Stat(filepath.Join(data, "a", "marks")); err == nil {
		t.Errorf("a's data dir has marks: %q", readFile(filepath.Join(data, "a", "marks")))
	}

	runs, err := runsOn(c, "w", "b")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]history.Run{}
	for _, r := range runs {
		got[r.Workflow] = r
	}
	if r := got["mark"]; r.Result != workflow.ResultEnded || r.StartedBy != origin("mark-b") {
		t.Errorf("b's run of mark: %s started by %q, want ended, started by %q", r.Result, r.StartedBy, origin("mark-b"))
	}
	if r := got["fail"]; r.Result != workflow.ResultAbended || r.StartedBy != origin("fail-b") {
		t.Errorf("b's run of fail: %s started by %q, want abended, started by %q", r.Result, r.StartedBy, origin("fail-b"))
	}
	if _, ok := got["orchestrate"]; ok || len(runs) != 2 {
		t.Errorf("b's history has %d runs (%v), want b's mark and fail only", len(runs), got)
	}
	table := c.mustVigil("w", "workflow", "runs", "--node", "b")
	t.Logf("vigil workflow runs --node b (from w):\n%s", table)
	if !strings.Contains(table, "abended") || !strings.Contains(table, "node:a (workflow orchestrate run "+id) {
		t.Errorf("vigil workflow runs --node b does not show b's runs started by a's run:\n%s", table)
	}
	ab := c.WaitEvent("w", model.Event{Kind: model.EventWorkflowAbended, Node: "b"}, before, eventTimeout)
	if ab.By != origin("fail-b") || !strings.Contains(ab.Output, "broken disk") {
		t.Errorf("b's abend event: by %q output %q, want a's run and the step's output", ab.By, ab.Output)
	}

	// b reachable over the heartbeat network only.
	if err := c.Lab.CutLink("b", Public); err != nil {
		t.Fatal(err)
	}
	id2 := startRun(t, c, "a", "orchestrate", "a", "--only-step", "mark-b")
	run = waitRunEnd(t, c, "a", "a", id2, convergeTimeout)
	if run.Result != workflow.ResultEnded || stepCodes(run) != "mark-b:0" {
		t.Fatalf("orchestrate --only-step mark-b with b's public link cut: %s, steps %s\n%+v", run.Result, stepCodes(run), run.Steps)
	}
	want := "b " + origin("mark-b") + "\n" + fmt.Sprintf("b node:a (workflow orchestrate run %s step mark-b)\n", id2)
	if got := readFile(filepath.Join(data, "b", "marks")); got != want {
		t.Errorf("b's marks: %q, want %q", got, want)
	}
	t.Logf("with b's public link cut, a's remote step reached b over the heartbeat network in %v",
		run.Ended.Sub(run.Started).Round(time.Millisecond))
	if err := c.Lab.Heal(); err != nil {
		t.Fatal(err)
	}
}

// --- crash mid-run -------------------------------------------------------------

const longWorkflowYAML = `workflows:
  - name: long
    steps:
      - name: prepare
        shell: 'echo prepared'
      - name: work
        shell: 'echo $$ > "%[1]s/$VIGIL_NODE/work.pid"; exec sleep 300'
      - name: after
        shell: 'touch "%[1]s/$VIGIL_NODE/after"'
`

// A crash mid-run: a's long workflow is in its sleeping step when a's
// agent gets kill -9. Restarted on the same data dir, a reports the run
// interrupted: `vigil workflow runs` and `logs` show it, with the step that
// was cut off, and a workflow_interrupted event is in the log. The step
// after it never runs.
func TestWorkflowCrashMidRunInterrupted(t *testing.T) {
	c := newLab(t, "wcrash", 15, Timing{})
	data := dataRoot(c)
	appendYAML(t, c, fmt.Sprintf(longWorkflowYAML, data))
	c.StartAll()
	c.WaitHealthy(formTimeout)
	before := lastIndex(mustEvents(t, c, "w"))

	id := startRun(t, c, "a", "long", "a")
	pidFile := filepath.Join(data, "a", "work.pid")
	c.WaitFor("long at its work step", convergeTimeout, func() error {
		r, err := runOf(c, "a", "a", id)
		if err != nil {
			return err
		}
		if r.Result != workflow.ResultRunning || r.Step != "work" || r.Phase != "executing" {
			return fmt.Errorf("run %s: %s, %s at step %s", id, r.Result, r.Phase, r.Step)
		}
		if _, err := os.Stat(pidFile); err != nil {
			return err
		}
		return nil
	})
	stepPid, _ := strconv.Atoi(strings.TrimSpace(readFile(pidFile)))

	c.Kill("a")
	c.Restart("a")
	var run history.Run
	c.WaitFor("a's run history after the restart", formTimeout, func() error {
		runs, err := runsOn(c, "a", "a")
		if err != nil {
			return err
		}
		for _, r := range runs {
			if r.ID == id {
				run = r
				return nil
			}
		}
		return fmt.Errorf("run %s not in a's history (%d runs)", id, len(runs))
	})
	if run.Result != workflow.ResultInterrupted || run.Step != "work" || !strings.Contains(run.Note, "agent stopped") {
		t.Fatalf("after kill -9 and restart, run %s is %s at step %s (note %q), want interrupted at work", id, run.Result, run.Step, run.Note)
	}
	table := c.mustVigil("a", "workflow", "runs", "--node", "a")
	t.Logf("vigil workflow runs --node a after the restart:\n%s", table)
	if !strings.Contains(table, id) || !strings.Contains(table, "interrupted") {
		t.Errorf("vigil workflow runs does not show run %s interrupted:\n%s", id, table)
	}
	full, err := runOf(c, "a", "a", id)
	if err != nil {
		t.Fatal(err)
	}
	if stepCodes(full) != "prepare:0 work:-1" || !strings.HasPrefix(full.Steps[1].Error, "interrupted") {
		t.Errorf("run %s's steps after the crash: %s (%+v), want prepare:0 and work cut off", id, stepCodes(full), full.Steps)
	}
	ev := c.WaitEvent("w", model.Event{Kind: model.EventWorkflowInterrupted, Node: "a"}, before, eventTimeout)
	if !strings.Contains(ev.Reason, id) {
		t.Errorf("workflow_interrupted: %q does not name run %s", ev.Reason, id)
	}
	t.Logf("event: %s", ev.Reason)
	if _, err := os.Stat(filepath.Join(data, "a", "after")); err == nil {
		t.Error("the step after the interrupted one ran")
	}
	// What became of the step's process: nobody owns it any more.
	if stepPid > 0 {
		if syscall.Kill(stepPid, 0) == nil {
			t.Logf("the interrupted step's process (pid %d, sleep 300) survived the agent's kill -9 and its restart; killing it", stepPid)
			_ = syscall.Kill(-stepPid, syscall.SIGKILL)
			_ = syscall.Kill(stepPid, syscall.SIGKILL)
		} else {
			t.Logf("the interrupted step's process (pid %d) is gone", stepPid)
		}
	}
	// The engine takes new runs of the same workflow.
	id2 := startRun(t, c, "a", "long", "a", "--only-step", "prepare")
	if r := waitRunEnd(t, c, "a", "a", id2, convergeTimeout); r.Result != workflow.ResultEnded {
		t.Errorf("a new run of long after the crash: %s", r.Result)
	}
}

func mustEvents(t *testing.T, c *Cluster, node string) []model.Event {
	t.Helper()
	evs, err := c.Events(node)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// --- a group of workflows fails over ----------------------------------------

// workflowGroupYAML: web is a VIP, an app driven by workflows (start,
// stop, takeover, and a check that the app's up file exists), and
// demo-web. Each workflow step appends to the node's own wf.log.
const workflowGroupYAML = `workflows:
  - name: startWeb
    steps:
      - {name: up, shell: 'touch "%[1]s/$VIGIL_NODE/wf.up" && echo "start by $VIGIL_STARTED_BY" >> "%[1]s/$VIGIL_NODE/wf.log"'}
  - name: takeWeb
    description: the seed's takeControl
    steps:
      - {name: recover, shell: 'echo "takeover recover by $VIGIL_STARTED_BY" >> "%[1]s/$VIGIL_NODE/wf.log"'}
      - {name: up, shell: 'touch "%[1]s/$VIGIL_NODE/wf.up" && echo "takeover up by $VIGIL_STARTED_BY" >> "%[1]s/$VIGIL_NODE/wf.log"'}
  - name: stopWeb
    steps:
      - {name: down, shell: 'rm -f "%[1]s/$VIGIL_NODE/wf.up" && echo "stop by $VIGIL_STARTED_BY" >> "%[1]s/$VIGIL_NODE/wf.log"'}
`

// A group whose start, stop and takeover are workflows fails over in the
// lab: web starts on a with startWeb; a loses power; b takes web over with
// takeWeb (the takeover workflow, not start: the group failed elsewhere).
// The marks in each node's own data dir say which workflow ran where; b's
// run history has takeWeb and no startWeb. When a is powered on again, its
// agent finds the app left up by its previous life (the check passes) and
// stops it with stopWeb; web stays on b.
func TestWorkflowGroupFailsOverWithTakeover(t *testing.T) {
	const third = 17
	c := newLab(t, "wgrp", third, Timing{})
	data := dataRoot(c)
	g := WebGroup{Name: "web", Nodes: []string{"a", "b"}, VIP: fmt.Sprintf("10.83.%d.100/24", third), Port: 8080}
	app := fmt.Sprintf(`- name: app
  type: workflow
  start: startWeb
  stop: stopWeb
  takeover: takeWeb
  check: [/bin/sh, -c, 'test -f "%s/$VIGIL_NODE/wf.up"']
  monitor_interval: 1s
`, data)
	appendYAML(t, c, groupsYAML(webYAML(c.Bin, g, webOpts{resources: app}))+fmt.Sprintf(workflowGroupYAML, data))
	gl := startLab(t, c, []Watch{g.Watch()}, g)
	nodes := []string{"a", "b", "w"}
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	wfLog := func(n string) string { return readFile(filepath.Join(data, n, "wf.log")) }
	up := func(n string) bool { _, err := os.Stat(filepath.Join(data, n, "wf.up")); return err == nil }
	const by = "group web resource app"
	if got := wfLog("a"); got != "start by "+by+" start\n" || !up("a") {
		t.Fatalf("a's wf.log %q (up %v), want startWeb's mark", got, up("a"))
	}
	if got := wfLog("b"); got != "" || up("b") {
		t.Fatalf("b's wf.log %q (up %v) before any failure", got, up("b"))
	}
	before := lastIndex(gl.events("w"))

	at := gl.PowerOff("a")
	gl.waitOn([]string{"b", "w"}, "web", "b", gl.Timing.Deadtime+convergeTimeout)
	if gap, err := gl.clients["web"].GapAt("a", "b", at); err == nil {
		t.Logf("a powered off: b serves %v later", gap.SinceFault.Round(time.Millisecond))
	}
	if got, want := wfLog("b"), "takeover recover by "+by+" takeover\ntakeover up by "+by+" takeover\n"; got != want || !up("b") {
		t.Errorf("b's wf.log %q (up %v), want takeWeb's marks %q", got, up("b"), want)
	}
	if got := wfLog("a"); got != "start by "+by+" start\n" {
		t.Errorf("a's wf.log %q after its power-off: no workflow can run on a dead node", got)
	}
	runs, err := runsOn(c, "w", "b")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range runs {
		if strings.HasSuffix(r.StartedBy, "(monitor)") {
			continue
		}
		names = append(names, fmt.Sprintf("%s:%s", r.Workflow, r.Result))
		if r.Workflow == "takeWeb" && r.StartedBy != by+" takeover" {
			t.Errorf("takeWeb on b started by %q", r.StartedBy)
		}
	}
	if strings.Join(names, " ") != "takeWeb:ended" {
		t.Errorf("b's runs (monitor runs left out): %v, want takeWeb ended only", names)
	}
	ev := gl.WaitEvent("w", model.Event{Kind: model.EventWorkflowEnded, Node: "b"}, before, eventTimeout)
	t.Logf("b: %s (by %s)", ev.Reason, ev.By)
	if ev.By != by+" takeover" || !strings.Contains(ev.Reason, "takeWeb") {
		t.Errorf("b's workflow_ended: by %q reason %q, want takeWeb for the takeover", ev.By, ev.Reason)
	}

	// a comes back: its agent stops what its previous life left running.
	gl.PowerOn("a")
	gl.WaitHealthy(formTimeout)
	gl.WaitFor("a's left-over app stopped by stopWeb", convergeTimeout, func() error {
		if up("a") {
			return fmt.Errorf("a's wf.up still there; a's wf.log %q", wfLog("a"))
		}
		return nil
	})
	if got := wfLog("a"); got != "start by "+by+" start\nstop by "+by+" stop\n" {
		t.Errorf("a's wf.log after its return: %q, want startWeb's mark then stopWeb's", got)
	}
	gl.WaitGroupOn(nodes, "web", "b", convergeTimeout)
	gl.holdOn(nodes, "web", "b", time.Second)
	if got := wfLog("b"); strings.Contains(got, "stop by") || !up("b") {
		t.Errorf("b's wf.log %q (up %v): web must keep running on b", got, up("b"))
	}
}
