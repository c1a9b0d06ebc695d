// Command vigil is the Vigil cluster manager: agent, CLI and demo in one static binary.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/vigil-ha/vigil/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
