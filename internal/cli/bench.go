package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/internal/bench"
)

type benchFlags struct {
	timing string
	json   string
	dir    string
	keep   bool
	prof   bool
}

func (f *benchFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.timing, "timing", bench.TimingDefault, "default (config defaults) or tuned (keepalive 50ms, warntime 250ms, deadtime 500ms, initdead 5s)")
	cmd.Flags().StringVar(&f.json, "json", "", "also write the results as JSON to this file")
	cmd.Flags().StringVar(&f.dir, "dir", "", "where to make the temporary cluster directory (default: a disk-backed temporary directory)")
	cmd.Flags().BoolVar(&f.keep, "keep", false, "keep the cluster directory (config, data, agent logs) after exit")
	cmd.Flags().BoolVar(&f.prof, "cpu-profiles", false, "have each agent write a Go CPU profile (NODE.cpu.prof) into the cluster directory, which is kept")
}

// clusterOptions checks the shared flags; the agents run this very binary.
func (f *benchFlags) clusterOptions(g *globals) (bench.ClusterOptions, error) {
	if f.timing != bench.TimingDefault && f.timing != bench.TimingTuned {
		return bench.ClusterOptions{}, usagef("--timing %q: want %s or %s", f.timing, bench.TimingDefault, bench.TimingTuned)
	}
	self, err := os.Executable()
	if err != nil {
		return bench.ClusterOptions{}, fmt.Errorf("find own binary to run the agents: %w", err)
	}
	return bench.ClusterOptions{Binary: self, Timing: f.timing, Parent: f.dir, Keep: f.keep, CPUProfiles: f.prof, Progress: g.stderr}, nil
}

func benchCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a real local cluster (two nodes and a witness on loopback): detection time and idle cost",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(benchDetectionCmd(g), benchIdleCmd(g))
	return cmd
}

func benchDetectionCmd(g *globals) *cobra.Command {
	var f benchFlags
	var trials int
	cmd := &cobra.Command{
		Use:   "detection [--trials N] [--timing default|tuned] [--json FILE]",
		Short: "Kill -9 a voter N times and measure how soon a survivor declares it dead",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if trials < 1 {
				return usagef("--trials %d: want at least 1", trials)
			}
			co, err := f.clusterOptions(g)
			if err != nil {
				return err
			}
			res, err := bench.Detection(cmd.Context(), bench.DetectionOptions{Cluster: co, Trials: trials})
			if err != nil {
				return fmt.Errorf("detection benchmark: %w", err)
			}
			return report(g, f.json, res, res.WriteText)
		},
	}
	f.register(cmd)
	cmd.Flags().IntVar(&trials, "trials", 20, "how many kills")
	return cmd
}

func benchIdleCmd(g *globals) *cobra.Command {
	var f benchFlags
	var duration time.Duration
	cmd := &cobra.Command{
		Use:   "idle [--duration 60s] [--json FILE]",
		Short: "Measure each agent's CPU, memory and disk writes while the cluster is idle",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if duration < time.Second {
				return usagef("--duration %v: want at least 1s", duration)
			}
			co, err := f.clusterOptions(g)
			if err != nil {
				return err
			}
			res, err := bench.Idle(cmd.Context(), bench.IdleOptions{Cluster: co, Duration: duration, Warmup: 5 * time.Second})
			if err != nil {
				return fmt.Errorf("idle benchmark: %w", err)
			}
			return report(g, f.json, res, res.WriteText)
		},
	}
	f.register(cmd)
	cmd.Flags().DurationVar(&duration, "duration", 60*time.Second, "how long to measure")
	return cmd
}

func report(g *globals, jsonPath string, res any, text func(w io.Writer) error) error {
	if err := text(g.stdout); err != nil {
		return err
	}
	if jsonPath == "" {
		return nil
	}
	if err := bench.WriteJSON(jsonPath, res); err != nil {
		return err
	}
	fmt.Fprintf(g.stderr, "results written to %s\n", jsonPath)
	return nil
}
