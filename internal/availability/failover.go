package availability

import (
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// Failover is one move of a group away from a node after a failure.
type Failover struct {
	Group, From, To string
	// FailedAt is the earliest failure report about From known when the group
	// started on To (node_dead, lease_lost, node_fenced, group_failed,
	// group_start_failed); AssignedAt when none had committed yet.
	FailedAt   time.Time
	AssignedAt time.Time
	// StartedAt is To's group_started; zero until then.
	StartedAt time.Time
}

// Duration is the outage a failover cost: from the failure to the new start.
func (f Failover) Duration() time.Duration {
	if f.StartedAt.IsZero() || f.StartedAt.Before(f.FailedAt) {
		return 0
	}
	return f.StartedAt.Sub(f.FailedAt)
}

// Failovers follows the committed log, in order, and recognises failovers: a
// group_assigned to another node that is a takeover (no release before it: the
// holder's lease is over) or that follows a release caused by a failure report.
// Operator moves and failbacks are releases without a failure, and do not count.
// Not safe for concurrent use.
type Failovers struct {
	groups map[string]*foGroup
}

type foGroup struct {
	assigned string
	holder   string // reported group_started on its assignment; "" when none yet
	released bool   // a group_released since the last assignment
	failedAt time.Time
	pending  *Failover
}

// NewFailovers returns an empty follower.
func NewFailovers() *Failovers { return &Failovers{groups: map[string]*foGroup{}} }

func (f *Failovers) group(name string) *foGroup {
	g, ok := f.groups[name]
	if !ok {
		g = &foGroup{}
		f.groups[name] = g
	}
	return g
}

// responsible is the node whose failure is the group's failure: the holder, or
// the assigned node while it has not started the group.
func (g *foGroup) responsible() string {
	if g.holder != "" {
		return g.holder
	}
	return g.assigned
}

func (g *foGroup) failure(node string, at time.Time) {
	if node == "" || (node != g.responsible() && (g.pending == nil || node != g.pending.From)) {
		return
	}
	if g.failedAt.IsZero() || at.Before(g.failedAt) {
		g.failedAt = at
	}
}

// Apply folds one event. counted is set when ev is the assignment that makes a
// failover; done when ev is the new holder's start that completes one.
func (f *Failovers) Apply(ev model.Event) (counted, done *Failover) {
	switch ev.Kind {
	case model.EventNodeDead, model.EventNodeFenced:
		if ev.Node != ev.Reporter {
			for _, g := range f.groups {
				g.failure(ev.Node, ev.Time)
			}
		}
		return nil, nil
	case model.EventLeaseLost:
		if ev.Node == "" || ev.Node == ev.Reporter {
			for _, g := range f.groups {
				g.failure(ev.Reporter, ev.Time)
			}
		}
		return nil, nil
	}
	if ev.Group == "" {
		return nil, nil
	}
	g := f.group(ev.Group)
	switch ev.Kind {
	case model.EventGroupFailed, model.EventGroupStartFailed:
		g.failure(ev.Reporter, ev.Time)
	case model.EventGroupReleased:
		g.released = true
	case model.EventGroupAssigned:
		prev := g.assigned
		takeover := !g.released
		g.assigned, g.released = ev.Node, false
		if g.holder != ev.Node {
			g.holder = ""
		}
		if prev == "" || prev == ev.Node || (!takeover && g.failedAt.IsZero()) {
			return nil, nil
		}
		g.pending = &Failover{Group: ev.Group, From: prev, To: ev.Node, AssignedAt: ev.Time}
		c := *g.pending
		return &c, nil
	case model.EventGroupStarted:
		if ev.Reporter != g.assigned {
			return nil, nil
		}
		g.holder = ev.Reporter
		p := g.pending
		failedAt := g.failedAt
		g.pending, g.failedAt = nil, time.Time{}
		if p == nil {
			return nil, nil // started again where it was: a restart, not a failover
		}
		// The coordinator reassigns only once the holder is gone, so the failure is
		// no later than the assignment, even when its reports commit after it.
		p.FailedAt, p.StartedAt = earliest(failedAt, p.AssignedAt), ev.Time
		return nil, p
	}
	return nil, nil
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() {
		return b
	}
	return earlier(a, b)
}
