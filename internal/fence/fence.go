package fence

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/runexec"
)

// Exit codes of a fence agent's status action.
const (
	statusOn  = 0
	statusOff = 2
)

// Result is one fence operation, for the event log.
type Result struct {
	Action   string
	Output   string
	ExitCode int
	Duration time.Duration
}

// Do runs one action (off, on, reboot, status) of dev against node.
func Do(ctx context.Context, dev config.FenceDevice, node, action string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, dev.Timeout.D())
	defer cancel()
	r, err := runexec.Run(ctx, runexec.Cmd{Argv: []string{dev.Agent}, Stdin: stdin(dev, node, action)})
	if err != nil {
		return Result{Action: action}, fmt.Errorf("fence %s via %s: %w", node, dev.Name, err)
	}
	return Result{Action: action, Output: strings.TrimSpace(string(r.Output)), ExitCode: r.ExitCode, Duration: r.Duration}, nil
}

// stdin builds the agent's input: one key=value per line, as fence-agents read it.
// Parameters come from the config, never from a request.
func stdin(dev config.FenceDevice, node, action string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "action=%s\n", action)
	fmt.Fprintf(&b, "nodename=%s\n", node)
	if plug, ok := dev.Plugs[node]; ok {
		fmt.Fprintf(&b, "plug=%s\n", plug)
	}
	keys := make([]string, 0, len(dev.Params))
	for k := range dev.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, strings.ReplaceAll(dev.Params[k], "\n", " "))
	}
	return b.String()
}

// Off turns node off and confirms it with a status query: only a status that says
// "off" counts, because a takeover before the lease expires relies on it.
func Off(ctx context.Context, dev config.FenceDevice, node string) ([]Result, error) {
	off, err := Do(ctx, dev, node, "off")
	results := []Result{off}
	if err != nil {
		return results, err
	}
	if off.ExitCode != 0 {
		return results, fmt.Errorf("fence %s via %s: off failed with exit %d: %s", node, dev.Name, off.ExitCode, off.Output)
	}
	st, err := Do(ctx, dev, node, "status")
	results = append(results, st)
	if err != nil {
		return results, err
	}
	switch st.ExitCode {
	case statusOff:
		return results, nil
	case statusOn:
		return results, fmt.Errorf("fence %s via %s: still on after off", node, dev.Name)
	}
	return results, fmt.Errorf("fence %s via %s: status unknown (exit %d): %s", node, dev.Name, st.ExitCode, st.Output)
}
