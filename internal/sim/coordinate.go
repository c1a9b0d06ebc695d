package sim

import (
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/decide"
	"github.com/vigil-ha/vigil/internal/model"
)

// coordinate emulates raft's leader and runs the real placement core on it.
func (s *Sim) coordinate() {
	s.elect()
	if s.leader == "" {
		return
	}
	for _, name := range s.order {
		n := s.nodes[name]
		if !s.running(n) || !s.connected(name, s.leader) {
			continue
		}
		for _, ev := range n.pending {
			s.commit(ev)
		}
		n.pending = nil
	}
	if s.now-s.lastRound < decideEvery {
		return
	}
	s.lastRound = s.now
	s.observeChecks()
	s.probeSplitBrain()
	lead := s.nodes[s.leader]
	v := lead.eng.View(s.now)
	nodes := map[string]decide.Node{}
	nodes[lead.name] = decide.Node{Name: lead.name, Witness: lead.witness, Eligible: v.LeaseHeld, Epoch: v.Epoch, AliveFor: v.Uptime, Alive: true, Seen: true}
	for _, p := range v.Peers {
		nodes[p.Name] = decide.Node{Name: p.Name, Witness: p.Witness, Eligible: p.State == model.NodeAlive && p.LeaseHeld,
			Epoch: p.Lease, AliveFor: p.AliveFor, Alive: p.State != model.NodeDead && p.SilentFor >= 0, Seen: p.SilentFor >= 0}
	}
	in := decide.Input{Coordinator: lead.name, Groups: s.cfg.Groups, State: s.state, Nodes: nodes, Uptime: v.Uptime,
		Initdead: s.cfg.Cluster.Timing.Initdead.D(), SurelyExpired: lead.eng.SurelyExpired, Now: s.base.Add(s.now),
		MaxGroupsPerNode: s.cfg.Cluster.MaxGroupsPerNode}
	for _, ev := range decide.Decide(in) {
		ev.Time = s.base.Add(s.now)
		s.out = append(s.out, Line{At: s.now, Event: ev})
		s.commit(ev)
	}
}

// elect keeps the coordinator while it has quorum; otherwise, after an election
// delay, the first node (by name) holding a lease becomes coordinator.
func (s *Sim) elect() {
	if s.leader != "" {
		n := s.nodes[s.leader]
		if s.running(n) && n.eng.View(s.now).Quorum {
			return
		}
		s.leader, s.noLeader = "", s.now
	}
	if s.now-s.noLeader < leaderElected {
		return
	}
	for _, name := range s.order {
		n := s.nodes[name]
		if _, held := n.eng.LeaseValid(s.now); s.running(n) && held {
			s.leader = name
			ev := model.Event{Time: s.base.Add(s.now), Kind: model.EventCoordinatorChange, Reporter: name, Node: name, Reason: "elected by a quorum of voters"}
			s.out = append(s.out, Line{At: s.now, Event: ev})
			s.commit(ev)
			return
		}
	}
}

// connected: a and b can exchange messages (on any link, both ways).
func (s *Sim) connected(a, b string) bool {
	if a == b {
		return true
	}
	for l := 0; l < s.links; l++ {
		if !s.cut[[2]string{a, b}][l] && !s.cut[[2]string{b, a}][l] {
			return true
		}
	}
	return false
}

// observeChecks: every observer sees the holder's service as it is, after the
// check's fall (or rise) count of probes, and reports changes as check_changed.
func (s *Sim) observeChecks() {
	for _, g := range s.cfg.Groups {
		st := s.state.Get(g.Name)
		for _, c := range g.Checks {
			for _, name := range s.order {
				n := s.nodes[name]
				if !s.running(n) || (c.Observers.Mode == check.ObserveLocal && name != st.Node) {
					continue
				}
				truth := check.Down
				if st.Node != "" && s.serving(g.Name, st.Node) && (s.connected(name, st.Node) || name == st.Node) {
					truth = check.Up
				}
				s.observe(n, g.Name, c, truth)
			}
		}
	}
}

func (s *Sim) observe(n *node, group string, c check.Check, truth check.State) {
	key := group + "/" + c.DisplayName()
	o := s.obs(n.name, key)
	if o.state == truth {
		o.pendingSince = 0
		return
	}
	if o.pendingSince == 0 {
		o.pendingSince = s.now
	}
	need := c.Interval.D() * time.Duration(timesOf(c, truth))
	if s.now-o.pendingSince < need {
		return
	}
	o.state, o.pendingSince = truth, 0
	s.record(n, model.Event{Kind: model.EventCheckChanged, Severity: model.SeverityInfo, Reporter: n.name, Node: n.name,
		Group: group, Resource: c.DisplayName(), State: truth.String(),
		Reason: fmt.Sprintf("check %s is %s as seen from %s", c.DisplayName(), truth, n.name)})
}

func timesOf(c check.Check, to check.State) int {
	if to == check.Down {
		return c.Fall
	}
	return c.Rise
}

// observation is one observer's debounced view of one check.
type observation struct {
	state        check.State
	pendingSince time.Duration // when the truth started to differ (0: it does not)
}

func (s *Sim) obs(node, key string) *observation {
	k := node + " " + key
	o, ok := s.observations[k]
	if !ok {
		o = &observation{}
		s.observations[k] = o
	}
	return o
}

// probeSplitBrain: the coordinator's per-node probe finds a copy answering where
// the group is not owned.
func (s *Sim) probeSplitBrain() {
	for _, g := range s.cfg.Groups {
		if g.SplitBrain == nil {
			continue
		}
		st := s.state.Get(g.Name)
		for _, name := range g.Nodes {
			if name == st.Node || !s.nodes[name].handmade[g.Name] || !s.running(s.nodes[name]) || s.reported[g.Name+"/"+name] {
				continue
			}
			s.reported[g.Name+"/"+name] = true
			evs := []model.Event{{Kind: model.EventSplitBrain, Severity: model.SeverityCritical, Reporter: s.leader, Node: name, Group: g.Name,
				Reason: fmt.Sprintf("SPLIT BRAIN: group %s answers on %s, which does not own it", g.Name, name)}}
			if g.SplitBrain.Policy == "stop_intruder" {
				evs = append(evs, model.Event{Kind: model.EventIntruderStop, Severity: model.SeverityCritical, Reporter: s.leader, Node: name,
					Group: g.Name, Reason: "policy stop_intruder"})
			}
			for _, ev := range evs {
				ev.Time = s.base.Add(s.now)
				s.out = append(s.out, Line{At: s.now, Event: ev})
				s.commit(ev)
			}
		}
	}
}
