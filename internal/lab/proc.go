package lab

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// Proc is a process started with Host.Start. Signals go to its whole
// process group, so helpers it forked share its fate.
type Proc struct {
	name string
	host *Host
	cmd  *exec.Cmd
	pid  int
	done chan struct{}
	err  error // set before done is closed
}

// killWait bounds how long Kill waits for the kernel to reap the process.
const killWait = 10 * time.Second

func (p *Proc) reap() {
	p.err = p.cmd.Wait()
	close(p.done)
}

// Name returns the name given to Start.
func (p *Proc) Name() string { return p.name }

// Pid returns the process id (in the root pid namespace; the lab shares it).
func (p *Proc) Pid() int { return p.pid }

// Host returns the host the process runs on.
func (p *Proc) Host() *Host { return p.host }

// Done is closed once the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns its exit error, as
// exec.Cmd.Wait does (nil for exit status 0).
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process group.
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return fmt.Errorf("signal %s (pid %d) on %s with %v: process has exited", p.name, p.pid, p.host.name, sig)
	}
	// The kernel does not reuse a pid while it names a live process group
	// or an unreaped zombie, so the group we signal is still ours unless the
	// whole group died in the instant since Exited.
	if err := syscall.Kill(-p.pid, sig); err != nil {
		return fmt.Errorf("signal %s (pid %d) on %s with %v: %w", p.name, p.pid, p.host.name, sig, err)
	}
	return nil
}

// Kill sends SIGKILL to the process group and waits until the process has
// exited. Killing an exited process is not an error.
func (p *Proc) Kill() error {
	if !p.Exited() {
		if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill %s (pid %d) on %s: %w", p.name, p.pid, p.host.name, err)
		}
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("kill %s (pid %d) on %s: still running %v after SIGKILL", p.name, p.pid, p.host.name, killWait)
	}
}

// Stop freezes the process group with SIGSTOP.
func (p *Proc) Stop() error { return p.Signal(syscall.SIGSTOP) }

// Cont resumes the process group with SIGCONT.
func (p *Proc) Cont() error { return p.Signal(syscall.SIGCONT) }
