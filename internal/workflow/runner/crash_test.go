package runner

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/workflow"
)

// crashHelperEnv makes the test binary act as an agent that starts a run and is then
// killed with SIGKILL by the test: the real crash, with no chance to clean up.
const crashHelperEnv = "VIGIL_WORKFLOW_CRASH_HELPER"

func crashHelper() int {
	dir := os.Getenv(crashHelperEnv)
	e, err := Open(Options{Path: filepath.Join(dir, "runs.db"), Workflows: []workflow.Workflow{{Name: "w", Steps: []workflow.Step{
		{Name: "quick", Command: []string{"true"}},
		{Name: "long", Shell: "echo $$ > " + filepath.Join(dir, "step.pid") + "; sleep 1000"},
	}}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	id, err := e.Start("w", workflow.RunOptions{}, "crash-helper")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Wait until the step runs and has said who it is, so the test can clean it up.
	for {
		r, err := e.Run(id)
		fi, ferr := os.Stat(filepath.Join(dir, "step.pid"))
		if err == nil && r.Step == "long" && r.Phase == "executing" && ferr == nil && fi.Size() > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Println("running", id)
	select {} // until SIGKILL
}

func TestRealCrashMidRunIsMarkedInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %v", err)
	}
	id := strings.TrimPrefix(strings.TrimSpace(line), "running ")
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	// The step lives in its own process group and nothing killed it: the agent died
	// without a word. Clean it up; see the package caveat about orphaned steps.
	data, err := os.ReadFile(filepath.Join(dir, "step.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		eventually(t, "the orphaned step to die", func() bool { return !alive(pid) })
	} else {
		t.Logf("step %d died with the agent: the caveat about orphaned steps may be stale", pid)
	}

	e := open(t, filepath.Join(dir, "runs.db"))
	r, err := e.Run(id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Result != workflow.ResultInterrupted || r.StartedBy != "crash-helper" || trace(r) != "quick:0>long long:-1>" {
		t.Fatalf("after the crash: %s %q %+v", r.Result, trace(r), r)
	}
	if !strings.Contains(r.Steps[1].Error, "interrupted") || !strings.Contains(r.Note, "agent stopped") {
		t.Fatalf("notes: %q %q", r.Steps[1].Error, r.Note)
	}
}
