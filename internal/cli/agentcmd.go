package cli

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/internal/agent"
)

func agentCmd(g *globals) *cobra.Command {
	var node, dataDir, logLevel, cpuProfile string
	cmd := &cobra.Command{
		Use:   "agent --config FILE --node NAME [--data-dir DIR]",
		Short: "Run a node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if node == "" {
				return usagef("--node is required (one of %v)", cfg.NodeNames())
			}
			if dataDir == "" {
				dataDir = filepath.Join("/var/lib/vigil", node)
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usagef("--log-level: %v", err)
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			a, err := agent.New(agent.Options{Config: cfg, Node: node, DataDir: dataDir, Logger: logger})
			if err != nil {
				return err
			}
			if cpuProfile != "" {
				// Idle cost is a target (brief.md): let an operator see where it goes.
				f, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("cpu profile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("cpu profile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			return a.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "this node's name in the config")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "local state (default /var/lib/vigil/NODE)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&cpuProfile, "cpu-profile", "", "write a Go CPU profile to this file until the agent stops")
	_ = cmd.Flags().MarkHidden("cpu-profile")
	return cmd
}
