package runexec

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The helper process of TestDieWithAgent, standing for the agent: it runs a
// command through Run that writes its pid to a file and sleeps, until killed.
func init() {
	mode, pidFile := os.Getenv("RUNEXEC_DEATHSIG_HELPER"), os.Getenv("RUNEXEC_DEATHSIG_PIDFILE")
	if mode == "" {
		return
	}
	_, _ = Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "echo $$ > " + pidFile + "; exec sleep 60"}, DieWithAgent: mode == "die"})
	os.Exit(0)
}

// TestDieWithAgent: the agent is killed with SIGKILL while its command runs;
// with DieWithAgent the command dies too, without it the command lives on.
func TestDieWithAgent(t *testing.T) {
	for _, mode := range []string{"die", "live"} {
		t.Run(mode, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			helper := exec.Command(os.Args[0], "-test.run=^$")
			helper.Env = append(os.Environ(), "RUNEXEC_DEATHSIG_HELPER="+mode, "RUNEXEC_DEATHSIG_PIDFILE="+pidFile)
			if err := helper.Start(); err != nil {
				t.Fatal(err)
			}
			var pid int
			deadline := time.Now().Add(10 * time.Second)
			for pid == 0 {
				if data, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(data), "\n") {
					pid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
				}
				if time.Now().After(deadline) {
					_ = helper.Process.Kill()
					t.Fatal("the helper's command never started")
				}
				time.Sleep(10 * time.Millisecond)
			}
			defer syscall.Kill(pid, syscall.SIGKILL)
			if err := helper.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = helper.Wait()
			alive := func() bool { return syscall.Kill(pid, 0) == nil && !isZombie(pid) }
			if mode == "live" {
				time.Sleep(300 * time.Millisecond)
				if !alive() {
					t.Fatal("without DieWithAgent the command died with the agent")
				}
				return
			}
			deadline = time.Now().Add(10 * time.Second)
			for alive() {
				if time.Now().After(deadline) {
					t.Fatal("with DieWithAgent the command outlived the agent")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
