package process

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// child is a process this agent started, with the goroutine that reaps it.
type child struct {
	rec  pidRecord
	proc *os.Process
	// wake interrupts the watcher (release) without touching the process.
	wakeR, wakeW *os.File
	done         chan struct{} // closed when the watcher returns

	// Set by the watcher before done is closed.
	state    *os.ProcessState
	waitErr  error
	released bool
}

// watch records the new process and starts its watcher. The watcher sleeps in
// poll(2) on a pidfd, which becomes readable when the process exits, and on a
// pipe that release writes to: it costs no wake-ups while the process runs, and
// unlike a goroutine blocked in wait(2), it can be told to stop.
func watch(proc *os.Process, argv []string) (*child, error) {
	st, err := readStat(proc.Pid)
	if err != nil {
		return nil, fmt.Errorf("read start time of pid %d: %w", proc.Pid, err)
	}
	boot, err := bootID()
	if err != nil {
		return nil, err
	}
	pidfd, err := unix.PidfdOpen(proc.Pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", proc.Pid, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		unix.Close(pidfd)
		return nil, fmt.Errorf("watcher pipe: %w", err)
	}
	c := &child{
		rec:   pidRecord{PID: proc.Pid, StartTime: st.startTime, BootID: boot, Command: argv},
		proc:  proc,
		wakeR: r,
		wakeW: w,
		done:  make(chan struct{}),
	}
	go c.run(pidfd, int(r.Fd()))
	return c, nil
}

func (c *child) run(pidfd, wakefd int) {
	defer close(c.done)
	defer c.wakeW.Close()
	defer c.wakeR.Close()
	defer unix.Close(pidfd)
	fds := []unix.PollFd{
		{Fd: int32(pidfd), Events: unix.POLLIN},
		{Fd: int32(wakefd), Events: unix.POLLIN},
	}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// Cannot happen with valid descriptors; waiting is still correct.
			c.state, c.waitErr = c.proc.Wait()
			return
		}
		if fds[0].Revents != 0 {
			c.state, c.waitErr = c.proc.Wait()
			return
		}
		if fds[1].Revents != 0 {
			c.released = true
			return
		}
	}
}

// release stops the watcher and leaves the process running.
func (c *child) release() {
	_, _ = c.wakeW.Write([]byte{0}) // fails harmlessly once the watcher closed it
	<-c.done
}

// exitText describes how the process ended, once done is closed: its exit code
// (-1 when a signal ended it or the status is unknown) and a phrase.
func (c *child) exitText() (int, string) {
	switch {
	case c.released:
		return -1, "is no longer watched by this agent"
	case c.state == nil:
		return -1, fmt.Sprintf("exited, status unknown (%v)", c.waitErr)
	}
	if ws, ok := c.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, "was killed by " + unix.SignalName(ws.Signal())
	}
	code := c.state.ExitCode()
	return code, fmt.Sprintf("exited with status %d", code)
}
