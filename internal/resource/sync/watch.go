package sync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watchMask is what changes a copy: content, metadata, names.
const watchMask = unix.IN_CLOSE_WRITE | unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM |
	unix.IN_MOVED_TO | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// pollMillis bounds how long the watcher goes without looking at ctx.
const pollMillis = 200

// watchTrees signals trigger (without blocking) whenever something under roots
// changes, until ctx ends. inotify watches one directory at a time, so every
// directory gets a watch, including the ones created later. An error means
// there is no watching (e.g. the inotify watch limit): the periodic pass remains.
// ready is closed once the initial watches are in place, or on an error.
func watchTrees(ctx context.Context, roots []string, trigger chan<- struct{}, ready chan<- struct{}) error {
	readyOnce := func() {
		if ready != nil {
			close(ready)
			ready = nil
		}
	}
	defer readyOnce()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	defer unix.Close(fd)
	dirs := map[int]string{}
	addTree := func(root string) error {
		return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				// A directory removed while we walk is not a reason to stop watching.
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if !d.IsDir() {
				return nil
			}
			wd, err := unix.InotifyAddWatch(fd, p, watchMask)
			if err != nil {
				return fmt.Errorf("inotify watch %s: %w", p, err)
			}
			dirs[wd] = p
			return nil
		})
	}
	for _, r := range roots {
		if err := addTree(r); err != nil {
			return err
		}
	}
	readyOnce()
	signal := func() {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	buf := make([]byte, 64<<10)
	for ctx.Err() == nil {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, pollMillis)
		if errors.Is(err, unix.EINTR) || n == 0 {
			continue
		}
		if err != nil {
			return fmt.Errorf("inotify poll: %w", err)
		}
		got, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("inotify read: %w", err)
		}
		changed := false
		for off := 0; off+unix.SizeofInotifyEvent <= got; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := ""
			if ev.Len > 0 {
				raw := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				name = string(raw[:clen(raw)])
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
			changed = true
			switch {
			case ev.Mask&unix.IN_Q_OVERFLOW != 0:
				// Events were lost: the pass copies everything anyway.
			case ev.Mask&unix.IN_IGNORED != 0:
				delete(dirs, int(ev.Wd))
			case ev.Mask&unix.IN_ISDIR != 0 && ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
				if parent, ok := dirs[int(ev.Wd)]; ok {
					if err := addTree(filepath.Join(parent, name)); err != nil {
						return err
					}
				}
			}
		}
		if changed {
			signal()
		}
	}
	return nil
}

func clen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}
