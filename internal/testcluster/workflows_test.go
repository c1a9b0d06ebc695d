package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/apiclient"
	"github.com/vigil-ha/vigil/internal/cli"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/pki"
	"github.com/vigil-ha/vigil/internal/workflow"
	"github.com/vigil-ha/vigil/internal/workflow/history"
)

// remoteWorkflows: b's workflows are driven from a's "orchestrate" (seed 002's @RWC).
const remoteWorkflows = `
workflows:
  - name: mark
    steps:
      - name: write
        shell: 'echo "$VIGIL_NODE $VIGIL_STARTED_BY" > "$MARK"'
        env: {MARK: %[1]s/marker}
  - name: fail
    steps:
      - {name: boom, shell: "echo broken disk; exit 3"}
  - name: slow
    steps:
      - {name: sleep, command: [sleep, "30"]}
  - name: two
    steps:
      - {name: first, command: ["true"]}
      - {name: second, command: ["true"]}
  - name: orchestrate
    steps:
      - name: fire
        remote: {node: b, workflow: slow}
      - name: again
        remote: {node: b, workflow: slow}
        on: {2: stop-slow, default: abend}
      - name: stop-slow
        remote: {node: b, workflow: slow, action: stop}
      - name: mark-b
        remote: {node: b, workflow: mark, wait: true}
        timeout: 20s
      - name: fail-b
        remote: {node: b, workflow: fail, wait: true}
        timeout: 20s
        on: {1: end, default: abend}
`

func apiUp(c *Cluster, nodes ...string) {
	c.t.Helper()
	c.WaitFor("API up on "+strings.Join(nodes, ","), 20*time.Second, func() bool {
		for _, n := range nodes {
			if _, err := c.Status(n); err != nil {
				return false
			}
		}
		return true
	})
}

func followToEnd(t *testing.T, cl *apiclient.Client, id string) history.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := cl.FollowRun(ctx, id, nil)
	if err != nil {
		t.Fatalf("follow %s: %v", id, err)
	}
	return run
}

func codes(r history.Run) string {
	var parts []string
	for _, a := range r.Steps {
		parts = append(parts, fmt.Sprintf("%s:%d", a.Step, a.ExitCode))
	}
	return strings.Join(parts, " ")
}

func apiStatus(err error) int {
	var apiErr *apiclient.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status
	}
	return 0
}

func TestRemoteWorkflowBetweenNodesOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	c := New(t, Options{Nodes: []string{"a", "b"}, Timing: fast, Extra: fmt.Sprintf(remoteWorkflows, dir)})
	c.Start("a")
	c.Start("b")
	apiUp(c, "a", "b")
	ca, cb := c.Client("a"), c.Client("b")
	defer ca.Close()
	defer cb.Close()
	ctx := context.Background()

	started, err := ca.StartWorkflow(ctx, "orchestrate", model.WorkflowRunRequest{})
	if err != nil || started.Node != "a" {
		t.Fatalf("start: %+v %v", started, err)
	}
	run := followToEnd(t, ca, started.ID)
	if run.Result != workflow.ResultEnded || codes(run) != "fire:0 again:2 stop-slow:0 mark-b:0 fail-b:1" {
		t.Fatalf("orchestrate %s: %s\n%+v", run.Result, codes(run), run.Steps)
	}
	// b's step ran on b, started by a over mutual TLS, with a's run named.
	data, err := os.ReadFile(filepath.Join(dir, "marker"))
	if err != nil || !strings.HasPrefix(string(data), "b node:a (workflow orchestrate run "+run.ID+" step mark-b)") {
		t.Fatalf("marker %q %v", data, err)
	}
	if out := run.Steps[4].Output; !strings.Contains(out, "remote run") || !strings.Contains(out, "boom (attempt 1): exit 3") {
		t.Fatalf("fail-b output %q", out)
	}
	runs, err := cb.Runs(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]workflow.Result{}
	for _, r := range runs {
		results[r.Workflow] = r.Result
	}
	if results["slow"] != workflow.ResultStopped || results["mark"] != workflow.ResultEnded || results["fail"] != workflow.ResultAbended {
		t.Fatalf("runs on b: %v", results)
	}
	// The abend on b is an event in the replicated log, with who started it.
	c.WaitFor("workflow_abended event from b", 15*time.Second, func() bool {
		evs, err := ca.Events(ctx, 0, 10000)
		if err != nil {
			return false
		}
		for _, ev := range evs {
			if ev.Kind == model.EventWorkflowAbended && ev.Reporter == "b" && strings.HasPrefix(ev.By, "node:a") &&
				strings.Contains(ev.Reason, "workflow fail") && strings.Contains(ev.Output, "broken disk") {
				return true
			}
		}
		return false
	})
}

func TestWorkflowAPIStatuses(t *testing.T) {
	c := New(t, Options{Nodes: []string{"a", "b"}, Timing: fast, Extra: fmt.Sprintf(remoteWorkflows, t.TempDir())})
	c.Start("a")
	apiUp(c, "a")
	cl := c.Client("a")
	defer cl.Close()
	ctx := context.Background()

	if _, err := cl.StartWorkflow(ctx, "nope", model.WorkflowRunRequest{}); apiStatus(err) != http.StatusNotFound {
		t.Errorf("unknown workflow: %v", err)
	}
	_, err := cl.StartWorkflow(ctx, "two", model.WorkflowRunRequest{From: "third"})
	var apiErr *apiclient.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || apiErr.Field != "from" {
		t.Errorf("unknown step: %v", err)
	}
	slow, err := cl.StartWorkflow(ctx, "slow", model.WorkflowRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StartWorkflow(ctx, "slow", model.WorkflowRunRequest{}); apiStatus(err) != http.StatusConflict {
		t.Errorf("second run of a running workflow: %v", err)
	}
	if st, err := cl.StopWorkflow(ctx, "slow"); err != nil || st.ID != slow.ID {
		t.Fatalf("stop: %+v %v", st, err)
	}
	if _, err := cl.StopWorkflow(ctx, "slow"); apiStatus(err) != http.StatusConflict {
		t.Errorf("stop of a workflow not running: %v", err)
	}
	if err := cl.ContinueRun(ctx, "20990101T000000.000000Z"); apiStatus(err) != http.StatusNotFound {
		t.Errorf("continue unknown run: %v", err)
	}
	if err := cl.ContinueRun(ctx, slow.ID); apiStatus(err) != http.StatusConflict {
		t.Errorf("continue a finished run: %v", err)
	}
	if _, err := cl.Run(ctx, "nope"); apiStatus(err) != http.StatusNotFound {
		t.Errorf("unknown run: %v", err)
	}
	// Step by step through the API: paused after each step until continued.
	sbs, err := cl.StartWorkflow(ctx, "two", model.WorkflowRunRequest{StepByStep: true})
	if err != nil {
		t.Fatal(err)
	}
	c.WaitFor("paused before second", 10*time.Second, func() bool {
		r, err := cl.Run(ctx, sbs.ID)
		return err == nil && r.Phase == "paused" && r.Step == "second"
	})
	if err := cl.ContinueRun(ctx, sbs.ID); err != nil {
		t.Fatal(err)
	}
	if r := followToEnd(t, cl, sbs.ID); r.Result != workflow.ResultEnded || codes(r) != "first:0 second:0" {
		t.Fatalf("step by step: %s %s", r.Result, codes(r))
	}
	// A node certificate is accepted like an operator token.
	nc := nodeClient(t, c, "b", "a")
	defer nc.Close()
	if ws, err := nc.Workflows(ctx); err != nil || len(ws) != 5 {
		t.Fatalf("node client: %d workflows, %v", len(ws), err)
	}
}

// nodeClient talks to node to with node from's certificate, as peers do.
func nodeClient(t *testing.T, c *Cluster, from, to string) *apiclient.Client {
	t.Helper()
	read := func(name ...string) []byte {
		data, err := os.ReadFile(c.Config.SecretsPath(name...))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	tlsCfg, err := pki.PeerTLS(read("ca.crt"), read("nodes", from+".crt"), read("nodes", from+".key"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := c.Config.Node(to)
	return apiclient.New(c.Config.APIAddrs(n), tlsCfg, "")
}

const batchSection = `
batch:
  enabled: true
  commands:
    - name: ok
      command: [/bin/sh, -c, 'echo "ok $* $VIGIL_PARAM_LEVEL"', sh]
      allow_params: true
      params:
        - {name: level, pattern: "[0-9]{1,4}"}
    - name: fail
      command: [/bin/sh, -c, "echo failing; exit 7"]
    - name: slow
      command: [sleep, "10"]
      timeout: 200ms
`

func TestRemoteBatch(t *testing.T) {
	c := New(t, Options{Nodes: []string{"a", "b"}, Timing: fast, Extra: batchSection})
	c.Start("a")
	apiUp(c, "a")
	cl := c.Client("a")
	defer cl.Close()
	ctx := context.Background()

	res, err := cl.RunBatch(ctx, "ok", map[string]string{"level": "42"})
	if err != nil || res.ExitCode != 0 || res.Output != "ok 42 42\n" {
		t.Fatalf("ok: %+v %v", res, err)
	}
	if res, err = cl.RunBatch(ctx, "fail", nil); err != nil || res.ExitCode != 7 || res.Output != "failing\n" {
		t.Fatalf("fail: %+v %v", res, err)
	}
	if res, err = cl.RunBatch(ctx, "slow", nil); err != nil || res.ExitCode != -1 || !res.TimedOut {
		t.Fatalf("slow: %+v %v", res, err)
	}
	refused := []struct {
		name   string
		params map[string]string
		status int
		field  string
	}{
		{"ok", map[string]string{"level": "42; reboot"}, 400, "params.level"},
		{"ok", map[string]string{"level": "12345"}, 400, "params.level"},
		{"ok", map[string]string{"cmd": "x"}, 400, "params.cmd"},
		{"fail", map[string]string{"level": "1"}, 400, "params"},
		{"nope", nil, 404, ""},
	}
	for _, r := range refused {
		_, err := cl.RunBatch(ctx, r.name, r.params)
		var be *apiclient.BatchError
		var apiErr *apiclient.APIError
		if !errors.As(err, &be) || be.Status != r.status || !errors.As(err, &apiErr) || apiErr.Field != r.field {
			t.Errorf("%s %v: want %d naming %q, got %v", r.name, r.params, r.status, r.field, err)
		}
	}
	// The HTTP contract itself: 200 for exit 0, 500 with the exit code otherwise.
	for name, want := range map[string]int{"ok": 200, "fail": 500} {
		status, body := rawPost(t, c, "a", "/v1/batch/"+name, c.token)
		if status != want || !strings.Contains(body, `"exit_code":`) {
			t.Errorf("%s: HTTP %d %s", name, status, body)
		}
	}
	// Remote batch wants an operator token: a node certificate is not one.
	nc := nodeClient(t, c, "b", "a")
	defer nc.Close()
	if _, err := nc.RunBatch(ctx, "ok", nil); err == nil || !strings.Contains(err.Error(), "operator token") {
		t.Errorf("node certificate ran a batch: %v", err)
	}

	// The CLI: retries per the seed, exit 0/1/2.
	cfgPath := filepath.Join(c.Dir, "vigil.yaml")
	code, out, errs := runCLI("--config", cfgPath, "batch", "run", "ok", "--node", "a", "-p", "level=7")
	if code != 0 || out != "ok 7 7\n" {
		t.Errorf("cli ok: %d %q %q", code, out, errs)
	}
	code, out, errs = runCLI("--config", cfgPath, "batch", "run", "fail", "--node", "a", "--tries", "3", "--interval", "10ms")
	if code != 1 || out != "failing\n" || strings.Count(errs, "try ") != 2 || !strings.Contains(errs, "exited with code 7") {
		t.Errorf("cli fail: %d %q %q", code, out, errs)
	}
	code, _, errs = runCLI("--config", cfgPath, "batch", "run", "ok", "--node", "a", "-p", "level=x")
	if code != 2 || !strings.Contains(errs, "params.level") || strings.Contains(errs, "try ") {
		t.Errorf("cli refused: %d %q", code, errs)
	}
}

func rawPost(t *testing.T, c *Cluster, node, path, token string) (int, string) {
	t.Helper()
	tlsCfg, err := pki.ClientTLS(c.caPEM, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := c.Config.Node(node)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, "https://"+c.Config.APIAddrs(n)[0]+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestWorkflowCLI(t *testing.T) {
	c := New(t, Options{Nodes: []string{"a", "b"}, Timing: fast, Extra: fmt.Sprintf(remoteWorkflows, t.TempDir())})
	c.Start("a")
	apiUp(c, "a")
	cfg := filepath.Join(c.Dir, "vigil.yaml")
	vigil := func(args ...string) (int, string, string) {
		return runCLI(append([]string{"--config", cfg}, args...)...)
	}
	code, out, errs := vigil("workflow", "list", "--node", "a")
	if code != 0 || !strings.Contains(out, "orchestrate") || !strings.Contains(out, "WORKFLOW") {
		t.Fatalf("list: %d %q %q", code, out, errs)
	}
	code, out, _ = vigil("workflow", "show", "orchestrate", "--node", "a")
	if code != 0 || !strings.Contains(out, "> fire: @remote node=b workflow=slow action=run") || !strings.Contains(out, "2 -> stop-slow") {
		t.Fatalf("show: %d %q", code, out)
	}
	code, out, errs = vigil("workflow", "run", "two", "--node", "a", "--follow")
	if code != 0 || !strings.Contains(out, "started run ") || !strings.Contains(out, "second") || !strings.HasSuffix(out, "ended\n") {
		t.Fatalf("run --follow: %d %q %q", code, out, errs)
	}
	id := strings.Fields(out)[2]
	code, out, _ = vigil("workflow", "run", "fail", "--node", "a", "--follow")
	if code != 1 || !strings.Contains(out, "exit 3") {
		t.Fatalf("run fail --follow: %d %q", code, out)
	}
	code, out, _ = vigil("workflow", "logs", id, "--node", "a")
	if code != 0 || !strings.Contains(out, "first") || !strings.Contains(out, "exit 0") || !strings.Contains(out, "by operator") {
		t.Fatalf("logs: %d %q", code, out)
	}
	code, out, _ = vigil("workflow", "run", "two", "--node", "a", "--only-step", "second")
	if code != 0 {
		t.Fatalf("only-step: %d %q", code, out)
	}
	code, out, _ = vigil("workflow", "runs", "--node", "a", "--workflow", "two")
	if code != 0 || strings.Count(out, " two ") < 2 {
		t.Fatalf("runs: %d %q", code, out)
	}
	if code, out, _ = vigil("workflow", "run", "slow", "--node", "a"); code != 0 {
		t.Fatalf("run slow: %d %q", code, out)
	}
	code, out, errs = vigil("workflow", "run", "slow", "--node", "a")
	if code != 1 || !strings.Contains(errs, "already running") || !strings.Contains(errs, "409") {
		t.Fatalf("second run: %d %q %q", code, out, errs)
	}
	if code, out, errs = vigil("workflow", "stop", "slow", "--node", "a"); code != 0 || !strings.Contains(out, "stopped run") {
		t.Fatalf("stop: %d %q %q", code, out, errs)
	}
	code, out, _ = vigil("workflow", "run", "two", "--node", "a", "--step-by-step")
	if code != 0 || !strings.Contains(out, "vigil workflow continue") {
		t.Fatalf("step-by-step: %d %q", code, out)
	}
	sbs := strings.Fields(out)[2]
	cl := c.Client("a")
	defer cl.Close()
	c.WaitFor("paused", 10*time.Second, func() bool {
		r, err := cl.Run(context.Background(), sbs)
		return err == nil && r.Phase == "paused"
	})
	if code, out, errs = vigil("workflow", "continue", sbs, "--node", "a"); code != 0 {
		t.Fatalf("continue: %d %q %q", code, out, errs)
	}
	if r := followToEnd(t, cl, sbs); r.Result != workflow.ResultEnded {
		t.Fatalf("after continue: %s", r.Result)
	}
}

// workflowGroup is a group whose start, stop and takeover are workflows; each node
// marks in DIR whether it runs the service and logs which workflow did what.
const workflowGroup = `  - name: web
    nodes: [a, b]
    failback: manual
    resources:
      - name: app
        type: workflow
        start: startWeb
        stop: stopWeb
        takeover: takeWeb
        check: [/bin/sh, -c, 'test -f %[1]s/$VIGIL_NODE.up']
        monitor_interval: 200ms
workflows:
  - name: startWeb
    steps:
      - {name: up, shell: 'touch %[1]s/$VIGIL_NODE.up && echo "start by $VIGIL_STARTED_BY" >> %[1]s/$VIGIL_NODE.log'}
  - name: takeWeb
    steps:
      - {name: up, shell: 'touch %[1]s/$VIGIL_NODE.up && echo "takeover by $VIGIL_STARTED_BY" >> %[1]s/$VIGIL_NODE.log'}
  - name: stopWeb
    steps:
      - {name: down, shell: 'rm -f %[1]s/$VIGIL_NODE.up && echo "stop by $VIGIL_STARTED_BY" >> %[1]s/$VIGIL_NODE.log'}
`

func TestGroupOfWorkflowsFailsOverWithItsTakeover(t *testing.T) {
	dir := t.TempDir()
	c := New(t, Options{Nodes: []string{"a", "b", "q-w"}, Timing: fast, Groups: fmt.Sprintf(workflowGroup, dir)})
	for _, n := range []string{"a", "b", "q-w"} {
		c.Start(n)
	}
	up := func(node string) bool { _, err := os.Stat(filepath.Join(dir, node+".up")); return err == nil }
	logOf := func(node string) string { data, _ := os.ReadFile(filepath.Join(dir, node+".log")); return string(data) }
	runsOn := func(node, other string) func() bool { return func() bool { return up(node) && !up(other) } }
	groupRunning := func(node string) func() bool {
		return func() bool {
			cl := c.Client(node)
			defer cl.Close()
			gs, err := cl.Groups(context.Background())
			return err == nil && len(gs) == 1 && gs[0].Node == node && gs[0].State == "running"
		}
	}
	c.WaitFor("web started on a by its start workflow", 20*time.Second, func() bool { return runsOn("a", "b")() && groupRunning("a")() })
	if got := logOf("a"); got != "start by group web resource app start\n" {
		t.Fatalf("a's log %q", got)
	}

	c.Stop("a") // the agent stops its groups on the way out, then b takes over
	if got := logOf("a"); got != "start by group web resource app start\nstop by group web resource app stop\n" {
		t.Fatalf("a's log after its stop: %q", got)
	}
	c.WaitFor("web taken over by b with the takeover workflow", 15*time.Second, func() bool { return runsOn("b", "a")() && groupRunning("b")() })
	if got := logOf("b"); !strings.HasSuffix(got, "takeover by group web resource app takeover\n") || strings.Contains(got, "start by") {
		t.Fatalf("b's log %q", got)
	}

	// An operator move is no takeover: a starts it with the start workflow.
	c.Start("a")
	c.WaitFor("a back with a lease", 15*time.Second, func() bool {
		st, err := c.Status("b")
		n, _ := NodeIn(st, "a")
		return err == nil && n.State == model.NodeAlive && n.Lease
	})
	// Right after a's return the coordinator may be changing: retry until recorded.
	c.WaitFor("the move recorded", 15*time.Second, func() bool {
		cl := c.Client("b")
		defer cl.Close()
		_, err := cl.Act(context.Background(), "/v1/groups/web/move", model.OperatorAction{Node: "a", Reason: "back home"})
		return err == nil
	})
	c.WaitFor("web moved back to a", 15*time.Second, func() bool { return runsOn("a", "b")() && groupRunning("a")() })
	if got := logOf("a"); !strings.HasSuffix(got, "start by group web resource app start\n") {
		t.Fatalf("a's log after the move: %q", got)
	}
	if got := logOf("b"); !strings.HasSuffix(got, "stop by group web resource app stop\n") {
		t.Fatalf("b's log after the move: %q", got)
	}
	cl := c.Client("b")
	defer cl.Close()
	c.WaitFor("the takeover run in the event log", 10*time.Second, func() bool {
		evs, err := cl.Events(context.Background(), 0, 10000)
		if err != nil {
			return false
		}
		for _, ev := range evs {
			if ev.Kind == model.EventWorkflowEnded && ev.Reporter == "b" && ev.By == "group web resource app takeover" {
				return true
			}
		}
		return false
	})
}
