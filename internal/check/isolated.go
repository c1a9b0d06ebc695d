package check

import (
	"fmt"
	"strings"
	"time"
)

// Public-target counts: at least MinPublicTargets so that one router or DNS
// server going away cannot isolate every node at once; at most MaxPublicTargets
// because beyond that the probes add traffic and no certainty.
const (
	MinPublicTargets = 3
	MaxPublicTargets = 5
)

// TargetState is one public target's debounced state as seen from this node.
type TargetState struct {
	Name  string // e.g. "icmp 192.0.2.1"
	State State
	Since time.Time
}

// Isolated says whether a node is cut off from the public network: every one of
// its public targets is Down. One target up, or one still Unknown, is enough to
// keep the node eligible: a node that has just started is not isolated, and a
// single dead target is the target's problem. No targets configured means the
// feature is off and nobody is isolated.
func Isolated(targets []TargetState) (isolated bool, reason string) {
	if len(targets) == 0 {
		return false, "no public targets configured"
	}
	var up, unknown, down []string
	var last time.Time
	for _, t := range targets {
		switch t.State {
		case Up:
			up = append(up, t.Name)
		case Down:
			down = append(down, t.Name)
			if t.Since.After(last) {
				last = t.Since
			}
		default:
			unknown = append(unknown, t.Name)
		}
	}
	if len(down) == len(targets) {
		r := fmt.Sprintf("all %d public targets down (%s)", len(targets), strings.Join(down, ", "))
		if !last.IsZero() {
			r += ", the last since " + last.Format(timeLayout)
		}
		return true, r
	}
	var parts []string
	if len(up) > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d public targets up (%s)", len(up), len(targets), strings.Join(up, ", ")))
	}
	if len(unknown) > 0 {
		parts = append(parts, fmt.Sprintf("%d not yet known (%s)", len(unknown), strings.Join(unknown, ", ")))
	}
	if len(down) > 0 {
		parts = append(parts, fmt.Sprintf("%d down (%s)", len(down), strings.Join(down, ", ")))
	}
	return false, strings.Join(parts, "; ")
}
