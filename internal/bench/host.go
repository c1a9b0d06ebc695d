package bench

import (
	"os"
	"runtime"
	"strings"
	"time"
)

// Host describes where a benchmark ran: figures mean little without it.
type Host struct {
	Kernel string `json:"kernel"`
	CPUs   int    `json:"cpus"`
	Go     string `json:"go"`
	// TempFS is the filesystem of the cluster directory (data dirs and logs).
	TempFS string `json:"temp_fs"`
	// LoadAvg is /proc/loadavg when the benchmark started: other work on the
	// machine delays the agents' timers and shows in the tail.
	LoadAvg string `json:"loadavg,omitempty"`
}

func hostInfo(fsType string) Host {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	load, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(load)) // 1, 5 and 15 minutes, then run queue and last pid
	return Host{Kernel: strings.TrimSpace(string(kernel)), CPUs: runtime.NumCPU(), Go: runtime.Version(), TempFS: fsType,
		LoadAvg: strings.Join(f[:min(3, len(f))], " ")}
}

// TimingInfo is the timing the agents ran with, in milliseconds.
type TimingInfo struct {
	Preset      string  `json:"preset"`
	KeepaliveMS float64 `json:"keepalive_ms"`
	WarntimeMS  float64 `json:"warntime_ms"`
	DeadtimeMS  float64 `json:"deadtime_ms"`
	InitdeadMS  float64 `json:"initdead_ms"`
}

func (c *cluster) timingInfo(preset string) TimingInfo {
	t := c.cfg.Cluster.Timing
	return TimingInfo{Preset: preset, KeepaliveMS: ms(t.Keepalive.D()), WarntimeMS: ms(t.Warntime.D()),
		DeadtimeMS: ms(t.Deadtime.D()), InitdeadMS: ms(t.Initdead.D())}
}

// formTimeout bounds a cluster's (re)formation: initdead for the peers, plus
// generous room for raft elections and lease rounds on a loaded machine.
func (c *cluster) formTimeout() time.Duration {
	return c.cfg.Cluster.Timing.Initdead.D() + 60*time.Second
}
