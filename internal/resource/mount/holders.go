package mount

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// holder is a process that keeps a file system busy.
type holder struct {
	pid   int
	comm  string
	how   string // cwd, root, exe, "fd N PATH" or "mmap PATH"
	pidfd int    // -1 when not opened
}

func (h holder) String() string { return fmt.Sprintf("pid %d (%s): %s", h.pid, h.comm, h.how) }

// findHolders walks /proc for processes whose working directory, root,
// executable, open files or mapped files are on the file system dev, in any
// mount namespace: the kernel keeps a file system busy through all of them.
// This is what `fuser -m` finds, without needing psmisc on the node.
func findHolders(dev uint64) ([]holder, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var hs []holder
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		how := usesDev(pid, dev)
		if how == "" {
			continue
		}
		comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
		hs = append(hs, holder{pid: pid, comm: strings.TrimSpace(string(comm)), how: how, pidfd: -1})
	}
	return hs, nil
}

func usesDev(pid int, dev uint64) string {
	base := "/proc/" + strconv.Itoa(pid) + "/"
	for _, l := range []string{"cwd", "root", "exe"} {
		if d, ok := statDev(base + l); ok && d == dev {
			return l
		}
	}
	fds, _ := os.ReadDir(base + "fd")
	for _, fd := range fds {
		if d, ok := statDev(base + "fd/" + fd.Name()); ok && d == dev {
			target, _ := os.Readlink(base + "fd/" + fd.Name())
			return "fd " + fd.Name() + " " + target
		}
	}
	f, err := os.Open(base + "maps")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// address perms offset MAJ:MIN(hex) inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[4] == "0" {
			continue
		}
		ma, mi, ok := strings.Cut(fields[3], ":")
		maj, err1 := strconv.ParseUint(ma, 16, 32)
		min, err2 := strconv.ParseUint(mi, 16, 32)
		if ok && err1 == nil && err2 == nil && unix.Mkdev(uint32(maj), uint32(min)) == dev {
			return "mmap " + fields[5]
		}
	}
	return ""
}

func statDev(path string) (uint64, bool) {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return 0, false
	}
	return uint64(st.Dev), true
}

// killHolders sends SIGTERM to every holder, then SIGKILL to those still
// alive after grace, and waits for them to exit. Processes are addressed
// through pidfds opened before a last check, so a pid reused in between
// cannot be hit. It never signals its own process.
func killHolders(ctx context.Context, dev uint64, hs []holder, grace time.Duration) (signalled []holder, err error) {
	self := os.Getpid()
	for _, h := range hs {
		if h.pid == self {
			err = errors.Join(err, fmt.Errorf("this process itself keeps the file system busy (%s)", h.how))
			continue
		}
		fd, oerr := unix.PidfdOpen(h.pid, 0)
		switch {
		case errors.Is(oerr, unix.ESRCH):
			continue // gone already
		case oerr == nil:
			h.pidfd = fd
		}
		// Checked again with the pidfd open: the answer now concerns the
		// process the pidfd pins, not a newcomer that reused the pid.
		if usesDev(h.pid, dev) == "" {
			closeFd(h)
			continue
		}
		signalled = append(signalled, h)
	}
	defer func() {
		for _, h := range signalled {
			closeFd(h)
		}
	}()
	send := func(sig unix.Signal) {
		for _, h := range signalled {
			if alive(h) {
				if h.pidfd >= 0 {
					_ = unix.PidfdSendSignal(h.pidfd, sig, nil, 0)
				} else {
					_ = unix.Kill(h.pid, sig)
				}
			}
		}
	}
	send(unix.SIGTERM)
	if waitExit(ctx, signalled, grace) {
		return signalled, err
	}
	send(unix.SIGKILL)
	if !waitExit(ctx, signalled, killWait) {
		var left []string
		for _, h := range signalled {
			if alive(h) {
				left = append(left, h.String())
			}
		}
		err = errors.Join(err, fmt.Errorf("still alive after SIGKILL (stuck in the kernel?): %s", strings.Join(left, "; ")))
	}
	return signalled, err
}

// killWait bounds the wait after SIGKILL; a process in uninterruptible sleep
// may never die, and the caller must get an answer.
const killWait = 5 * time.Second

func closeFd(h holder) {
	if h.pidfd >= 0 {
		_ = unix.Close(h.pidfd)
	}
}

func alive(h holder) bool {
	if h.pidfd >= 0 {
		fds := []unix.PollFd{{Fd: int32(h.pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		return err == nil && n == 0 // readable once the process has exited
	}
	if unix.Kill(h.pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(h.pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return !(i > 0 && i+2 < len(stat) && stat[i+2] == 'Z') // a zombie holds no files
}

// waitExit reports whether every holder exited within d.
func waitExit(ctx context.Context, hs []holder, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		any := false
		for _, h := range hs {
			if alive(h) {
				any = true
				break
			}
		}
		if !any {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
