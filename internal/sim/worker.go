package sim

import (
	"fmt"

	"github.com/vigil-ha/vigil/internal/model"
)

// work is the emulated group worker of one node: the same rules as grouprun
// (start under the assigned epoch only, stop on release, restart phase on a lost
// verdict), with starts taking startTime.
func (s *Sim) work(n *node) {
	epoch, held := n.eng.LeaseValid(s.now)
	for _, g := range s.cfg.Groups {
		c := n.groups[g.Name]
		st := s.state.Get(g.Name)
		_, flagged := st.Flags[n.name]
		want := st.Node == n.name && !st.Releasing && st.Epoch == epoch.String() && held && !flagged
		hold := st.Maintenance || s.state.Maintenance
		if st.Intruders[n.name] > c.intrAck {
			c.intrAck = st.Intruders[n.name]
			if !want && n.handmade[g.Name] {
				delete(n.handmade, g.Name)
				s.report(n, g.Name, model.EventGroupStopped, "split brain: stopped a copy this node does not own")
			}
		}
		if hold {
			continue
		}
		switch {
		case want && !c.running && c.startingAt == 0:
			c.startingAt = s.now + startTime
		case want && c.startingAt > 0 && s.now >= c.startingAt:
			c.startingAt, c.running = 0, true
			s.report(n, g.Name, model.EventGroupStarted, "all resources started on "+n.name)
		case !want && (c.running || c.startingAt > 0):
			c.running, c.startingAt = false, 0
			reason := "no longer assigned here"
			if st.Releasing && st.Node == n.name && st.AssignedAt > c.releaseAck {
				c.releaseAck, reason = st.AssignedAt, "released: stopped on "+n.name
			}
			s.report(n, g.Name, model.EventGroupStopped, reason)
		}
		if st.Releasing && st.Node == n.name && st.AssignedAt > c.releaseAck && !c.running {
			c.releaseAck = st.AssignedAt
			s.report(n, g.Name, model.EventGroupStopped, "released: stopped on "+n.name)
		}
		if st.Node == n.name && st.LostAt > c.lostAck {
			c.lostAck = st.LostAt
			if c.running {
				s.restartPhase(n, g.Name, c)
			}
		}
	}
}

func (s *Sim) restartPhase(n *node, group string, c *groupCopy) {
	g, _ := s.cfg.Group(group)
	kept := c.restarts[:0]
	for _, t := range c.restarts {
		if s.now-t < g.RestartWindow.D() {
			kept = append(kept, t)
		}
	}
	c.restarts = kept
	if len(c.restarts) < g.MaxRestarts {
		c.restarts = append(c.restarts, s.now)
		s.report(n, group, model.EventGroupRestarting, fmt.Sprintf("local restart %d of %d within %s", len(c.restarts), g.MaxRestarts, g.RestartWindow.D()))
		c.running, c.startingAt = false, s.now+startTime
		return
	}
	// As the real worker: the resources are stopped before group_failed,
	// which the coordinator reads as "stopped here".
	msg := fmt.Sprintf("%d restarts within %s used up: moving the group", g.MaxRestarts, g.RestartWindow.D())
	s.report(n, group, model.EventGroupStopping, "restarts used up")
	c.running, c.startingAt = false, 0
	s.report(n, group, model.EventGroupStopped, "failed here")
	s.report(n, group, model.EventGroupFailed, msg)
	s.recordFlag(n, group, msg)
}

// selfFence: a node that loses its lease stops everything at once.
func (s *Sim) selfFence(n *node) {
	for _, g := range s.cfg.Groups {
		if c := n.groups[g.Name]; c.running || c.startingAt > 0 {
			c.running, c.startingAt = false, 0
			s.report(n, g.Name, model.EventGroupStopped, "lease lost: self-fencing")
		}
	}
}

func (s *Sim) report(n *node, group string, kind model.EventKind, reason string) {
	s.record(n, model.Event{Kind: kind, Severity: model.SeverityInfo, Reporter: n.name, Node: n.name, Group: group, Reason: reason})
}

func (s *Sim) recordFlag(n *node, group, reason string) {
	s.record(n, model.Event{Kind: model.EventFlagSet, Severity: model.SeverityCritical, Reporter: n.name, Node: n.name, Group: group, Reason: reason})
}

// serving says whether the group's service answers on node (for checks and probes).
func (s *Sim) serving(group, name string) bool {
	n := s.nodes[name]
	if !s.running(n) {
		return false
	}
	c := n.groups[group]
	return (c.running || n.handmade[group]) && !c.failed
}
