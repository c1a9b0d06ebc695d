package runexec

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// DefaultMaxOutput bounds captured output: enough for a diagnosis, not a log file.
const DefaultMaxOutput = 64 << 10

// DefaultGrace is how long a timed-out command gets between SIGTERM and SIGKILL.
const DefaultGrace = 2 * time.Second

// Cmd describes one command.
type Cmd struct {
	Argv      []string
	Env       []string // added to a minimal environment (PATH); nil: nothing more
	Dir       string
	Stdin     string
	MaxOutput int           // 0: DefaultMaxOutput
	Grace     time.Duration // 0: DefaultGrace
	// Credential runs the command as another user (nil: as the agent).
	Credential *syscall.Credential
	// KeepChildren lets processes the command left behind outlive it: OCF and LSB
	// start actions often launch their daemon with a plain '&'. They are still
	// killed with the group when ctx ends first.
	KeepChildren bool
	// DieWithAgent: the kernel kills the command if the agent dies first
	// (PR_SET_PDEATHSIG), for commands that must not outlive the agent's
	// authority, such as a replication pass after a kill -9. It follows the OS
	// thread that started the command, which Go seldom retires; a spurious kill
	// is a failed command, not a lingering one.
	DieWithAgent bool
}

// pipeGrace bounds how long Run waits for output after the command exited: a
// daemon it started may keep the output pipe open for ever.
const pipeGrace = time.Second

// Result is what happened. A non-zero exit is a Result, not an error.
type Result struct {
	ExitCode  int // -1 when killed by a signal
	Output    []byte
	Truncated bool
	Duration  time.Duration
	TimedOut  bool // ctx ended first; the process group was killed
	Signal    string
}

// Err summarises a failed Result for logs and events; nil when the command succeeded.
func (r Result) Err() error {
	switch {
	case r.TimedOut:
		return fmt.Errorf("timed out after %s", r.Duration.Round(time.Millisecond))
	case r.Signal != "":
		return fmt.Errorf("killed by %s", r.Signal)
	case r.ExitCode != 0:
		return fmt.Errorf("exit status %d", r.ExitCode)
	}
	return nil
}

// basePath is the PATH commands get: resource agents expect the system directories.
const basePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Run starts cmd in a new process group and waits for it. When ctx ends first the
// group gets SIGTERM, then SIGKILL after the grace period, so no child outlives it.
// The error is only for commands that could not be started.
func Run(ctx context.Context, c Cmd) (Result, error) {
	if len(c.Argv) == 0 {
		return Result{}, errors.New("run: empty command")
	}
	max := c.MaxOutput
	if max <= 0 {
		max = DefaultMaxOutput
	}
	grace := c.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	cmd.Env = append([]string{basePath}, c.Env...)
	cmd.Dir = c.Dir
	out := &boundedBuffer{max: max}
	cmd.Stdout, cmd.Stderr = out, out
	if c.Stdin != "" {
		cmd.Stdin = stringReader(c.Stdin)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.Credential}
	if c.DieWithAgent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	cmd.WaitDelay = pipeGrace
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("start %s: %w", c.Argv[0], err)
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	timedOut := false
	select {
	case werr = <-done:
	case <-ctx.Done():
		timedOut = true
		werr = killGroup(pgid, grace, done)
	}
	// The leader may have exited while children still hold the group: end them
	// too, unless they are the daemon the command was meant to start.
	if timedOut || !c.KeepChildren {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	res := Result{Output: out.bytes(), Truncated: out.truncated, Duration: time.Since(start), TimedOut: timedOut}
	res.ExitCode, res.Signal = exitStatus(cmd, werr)
	return res, nil
}

func killGroup(pgid int, grace time.Duration, done <-chan error) error {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return <-done
	}
}

func exitStatus(cmd *exec.Cmd, err error) (int, string) {
	if cmd.ProcessState == nil {
		return -1, ""
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, ws.Signal().String()
	}
	return cmd.ProcessState.ExitCode(), ""
}

// boundedBuffer keeps the first max bytes; a runaway command cannot eat the agent's memory.
type boundedBuffer struct {
	mu        sync.Mutex
	buf       []byte
	max       int
	truncated bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - len(b.buf)
	if room < len(p) {
		b.truncated = true
		if room > 0 {
			b.buf = append(b.buf, p[:room]...)
		}
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *boundedBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}
