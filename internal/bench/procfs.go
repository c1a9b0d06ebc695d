package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. The
// kernel fixes it at 100 in its user-space ABI on every architecture Go
// supports, and reading it properly (sysconf) would need cgo.
const clockTicks = 100

// procSample is one reading of a process's counters from /proc. The kernel sums
// them over all of the process's threads.
type procSample struct {
	CPUTicks uint64 // utime + stime
	RSSKB    uint64 // VmRSS
	// RSSAnonKB and RSSFileKB split VmRSS: the process's own memory, and the
	// pages of files it maps (mostly its binary: clean, shared, reclaimable).
	RSSAnonKB uint64
	RSSFileKB uint64
	// Switches is every context switch of every thread: how often the
	// process woke up, which unlike CPU time does not depend on how fast or
	// how contended the machine is.
	Switches uint64
	// WriteBytes is what the process sent towards the block layer (page-cache
	// dirtying included): the disk figure. Syscw counts every write-like system
	// call, socket sends included, so it is an upper bound on file writes.
	WriteBytes          uint64
	CancelledWriteBytes uint64
	Syscw               uint64
	Wchar               uint64
}

// readProc reads /proc/PID/{stat,status,io} under root ("/proc" outside tests).
func readProc(root string, pid int) (procSample, error) {
	var s procSample
	dir := filepath.Join(root, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return s, fmt.Errorf("read cpu time of pid %d: %w", pid, err)
	}
	if s.CPUTicks, err = parseStatCPU(stat); err != nil {
		return s, fmt.Errorf("pid %d stat: %w", pid, err)
	}
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return s, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	if err := parseStatusMem(status, &s); err != nil {
		return s, fmt.Errorf("pid %d status: %w", pid, err)
	}
	if s.Switches, err = readSwitches(dir); err != nil {
		return s, fmt.Errorf("pid %d: %w", pid, err)
	}
	io, err := os.ReadFile(filepath.Join(dir, "io"))
	if err != nil {
		return s, fmt.Errorf("read i/o counters of pid %d: %w", pid, err)
	}
	if err := parseIO(io, &s); err != nil {
		return s, fmt.Errorf("pid %d io: %w", pid, err)
	}
	return s, nil
}

// parseStatCPU returns utime+stime from the contents of /proc/PID/stat.
func parseStatCPU(data []byte) (uint64, error) {
	// The command name (field 2) is in parentheses and may itself hold spaces
	// and ')', so the fixed fields start after the last ')'.
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return 0, fmt.Errorf("no ')' after the command name")
	}
	fields := strings.Fields(string(data[end+1:]))
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("%d fields after the command name, want at least %d", len(fields), stime+1)
	}
	u, err := strconv.ParseUint(fields[utime], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime %q: %w", fields[utime], err)
	}
	st, err := strconv.ParseUint(fields[stime], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime %q: %w", fields[stime], err)
	}
	return u + st, nil
}

// parseStatusMem reads VmRSS, RssAnon and RssFile (kB) from the contents of
// /proc/PID/status. VmRSS must be there; the split is 0 where the kernel
// does not give it.
func parseStatusMem(data []byte, s *procSample) error {
	want := map[string]*uint64{"VmRSS": &s.RSSKB, "RssAnon": &s.RSSAnonKB, "RssFile": &s.RSSFileKB}
	found := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		dst, wanted := want[key]
		if !ok || !wanted {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return fmt.Errorf("%s %q: want \"N kB\"", key, strings.TrimSpace(val))
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return fmt.Errorf("%s %q: %w", key, f[0], err)
		}
		*dst = n
		found = found || key == "VmRSS"
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	if !found {
		return fmt.Errorf("no VmRSS line (a zombie has none)")
	}
	return nil
}

// readSwitches sums voluntary and involuntary context switches over the
// threads in dir/task. A thread that exits takes its count with it, which
// the Go runtime, keeping its threads, rarely does.
func readSwitches(dir string) (uint64, error) {
	tasks, err := filepath.Glob(filepath.Join(dir, "task", "*", "status"))
	if err != nil {
		return 0, fmt.Errorf("list threads: %w", err)
	}
	if len(tasks) == 0 {
		return 0, fmt.Errorf("no threads in %s", filepath.Join(dir, "task"))
	}
	var total uint64
	for _, path := range tasks {
		data, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // the thread ended between the listing and the read
			}
			return 0, fmt.Errorf("read thread status: %w", err)
		}
		n, err := parseSwitches(data)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		total += n
	}
	return total, nil
}

// parseSwitches returns voluntary_ctxt_switches + nonvoluntary_ctxt_switches.
func parseSwitches(data []byte) (uint64, error) {
	var total uint64
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "voluntary_ctxt_switches" && key != "nonvoluntary_ctxt_switches") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s %q: %w", key, strings.TrimSpace(val), err)
		}
		total += n
		found++
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("scan: %w", err)
	}
	if found != 2 {
		return 0, fmt.Errorf("found %d of voluntary_ctxt_switches, nonvoluntary_ctxt_switches", found)
	}
	return total, nil
}

// parseIO fills the write counters of s from the contents of /proc/PID/io.
func parseIO(data []byte, s *procSample) error {
	want := map[string]*uint64{
		"write_bytes":           &s.WriteBytes,
		"cancelled_write_bytes": &s.CancelledWriteBytes,
		"syscw":                 &s.Syscw,
		"wchar":                 &s.Wchar,
	}
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		dst, wanted := want[key]
		if !ok || !wanted {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return fmt.Errorf("%s %q: %w", key, strings.TrimSpace(val), err)
		}
		*dst = n
		found++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	if found != len(want) {
		return fmt.Errorf("found %d of the counters write_bytes, cancelled_write_bytes, syscw, wchar", found)
	}
	return nil
}
