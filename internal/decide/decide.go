package decide

import (
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/internal/clusterstate"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/membership"
	"github.com/vigil-ha/vigil/internal/model"
)

// Node is the coordinator's view of one node.
type Node struct {
	Name    string
	Witness bool
	// Eligible: alive and holding a lease under Epoch, as the coordinator knows it.
	Eligible bool
	Epoch    membership.Epoch
	// AliveFor is how long the node has been continuously alive (failback delay).
	AliveFor time.Duration
	// Alive: heard recently (its check reports count).
	Alive bool
	// Seen: heard at least once since the coordinator started. At start-up a
	// node not seen yet may still be booting (initdead); one seen and no longer
	// alive is dead.
	Seen bool
}

// Input is everything one decision round looks at.
type Input struct {
	Coordinator string
	Groups      []config.Group
	State       *clusterstate.State
	Nodes       map[string]Node
	// Uptime of the coordinator's membership engine, and initdead: an initial
	// placement waits up to initdead for the preferred node to show up.
	Uptime   time.Duration
	Initdead time.Duration
	// SurelyExpired says whether node's lease under epoch is over for good.
	SurelyExpired func(node string, epoch membership.Epoch) bool
	// Fencing lists nodes that have a fence device: their groups move only after
	// the device confirmed them off (then even before the lease expires).
	Fencing map[string]bool
	// MaxGroupsPerNode caps how many groups one node runs (0: no cap), so that
	// active-active groups stay spread when a node comes back.
	MaxGroupsPerNode int

	// assigned: this round's assignments so far (group -> node), so the cap
	// counts them too.
	assigned map[string]string
	// Now is the coordinator's wall clock, for check verdicts (observers stamp
	// their reports with theirs; seconds of skew are small next to lost_after).
	Now time.Time
}

// gone says whether node can no longer run anything under epoch.
func (in Input) gone(state *clusterstate.State, node string, epoch membership.Epoch) bool {
	if in.Fencing[node] {
		return Fenced(state, node, epoch)
	}
	return in.SurelyExpired(node, epoch)
}

// Fenced says whether a fence device confirmed node off while it held epoch or later.
func Fenced(state *clusterstate.State, node string, epoch membership.Epoch) bool {
	f, ok := state.Fenced[node]
	if !ok {
		return false
	}
	ep, err := membership.ParseEpoch(f)
	return err == nil && !ep.Less(epoch)
}

// NeedsFence says whether the coordinator should fence node now: it has a device,
// it is not eligible, and it is assigned a group under an epoch not yet fenced.
func NeedsFence(in Input, node string) (membership.Epoch, bool) {
	if !in.Fencing[node] || in.Nodes[node].Eligible {
		return membership.Epoch{}, false
	}
	for _, g := range in.Groups {
		st := in.State.Get(g.Name)
		if st.Node != node {
			continue
		}
		ep, err := membership.ParseEpoch(st.Epoch)
		if err == nil && !Fenced(in.State, node, ep) {
			return ep, true
		}
	}
	return membership.Epoch{}, false
}

// Decide returns the events the coordinator should append: assignments and
// releases, each with its reason. It never moves a group away from a node whose
// lease under the assigned epoch might still run, and never assigns a group to
// two nodes: an assignment replaces the previous one in the log.
func Decide(in Input) []model.Event {
	var out []model.Event
	in.assigned = map[string]string{}
	for _, g := range in.Groups {
		st := in.State.Get(g.Name)
		if in.State.Maintenance || st.Maintenance {
			continue
		}
		if ev, ok := decideGroup(in, g, st); ok {
			ev.Group, ev.Reporter = g.Name, in.Coordinator
			if ev.Kind == model.EventGroupAssigned {
				in.assigned[g.Name] = ev.Node
			}
			if ev.Severity == "" {
				ev.Severity = model.SeverityInfo
			}
			out = append(out, ev)
		}
	}
	return out
}

func decideGroup(in Input, g config.Group, st clusterstate.Group) (model.Event, bool) {
	cands := candidates(in, g, st)
	switch {
	case st.Node == "":
		return place(in, g, st, cands)
	case st.Releasing:
		return finishRelease(in, st, cands)
	}
	holder, known := in.Nodes[st.Node]
	assigned, err := membership.ParseEpoch(st.Epoch)
	if err != nil || !known {
		// A malformed or foreign assignment: treat it as a holder that may still run.
		return model.Event{}, false
	}
	if holder.Eligible && holder.Epoch == assigned {
		return keepOrMove(in, g, st, cands)
	}
	if !in.gone(in.State, st.Node, assigned) {
		return model.Event{}, false // wait: the holder might still be running it
	}
	// The holder left that lease (dead, cut off, or it lost and regained it); it
	// has stopped the group. Stay with it if it is eligible again (stickiness),
	// else go to the best candidate.
	if holder.Eligible && !flagged(st, holder.Name) && inList(g.Nodes, holder.Name) {
		return assign(holder, fmt.Sprintf("%s holds a new lease (%s); its previous lease %s is over", holder.Name, holder.Epoch, st.Epoch)), true
	}
	if len(cands) == 0 {
		return model.Event{}, false
	}
	if holder.Alive && !stoppedSince(st, st.Node, st.AssignedAt) && !in.Fencing[st.Node] {
		// The holder left its lease but we still hear it: its VIPs are already gated
		// by the kernel, and it is stopping the rest. Start elsewhere only once it
		// says it has stopped, so a slow service never runs twice.
		return model.Event{}, false
	}
	if pref := in.Nodes[g.Nodes[0]]; in.Uptime < in.Initdead && cands[0].Name != g.Nodes[0] && (!pref.Seen || pref.Alive) {
		// A cold start (every node rebooted, S5): give the preferred node initdead to
		// come back, as for a first placement, so the group starts once, there. Not
		// when it came back and died again (S1 in a young cluster): nothing to wait for.
		return model.Event{}, false
	}
	return assign(cands[0], fmt.Sprintf("takeover: the lease of %s (%s) is surely over", st.Node, st.Epoch)), true
}

// stoppedSince: node reported the group stopped (or failed, which is reported
// after its resources were stopped) after the event at index.
func stoppedSince(st clusterstate.Group, node string, index uint64) bool {
	r, ok := st.Reports[node]
	return ok && r.Index > index && (r.State == clusterstate.RunStopped || r.State == clusterstate.RunFailed)
}

// place makes an initial assignment: the most preferred eligible node, waiting up to
// initdead at start-up for a more preferred node that has not shown up yet.
func place(in Input, g config.Group, st clusterstate.Group, cands []Node) (model.Event, bool) {
	if len(cands) == 0 {
		return model.Event{}, false
	}
	best := cands[0]
	if !st.Ever && best.Name != g.Nodes[0] && in.Uptime < in.Initdead {
		return model.Event{}, false
	}
	return assign(best, fmt.Sprintf("placed on the most preferred eligible node (preference %v)", g.Nodes)), true
}

// finishRelease hands a released group to its target once the old holder has
// reported it stopped, or its lease is surely over.
func finishRelease(in Input, st clusterstate.Group, cands []Node) (model.Event, bool) {
	stopped := stoppedSince(st, st.Node, st.AssignedAt)
	if ep, err := membership.ParseEpoch(st.Epoch); err == nil && in.gone(in.State, st.Node, ep) {
		stopped = true
	}
	if !stopped || len(cands) == 0 {
		return model.Event{}, false
	}
	next := cands[0]
	for _, c := range cands {
		if c.Name == st.Target {
			next = c
		}
	}
	return assign(next, fmt.Sprintf("%s released the group", st.Node)), true
}

// keepOrMove handles a holder in good standing: flags, operator moves and failback.
func keepOrMove(in Input, g config.Group, st clusterstate.Group, cands []Node) (model.Event, bool) {
	if flagged(st, st.Node) {
		return release(st, cands, "the group failed on "+st.Node)
	}
	if r, ok := st.Reports[st.Node]; ok && r.Index > st.AssignedAt && r.State == clusterstate.RunFailed {
		// The holder handed the group back (it failed or did not start there)
		// without a flag, or its flag is already cleared: it starts the group
		// again only under a new assignment (grouprun), so make one, there or
		// on a better node. It has stopped, so this is safe at once.
		if len(cands) == 0 {
			return model.Event{}, false
		}
		return assign(cands[0], fmt.Sprintf("%s handed the group back (%s); assigned afresh", st.Node, r.Reason)), true
	}
	if ev, ok := publicLossMove(in, st, cands); ok {
		return ev, true
	}
	if ev, ok := lostVerdict(in, g, st); ok {
		return ev, true
	}
	if st.MoveTarget != "" && st.MoveTarget != st.Node {
		for _, c := range cands {
			if c.Name == st.MoveTarget {
				return release(st, []Node{c}, "operator moved the group to "+c.Name)
			}
		}
		return model.Event{}, false // target not eligible (yet): keep the request
	}
	if len(cands) == 0 || cands[0].Name == st.Node || !morePreferred(g.Nodes, cands[0].Name, st.Node) {
		return model.Event{}, false
	}
	best := cands[0]
	if r := st.Reports[st.Node]; r.State != clusterstate.RunRunning {
		return model.Event{}, false // never fail back a group that is still starting
	}
	switch g.Failback {
	case "auto":
		if best.AliveFor >= g.FailbackDelay.D() {
			return release(st, []Node{best}, fmt.Sprintf("failback to %s: healthy for %s", best.Name, g.FailbackDelay.D()))
		}
	case "manual":
		if st.FailbackAuthorised {
			return release(st, []Node{best}, "failback to "+best.Name+" authorised by an operator")
		}
	}
	return model.Event{}, false
}

func release(st clusterstate.Group, to []Node, reason string) (model.Event, bool) {
	ev := model.Event{Kind: model.EventGroupReleased, Node: st.Node, Epoch: st.Epoch, Reason: reason}
	if len(to) > 0 {
		ev.Target = to[0].Name
	}
	return ev, true
}

func assign(n Node, reason string) model.Event {
	return model.Event{Kind: model.EventGroupAssigned, Node: n.Name, Epoch: n.Epoch.String(), Reason: reason}
}

// candidates are the group's nodes that may run it now, in preference order.
func candidates(in Input, g config.Group, st clusterstate.Group) []Node {
	var out []Node
	for _, name := range g.Nodes {
		n, ok := in.Nodes[name]
		if ok && n.Eligible && !n.Witness && !flagged(st, name) && !in.State.PublicLost[name] && !full(in, name, g.Name) {
			out = append(out, n)
		}
	}
	return out
}

// full says whether node already runs the cap of groups (other than this one).
func full(in Input, node, group string) bool {
	if in.MaxGroupsPerNode <= 0 {
		return false
	}
	n := 0
	for name, g := range in.State.Groups {
		if _, moved := in.assigned[name]; !moved && name != group && g.Node == node {
			n++
		}
	}
	for name, to := range in.assigned {
		if name != group && to == node {
			n++
		}
	}
	return n >= in.MaxGroupsPerNode
}

func flagged(st clusterstate.Group, node string) bool {
	_, ok := st.Flags[node]
	return ok
}

func inList(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// morePreferred says whether a comes before b in the preference list.
func morePreferred(list []string, a, b string) bool {
	for _, v := range list {
		switch v {
		case a:
			return true
		case b:
			return false
		}
	}
	return false
}
