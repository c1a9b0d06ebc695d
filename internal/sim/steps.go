package sim

import (
	"github.com/vigil-ha/vigil/internal/model"
)

// step carries out one scenario step.
func (s *Sim) step(st Step) {
	n := s.nodes[st.Node]
	switch st.Action {
	case "power_off":
		s.isolate(st.Node, true)
		n.up = false
		for _, c := range n.groups {
			c.running, c.startingAt = false, 0
		}
		n.handmade = map[string]bool{}
	case "power_on":
		s.isolate(st.Node, false)
		_ = s.boot(st.Node) // validated at load; the config cannot change here
	case "freeze":
		s.isolate(st.Node, true)
		n.frozen = true
	case "thaw":
		s.isolate(st.Node, false)
		n.frozen = false
	case "cut_link", "restore_link":
		cut := st.Action == "cut_link"
		for _, o := range s.order {
			if o != st.Node {
				s.setCut(st.Node, o, st.Link, cut)
				s.setCut(o, st.Node, st.Link, cut)
			}
		}
	case "partition":
		s.partition(st)
	case "heal":
		s.cut = map[[2]string]map[int]bool{}
		for _, name := range s.order {
			if m := s.nodes[name]; !m.up || m.frozen {
				s.isolate(name, true)
			}
		}
	case "check_fail", "check_recover":
		for _, name := range s.targets(st) {
			s.nodes[name].groups[st.Group].failed = st.Action == "check_fail"
		}
	case "public_lost", "public_regained":
		kind, sev := model.EventPublicLost, model.SeverityWarning
		if st.Action == "public_regained" {
			kind, sev = model.EventPublicRegained, model.SeverityInfo
		}
		s.record(n, model.Event{Kind: kind, Severity: sev, Reporter: n.name, Node: n.name, Reason: "public targets " + map[bool]string{true: "unreachable", false: "reachable again"}[kind == model.EventPublicLost]})
	case "start_by_hand":
		n.handmade[st.Group] = true
	default:
		s.operator(st)
	}
}

// targets: the step's node, or the group's current holder.
func (s *Sim) targets(st Step) []string {
	if st.Node != "" {
		return []string{st.Node}
	}
	if h := s.state.Get(st.Group).Node; h != "" {
		return []string{h}
	}
	return nil
}

// operator records an operator action through the coordinator, as the API does.
func (s *Sim) operator(st Step) {
	ev := model.Event{Severity: model.SeverityWarning, Reporter: "operator", By: "operator", Group: st.Group, Reason: "operator action"}
	switch st.Action {
	case "move":
		ev.Kind, ev.Target = model.EventMoveRequested, st.Target
	case "failback":
		ev.Kind = model.EventFailbackAuthorised
	case "flags_clear":
		ev.Kind, ev.Node = model.EventFlagCleared, st.Node
	case "maintenance_on":
		ev.Kind = model.EventMaintenanceOn
	case "maintenance_off":
		ev.Kind = model.EventMaintenanceOff
	}
	if s.leader == "" {
		ev.Reason = "refused: no coordinator (no quorum)"
		s.out = append(s.out, Line{At: s.now, Event: ev})
		return
	}
	ev.Time = s.base.Add(s.now)
	s.out = append(s.out, Line{At: s.now, Event: ev})
	s.commit(ev)
}

func (s *Sim) setCut(from, to string, link int, cut bool) {
	k := [2]string{from, to}
	if s.cut[k] == nil {
		s.cut[k] = map[int]bool{}
	}
	s.cut[k][link] = cut
}

// isolate cuts or restores every link between name and everybody else.
func (s *Sim) isolate(name string, cut bool) {
	for _, o := range s.order {
		if o == name {
			continue
		}
		for l := 0; l < s.links; l++ {
			s.setCut(name, o, l, cut)
			s.setCut(o, name, l, cut)
		}
	}
}

func (s *Sim) partition(st Step) {
	from := st.From
	if len(from) == 0 {
		for _, o := range s.order {
			if indexOf(st.Nodes, o) < 0 {
				from = append(from, o)
			}
		}
	}
	for _, a := range st.Nodes {
		for _, b := range from {
			for l := 0; l < s.links; l++ {
				s.setCut(a, b, l, true)
				if !st.OneWay {
					s.setCut(b, a, l, true)
				}
			}
		}
	}
}
