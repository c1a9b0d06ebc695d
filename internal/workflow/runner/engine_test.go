package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/workflow"
	"github.com/vigil-ha/vigil/internal/workflow/history"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashHelperEnv) != "" {
		os.Exit(crashHelper())
	}
	goleak.VerifyTestMain(m)
}

func dur(d time.Duration) config.Duration { return config.Duration(d) }

func sh(name, script string) workflow.Step { return workflow.Step{Name: name, Shell: script} }

func open(t *testing.T, path string, ws ...workflow.Workflow) *Engine {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "runs.db")
	}
	e, err := Open(Options{Path: path, Workflows: ws, Grace: 200 * time.Millisecond, BaseDir: filepath.Dir(path)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

func start(t *testing.T, e *Engine, name string, opts workflow.RunOptions) string {
	t.Helper()
	id, err := e.Start(name, opts, "test")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func wait(t *testing.T, e *Engine, id string) history.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := e.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// trace renders a run's attempts as "step:exit>target" for compact assertions.
func trace(r history.Run) string {
	var parts []string
	for _, a := range r.Steps {
		parts = append(parts, a.Step+":"+strconv.Itoa(a.ExitCode)+">"+a.Target)
	}
	return strings.Join(parts, " ")
}

// eventually polls cond; the engine runs on real time, so tests wait for states.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func phase(t *testing.T, e *Engine, id string) string {
	r, err := e.Run(id)
	if err != nil {
		t.Fatal(err)
	}
	return r.Phase
}

func TestTransitionsByExitCode(t *testing.T) {
	w := workflow.Workflow{Name: "takeover", Steps: []workflow.Step{
		{Name: "check", Shell: `test -e "$MARK" || exit 3`, Env: map[string]string{"MARK": "repaired"}, On: map[string]string{"3": "repair"}},
		{Name: "start", Command: []string{"true"}, On: map[string]string{"0": "end"}},
		{Name: "repair", Shell: `echo "repairing in $VIGIL_STEP of $VIGIL_WORKFLOW by $VIGIL_STARTED_BY"; touch repaired`, On: map[string]string{"0": "check"}},
	}}
	e := open(t, "", w)
	r := wait(t, e, start(t, e, "takeover", workflow.RunOptions{}))
	if r.Result != workflow.ResultEnded {
		t.Fatalf("result %s: %+v", r.Result, r)
	}
	if got, want := trace(r), "check:3>repair repair:0>check check:0>start start:0>end"; got != want {
		t.Fatalf("trace %q, want %q", got, want)
	}
	if out := r.Steps[1].Output; !strings.Contains(out, "repairing in repair of takeover by test") {
		t.Fatalf("output %q", out)
	}
	for _, a := range r.Steps {
		if a.Ended.Before(a.Started) || a.Duration <= 0 || a.Seq == 0 {
			t.Fatalf("attempt times %+v", a)
		}
	}
	if r.StartedBy != "test" || r.Ended.IsZero() || r.Attempts != 4 {
		t.Fatalf("header %+v", r)
	}
}

func TestNonZeroAbends(t *testing.T) {
	e := open(t, "", workflow.Workflow{Name: "w", Steps: []workflow.Step{sh("a", "echo boom; exit 2"), sh("b", "true")}})
	r := wait(t, e, start(t, e, "w", workflow.RunOptions{}))
	if r.Result != workflow.ResultAbended || trace(r) != "a:2>abend" || !strings.Contains(r.Steps[0].Output, "boom") {
		t.Fatalf("got %s %q", r.Result, trace(r))
	}
}

func TestMissingProgramFailsTheStep(t *testing.T) {
	e := open(t, "", workflow.Workflow{Name: "w", Steps: []workflow.Step{
		{Name: "a", Command: []string{"/nonexistent/program"}, On: map[string]string{"default": "b"}},
		sh("b", "true"),
	}})
	r := wait(t, e, start(t, e, "w", workflow.RunOptions{}))
	if r.Result != workflow.ResultEnded || trace(r) != "a:-1>b b:0>end" || r.Steps[0].Error == "" {
		t.Fatalf("got %s %q %+v", r.Result, trace(r), r.Steps[0])
	}
}

func TestRelativeDirAndScript(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	scripts := filepath.Join(filepath.Dir(path), "scripts")
	if err := os.Mkdir(scripts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(scripts, "hello.sh"), []byte("#!/bin/sh\necho hello from $(basename $(pwd))\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := open(t, path, workflow.Workflow{Name: "w", Steps: []workflow.Step{{Name: "a", Command: []string{"./hello.sh"}, Dir: "scripts"}}})
	r := wait(t, e, start(t, e, "w", workflow.RunOptions{}))
	if r.Result != workflow.ResultEnded || strings.TrimSpace(r.Steps[0].Output) != "hello from scripts" {
		t.Fatalf("got %s %+v", r.Result, r.Steps)
	}
}

func TestTimeoutKillsTheStepsWholeTree(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	// The background child ignores SIGTERM: only the group's SIGKILL ends it.
	script := "sh -c 'trap \"\" TERM; echo $$ > " + pidFile + "; sleep 1000' & wait"
	e := open(t, "", workflow.Workflow{Name: "w", Steps: []workflow.Step{
		{Name: "hang", Shell: script, Timeout: dur(300 * time.Millisecond), On: map[string]string{"0": "end", "default": "alarm"}},
		sh("alarm", "echo alarm"),
	}})
	r := wait(t, e, start(t, e, "w", workflow.RunOptions{}))
	if r.Result != workflow.ResultEnded || trace(r) != "hang:-1>alarm alarm:0>end" {
		t.Fatalf("got %s %q", r.Result, trace(r))
	}
	if a := r.Steps[0]; !a.TimedOut || !strings.Contains(a.Error, "timed out") {
		t.Fatalf("attempt %+v", a)
	}
	assertGone(t, pidFile)
}

// assertGone waits until the process whose pid is in pidFile no longer runs.
func assertGone(t *testing.T, pidFile string) {
	t.Helper()
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "process "+strconv.Itoa(pid)+" to die", func() bool { return !alive(pid) })
}

// alive: signal 0 succeeds on zombies too, and an orphan's zombie may wait for a
// reaper that a container lacks; a zombie runs nothing.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return !(i > 0 && i+2 < len(data) && data[i+2] == 'Z')
}

func TestWaitBefore(t *testing.T) {
	e := open(t, "", workflow.Workflow{Name: "w", Steps: []workflow.Step{
		sh("a", "true"),
		{Name: "b", Command: []string{"true"}, WaitBefore: dur(400 * time.Millisecond)},
	}})
	id := start(t, e, "w", workflow.RunOptions{})
	eventually(t, "the run to wait before b", func() bool { return phase(t, e, id) == "waiting" })
	mid, _ := e.Run(id)
	if mid.Step != "b" || mid.Until.IsZero() {
		t.Fatalf("while waiting: %+v", mid)
	}
	r := wait(t, e, id)
	gap := r.Steps[1].Started.Sub(r.Steps[0].Ended)
	if r.Result != workflow.ResultEnded || gap < 400*time.Millisecond {
		t.Fatalf("result %s, b started %s after a ended", r.Result, gap)
	}
}

func TestPureWaitStep(t *testing.T) {
	e := open(t, "", workflow.Workflow{Name: "restart", Steps: []workflow.Step{
		sh("restart", "true"),
		{Name: "cooldown", WaitBefore: dur(300 * time.Millisecond)},
	}})
	id := start(t, e, "restart", workflow.RunOptions{})
	// The seed's trick: a restart workflow waiting in its last step cannot run again.
	eventually(t, "the cooldown", func() bool { return phase(t, e, id) == "waiting" })
	if _, err := e.Start("restart", workflow.RunOptions{}, "test"); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("restart during cooldown: %v", err)
	}
	r := wait(t, e, id)
	if r.Result != workflow.ResultEnded || trace(r) != "restart:0>cooldown cooldown:0>end" || r.Steps[1].Command != nil {
		t.Fatalf("got %s %q", r.Result, trace(r))
	}
}

func TestRetries(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(dir, "n")
	// Fails twice, then succeeds.
	script := `n=$(cat ` + counter + ` 2>/dev/null || echo 0); n=$((n+1)); echo $n > ` + counter + `; echo attempt $VIGIL_ATTEMPT; [ $n -ge 3 ]`
	e := open(t, "", workflow.Workflow{Name: "w", Steps: []workflow.Step{
		{Name: "flaky", Shell: script, Retries: 2, RetryDelay: dur(150 * time.Millisecond)},
	}})
	r := wait(t, e, start(t, e, "w", workflow.RunOptions{}))
	if r.Result != workflow.ResultEnded || trace(r) != "flaky:1>flaky flaky:1>flaky flaky:0>end" {
		t.Fatalf("got %s %q", r.Result, trace(r))
	}
	for i := 1; i < 3; i++ {
		if gap := r.Steps[i].Started.Sub(r.Steps[i-1].Ended); gap < 150*time.Millisecond {
			t.Fatalf("retry %d after %s", i, gap)
		}
		if r.Steps[i].Attempt != i+1 || r.Steps[i-1].Transition != "retry" || !strings.Contains(r.Steps[i].Output, "attempt "+strconv.Itoa(i+1)) {
			t.Fatalf("attempt %d: %+v", i, r.Steps[i])
		}
	}
}

func TestSecondRunOfARunningWorkflowIsRefused(t *testing.T) {
	e := open(t, "", workflow.Workflow{Name: "w", Steps: []workflow.Step{sh("long", "sleep 30")}},
		workflow.Workflow{Name: "other", Steps: []workflow.Step{sh("a", "true")}})
	id := start(t, e, "w", workflow.RunOptions{})
	_, err := e.Start("w", workflow.RunOptions{}, "test")
	if !errors.Is(err, ErrAlreadyRunning) || !strings.Contains(err.Error(), id) {
		t.Fatalf("second start: %v", err)
	}
	// Another workflow may run alongside.
	if r := wait(t, e, start(t, e, "other", workflow.RunOptions{})); r.Result != workflow.ResultEnded {
		t.Fatalf("other: %s", r.Result)
	}
	if err := e.Stop(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	// Once it is over, it can run again.
	id2 := start(t, e, "w", workflow.RunOptions{})
	if id2 <= id {
		t.Fatalf("run ids not increasing: %s then %s", id, id2)
	}
	if _, err := e.StopWorkflow(context.Background(), "w"); err != nil {
		t.Fatal(err)
	}
}

func TestExclusive(t *testing.T) {
	e := open(t, "",
		workflow.Workflow{Name: "takeControl", Exclusive: true, Steps: []workflow.Step{sh("long", "sleep 30")}},
		workflow.Workflow{Name: "normalPrimer", Steps: []workflow.Step{sh("long", "sleep 30")}},
		workflow.Workflow{Name: "gracefulShutdown", Steps: []workflow.Step{sh("a", "true")}},
	)
	ctx := context.Background()

	// An exclusive workflow waits for none: it is refused while another runs.
	primer := start(t, e, "normalPrimer", workflow.RunOptions{})
	if _, err := e.Start("takeControl", workflow.RunOptions{}, "test"); !errors.Is(err, ErrExclusive) {
		t.Fatalf("exclusive beside a running workflow: %v", err)
	}
	if err := e.Stop(ctx, primer); err != nil {
		t.Fatal(err)
	}

	// While it runs, nothing else starts.
	take := start(t, e, "takeControl", workflow.RunOptions{})
	for _, name := range []string{"normalPrimer", "gracefulShutdown"} {
		if _, err := e.Start(name, workflow.RunOptions{}, "test"); !errors.Is(err, ErrExclusive) {
			t.Fatalf("%s during an exclusive run: %v", name, err)
		}
	}
	if _, err := e.Start("takeControl", workflow.RunOptions{}, "test"); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("exclusive twice: %v", err)
	}
	if err := e.Stop(ctx, take); err != nil {
		t.Fatal(err)
	}
	if r := wait(t, e, start(t, e, "gracefulShutdown", workflow.RunOptions{})); r.Result != workflow.ResultEnded {
		t.Fatalf("after the exclusive run: %s", r.Result)
	}
}

func TestFromStepAndOnlyStep(t *testing.T) {
	e := open(t, "", workflow.Workflow{Name: "w", Steps: []workflow.Step{
		sh("a", "true"), sh("b", "exit 4"), sh("c", "true"),
	}})
	if r := wait(t, e, start(t, e, "w", workflow.RunOptions{From: "c"})); r.Result != workflow.ResultEnded || trace(r) != "c:0>end" {
		t.Fatalf("from c: %s %q", r.Result, trace(r))
	}
	if r := wait(t, e, start(t, e, "w", workflow.RunOptions{OnlyStep: "a"})); r.Result != workflow.ResultEnded || trace(r) != "a:0>b" {
		t.Fatalf("only a: %s %q", r.Result, trace(r))
	}
	r := wait(t, e, start(t, e, "w", workflow.RunOptions{OnlyStep: "b"}))
	if r.Result != workflow.ResultAbended || trace(r) != "b:4>abend" || r.Options.OnlyStep != "b" {
		t.Fatalf("only b: %s %q %+v", r.Result, trace(r), r.Options)
	}
	if _, err := e.Start("w", workflow.RunOptions{From: "nope"}, "test"); err == nil {
		t.Fatal("unknown from-step accepted")
	}
	// A refused start leaves the workflow startable.
	wait(t, e, start(t, e, "w", workflow.RunOptions{From: "c"}))
}

func TestStopKillsTheStepAndMarksTheRunStopped(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	e := open(t, "", workflow.Workflow{Name: "w", Steps: []workflow.Step{
		sh("long", "sh -c 'echo $$ > "+pidFile+"; exec sleep 1000' & wait"),
		sh("after", "true"),
	}})
	id := start(t, e, "w", workflow.RunOptions{})
	eventually(t, "the step's child", func() bool { fi, err := os.Stat(pidFile); return err == nil && fi.Size() > 0 })
	t0 := time.Now()
	if err := e.Stop(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("stop took %s", d)
	}
	r, err := e.Run(id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Result != workflow.ResultStopped || len(r.Steps) != 1 || r.Steps[0].Transition != "stopped" || !strings.Contains(r.Steps[0].Error, "stopped") || r.Steps[0].TimedOut {
		t.Fatalf("got %+v", r)
	}
	assertGone(t, pidFile)
	if err := e.Stop(context.Background(), id); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("stopping a stopped run: %v", err)
	}
}

func TestStopWhileWaiting(t *testing.T) {
	e := open(t, "", workflow.Workflow{Name: "w", Steps: []workflow.Step{
		sh("a", "true"), {Name: "b", Command: []string{"true"}, WaitBefore: dur(time.Hour)},
	}})
	id := start(t, e, "w", workflow.RunOptions{})
	eventually(t, "the wait", func() bool { return phase(t, e, id) == "waiting" })
	if _, err := e.StopWorkflow(context.Background(), "w"); err != nil {
		t.Fatal(err)
	}
	if r := wait(t, e, id); r.Result != workflow.ResultStopped || trace(r) != "a:0>b" {
		t.Fatalf("got %s %q", r.Result, trace(r))
	}
}

func TestStepByStep(t *testing.T) {
	e := open(t, "", workflow.Workflow{Name: "w", Steps: []workflow.Step{sh("a", "true"), sh("b", "true"), sh("c", "true")}})
	id := start(t, e, "w", workflow.RunOptions{StepByStep: true})
	for i, next := range []string{"b", "c"} {
		eventually(t, "pause before "+next, func() bool { r, _ := e.Run(id); return r.Phase == "paused" && r.Step == next })
		r, _ := e.Run(id)
		if r.Step != next || len(r.Steps) != i+1 {
			t.Fatalf("paused at %q after %d steps, want before %q", r.Step, len(r.Steps), next)
		}
		// It stays paused: nothing runs without the operator.
		time.Sleep(50 * time.Millisecond)
		if r, _ := e.Run(id); len(r.Steps) != i+1 {
			t.Fatalf("ran on without Continue: %q", trace(r))
		}
		if err := e.Continue(id); err != nil {
			t.Fatal(err)
		}
	}
	r := wait(t, e, id)
	if r.Result != workflow.ResultEnded || trace(r) != "a:0>b b:0>c c:0>end" {
		t.Fatalf("got %s %q", r.Result, trace(r))
	}
	if err := e.Continue(id); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("continue a finished run: %v", err)
	}
}

func TestContinueOnlyWhenPaused(t *testing.T) {
	e := open(t, "", workflow.Workflow{Name: "w", Steps: []workflow.Step{sh("a", "sleep 30")}})
	id := start(t, e, "w", workflow.RunOptions{StepByStep: true})
	if err := e.Continue(id); !errors.Is(err, workflow.ErrNotPaused) {
		t.Fatalf("continue while executing: %v", err)
	}
	if err := e.Stop(context.Background(), id); err != nil {
		t.Fatal(err)
	}
}

func TestWatchLoopsQuietlyAndLeavesByExitCode(t *testing.T) {
	dir := t.TempDir()
	healthy := filepath.Join(dir, "healthy")
	if err := os.WriteFile(healthy, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e := open(t, "", workflow.Workflow{Name: "w", Steps: []workflow.Step{
		{Name: "health", Shell: "test -e " + healthy, Commit: true, Watch: &workflow.Watch{Interval: dur(20 * time.Millisecond)}, On: map[string]string{"default": "alarm"}},
		{Name: "alarm", Shell: "echo service down", On: map[string]string{"0": "abend"}},
	}})
	id := start(t, e, "w", workflow.RunOptions{})
	eventually(t, "quiet checks", func() bool { r, _ := e.Run(id); return r.QuietChecks >= 5 })
	if err := os.Remove(healthy); err != nil {
		t.Fatal(err)
	}
	r := wait(t, e, id)
	if r.Result != workflow.ResultAbended || trace(r) != "health:0>health health:1>alarm alarm:0>abend" {
		t.Fatalf("got %s %q", r.Result, trace(r))
	}
	if !r.Steps[0].Commit || r.Commit != "health" || r.Steps[1].Check < 6 || r.LastCheck.IsZero() {
		t.Fatalf("commit/check bookkeeping: %+v", r)
	}
}

func TestCloseInterruptsRunsInProgress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	e, err := Open(Options{Path: path, Grace: 100 * time.Millisecond, Workflows: []workflow.Workflow{
		{Name: "w", Steps: []workflow.Step{sh("long", "sleep 30")}},
		{Name: "p", Steps: []workflow.Step{sh("a", "true"), sh("b", "true")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	id := start(t, e, "w", workflow.RunOptions{})
	paused := start(t, e, "p", workflow.RunOptions{StepByStep: true})
	eventually(t, "the pause", func() bool { return phase(t, e, paused) == "paused" })
	eventually(t, "the step", func() bool { return phase(t, e, id) == "executing" })
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Start("w", workflow.RunOptions{}, "test"); !errors.Is(err, ErrClosed) {
		t.Fatalf("start after close: %v", err)
	}
	e2 := open(t, path)
	for _, rid := range []string{id, paused} {
		r, err := e2.Run(rid)
		if err != nil {
			t.Fatal(err)
		}
		if r.Result != workflow.ResultInterrupted || !strings.Contains(r.Note, "shut down") {
			t.Fatalf("run %s after close: %+v", rid, r)
		}
	}
}

func TestCrashMidRunIsMarkedInterrupted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	// What a crash leaves behind: a run recorded as running with an attempt still open.
	s, err := history.Open(path, history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-time.Minute)
	id := s.NewID(started)
	hdr := history.Run{ID: id, Workflow: "w", StartedBy: "decision-engine", Started: started, Result: workflow.ResultRunning, Phase: "executing", Step: "b"}
	if err := s.Put(hdr,
		history.Attempt{Seq: 1, Step: "a", Attempt: 1, Started: started, Ended: started.Add(time.Second), Transition: "leave", Target: "b"},
		history.Attempt{Seq: 2, Step: "b", Attempt: 1, Started: started.Add(time.Second)},
	); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	e := open(t, path, workflow.Workflow{Name: "w", Steps: []workflow.Step{sh("a", "true"), sh("b", "true")}})
	r, err := e.Run(id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Result != workflow.ResultInterrupted || !strings.Contains(r.Note, "agent stopped") || r.Ended.IsZero() {
		t.Fatalf("header %+v", r)
	}
	if b := r.Steps[1]; b.ExitCode != -1 || !strings.Contains(b.Error, "interrupted") {
		t.Fatalf("open attempt %+v", b)
	}
	// The workflow is free to run again.
	if r := wait(t, e, start(t, e, "w", workflow.RunOptions{})); r.Result != workflow.ResultEnded {
		t.Fatalf("rerun: %s", r.Result)
	}
	if runs, _ := e.Runs(history.Filter{Result: workflow.ResultInterrupted}, 0); len(runs) != 1 || runs[0].ID != id {
		t.Fatalf("interrupted runs %+v", runs)
	}
}

func TestSubscribe(t *testing.T) {
	e := open(t, "", workflow.Workflow{Name: "w", Steps: []workflow.Step{sh("a", "true"), sh("b", "true")}})
	updates, cancel := e.Subscribe(100)
	defer cancel()
	slow, cancelSlow := e.Subscribe(1) // never read: must be dropped, not waited for
	defer cancelSlow()
	id := start(t, e, "w", workflow.RunOptions{})
	var steps []string
	timeout := time.After(10 * time.Second)
	for done := false; !done; {
		select {
		case u := <-updates:
			if u.Run.ID != id {
				t.Fatalf("update for %s", u.Run.ID)
			}
			for _, a := range u.Attempts {
				if !a.Ended.IsZero() {
					steps = append(steps, a.Step)
				}
			}
			done = u.Run.Result.Final()
		case <-timeout:
			t.Fatal("no final update")
		}
	}
	if strings.Join(steps, ",") != "a,b" {
		t.Fatalf("ended attempts seen: %v", steps)
	}
	n := 0
	for range slow {
		n++
	}
	if n != 1 {
		t.Fatalf("slow subscriber got %d updates before being dropped", n)
	}
}

func TestSubscriptionsCloseWithTheEngine(t *testing.T) {
	e, err := Open(Options{Path: filepath.Join(t.TempDir(), "runs.db")})
	if err != nil {
		t.Fatal(err)
	}
	ch, cancel := e.Subscribe(1)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch; ok {
		t.Fatal("channel open after Close")
	}
	cancel() // after Close: harmless
	ch2, _ := e.Subscribe(1)
	if _, ok := <-ch2; ok {
		t.Fatal("subscription after Close is open")
	}
}

func TestInvalidWorkflowsAreRefused(t *testing.T) {
	_, err := Open(Options{Path: filepath.Join(t.TempDir(), "runs.db"), Workflows: []workflow.Workflow{
		{Name: "w", Steps: []workflow.Step{{Name: "a", Command: []string{"true"}, On: map[string]string{"0": "zz"}}}},
	}})
	if err == nil || !strings.Contains(err.Error(), "workflows[0].steps[0].on.0") {
		t.Fatalf("got %v", err)
	}
	e := open(t, "")
	if _, err := e.Start("nope", workflow.RunOptions{}, "test"); !errors.Is(err, ErrUnknownWorkflow) {
		t.Fatalf("unknown workflow: %v", err)
	}
	if err := e.SetWorkflows([]workflow.Workflow{{Name: "x", Steps: []workflow.Step{sh("a", "true")}}}); err != nil {
		t.Fatal(err)
	}
	if ws := e.Workflows(); len(ws) != 1 || ws[0].Name != "x" {
		t.Fatalf("workflows %+v", ws)
	}
	wait(t, e, start(t, e, "x", workflow.RunOptions{}))
}

func TestServicesStartedByAStepSurviveIt(t *testing.T) {
	dir := t.TempDir()
	keep, kill := filepath.Join(dir, "keep.pid"), filepath.Join(dir, "kill.pid")
	// Starts a background process and returns once it has written its pid.
	daemon := func(pidFile string) string {
		return "sh -c 'echo $$ > " + pidFile + ".tmp; mv " + pidFile + ".tmp " + pidFile + "; exec sleep 1000' >/dev/null 2>&1 & " +
			"while [ ! -s " + pidFile + " ]; do sleep 0.01; done"
	}
	e := open(t, "", workflow.Workflow{Name: "w", Steps: []workflow.Step{
		{Name: "start-service", Shell: daemon(keep)},
		{Name: "scratch", Shell: daemon(kill), KillChildren: true},
	}})
	r := wait(t, e, start(t, e, "w", workflow.RunOptions{}))
	if r.Result != workflow.ResultEnded {
		t.Fatalf("got %s %q", r.Result, trace(r))
	}
	data, err := os.ReadFile(keep)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if !alive(pid) {
		t.Fatal("the service started by the step died with it")
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	assertGone(t, keep)
	assertGone(t, kill)
}
