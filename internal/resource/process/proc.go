package process

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// procStat is the part of /proc/PID/stat the supervisor needs.
type procStat struct {
	pid       int
	state     byte   // R, S, D, Z, T, ...
	ppid      int    // parent
	pgrp      int    // process group
	startTime uint64 // clock ticks after boot: with pid, identifies one process for the life of a boot
}

func (s procStat) zombie() bool { return s.state == 'Z' || s.state == 'X' }

// readStat parses /proc/PID/stat. os.ErrNotExist means there is no such process.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(pid, b)
}

// parseStat reads past the command name by its last ')', since the name itself
// may contain spaces and parentheses.
func parseStat(pid int, b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields after the name, want at least 20", pid, len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: ppid %q: %w", pid, f[1], err)
	}
	pgrp, err := strconv.Atoi(f[2])
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: pgrp %q: %w", pid, f[2], err)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: starttime %q: %w", pid, f[19], err)
	}
	return procStat{pid: pid, state: f[0][0], ppid: ppid, pgrp: pgrp, startTime: st}, nil
}

// liveMembers lists the processes of group pgid that have not exited (zombies
// excluded: they hold no resources and only wait for their parent).
func liveMembers(pgid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		s, err := readStat(pid)
		if err != nil {
			continue // exited while we looked
		}
		if s.pgrp == pgid && !s.zombie() {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func bootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("read boot id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// pidRecord is what the pid file holds. The start time and boot id make it
// safe against pid reuse: a pid alone could name an unrelated process after
// the supervised one died, or after a reboot.
type pidRecord struct {
	PID       int      `json:"pid"` // also the process group id (the process leads its group)
	StartTime uint64   `json:"start_time"`
	BootID    string   `json:"boot_id"`
	Command   []string `json:"command"`
}

// liveness says what became of a recorded process.
type liveness int

const (
	alive     liveness = iota // the same process, not a zombie
	gone                      // exited (or a zombie, or the pid now names another process)
	staleBoot                 // recorded during an earlier boot: the machine went down, not the process
)

func (r pidRecord) check() (liveness, error) {
	boot, err := bootID()
	if err != nil {
		return gone, err
	}
	if r.BootID != boot {
		return staleBoot, nil
	}
	s, err := readStat(r.PID)
	if errors.Is(err, fs.ErrNotExist) {
		return gone, nil
	}
	if err != nil {
		return gone, err
	}
	if s.startTime != r.StartTime || s.zombie() {
		return gone, nil
	}
	return alive, nil
}

// ownsGroup tells whether signalling group r.PID reaches only processes this
// record started: true while the leader is the recorded process, or when no
// process has the leader's pid (the kernel does not hand out a pid while a group
// with that id still has members, so members left then are the leader's
// children). False when the pid was reused by an unrelated process.
func (r pidRecord) ownsGroup() bool {
	s, err := readStat(r.PID)
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	return s.startTime == r.StartTime
}

func readRecord(path string) (pidRecord, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return pidRecord{}, false, nil
	}
	if err != nil {
		return pidRecord{}, false, fmt.Errorf("read pid file: %w", err)
	}
	var r pidRecord
	if err := json.Unmarshal(b, &r); err != nil || r.PID <= 0 {
		return pidRecord{}, false, fmt.Errorf("pid file %s is damaged (%v): remove it once you have checked that the process is not running", path, err)
	}
	return r, true, nil
}

// writeRecord replaces the pid file atomically and durably: after a crash the
// next agent finds either the old record or the new one, never half of one.
func writeRecord(path string, r pidRecord) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode pid file: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	_, werr := f.Write(append(b, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

func removeRecord(path string) error {
	if path == "" {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove pid file: %w", err)
	}
	return nil
}
