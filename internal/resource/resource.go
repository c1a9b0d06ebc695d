package resource

import (
	"context"
	"time"
)

// State is what a monitor found.
type State int

const (
	// Running: the resource is active and healthy on this node.
	Running State = iota
	// Stopped: cleanly not running (OCF_NOT_RUNNING, LSB 3, inactive unit).
	Stopped
	// Failed: running badly or in an unknown state; the group must react.
	Failed
)

func (s State) String() string {
	switch s {
	case Running:
		return "running"
	case Stopped:
		return "stopped"
	}
	return "failed"
}

// Output is what an action printed and how it ended, attached to the action's event.
type Output struct {
	Text     string
	ExitCode int
	Duration time.Duration
}

// Agent manages one resource on this node. Calls are made from one goroutine at a
// time; each call's ctx carries the action's timeout, and an implementation must
// kill whatever it started when ctx ends. Start and Stop are idempotent: starting a
// running resource or stopping a stopped one succeeds.
type Agent interface {
	Start(ctx context.Context) (Output, error)
	Stop(ctx context.Context) (Output, error)
	Monitor(ctx context.Context) (State, Output, error)
}

// Killer is implemented by resources that can be ended at once, with no
// graceful shutdown (SIGKILL of a process group). A node that lost its lease
// kills rather than stops them: safety rule 2 wants the group stopped there
// before any other node may start it, and a graceful stop can outlast the
// margin the others wait past the lease.
type Killer interface {
	Kill(ctx context.Context) (Output, error)
}

// Leased is implemented by resources whose traffic the kernel gates by the node's
// lease (the ip type): the agent renews it every time the lease is extended, so if the
// agent freezes, the kernel stops answering on the resource when the lease runs out.
type Leased interface {
	// RenewLease lets traffic through for at most remaining from now.
	RenewLease(remaining time.Duration) error
	// RevokeLease stops traffic at once (lease lost).
	RevokeLease() error
}

// Validator is implemented by types that can check their parameters before any
// start, e.g. OCF's validate-all or a meta-data check.
type Validator interface {
	Validate(ctx context.Context) error
}

// Role is the role of a running instance of a promotable resource.
type Role int

const (
	// Unpromoted: running as a standby copy (DRBD secondary), serving nothing.
	Unpromoted Role = iota
	// Promoted: the one active copy (DRBD primary); only the group's node may have it.
	Promoted
)

func (r Role) String() string {
	if r == Promoted {
		return "promoted"
	}
	return "unpromoted"
}

// Promoter is implemented by promotable resources (OCF promote/demote, DRBD's
// primary/secondary model): an instance runs unpromoted on every node that may run
// the group, and the group's node promotes its own. Start leaves an instance
// unpromoted; Stop stops it whatever its role.
type Promoter interface {
	Agent
	Promote(ctx context.Context) (Output, error)
	// Demote turns a promoted instance into an unpromoted one that keeps running;
	// demoting one that is not promoted (or not running) succeeds.
	Demote(ctx context.Context) (Output, error)
	// MonitorRole is Monitor that also tells the role of an instance found
	// running, or of one found failed in a known role (OCF_FAILED_MASTER).
	MonitorRole(ctx context.Context) (State, Role, Output, error)
}
