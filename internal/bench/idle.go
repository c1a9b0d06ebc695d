package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"sort"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// IdleOptions configure the idle-cost benchmark.
type IdleOptions struct {
	Cluster  ClusterOptions
	Duration time.Duration
	// Warmup is how long the formed cluster settles before the measurement,
	// so that start-up work (raft catch-up, first lease rounds) is not counted.
	Warmup time.Duration
}

// NodeIdle is one agent's cost over the measurement.
type NodeIdle struct {
	Node       string     `json:"node"`
	Role       model.Role `json:"role"`
	PID        int        `json:"pid"`
	CPUPercent float64    `json:"cpu_percent"` // of one core
	CPUSeconds float64    `json:"cpu_seconds"`
	RSSMaxMiB  float64    `json:"rss_max_mib"`
	RSSLastMiB float64    `json:"rss_last_mib"`
	// RSSAnonMiB and RSSFileMiB split the last RSS sample: the agent's own
	// memory, and mapped file pages (its binary's code and constants, which
	// are clean, shared with every other process running it, and reclaimable).
	RSSAnonMiB float64 `json:"rss_anon_mib"`
	RSSFileMiB float64 `json:"rss_file_mib"`
	// WakeupsPerS is context switches per second over all threads: the idle
	// cost in a unit that a slow or contended machine does not inflate.
	WakeupsPerS float64 `json:"wakeups_per_s"`
	// DiskWriteBytesPerS is /proc/PID/io write_bytes: what the agent sent
	// towards the disk, the figure the "~0 disk writes" target is about.
	DiskWriteBytesPerS float64 `json:"disk_write_bytes_per_s"`
	// SecondsWithDiskWrites counts the one-second samples in which write_bytes grew.
	SecondsWithDiskWrites int `json:"seconds_with_disk_writes"`
	// WriteSyscallsPerS is syscw: every write-like system call, heartbeat and
	// raft socket sends included, so an upper bound on file writes.
	WriteSyscallsPerS float64 `json:"write_syscalls_per_s"`
	// WcharBytesPerS is wchar: bytes through those calls, sockets included.
	WcharBytesPerS float64 `json:"wchar_bytes_per_s"`
	// LogBytesPerS is what the agent printed (a journal would store it); it
	// goes through a pipe, so it is not in the agent's disk figures.
	LogBytesPerS float64 `json:"log_bytes_per_s"`
	// DataDir is the second, independent view of file writes: which files in
	// the agent's data directory changed size or modification time.
	DataDir DirChange `json:"data_dir"`
}

// DirChange compares two listings of a data directory.
type DirChange struct {
	Files      int          `json:"files"`
	Changed    []FileChange `json:"changed"`
	BytesGrown int64        `json:"bytes_grown"`
}

// FileChange is a file that was written (or created, or removed) during the measurement.
type FileChange struct {
	Path       string `json:"path"`
	SizeBefore int64  `json:"size_before"`
	SizeAfter  int64  `json:"size_after"`
	New        bool   `json:"new,omitempty"`
	Removed    bool   `json:"removed,omitempty"`
}

// IdleMax is the worst node for each figure.
type IdleMax struct {
	CPUPercent         float64 `json:"cpu_percent"`
	RSSMaxMiB          float64 `json:"rss_max_mib"`
	DiskWriteBytesPerS float64 `json:"disk_write_bytes_per_s"`
	WriteSyscallsPerS  float64 `json:"write_syscalls_per_s"`
	WakeupsPerS        float64 `json:"wakeups_per_s"`
	FilesChanged       int     `json:"files_changed"`
}

// IdleResult is the outcome of the idle benchmark.
type IdleResult struct {
	Benchmark string     `json:"benchmark"`
	StartedAt time.Time  `json:"started_at"`
	Host      Host       `json:"host"`
	Timing    TimingInfo `json:"timing"`
	Method    string     `json:"method"`
	WarmupS   float64    `json:"warmup_s"`
	DurationS float64    `json:"duration_s"`
	// Leader is the raft leader when the measurement began, LeaderAfter when
	// it ended (empty if the cluster was not formed then). The leader sends
	// raft's heartbeats, so it costs more than the followers.
	Leader      string     `json:"leader"`
	LeaderAfter string     `json:"leader_after"`
	Nodes       []NodeIdle `json:"nodes"`
	Max         IdleMax    `json:"max"`
}

const idleMethod = "formed 3-node cluster left alone (no API polling during the measurement); " +
	"/proc/PID/stat utime+stime, /proc/PID/status VmRSS (sampled every second; RssAnon and RssFile of the last sample), context switches summed over /proc/PID/task/*/status and /proc/PID/io " +
	"write_bytes, syscw, wchar read at the start and end; data dir listings (size, mtime) compared"

type fileInfo struct {
	size  int64
	mtime time.Time
}

// Idle runs the idle-cost benchmark on a fresh cluster.
func Idle(ctx context.Context, opt IdleOptions) (res *IdleResult, err error) {
	if opt.Duration <= 0 {
		return nil, fmt.Errorf("duration %v: want more than zero", opt.Duration)
	}
	c, err := startCluster(ctx, opt.Cluster)
	if c != nil {
		defer func() {
			if cerr := c.close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
			}
		}()
	}
	if err != nil {
		return nil, err
	}
	res = &IdleResult{Benchmark: "idle", StartedAt: time.Now().UTC(), Host: hostInfo(c.fsType),
		Timing: c.timingInfo(opt.Cluster.Timing), Method: idleMethod, WarmupS: opt.Warmup.Seconds()}
	begin := time.Now()
	leader, err := c.waitFormed(ctx, c.formTimeout())
	if err != nil {
		return nil, err
	}
	c.logf("cluster formed in %v, leader %s; settling for %v", time.Since(begin).Round(time.Millisecond), leader, opt.Warmup)
	if err := sleep(ctx, opt.Warmup); err != nil {
		return nil, err
	}
	c.logf("measuring for %v", opt.Duration)
	type state struct {
		pid         int
		first, prev procSample
		maxRSS      uint64
		writeSecs   int
		logBytes    int64
		files       map[string]fileInfo
	}
	st := map[string]*state{}
	for _, n := range c.names {
		p := c.procs[n]
		s, err := readProc("/proc", p.pid)
		if err != nil {
			return nil, err
		}
		files, err := listFiles(c.dataDir(n))
		if err != nil {
			return nil, err
		}
		st[n] = &state{pid: p.pid, first: s, prev: s, maxRSS: s.RSSKB, logBytes: p.out.n.Load(), files: files}
	}
	start := time.Now()
	end := start
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for end.Sub(start) < opt.Duration {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ticker.C:
		}
		if err := c.exited(); err != nil {
			return nil, err
		}
		end = time.Now()
		for _, n := range c.names {
			s := st[n]
			cur, err := readProc("/proc", s.pid)
			if err != nil {
				return nil, err
			}
			s.maxRSS = max(s.maxRSS, cur.RSSKB)
			if cur.WriteBytes > s.prev.WriteBytes {
				s.writeSecs++
			}
			s.prev = cur
		}
	}
	secs := end.Sub(start).Seconds()
	res.Leader = leader
	// Asked only now: polling the API during the measurement would cost the agents.
	if res.LeaderAfter, err = c.formed(ctx); err != nil {
		c.logf("after the measurement: %v", err)
	}
	res.DurationS = math.Round(secs*10) / 10
	for _, n := range c.names {
		s := st[n]
		node, _ := c.cfg.Node(n)
		role := model.RoleVoter
		if node.Witness {
			role = model.RoleWitness
		}
		files, err := listFiles(c.dataDir(n))
		if err != nil {
			return nil, err
		}
		a, b := s.first, s.prev
		ni := NodeIdle{
			Node: n, Role: role, PID: s.pid,
			CPUSeconds:            round(float64(b.CPUTicks-a.CPUTicks)/clockTicks, 2),
			CPUPercent:            round(float64(b.CPUTicks-a.CPUTicks)/clockTicks/secs*100, 3),
			RSSMaxMiB:             round(float64(s.maxRSS)/1024, 1),
			RSSLastMiB:            round(float64(b.RSSKB)/1024, 1),
			RSSAnonMiB:            round(float64(b.RSSAnonKB)/1024, 1),
			RSSFileMiB:            round(float64(b.RSSFileKB)/1024, 1),
			WakeupsPerS:           round(float64(b.Switches-min(a.Switches, b.Switches))/secs, 1),
			DiskWriteBytesPerS:    round(float64(b.WriteBytes-a.WriteBytes)/secs, 1),
			SecondsWithDiskWrites: s.writeSecs,
			WriteSyscallsPerS:     round(float64(b.Syscw-a.Syscw)/secs, 1),
			WcharBytesPerS:        round(float64(b.Wchar-a.Wchar)/secs, 1),
			LogBytesPerS:          round(float64(c.procs[n].out.n.Load()-s.logBytes)/secs, 1),
			DataDir:               compareFiles(s.files, files),
		}
		res.Nodes = append(res.Nodes, ni)
		m := &res.Max
		m.CPUPercent = max(m.CPUPercent, ni.CPUPercent)
		m.RSSMaxMiB = max(m.RSSMaxMiB, ni.RSSMaxMiB)
		m.DiskWriteBytesPerS = max(m.DiskWriteBytesPerS, ni.DiskWriteBytesPerS)
		m.WriteSyscallsPerS = max(m.WriteSyscallsPerS, ni.WriteSyscallsPerS)
		m.WakeupsPerS = max(m.WakeupsPerS, ni.WakeupsPerS)
		m.FilesChanged = max(m.FilesChanged, len(ni.DataDir.Changed))
	}
	return res, nil
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// listFiles maps every regular file under dir (relative path) to its size and mtime.
func listFiles(dir string) (map[string]fileInfo, error) {
	out := map[string]fileInfo{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		out[rel] = fileInfo{size: info.Size(), mtime: info.ModTime()}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list data dir %s: %w", dir, err)
	}
	return out, nil
}

func compareFiles(before, after map[string]fileInfo) DirChange {
	dc := DirChange{Files: len(after), Changed: []FileChange{}}
	for p, a := range after {
		b, ok := before[p]
		switch {
		case !ok:
			dc.Changed = append(dc.Changed, FileChange{Path: p, SizeAfter: a.size, New: true})
		case a.size != b.size || !a.mtime.Equal(b.mtime):
			dc.Changed = append(dc.Changed, FileChange{Path: p, SizeBefore: b.size, SizeAfter: a.size})
		default:
			continue
		}
		dc.BytesGrown += a.size - b.size
	}
	for p, b := range before {
		if _, ok := after[p]; !ok {
			dc.Changed = append(dc.Changed, FileChange{Path: p, SizeBefore: b.size, Removed: true})
			dc.BytesGrown -= b.size
		}
	}
	sort.Slice(dc.Changed, func(i, j int) bool { return dc.Changed[i].Path < dc.Changed[j].Path })
	return dc
}
