package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// Targets from brief.md, printed next to the figures.
const (
	targetRSSMiB     = 20
	targetCPUPercent = 0.5
)

func (t TimingInfo) String() string {
	return fmt.Sprintf("timing %s: keepalive %gms, warntime %gms, deadtime %gms, initdead %gms",
		t.Preset, t.KeepaliveMS, t.WarntimeMS, t.DeadtimeMS, t.InitdeadMS)
}

// WriteText prints the result as a table.
func (r *DetectionResult) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Detection time, kill -9 of a voter until a survivor declares it dead (%s)\n", r.Timing)
	fmt.Fprintf(&b, "%d trials, %d missed; 3 agents on loopback, %d CPUs (load average %s), kernel %s, %s\n\n", r.Trials, r.Missed, r.Host.CPUs, r.Host.LoadAvg, r.Host.Kernel, r.Host.Go)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tn\tmin\tp50\tp99\tmax\tmean\t")
	row := func(name string, s Summary) {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", name, s.N, s.MinMS, s.P50MS, s.P99MS, s.MaxMS, s.MeanMS)
	}
	row("detected (ms)", r.Detection)
	row("in the event log (ms)", r.Logged)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("format table: %w", err)
	}
	fmt.Fprintf(&b, "\nA death is declared deadtime (%g ms) after the last heartbeat heard, which left up to keepalive (%g ms)\n", r.Timing.DeadtimeMS, r.Timing.KeepaliveMS)
	b.WriteString("before the kill: expect detection between deadtime - keepalive and deadtime, plus scheduling delay.\n")
	b.WriteString("detected: earliest survivor's node_dead time stamp minus the kill; p99 is nearest-rank (the worst trial when n < 100).\n")
	b.WriteString("in the event log: until the benchmark read it in the replicated log (polled every 50 ms; includes an election when the leader died).\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteText prints the result as a table.
func (r *IdleResult) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Idle cost of each agent over %.1f s, after %.0f s of settling (%s)\n", r.DurationS, r.WarmupS, r.Timing)
	fmt.Fprintf(&b, "%d CPUs (load average %s), kernel %s, %s; data dirs on %s\n\n", r.Host.CPUs, r.Host.LoadAvg, r.Host.Kernel, r.Host.Go, r.Host.TempFS)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "node\trole\tCPU %\twake-ups/s\tRSS max MiB\tRSS last MiB\tanon/file MiB\tdisk write B/s\ts with disk writes\twrite syscalls/s\tlog B/s\tdata-dir files changed\t")
	for _, n := range r.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.1f\t%.1f\t%.1f\t%.1f/%.1f\t%.1f\t%d\t%.1f\t%.1f\t%d\t\n", n.Node, n.Role, n.CPUPercent, n.WakeupsPerS, n.RSSMaxMiB, n.RSSLastMiB,
			n.RSSAnonMiB, n.RSSFileMiB, n.DiskWriteBytesPerS, n.SecondsWithDiskWrites, n.WriteSyscallsPerS, n.LogBytesPerS, len(n.DataDir.Changed))
	}
	m := r.Max
	fmt.Fprintf(tw, "max\t\t%.3f\t%.1f\t%.1f\t\t\t%.1f\t\t%.1f\t\t%d\t\n", m.CPUPercent, m.WakeupsPerS, m.RSSMaxMiB, m.DiskWriteBytesPerS, m.WriteSyscallsPerS, m.FilesChanged)
	fmt.Fprintf(tw, "target\t\t≤ %.1f\t\t≤ %d\t\t\t~0\t\t\t\t\t\n", float64(targetCPUPercent), targetRSSMiB)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("format table: %w", err)
	}
	fmt.Fprintf(&b, "\nraft leader: %s at the start, %s at the end.", r.Leader, orNone(r.LeaderAfter))
	b.WriteString("\nCPU % is of one core. Wake-ups are context switches of all threads, which a slow or busy machine does not inflate as it does CPU time.\n")
	b.WriteString("RSS anon/file: the agent's own memory / mapped pages of its binary (clean, shared, reclaimable). Disk writes are /proc/PID/io write_bytes; write syscalls include the heartbeat and raft socket sends.\n")
	for _, n := range r.Nodes {
		for _, f := range n.DataDir.Changed {
			what := fmt.Sprintf("%d → %d bytes", f.SizeBefore, f.SizeAfter)
			switch {
			case f.New:
				what = fmt.Sprintf("new, %d bytes", f.SizeAfter)
			case f.Removed:
				what = "removed"
			}
			fmt.Fprintf(&b, "%s wrote %s (%s)\n", n.Node, f.Path, what)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes v, indented, to path, creating its directory.
func WriteJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none (cluster not formed)"
	}
	return s
}
