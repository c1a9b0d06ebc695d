package check

import (
	"context"
	"fmt"
	"time"
)

// Result is the outcome of one probe.
type Result struct {
	OK bool
	// Detail says what was seen ("HTTP 503", "connect: connection refused",
	// "exit status 2: disk full"); it ends up in events, so it stays short.
	Detail   string
	Duration time.Duration
}

// Prober runs one check once. The deadline of ctx is the check's timeout; a probe
// reports failures in its Result and never panics on bad input or a bad peer.
type Prober interface {
	Probe(ctx context.Context) Result
}

// State is a check's debounced verdict.
type State uint8

const (
	// Unknown: not enough results yet to say; never treated as down, so a node that
	// has just started cannot cause a failover.
	Unknown State = iota
	Up
	Down
)

func (s State) String() string {
	switch s {
	case Unknown:
		return "unknown"
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// MarshalText writes the state's name, for the API and events.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name, so observations can travel between nodes as JSON.
func (s *State) UnmarshalText(b []byte) error {
	switch string(b) {
	case "unknown", "":
		*s = Unknown
	case "up":
		*s = Up
	case "down":
		*s = Down
	default:
		return fmt.Errorf("unknown check state %q", string(b))
	}
	return nil
}
