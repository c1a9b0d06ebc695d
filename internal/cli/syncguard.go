package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	rsync "github.com/vigil-ha/vigil/internal/resource/sync"
)

// syncGuardCmd is the receiving side's check of the sync resource
// (docs/config.md, "The sync resource"): rsyncd's pre-xfer exec and the forced
// command of the agents' ssh key run it, and it refuses a copy into the paths of
// a group this node runs. It reads only the agent's data directory, not the
// config: it runs once per transfer.
func syncGuardCmd(_ *globals) *cobra.Command {
	var node, dataDir string
	cmd := &cobra.Command{
		Use:    "sync-guard rsyncd|ssh (--node NAME | --data-dir DIR)",
		Short:  "Refuse incoming sync copies into the paths of a group that runs here",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dataDir == "" {
				if node == "" {
					return usagef("--node or --data-dir is required")
				}
				dataDir = filepath.Join("/var/lib/vigil", node)
			}
			g := rsync.Guard{Dir: filepath.Join(dataDir, rsync.GuardSubdir)}
			switch args[0] {
			case "rsyncd":
				if err := g.CheckRsyncd(os.Getenv); err != nil {
					// rsyncd shows the script's stdout to the client, whose pass
					// error then says why.
					fmt.Fprintln(cmd.OutOrStdout(), err)
					return err
				}
				return nil
			case "ssh":
				argv, err := g.CheckSSH(os.Getpid(), os.Getenv("SSH_ORIGINAL_COMMAND"))
				if err != nil {
					return err
				}
				// The same process becomes rsync: the pid the check registered is
				// the receiver a takeover kills.
				return fmt.Errorf("sync guard: exec %s: %w", argv[0], syscall.Exec(argv[0], argv, os.Environ()))
			}
			return usagef("sync-guard: %q: use rsyncd or ssh", args[0])
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "this node's name (the agent's data directory is /var/lib/vigil/NODE)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "the agent's --data-dir")
	return cmd
}
