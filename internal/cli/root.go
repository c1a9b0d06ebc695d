package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/internal/config"
)

// Exit codes of the contract in brief.md.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// Version and Commit are set at build time with -ldflags.
var (
	Version = "dev"
	Commit  = "unknown"
)

// usageError marks bad usage or bad input (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

type globals struct {
	configPath string
	stdout     io.Writer
	stderr     io.Writer
}

// Run executes the command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "vigil",
		Short:         "Vigil keeps services available when servers fail",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	def := os.Getenv("VIGIL_CONFIG")
	if def == "" {
		def = "/etc/vigil/vigil.yaml"
	}
	root.PersistentFlags().StringVar(&g.configPath, "config", def, "cluster configuration file (env VIGIL_CONFIG)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		versionCmd(g), initCmd(g), agentCmd(g), configCmd(g), statusCmd(g), eventsCmd(g), demoCmd(g), benchCmd(g),
	)
	root.AddCommand(operatorCmds(g)...)
	root.AddCommand(workflowCmd(g), batchCmd(g))
	root.AddCommand(demoWebCmd(g), simulateCmd(g))
	root.AddCommand(importCmd(g))
	root.AddCommand(reportCmd(g))
	root.AddCommand(drillCmd(g))
	root.AddCommand(tokenCmd(g))
	root.AddCommand(genDocsCmd(g))   // hidden: man pages and completions for packaging/build-deb.sh
	root.AddCommand(syncGuardCmd(g)) // hidden: run by rsyncd and sshd on the receiving node
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ps config.Problems
	switch {
	case errors.As(err, &ps):
		fmt.Fprintln(stderr, ps.Error())
		return ExitUsage
	case isUsage(err):
		fmt.Fprintln(stderr, "vigil:", err)
		return ExitUsage
	}
	fmt.Fprintln(stderr, "vigil:", err)
	return ExitFailed
}

func isUsage(err error) bool {
	var u usageError
	if errors.As(err, &u) {
		return true
	}
	// cobra reports unknown commands and argument-count errors as plain errors.
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "accepts ", "requires at least", "required flag"} {
		if len(msg) >= len(p) && contains(msg, p) {
			return true
		}
	}
	return false
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func (g *globals) loadConfig() (*config.Config, error) {
	return config.Load(g.configPath)
}
