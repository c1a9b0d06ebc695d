package bench

import (
	"bufio"
	"bytes"
	"fmt"
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
	if s.RSSKB, err = parseStatusRSS(status); err != nil {
		return s, fmt.Errorf("pid %d status: %w", pid, err)
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

// parseStatusRSS returns VmRSS in kB from the contents of /proc/PID/status.
func parseStatusRSS(data []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || key != "VmRSS" {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS %q: want \"N kB\"", strings.TrimSpace(val))
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS %q: %w", f[0], err)
		}
		return n, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("scan: %w", err)
	}
	return 0, fmt.Errorf("no VmRSS line (a zombie has none)")
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
