package runexec

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestExitCodeAndOutput(t *testing.T) {
	r, err := Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode != 3 || !strings.Contains(string(r.Output), "out") || !strings.Contains(string(r.Output), "err") {
		t.Fatalf("got %+v %q", r, r.Output)
	}
	if r.Err() == nil {
		t.Fatal("exit 3 is a failure")
	}
}

func TestTimeoutKillsTheWholeTree(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	// The child ignores SIGTERM, so only the group SIGKILL can end it.
	script := "sh -c 'trap \"\" TERM; echo $$ > " + pidFile + "; sleep 1000' & wait"
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r, err := Run(ctx, Cmd{Argv: []string{"sh", "-c", script}, Grace: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !r.TimedOut {
		t.Fatalf("not timed out: %+v", r)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if isZombie(pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d survived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && i+2 < len(data) && data[i+2] == 'Z'
}

func TestOutputIsBounded(t *testing.T) {
	r, err := Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "head -c 100000 /dev/zero"}, MaxOutput: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Output) != 1000 || !r.Truncated {
		t.Fatalf("output %d bytes, truncated %v", len(r.Output), r.Truncated)
	}
}

func TestStdinEnvDir(t *testing.T) {
	dir := t.TempDir()
	r, err := Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "read x; echo $x $FOO $(pwd)"}, Stdin: "hello\n", Env: []string{"FOO=bar"}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(r.Output)); got != "hello bar "+dir {
		t.Fatalf("got %q", got)
	}
}

func TestMissingCommand(t *testing.T) {
	if _, err := Run(context.Background(), Cmd{Argv: []string{"/nonexistent/x"}}); err == nil {
		t.Fatal("want an error for a missing command")
	}
}

func TestKeepChildrenLetsADaemonOutliveItsStarter(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "daemon.pid")
	// Like an OCF start that launches its daemon with a plain '&' and keeps stdout open.
	r, err := Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "sleep 30 & echo $! > " + pidFile}, KeepChildren: true})
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("%v %+v", err, r)
	}
	if r.Duration > 3*time.Second {
		t.Fatalf("Run waited %v for a daemon holding the pipe", r.Duration)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	defer syscall.Kill(pid, syscall.SIGKILL)
	if err := syscall.Kill(pid, 0); err != nil || isZombie(pid) {
		t.Fatal("the daemon died with its starter")
	}
}
